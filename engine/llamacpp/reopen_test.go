package llamacpp

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// testGPULayers is $ASI1D_TEST_GPU_LAYERS (default 0): scripts/gpu-check.sh
// runs this package's tests with all layers on the GPU.
func testGPULayers(t testing.TB) int {
	v := os.Getenv("ASI1D_TEST_GPU_LAYERS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("ASI1D_TEST_GPU_LAYERS=%q: %v", v, err)
	}
	return n
}

// reopenLoop opens, uses and closes the reference model several times in
// one process, both KV layouts, and checks the reference text every time.
func reopenLoop(t *testing.T, rounds int) {
	path := testmodel.Path(t, testmodel.Stories260K)
	gl := testGPULayers(t)
	before := deferredFrees.Load()
	for i := range rounds {
		unified := i%2 == 1
		b, err := Open(path, Options{CtxSize: 1024, Parallel: 2, Threads: 2, GPULayers: gl, KVUnified: unified})
		if err != nil {
			t.Fatalf("round %d: open: %v", i, err)
		}
		got := greedyText(t, b, 1, 64)
		if got != testmodel.ReferenceText {
			t.Errorf("round %d (kv_unified %v, gpu_layers %d): got %q, want the reference text", i, unified, gl, got)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("round %d: close: %v", i, err)
		}
		if err := b.Close(); err != nil { // a second Close is a no-op
			t.Fatalf("round %d: second close: %v", i, err)
		}
	}
	// Every context has at least the CPU backend, freed after the scheduler.
	if n := deferredFrees.Load() - before; n < int64(rounds) {
		t.Fatalf("%d backends freed after their scheduler in %d closes: the -Wl,--wrap=ggml_backend_free of free.go is not in effect", n, rounds)
	}
}

// greedyText decodes n tokens after the reference prompt on seq.
func greedyText(t *testing.T, b *Backend, seq engine.SeqID, n int) string {
	t.Helper()
	var batch []engine.BatchEntry
	for i, tok := range testmodel.ReferenceTokens {
		batch = append(batch, engine.BatchEntry{Token: engine.Token(tok), Seq: seq, Pos: int32(i), Logits: i == len(testmodel.ReferenceTokens)-1})
	}
	if err := b.Decode(batch); err != nil {
		t.Fatal(err)
	}
	last, pos := len(batch)-1, int32(len(batch))
	var sb strings.Builder
	for range n {
		row := b.Logits(last)
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		tok := engine.Token(best)
		if b.IsEOG(tok) {
			break
		}
		sb.Write(b.Piece(tok))
		if err := b.Decode([]engine.BatchEntry{{Token: tok, Seq: seq, Pos: pos, Logits: true}}); err != nil {
			t.Fatal(err)
		}
		pos, last = pos+1, 0
	}
	return sb.String()
}

// TestOpenCloseReopen loads and frees the model repeatedly in one process.
// It runs a second time in a child process whose allocator overwrites freed
// memory (glibc's perturb tunable, tcache off): before free_shim.c, freeing
// a context read its freed CPU backend's reset pointer (then 0xa5a5...) and
// the child died of SIGSEGV in llama_free, the CPU twin of the CUDA crash.
func TestOpenCloseReopen(t *testing.T) {
	if os.Getenv("ASI1D_REOPEN_CHILD") == "1" {
		reopenLoop(t, 2) // the perturbing allocator is slow
		return
	}
	reopenLoop(t, 4)

	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenCloseReopen$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "ASI1D_REOPEN_CHILD=1",
		"GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.perturb=165")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestOpenCloseReopen") {
		t.Fatalf("child with freed memory perturbed: %v\n%s", err, tail(string(out), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
