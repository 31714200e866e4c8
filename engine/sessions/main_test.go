package sessions_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine outlives the tests: a
// store's writer or a model's hashing left running after the store's Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
