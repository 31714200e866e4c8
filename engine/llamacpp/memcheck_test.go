package llamacpp

import (
	"errors"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// Open refuses a context that does not fit the memory available, with an
// error that says what to lower, and opens it with the check skipped or on
// a machine where it fits. The machine's memory is stated by the test.
func TestRefusesWhatDoesNotFit(t *testing.T) {
	path := testmodel.Path(t, testmodel.Stories260K)
	old := memAvailable
	defer func() { memAvailable = old }()
	memAvailable = func() (uint64, bool) { return 32 << 20, true } // a 32 MiB machine
	_, err := Open(path, Options{CtxSize: 1 << 16, Parallel: 32})
	var me *MemoryError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "lower --ctx") {
		t.Fatalf("want a MemoryError, got %v", err)
	}
	if me.KV == 0 || me.Weights == 0 {
		t.Fatalf("estimate %+v", me)
	}
	b, err := Open(path, Options{CtxSize: 1 << 16, Parallel: 32, SkipMemCheck: true})
	if err != nil {
		t.Fatalf("with the check skipped: %v", err)
	}
	b.Close()
	// A small context fits a 1 GiB machine (stated, not read from this
	// machine, whose free memory the test must not depend on).
	memAvailable = func() (uint64, bool) { return 1 << 30, true }
	b, err = Open(path, Options{CtxSize: 512})
	if err != nil {
		t.Fatalf("small context on a 1 GiB machine: %v", err)
	}
	b.Close()
}
