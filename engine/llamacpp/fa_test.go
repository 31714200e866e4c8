package llamacpp_test

import (
	"math"
	"path/filepath"
	"slices"
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

// The tiled flash-attention kernel (ggmlfa) is as exact as ggml's own CPU
// kernel: against the attention without flash attention (a separate code
// path: matrix products and a softmax op), its logits differ no more than
// ggml's kernel's do (within f16 rounding; the synth models' random
// weights amplify rounding), and where ggml's kernel gives the same greedy
// continuation as that path, so does it. The prompt is long enough for
// several key and query tiles; the models have grouped KV heads and head
// sizes of 8 (stories260K: the kernels' scalar tails), 64 and 128 (their
// vector paths); the continuation is decoded a token at a time (ggml's
// kernel's part: the tiled one takes batches of 32 rows or more).
func TestFlashAttentionTiledMatchesGGML(t *testing.T) {
	defer ggmlfa.SetEnabled(ggmlfa.Enabled())
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		o    *synth.Options
	}{
		{"stories260K", nil},
		{"head64-gqa", &synth.Options{NEmbd: 256, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 512, NVocab: 512, Type: "f16", Seed: 3}},
		{"head128", &synth.Options{NEmbd: 512, NLayer: 2, NHead: 4, NFF: 512, NVocab: 512, Type: "q8_0", Seed: 4}},
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
				logits [][]float32
				next   []engine.Token
			}
			run := func(flash string, tiled bool) result {
				ggmlfa.SetEnabled(tiled)
				b, err := llamacpp.Open(path, llamacpp.Options{CtxSize: 2048, Parallel: 4, FlashAttention: flash, Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				r := result{prefillLogits(t, b, 0, prompt), greedy(t, b, 1, prompt[:120], 24)}
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
				return r
			}
			tiled0, ggml0 := ggmlfa.Calls()
			ref := run("off", true)
			gg := run("on", false)
			tiled1, ggml1 := ggmlfa.Calls()
			tl := run("on", true)
			tiled2, _ := ggmlfa.Calls()
			if ggml1 == ggml0 || tiled1 != tiled0 {
				t.Fatalf("with the tiled kernel off, ggml's ran %d times and the tiled %d", ggml1-ggml0, tiled1-tiled0)
			}
			if tiled2 == tiled1 {
				t.Fatal("the tiled kernel never ran: flash attention is not on, or the wrap is not linked")
			}
			dg, dt := logitDistance(ref.logits, gg.logits), logitDistance(ref.logits, tl.logits)
			t.Logf("largest logit difference from the attention without flash: ggml's kernel %.2g, the tiled %.2g (of the row's largest logit)", dg, dt)
			if dt > max(2*dg, 5e-3) {
				t.Errorf("the tiled kernel's logits differ by %.3g, ggml's by %.3g", dt, dg)
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
