//go:build integration

package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/bench/loadgen"
	"github.com/asi1d/asi1d/internal/testutil/fleettest"
)

// TestRestoreTTFT measures what a restored session saves on a real model:
// a session's first turn of about $ASI1D_RESTORE_TOKENS (default 2,000)
// prompt tokens, then the replica restarts (its drain saves the session),
// then the session's next turn (restored) against a cold prompt of the
// same length without a session, each after a short warm-up request. It is
// a measurement, not a check of speed: it runs only with
// $ASI1D_RESTORE_MODEL set, and asserts only that the restore happened.
//
//	./bin/asi1d synth --preset small
//	ASI1D_RESTORE_MODEL=$PWD/.build/synth/small-q8_0.gguf \
//	  go test -count=1 -tags integration -run TestRestoreTTFT -v ./cmd/asi1d/
func TestRestoreTTFT(t *testing.T) {
	model := os.Getenv("ASI1D_RESTORE_MODEL")
	if model == "" {
		t.Skip("set ASI1D_RESTORE_MODEL to a GGUF model to measure restored against cold TTFT")
	}
	want, rounds := 2000, 5
	if v, err := strconv.Atoi(os.Getenv("ASI1D_RESTORE_TOKENS")); err == nil && v > 0 {
		want = v
	}
	if v, err := strconv.Atoi(os.Getenv("ASI1D_RESTORE_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	r := &replicaProc{id: "m", addr: fleettest.FreeAddr(t), model: model}
	dir := t.TempDir()
	args := []string{"serve", "--model", model, "--addr", r.addr, "--replica-id", r.id, "--parallel", "2",
		"--ctx", strconv.Itoa(4 * (want + 500)), "--threads", "2", "--log-level", "info", "--session-dir", dir}
	start := func() {
		r.p = launch(t, &r.out, args...)
		r.waitReady(t)
	}
	start()
	t.Cleanup(func() {
		_ = r.stop(syscall.SIGKILL, 10*time.Second)
		if t.Failed() {
			t.Logf("log:\n%s", r.out.String())
		}
	})
	base := "http://" + r.addr
	opts := func(session string) chatOpts {
		return chatOpts{session: session, maxTokens: 4, timeout: 5 * time.Minute}
	}
	ask := func(msgs []msg, session string) result {
		t.Helper()
		res := streamChat(base, msgs, opts(session))
		if res.err != nil {
			t.Fatalf("%v\nlog:\n%s", res.err, r.out.String())
		}
		if res.ttft == 0 { // no visible text in 4 tokens: the whole answer
			res.ttft = res.total
		}
		return res
	}
	// Words for the prompt length, from the server's own count.
	words := want * 3 / 4
	for range 3 {
		got := ask([]msg{{"user", loadgen.Prompt(900, words)}}, "").prompt
		if abs(got-want) <= want/50 {
			break
		}
		words = words * want / max(got, 1)
	}
	var warm, cold []time.Duration
	var prompt, cached, coldPrompt, coldCached int
	for k := range rounds {
		first := []msg{{"user", loadgen.Prompt(k, words)}}
		r1 := ask(first, fmt.Sprint("restore-", k))
		if err := r.stop(syscall.SIGTERM, time.Minute); err != nil {
			t.Fatal(err)
		}
		start()
		ask([]msg{{"user", "Hello."}}, "") // warm-up
		rc := ask([]msg{{"user", loadgen.Prompt(500+k, words)}}, "")
		next := append(slices.Clone(first), msg{"assistant", r1.content}, msg{"user", "And then?"})
		r2 := ask(next, fmt.Sprint("restore-", k))
		if r2.cached < r1.prompt-8 {
			t.Errorf("round %d: the next turn reused %d of the %d tokens of the first", k, r2.cached, r1.prompt)
		}
		warm, cold = append(warm, r2.ttft), append(cold, rc.ttft)
		prompt, cached, coldPrompt, coldCached = r2.prompt, r2.cached, rc.prompt, rc.cached
		t.Logf("round %d: restored %d of %d prompt tokens, TTFT %v; cold %d prompt tokens (%d cached), TTFT %v",
			k, r2.cached, r2.prompt, r2.ttft.Round(time.Millisecond), rc.prompt, rc.cached, rc.ttft.Round(time.Millisecond))
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	t.Logf("restored vs cold TTFT, median of %d rounds: %v (%d of %d prompt tokens restored) vs %v (%d prompt tokens, %d cached): %.3fx",
		rounds, med(warm).Round(time.Millisecond), cached, prompt, med(cold).Round(time.Millisecond), coldPrompt, coldCached,
		float64(med(warm))/float64(med(cold)))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
