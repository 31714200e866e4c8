package llamacpp_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine outlives the tests.
// llama.cpp's own threads (ggml's thread pool, the model loader) are OS
// threads outside the Go runtime, which goleak does not see, and its
// callbacks into Go (load progress, logs) return on them: nothing is
// ignored, so what goleak reports is a Go goroutine left behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
