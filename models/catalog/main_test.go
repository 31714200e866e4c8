package catalog

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a goroutine outlives the tests (a download,
// a progress ticker or a hub test server left running).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
