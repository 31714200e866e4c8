package llamacpp

import (
	"errors"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

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
	memAvailable = old
	b, err = Open(path, Options{CtxSize: 512})
	if err != nil {
		t.Fatalf("small context on this machine: %v", err)
	}
	b.Close()
}
