package server

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine is still running
// after they all end (a stream writer, a keep-alive ticker, a client that
// was not closed). It works with parallel tests: it checks once, at the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
