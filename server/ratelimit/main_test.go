package ratelimit_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine outlives the tests (a Redis
// client's pool or a test Redis left running).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
