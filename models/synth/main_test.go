package synth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine is still running after
// them: writeData starts a producer and a pool of workers per file.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
