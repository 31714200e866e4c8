package scheduler_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine outlives the tests: a
// scheduler loop, a sampling helper, a state reader or a test's reader left
// behind (the harness counted runtime.NumGoroutine per test before).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
