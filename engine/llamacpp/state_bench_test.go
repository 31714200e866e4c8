package llamacpp_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/engine/sessions"
)

// BenchmarkSessionRestore compares, for a prefix of n tokens, the time to
// the first token's logits cold (prefill the n tokens, in passes of the
// batch size: the best case for cold) and restored (load the session's
// file through engine/sessions, restore it into the sequence, decode the
// last token), and what saving costs the scheduler's loop (the copy out of
// llama.cpp). The file is fresh, so it is read from the page cache. The
// prefix lengths are $ASI1D_BENCH_PREFIX (comma-separated), default
// 64,256,1000,2000 (those that fit the model's context). Run side by side:
//
//	ASI1D_BENCH_MODEL=.build/synth/small-q8_0.gguf go test -run '^$' \
//	  -bench SessionRestore -benchtime 5x -count 5 ./engine/llamacpp/
func BenchmarkSessionRestore(b *testing.B) {
	ns := []int{64, 256, 1000, 2000}
	if v := os.Getenv("ASI1D_BENCH_PREFIX"); v != "" {
		ns = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				b.Fatalf("ASI1D_BENCH_PREFIX: bad length %q", f)
			}
			ns = append(ns, n)
		}
	}
	model := benchModel(b)
	be, err := llamacpp.Open(model, llamacpp.Options{CtxSize: 4096, Parallel: 1, Threads: 2, ThreadPoll: benchPoll()})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	st, err := sessions.Open(sessions.Options{Dir: b.TempDir(), MinTokens: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m, err := st.WaitIdentify(context.Background(), model, be.Info().Arch)
	if err != nil {
		b.Fatal(err)
	}
	key := sessions.Key{Model: m, Settings: be.StateID()}
	nv := be.Info().NVocab
	first := func(tok engine.Token, pos int) {
		if err := be.Decode([]engine.BatchEntry{{Token: tok, Pos: int32(pos), Logits: true}}); err != nil {
			b.Fatal(err)
		}
		if be.Logits(0) == nil {
			b.Fatal("no logits")
		}
	}
	for _, n := range ns {
		if n >= be.Info().NCtxSeq {
			b.Logf("skipping n=%d: the context has %d cells", n, be.Info().NCtxSeq)
			continue
		}
		toks := make([]engine.Token, n)
		for i := range toks {
			toks[i] = engine.Token(100 + (i*7919)%(nv-200))
		}
		b.Run(fmt.Sprintf("cold/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				be.ClearKV()
				prefill(b, be, 0, toks[:n-1], 0)
				first(toks[n-1], n-1)
			}
		})
		be.ClearKV()
		prefill(b, be, 0, toks[:n-1], 0)
		// What an eviction costs the loop: the copy of the state (the
		// file is written by the store's writer).
		b.Run(fmt.Sprintf("save/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := be.SaveSeq(0); err != nil {
					b.Fatal(err)
				}
			}
		})
		state, err := be.SaveSeq(0)
		if err != nil {
			b.Fatal(err)
		}
		st.Save(key, "s", toks[:n-1], state)
		st.Flush()
		// Of a restore, reading and checking the file alone (the store's
		// part; the rest is the backend's copy into the KV and the decode).
		b.Run(fmt.Sprintf("load/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, ok := st.Load(key, "s", toks); !ok {
					b.Fatal("session not found")
				}
			}
		})
		b.Run(fmt.Sprintf("restored/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				be.ClearKV()
				e, ok := st.Load(key, "s", toks)
				if !ok {
					b.Fatal("session not found")
				}
				if err := be.RestoreSeq(0, e.State); err != nil {
					b.Fatal(err)
				}
				first(toks[n-1], n-1)
			}
			b.ReportMetric(float64(len(state))/(1<<20), "state-MiB")
		})
	}
}
