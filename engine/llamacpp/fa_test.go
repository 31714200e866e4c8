package llamacpp_test

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/engine/llamacpp/ggmlfa"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/models/synth"
)

// prefillLogits decodes prompt on seq in one batch and returns the logits
// of every 5th position and the last.
func prefillLogits(t *testing.T, b *llamacpp.Backend, seq engine.SeqID, prompt []engine.Token) [][]float32 {
	t.Helper()
	batch := make([]engine.BatchEntry, len(prompt))
	var rows []int
	for i, tok := range prompt {
		want := i%5 == 0 || i == len(prompt)-1
		batch[i] = engine.BatchEntry{Token: tok, Seq: seq, Pos: int32(i), Logits: want}
		if want {
			rows = append(rows, i)
		}
	}
	if err := b.Decode(batch); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(rows))
	for i, r := range rows {
		out[i] = append([]float32(nil), b.Logits(r)...)
	}
	return out
}

// asi1d's flash-attention kernels (ggmlfa) are as exact as ggml's own CPU
// kernel: against the attention without flash attention (a separate code
// path: matrix products and a softmax op), their logits differ no more than
// ggml's kernel's do (within f16 rounding; the synth models' random
// weights amplify rounding), and where ggml's kernel gives the same greedy
// continuation as that path, so do they. The prompt in one batch (the
// tiled kernel) is long enough for several key and query tiles; in batches
// of 5 (the row kernel) and 8 (the tiled kernel's smallest) it is decoded
// on another sequence, and the continuation a token at a time (the row
// kernel). The models have grouped KV heads and head sizes of 8
// (stories260K: the kernels' scalar tails), 64 and 128 (their vector
// paths) and 80 (vector paths with tails). The tiled kernel's cache of converted key/value tiles changes
// nothing: without it the logits are the same to the bit.
func TestFlashAttentionKernelsMatchGGML(t *testing.T) {
	defer ggmlfa.SetEnabled(ggmlfa.Enabled())
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		o    *synth.Options
	}{
		{"stories260K", nil},
		{"head64-gqa", &synth.Options{NEmbd: 256, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 512, NVocab: 512, Type: "f16", Seed: 3}},
		{"head128", &synth.Options{NEmbd: 512, NLayer: 2, NHead: 4, NFF: 512, NVocab: 512, Type: "q8_0", Seed: 4}},
		{"head80-gqa", &synth.Options{NEmbd: 320, NLayer: 2, NHead: 4, NHeadKV: 1, NFF: 512, NVocab: 512, Type: "f16", Seed: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testmodel.Path(t, testmodel.Stories260K)
			if tc.o != nil {
				path = filepath.Join(dir, tc.name+".gguf")
				if err := synth.WriteFile(path, *tc.o); err != nil {
					t.Fatal(err)
				}
			}
			prompt := []engine.Token{1}
			for i := 0; len(prompt) < 300; i++ {
				prompt = append(prompt, engine.Token(3+(i*37)%400))
			}
			type result struct {
				logits [][]float32 // of the prompt in one batch
				chunks [][]float32 // of the prompt in batches of 5, then 8 rows
				next   []engine.Token
			}
			run := func(flash string, tiled bool) result {
				ggmlfa.SetEnabled(tiled)
				b, err := llamacpp.Open(path, llamacpp.Options{CtxSize: 2560, Parallel: 5, FlashAttention: flash, Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				r := result{logits: prefillLogits(t, b, 0, prompt), next: greedy(t, b, 1, prompt[:120], 24)}
				// Two sequences' prompts in one batch: each row attends to its
				// own sequence only, so each ends where the prompt alone did.
				var batch []engine.BatchEntry
				for _, seq := range []engine.SeqID{2, 3} {
					for i, tok := range prompt[:101] {
						batch = append(batch, engine.BatchEntry{Token: tok, Seq: seq, Pos: int32(i), Logits: i == 100})
					}
				}
				if err := b.Decode(batch); err != nil {
					t.Fatal(err)
				}
				alone := [][]float32{r.logits[20], r.logits[20]} // position 100
				if d := logitDistance(alone, [][]float32{b.Logits(100), b.Logits(201)}); d > 1e-3 {
					t.Errorf("flash=%s tiled=%v: two sequences in one batch differ from the prompt alone by %.3g", flash, tiled, d)
				}
				// The prompt in small batches on a sequence of its own: 5
				// rows (the row kernel's), then 8 (the tiled kernel's fewest).
				for p0 := 0; p0 < 160; {
					n := 5
					if p0 >= 80 {
						n = 8
					}
					batch := make([]engine.BatchEntry, n)
					for i := range batch {
						batch[i] = engine.BatchEntry{Token: prompt[p0+i], Seq: 4, Pos: int32(p0 + i), Logits: i == n-1}
					}
					if err := b.Decode(batch); err != nil {
						t.Fatal(err)
					}
					r.chunks = append(r.chunks, append([]float32(nil), b.Logits(n-1)...))
					p0 += n
				}
				return r
			}
			asi1dCalls := func() (asi1d, ggml int64) {
				tiled, rows, ggml := ggmlfa.Calls()
				return tiled + rows, ggml
			}
			tiled0, ggml0 := asi1dCalls()
			ref := run("off", true)
			gg := run("on", false)
			tiled1, ggml1 := asi1dCalls()
			tl := run("on", true)
			tiled2, _ := asi1dCalls()
			// With no room to keep converted tiles, each is converted again
			// for every query tile: the same arithmetic, the same logits.
			ggmlfa.SetCacheTiles(0)
			nc := run("on", true)
			ggmlfa.SetCacheTiles(-1)
			if d := logitDistance(tl.logits, nc.logits); d != 0 || !slices.Equal(tl.next, nc.next) || logitDistance(tl.chunks, nc.chunks) != 0 {
				t.Errorf("the tiled kernel without its tile cache differs from it with the cache by %.3g (next %v, %v)", d, nc.next, tl.next)
			}
			if ggml1 == ggml0 || tiled1 != tiled0 {
				t.Fatalf("with asi1d's kernels off, ggml's ran %d times and asi1d's %d", ggml1-ggml0, tiled1-tiled0)
			}
			if tiled2 == tiled1 {
				t.Fatal("asi1d's kernels never ran: flash attention is not on, or the wrap is not linked")
			}
			dg, dt := logitDistance(ref.logits, gg.logits), logitDistance(ref.logits, tl.logits)
			t.Logf("largest logit difference from the attention without flash: ggml's kernel %.2g, asi1d's %.2g (of the row's largest logit)", dg, dt)
			if dt > max(2*dg, 5e-3) {
				t.Errorf("asi1d's kernels' logits differ by %.3g, ggml's by %.3g", dt, dg)
			}
			cg, ct := logitDistance(ref.chunks, gg.chunks), logitDistance(ref.chunks, tl.chunks)
			t.Logf("in batches of 5 and 8: ggml's kernel %.2g, asi1d's %.2g", cg, ct)
			if ct > max(2*cg, 5e-3) {
				t.Errorf("in batches of 5 and 8, asi1d's kernels' logits differ by %.3g, ggml's by %.3g", ct, cg)
			}
			if slices.Equal(gg.next, ref.next) && !slices.Equal(tl.next, ref.next) {
				t.Errorf("greedy continuation %v, without flash attention (and with ggml's kernel) %v", tl.next, ref.next)
			}
		})
	}
}

// logitDistance is the largest difference between a's and b's logits,
// each row's relative to its largest logit.
func logitDistance(a, b [][]float32) float64 {
	var worst float64
	for i := range a {
		scale := 0.0
		for _, v := range a[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for j := range a[i] {
			worst = math.Max(worst, math.Abs(float64(a[i][j]-b[i][j]))/scale)
		}
	}
	return worst
}

// With flash attention on, the goldens hold too.
func TestGoldenGreedyFlashAttention(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 512, Threads: 2, FlashAttention: "on"})
	got := text(b, greedy(t, b, 0, testmodel.ReferenceTokens, 64))
	if got != testmodel.ReferenceText {
		t.Fatalf("continuation differs from llama.cpp's reference:\n got %q\nwant %q", got, testmodel.ReferenceText)
	}
}

// --flash-attn auto on the CPU: on where asi1d's kernels have their
// AVX-512 or AVX2 paths, off on other CPUs and when ASI1D_FA_KERNEL=ggml
// keeps ggml's kernel. The sequence-state id says which (a state saved
// with one V layout must not be offered to the other).
func TestFlashAttentionAutoOnCPU(t *testing.T) {
	defer ggmlfa.SetEnabled(ggmlfa.Enabled())
	for _, tc := range []struct {
		asi1d bool
		want  string
	}{
		{true, map[bool]string{true: "flash_attn=enabled", false: "flash_attn=disabled"}[ggmlfa.ISA() != "portable"]},
		{false, "flash_attn=disabled"},
	} {
		ggmlfa.SetEnabled(tc.asi1d)
		b := open(t, llamacpp.Options{CtxSize: 512, Threads: 2})
		if id := b.StateID(); !strings.Contains(id, tc.want) {
			t.Errorf("kernels %s, asi1d's in use %v: state id %q, want %s", ggmlfa.ISA(), tc.asi1d, id, tc.want)
		}
	}
}

// Decode steps of many sequences in one shared KV pool (--kv-unified, the
// server's default) interleave their cells, so that each row sees a key or
// two of every key tile: asi1d's row kernel takes such batches (fa_sparse)
// and reads just the keys each row sees. Its logits are no further from
// the attention without flash than ggml's kernel's are.
func TestFlashAttentionSharedPoolDecode(t *testing.T) {
	defer ggmlfa.SetEnabled(ggmlfa.Enabled())
	path := filepath.Join(t.TempDir(), "gqa.gguf")
	if err := synth.WriteFile(path, synth.Options{NEmbd: 256, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 512, NVocab: 512, Type: "f16", Seed: 6}); err != nil {
		t.Fatal(err)
	}
	const seqs, prompt, steps = 16, 24, 12
	run := func(flash string, asi1d bool) [][]float32 {
		ggmlfa.SetEnabled(asi1d)
		b, err := llamacpp.Open(path, llamacpp.Options{CtxSize: seqs * 64, Parallel: seqs, KVUnified: true, FlashAttention: flash, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var batch []engine.BatchEntry
		for s := range seqs {
			for i := range prompt {
				batch = append(batch, engine.BatchEntry{Token: engine.Token(3 + (s*31+i*7)%400), Seq: engine.SeqID(s), Pos: int32(i)})
			}
		}
		if err := b.Decode(batch); err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		for step := range steps {
			batch = batch[:0]
			for s := range seqs {
				batch = append(batch, engine.BatchEntry{Token: engine.Token(5 + (s*13+step*17)%400), Seq: engine.SeqID(s), Pos: int32(prompt + step), Logits: true})
			}
			if err := b.Decode(batch); err != nil {
				t.Fatal(err)
			}
		}
		for s := range seqs {
			out = append(out, append([]float32(nil), b.Logits(s)...))
		}
		return out
	}
	ref := run("off", true)
	gg := run("on", false)
	_, rows0, _ := ggmlfa.Calls()
	got := run("on", true)
	_, rows1, _ := ggmlfa.Calls()
	if rows1 == rows0 {
		t.Fatal("the row kernel never took the shared pool's decode steps")
	}
	dg, dt := logitDistance(ref, gg), logitDistance(ref, got)
	t.Logf("after %d steps of %d sequences: ggml's kernel %.2g, asi1d's %.2g from the attention without flash", steps, seqs, dg, dt)
	if dt > max(2*dg, 5e-3) {
		t.Errorf("asi1d's kernels' logits differ by %.3g, ggml's by %.3g", dt, dg)
	}
}
