//go:build integration

package server_test

import (
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/redistest"
)

// TestRateLimitSharedReplicasRealRedis is rlSharedReplicas on a real
// redis-server. A missing redis-server is a skip on a developer machine
// and a failure in CI (redistest).
func TestRateLimitSharedReplicasRealRedis(t *testing.T) {
	rs := redistest.Start(t, time.Minute)
	rlSharedReplicas(t, rs.URL(), rs.Stop)
}
