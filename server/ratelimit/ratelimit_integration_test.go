//go:build integration

package ratelimit_test

import (
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/redistest"
)

// TestRealRedisSharedAcrossReplicas is sharedAcrossReplicas on a real
// redis-server: the limiter's Lua scripts and its fallback against Redis
// itself, not miniredis. A missing redis-server is a skip on a developer
// machine and a failure in CI (redistest).
func TestRealRedisSharedAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t, time.Minute)
	sharedAcrossReplicas(t, rs.URL(), rs.Stop)
}
