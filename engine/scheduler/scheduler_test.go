package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
)

func TestSingleRequest(t *testing.T) {
	s := harness(t, enginetest.New(2, 256, 64), scheduler.Options{})
	p := prompt("Once upon a time")
	r := run(t, s, scheduler.Request{Prompt: p, MaxTokens: 20})
	if want := expected(p, 20); r.text != want {
		t.Fatalf("text %q, want %q", r.text, want)
	}
	u := r.final.Usage
	if r.final.Finish != scheduler.FinishLength || u.PromptTokens != len(p) || u.CompletionTokens != 20 {
		t.Fatalf("final %+v", r.final)
	}
}

// The final event carries the gap before each generated token after the
// first, as the loop produced them: one per token, each the decode step that
// made it, adding up to Generated. The scheduler's clock is moved by the
// decodes alone (costClock), so every figure is exact.
func TestFinalEventGaps(t *testing.T) {
	const step = 2 * time.Millisecond
	fake := enginetest.New(1, 256, 64)
	s := harnessWith(t, fake, scheduler.Options{}, func(s *scheduler.Scheduler) {
		useCostClock(s, fake, func(int) time.Duration { return step })
	})
	r := run(t, s, scheduler.Request{Prompt: prompt("Once upon a time"), MaxTokens: 12})
	gaps := r.final.Gaps
	if len(gaps) != r.final.Usage.CompletionTokens-1 {
		t.Fatalf("%d gaps for %d tokens", len(gaps), r.final.Usage.CompletionTokens)
	}
	var sum time.Duration
	for i, g := range gaps {
		if g != step {
			t.Errorf("gap %d is %v, not the %v decode that made its token", i, g, step)
		}
		sum += g
	}
	if sum != r.final.Generated {
		t.Fatalf("gaps add up to %v, Generated is %v", sum, r.final.Generated)
	}
	// Submitted and admitted before any decode; the first token after the
	// prompt's one pass.
	if r.final.Queued != 0 || r.final.FirstTok != step {
		t.Fatalf("queued %v, first token %v; want 0 and %v", r.final.Queued, r.final.FirstTok, step)
	}
}

func TestEOSAndStopStrings(t *testing.T) {
	fake := enginetest.New(1, 256, 64)
	script := "hello world. STOP here</s>"
	fake.Next = func(h []engine.Token) engine.Token {
		// Emit the script after the prompt (which ends with '>').
		i := 0
		for j := len(h) - 1; j >= 0 && h[j] != enginetest.ByteBase+'>'; j-- {
			i++
		}
		if i >= len("hello world. STOP here") {
			return enginetest.EOS
		}
		return engine.Token(enginetest.ByteBase + int(script[i]))
	}
	s := harness(t, fake, scheduler.Options{})
	p := prompt("go>")
	r := run(t, s, scheduler.Request{Prompt: p, MaxTokens: 100})
	if r.text != "hello world. STOP here" || r.final.Finish != scheduler.FinishStop {
		t.Fatalf("EOS: %q %s", r.text, r.final.Finish)
	}
	if r.final.Usage.CompletionTokens != len("hello world. STOP here")+1 {
		t.Fatalf("EOS counts as a sampled token: %+v", r.final.Usage)
	}
	r = run(t, s, scheduler.Request{Prompt: p, MaxTokens: 100, Stop: []string{"xyz", " STOP"}})
	if r.text != "hello world." || r.final.Finish != scheduler.FinishStop {
		t.Fatalf("stop string: %q %s", r.text, r.final.Finish)
	}
}

// 16 different requests on 4 sequences: each gets exactly what it gets alone,
// whatever the batch shape, and the queue drains.
func TestManyConcurrentDeterministic(t *testing.T) {
	fake := enginetest.New(4, 512, 64)
	s := harness(t, fake, scheduler.Options{StepTokens: 24})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := prompt(fmt.Sprintf("request number %d says %s", i, strings.Repeat("x", i*7)))
			st, err := s.Submit(context.Background(), scheduler.Request{Prompt: p, MaxTokens: 10 + i})
			if err != nil {
				errs <- err
				return
			}
			r := collect(t, context.Background(), st)
			if want := expected(p, 10+i); r.text != want {
				errs <- fmt.Errorf("request %d: %q, want %q", i, r.text, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := fake.Counters()
	if c.MaxBatch > 24 {
		t.Errorf("a step carried %d tokens, budget 24", c.MaxBatch)
	}
}

func TestPrefixReuse(t *testing.T) {
	fake := enginetest.New(2, 1024, 64)
	s := harness(t, fake, scheduler.Options{})
	turn1 := prompt("System: be brief.\nUser: hi\nAssistant:")
	r1 := run(t, s, scheduler.Request{Prompt: turn1, MaxTokens: 8})
	if r1.final.Usage.CachedTokens != 0 {
		t.Fatalf("cold request reused %d tokens", r1.final.Usage.CachedTokens)
	}
	before := fake.Counters().PromptEntries
	// Turn 2 resends the history plus the answer and a new message.
	hist := string(append([]byte("System: be brief.\nUser: hi\nAssistant:"), r1.text...))
	turn2 := prompt(hist + "\nUser: more\nAssistant:")
	r2 := run(t, s, scheduler.Request{Prompt: turn2, MaxTokens: 8})
	// The cache holds turn1 + the 7 decoded answer tokens (the 8th was sampled, never decoded).
	want := len(turn1) + 7
	if r2.final.Usage.CachedTokens != want {
		t.Fatalf("cached %d tokens, want %d", r2.final.Usage.CachedTokens, want)
	}
	if got := fake.Counters().PromptEntries - before; got != len(turn2)-want-1 {
		t.Fatalf("processed %d prompt tokens without logits, want %d", got, len(turn2)-want-1)
	}
	if r2.text != expected(turn2, 8) {
		t.Fatalf("warm-cache output differs: %q vs %q", r2.text, expected(turn2, 8))
	}
	// A repeated identical prompt recomputes exactly one token.
	r3 := run(t, s, scheduler.Request{Prompt: turn2, MaxTokens: 8})
	if r3.final.Usage.CachedTokens != len(turn2)-1 || r3.text != r2.text {
		t.Fatalf("repeat: cached %d, text %q", r3.final.Usage.CachedTokens, r3.text)
	}
	st := s.Stats()
	if st.PrefixHitTokens != uint64(want+len(turn2)-1) || st.PrefixQueriedTokens != uint64(len(turn1)+2*len(turn2)) {
		t.Fatalf("prefix counters %+v", st)
	}
}

func TestLongPromptIsChunkedWhileOthersDecode(t *testing.T) {
	fake := enginetest.New(3, 2048, 256)
	fake.StepDelay = time.Millisecond
	s := harness(t, fake, scheduler.Options{StepTokens: 16})
	ctx := context.Background()
	short := prompt("short")
	st1, _ := s.Submit(ctx, scheduler.Request{Prompt: short, MaxTokens: 200})
	// Let the first stream start decoding.
	first, err := st1.Next(ctx)
	if err != nil || !first.Started {
		t.Fatalf("first event %+v %v", first, err)
	}
	long := prompt(strings.Repeat("long document text ", 40)) // 761 tokens
	st2, _ := s.Submit(ctx, scheduler.Request{Prompt: long, MaxTokens: 5})
	r2 := collect(t, ctx, st2)
	r1 := collect(t, ctx, st1)
	for _, f := range first.Fragments {
		r1.text = f.Text + r1.text
	}
	if r1.text != expected(short, 200) || r2.text != expected(long, 5) {
		t.Fatal("outputs differ from solo runs")
	}
	for i, n := range fake.Counters().BatchSizes {
		if n > 16 {
			t.Fatalf("step %d carried %d tokens, budget 16", i, n)
		}
	}
	// The long prompt needs >= 761/15 steps; the short stream decoded in each.
	if r1.final.Usage.CompletionTokens != 200 {
		t.Fatal(r1.final.Usage)
	}
}

// fedCounter counts, in the fake's FailDecode hook (the loop goroutine),
// the batch entries of sequence 0 and calls at(fed) before each decode with
// the count so far. Read fed only after the streams ended.
type fedCounter struct {
	fed int
	at  func(fed int, batch []engine.BatchEntry)
}

func (c *fedCounter) hook(batch []engine.BatchEntry) error {
	if c.at != nil {
		c.at(c.fed, batch)
	}
	for _, e := range batch {
		if e.Seq == 0 {
			c.fed++
		}
	}
	return nil
}

// Cancelling a request while it waits in the queue ends it without it ever
// reaching the model, and the running request is not disturbed.
func TestCancelQueued(t *testing.T) {
	fake := enginetest.New(1, 4096, 64)
	pa := prompt("a")
	gate := make(chan struct{})
	gated, sawB := false, false
	c := &fedCounter{at: func(fed int, batch []engine.BatchEntry) {
		for _, e := range batch {
			if e.Token >= enginetest.ByteBase+'A' && e.Token <= enginetest.ByteBase+'Z' {
				sawB = true // only B's prompt has capitals
			}
		}
		// Hold the loop at A's first generation step until B is queued
		// and cancelled.
		if fed > len(pa) && !gated {
			gated = true
			<-gate
		}
	}}
	fake.FailDecode = c.hook
	s := harness(t, fake, scheduler.Options{})
	bg := context.Background()
	sa, err := s.Submit(bg, scheduler.Request{Prompt: pa, MaxTokens: 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Next(bg); err != nil { // A runs in the only slot
		t.Fatal(err)
	}
	ctxB, cancelB := context.WithCancel(bg)
	sb, err := s.Submit(ctxB, scheduler.Request{Prompt: prompt("QUEUED"), MaxTokens: 20})
	if err != nil {
		t.Fatal(err)
	}
	cancelB()
	close(gate)
	rb := collect(t, bg, sb)
	if rb.final.Finish != scheduler.FinishCancelled || rb.final.Started || rb.text != "" || rb.final.Usage.CompletionTokens != 0 {
		t.Errorf("queued request: finish %s started %v text %q usage %+v", rb.final.Finish, rb.final.Started, rb.text, rb.final.Usage)
	}
	ra := collect(t, bg, sa)
	if ra.final.Finish != scheduler.FinishLength || ra.final.Usage.CompletionTokens != 20 {
		t.Errorf("running request: %s %+v", ra.final.Finish, ra.final.Usage)
	}
	if sawB {
		t.Error("the cancelled queued request reached the model")
	}
}

// Cancelling a request in the middle of its prompt stops the prompt at the
// next step: the rest is never decoded, nothing is generated, and the slot
// serves the next request correctly.
func TestCancelMidPrompt(t *testing.T) {
	fake := enginetest.New(1, 4096, 64)
	p := prompt(strings.Repeat("abc ", 40)) // 161 tokens: 11 steps of 16
	ctx, cancel := context.WithCancel(context.Background())
	c := &fedCounter{at: func(fed int, _ []engine.BatchEntry) {
		if fed == 32 { // before the third prompt chunk
			cancel()
		}
	}}
	fake.FailDecode = c.hook
	s := harness(t, fake, scheduler.Options{StepTokens: 16})
	st, err := s.Submit(ctx, scheduler.Request{Prompt: p, MaxTokens: 20})
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, context.Background(), st)
	if r.final.Finish != scheduler.FinishCancelled || r.text != "" || r.final.Usage.CompletionTokens != 0 {
		t.Errorf("finish %s text %q usage %+v", r.final.Finish, r.text, r.final.Usage)
	}
	// The chunk in flight when it was cancelled may finish; no more.
	if c.fed > 48 {
		t.Errorf("%d of %d prompt tokens decoded after a cancel at 32", c.fed, len(p))
	}
	next := prompt("the next one")
	r = collect(t, context.Background(), mustSubmit(t, s, scheduler.Request{Prompt: next, MaxTokens: 10}))
	if want := expected(next, 10); r.text != want || r.final.Finish != scheduler.FinishLength {
		t.Errorf("next request on the slot: %q (%s), want %q", r.text, r.final.Finish, want)
	}
	if st := s.Stats(); st.Finished[scheduler.FinishCancelled] != 1 {
		t.Errorf("cancellations counted: %+v", st.Finished)
	}
}

// Cancelling a request while it generates ends it at the next step with the
// tokens generated so far (at most the one of the step in flight).
func TestCancelMidDecode(t *testing.T) {
	fake := enginetest.New(1, 4096, 64)
	p := prompt("x")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancelled before the decode that feeds back the 4th generated token:
	// 4 were generated then, and the step in flight may add one.
	const gen = 4
	c := &fedCounter{at: func(fed int, _ []engine.BatchEntry) {
		if fed == len(p)+gen-1 {
			cancel()
		}
	}}
	fake.FailDecode = c.hook
	s := harness(t, fake, scheduler.Options{})
	st, err := s.Submit(ctx, scheduler.Request{Prompt: p, MaxTokens: 200})
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, context.Background(), st)
	n := r.final.Usage.CompletionTokens
	if r.final.Finish != scheduler.FinishCancelled || n < gen || n > gen+1 {
		t.Fatalf("finish %s after %d tokens, want cancelled after %d or %d", r.final.Finish, n, gen, gen+1)
	}
	if want := expected(p, 200); !strings.HasPrefix(want, r.text) {
		t.Errorf("text %q is not a prefix of %q", r.text, want)
	}
	next := prompt("y")
	r = collect(t, context.Background(), mustSubmit(t, s, scheduler.Request{Prompt: next, MaxTokens: 5}))
	if want := expected(next, 5); r.text != want {
		t.Errorf("next request on the slot: %q, want %q", r.text, want)
	}
}

func TestQueueFull(t *testing.T) {
	fake := enginetest.New(1, 4096, 64)
	fake.StepDelay = time.Millisecond
	s := harness(t, fake, scheduler.Options{MaxQueue: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams []*scheduler.Stream
	for range 3 {
		st, err := s.Submit(ctx, scheduler.Request{Prompt: prompt("x"), MaxTokens: 1000})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
		if len(streams) == 1 {
			st.Next(ctx) // the first one is running, not waiting
		}
	}
	if _, err := s.Submit(ctx, scheduler.Request{Prompt: prompt("x"), MaxTokens: 1}); !errors.Is(err, scheduler.ErrQueueFull) {
		t.Fatalf("4th submit: %v", err)
	}
	cancel()
	for _, st := range streams {
		collect(t, context.Background(), st)
	}
}

func TestContextLimit(t *testing.T) {
	s := harness(t, enginetest.New(1, 64, 64), scheduler.Options{})
	p := prompt(strings.Repeat("z", 50)) // 51 tokens
	r := run(t, s, scheduler.Request{Prompt: p})
	if r.final.Finish != scheduler.FinishLength || r.final.Usage.CompletionTokens != 64-51 {
		t.Fatalf("final %+v", r.final)
	}
	if _, err := s.Submit(context.Background(), scheduler.Request{Prompt: prompt(strings.Repeat("z", 63))}); err == nil {
		t.Fatal("a prompt filling the context was accepted")
	}
}

func TestDrain(t *testing.T) {
	fake := enginetest.New(1, 8192, 64)
	fake.StepDelay = time.Millisecond
	s := scheduler.New(fake, scheduler.Options{})
	go s.Run(context.Background())
	st, _ := s.Submit(context.Background(), scheduler.Request{Prompt: prompt("x"), MaxTokens: 5000})
	short, _ := s.Submit(context.Background(), scheduler.Request{Prompt: prompt("y"), MaxTokens: 3})
	st.Next(context.Background())
	s.Drain(50 * time.Millisecond)
	if _, err := s.Submit(context.Background(), scheduler.Request{Prompt: prompt("z")}); !errors.Is(err, scheduler.ErrDraining) {
		t.Fatalf("submit while draining: %v", err)
	}
	r := collect(t, context.Background(), st)
	if !errors.Is(r.final.Err, scheduler.ErrShutdown) || r.final.Finish != scheduler.FinishError {
		t.Fatalf("long request at drain deadline: %+v", r.final)
	}
	rs := collect(t, context.Background(), short)
	if !rs.final.Done {
		t.Fatal("queued request got no final event")
	}
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
}

func TestSlowReaderDoesNotBlock(t *testing.T) {
	fake := enginetest.New(2, 4096, 64)
	s := harness(t, fake, scheduler.Options{})
	slow, _ := s.Submit(context.Background(), scheduler.Request{Prompt: prompt("slow"), MaxTokens: 300})
	fast := run(t, s, scheduler.Request{Prompt: prompt("fast"), MaxTokens: 300})
	if fast.final.Usage.CompletionTokens != 300 {
		t.Fatal(fast.final)
	}
	// The slow reader now reads everything at once, coalesced.
	r := collect(t, context.Background(), slow)
	if r.text != expected(prompt("slow"), 300) || r.events > 10 {
		t.Fatalf("slow reader: %d events, text ok=%v", r.events, r.text == expected(prompt("slow"), 300))
	}
}

// With streams generating and prompts waiting, prompt chunks go into a
// decode of their own after the streams' decode-only one (StepLatency on),
// and the shortest waiting prompt is served first. With StepLatency off,
// they share one batch.
func TestSplitPrefillAndShortestFirst(t *testing.T) {
	for _, lat := range []float64{0, -1} {
		fake := enginetest.New(4, 2048, 256)
		var mu sync.Mutex
		mixed, split, decodes := 0, 0, 0
		// sampledAt: for each sequence but the first stream's, the decode
		// that sampled its first token (its prompt's last, with logits),
		// and where that token sat: which prompt ended first, counted in
		// decodes rather than read off a clock.
		type end struct{ decode, pos int }
		sampledAt := map[engine.SeqID]end{}
		first := prompt("go")
		// No decode runs before both prompts are queued, so the first
		// stream is still generating when they start.
		hold := make(chan struct{})
		release := sync.OnceFunc(func() { close(hold) })
		fake.FailDecode = func(batch []engine.BatchEntry) error {
			<-hold
			dec, pr := 0, 0
			mu.Lock()
			defer mu.Unlock()
			decodes++
			for _, e := range batch {
				if e.Seq == 0 && int(e.Pos) >= len(first) {
					dec++ // a generated token of the stream started first
				} else if !e.Logits {
					pr++
				}
				if _, seen := sampledAt[e.Seq]; e.Seq != 0 && e.Logits && !seen {
					sampledAt[e.Seq] = end{decodes, int(e.Pos)}
				}
			}
			if dec > 0 && pr > 0 {
				mixed++
			} else if pr > 0 {
				split++
			}
			return nil
		}
		s := harness(t, fake, scheduler.Options{StepTokens: 32, StepLatency: lat})
		t.Cleanup(release) // before the harness stops the loop
		ctx := context.Background()
		st0, _ := s.Submit(ctx, scheduler.Request{Prompt: first, MaxTokens: 150})
		if ev, err := st0.Next(ctx); err != nil || !ev.Started {
			t.Fatal(ev, err)
		}
		long := prompt(strings.Repeat("a long prompt ", 30))
		short := prompt("a short one")
		stL, _ := s.Submit(ctx, scheduler.Request{Prompt: long, MaxTokens: 1})
		stS, _ := s.Submit(ctx, scheduler.Request{Prompt: short, MaxTokens: 1})
		release()
		var wg sync.WaitGroup
		wg.Go(func() { collect(t, ctx, stL) })
		wg.Go(func() { collect(t, ctx, stS) })
		wg.Wait()
		collect(t, ctx, st0)
		mu.Lock()
		var doneL, doneS int
		for _, e := range sampledAt {
			switch e.pos {
			case len(long) - 1:
				doneL = e.decode
			case len(short) - 1:
				doneS = e.decode
			}
		}
		if doneL == 0 || doneS == 0 || doneS >= doneL {
			t.Errorf("latency %v: the short prompt ended in decode %d, the long one in decode %d (%v)", lat, doneS, doneL, sampledAt)
		}
		if lat == 0 && (mixed > 0 || split == 0) {
			t.Errorf("split on: %d mixed batches, %d prompt-only", mixed, split)
		}
		if lat < 0 && mixed == 0 {
			t.Errorf("split off: no mixed batch")
		}
		mu.Unlock()
	}
}

// partLog records, for each decode, whether it carried generated tokens,
// prompt tokens or both, and how many parts llama.cpp would split it into.
type partLog struct {
	mu      sync.Mutex
	decode  []int // parts of decode-only batches
	prompts []int // parts of prompt-only batches
	split   int   // prompt-only batches that cut a sequence's chunk
}

func (p *partLog) hook(batch []engine.BatchEntry) error {
	dec := 0
	for _, e := range batch {
		if e.Logits {
			dec++ // generated tokens and a prompt's last token
		}
	}
	parts, whole := engine.Ubatches(batch)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case dec == len(batch):
		p.decode = append(p.decode, parts)
	case dec <= 1:
		p.prompts = append(p.prompts, parts)
		if !whole {
			p.split++
		}
	}
	return nil
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// Without a unified KV cache, llama.cpp computes a batch in parts, one per
// run of consecutive sequences with equal token counts: each prompt chunk of
// a step must stay whole in one part, not be cut and padded to another's depth.
func TestPromptStepIsOnePart(t *testing.T) {
	fake := enginetest.New(6, 2048, 256)
	fake.StepDelay = time.Millisecond
	var parts partLog
	fake.FailDecode = parts.hook
	s := harness(t, fake, scheduler.Options{StepTokens: 32})
	ctx := context.Background()
	st0, _ := s.Submit(ctx, scheduler.Request{Prompt: prompt("go"), MaxTokens: 120})
	if ev, err := st0.Next(ctx); err != nil || !ev.Started {
		t.Fatal(ev, err)
	}
	// Prompts of different lengths prefill while the stream decodes.
	var wg sync.WaitGroup
	for i, p := range []string{strings.Repeat("long ", 40), "a short one", strings.Repeat("mid ", 12), "x"} {
		st, err := s.Submit(ctx, scheduler.Request{Prompt: prompt(p), MaxTokens: 4})
		if err != nil {
			t.Fatal(i, err)
		}
		wg.Go(func() { collect(t, ctx, st) })
	}
	wg.Wait()
	collect(t, ctx, st0)
	parts.mu.Lock()
	prompts, split := slices.Clone(parts.prompts), parts.split
	parts.mu.Unlock()
	if len(prompts) == 0 || split > 0 || maxOf(prompts) < 2 {
		t.Fatalf("prompt-only batches: %d cut a chunk; parts %v (some should carry two prompts)", split, prompts)
	}

	// A burst of equal prompts at an idle server shares steps, in one part.
	before := fake.Counters()
	var burst []*scheduler.Stream
	for i := range 4 {
		st, err := s.Submit(ctx, scheduler.Request{Prompt: prompt(fmt.Sprintf("burst %02d", i)), MaxTokens: 1})
		if err != nil {
			t.Fatal(err)
		}
		burst = append(burst, st)
	}
	for _, st := range burst {
		collect(t, ctx, st)
	}
	after := fake.Counters()
	if d, u := after.Decodes-before.Decodes, after.Ubatches-before.Ubatches; u != d || d > 3 {
		t.Fatalf("burst of 4 prompts of 9 tokens (budget 32): %d decodes in %d parts", d, u)
	}
}

// Requests are placed next to the running ones, so that the streams' decode
// batch stays one part, even when the least recently used slot is elsewhere.
func TestSlotsStayContiguous(t *testing.T) {
	fake := enginetest.New(4, 2048, 256)
	fake.StepDelay = time.Millisecond
	s := harness(t, fake, scheduler.Options{})
	ctx := context.Background()
	// Fill the four slots' caches with distinct prompts: slot i holds "cache i".
	var warm []*scheduler.Stream
	for i := range 4 {
		st, err := s.Submit(ctx, scheduler.Request{Prompt: prompt(fmt.Sprintf("cache %d", i)), MaxTokens: 1})
		if err != nil {
			t.Fatal(err)
		}
		warm = append(warm, st)
	}
	for _, st := range warm {
		collect(t, ctx, st)
	}
	var parts partLog
	fake.FailDecode = parts.hook
	// A stream reusing slot 2's cache, then one that shares nothing: slot
	// 0 is the least recently used, but 1 and 3 are next to the stream.
	a, _ := s.Submit(ctx, scheduler.Request{Prompt: prompt("cache 2 and more"), MaxTokens: 60})
	if ev, err := a.Next(ctx); err != nil || !ev.Started {
		t.Fatal(ev, err)
	}
	b, _ := s.Submit(ctx, scheduler.Request{Prompt: prompt("zzz"), MaxTokens: 30})
	rb := collect(t, ctx, b)
	ra := collect(t, ctx, a)
	if ra.final.Usage.CachedTokens == 0 || rb.final.Err != nil {
		t.Fatalf("stream a reused %d tokens; b: %v", ra.final.Usage.CachedTokens, rb.final.Err)
	}
	parts.mu.Lock()
	defer parts.mu.Unlock()
	if maxOf(parts.decode) != 1 {
		t.Fatalf("decode-only batches split into %v parts", parts.decode)
	}
}

// A new conversation that shares only the BOS token with a cached one
// takes a free slot rather than evict the other conversation's prefix
// (seen in the fleet test: sessions evicted between their turns).
func TestNewSessionKeepsOthersCache(t *testing.T) {
	fake := enginetest.New(3, 1024, 64)
	s := harness(t, fake, scheduler.Options{})
	long := strings.Repeat("a long system prompt and history. ", 12)
	a1 := prompt("A: " + long)
	ra := run(t, s, scheduler.Request{Prompt: a1, MaxTokens: 4, SessionID: "a"})
	// Two other sessions arrive, one after the other, with short prompts.
	for _, id := range []string{"b", "c"} {
		run(t, s, scheduler.Request{Prompt: prompt(id + ": hi"), MaxTokens: 4, SessionID: id})
	}
	a2 := prompt("A: " + long + ra.text + " next")
	r2 := run(t, s, scheduler.Request{Prompt: a2, MaxTokens: 4, SessionID: "a"})
	if want := len(a1) + 3; r2.final.Usage.CachedTokens != want {
		t.Fatalf("session a's second turn reused %d tokens, want %d: its prefix was evicted", r2.final.Usage.CachedTokens, want)
	}
}

// A prompt asked again reuses the slot that holds it and its previous
// answer, although that answer's cached tokens are thrown away.
func TestSamePromptAgainKeepsItsSlot(t *testing.T) {
	fake := enginetest.New(3, 1024, 64)
	s := harness(t, fake, scheduler.Options{})
	p := prompt("Once upon a time")
	run(t, s, scheduler.Request{Prompt: p, MaxTokens: 200})
	run(t, s, scheduler.Request{Prompt: prompt("x"), MaxTokens: 2})
	r := run(t, s, scheduler.Request{Prompt: p, MaxTokens: 4})
	if r.final.Usage.CachedTokens != len(p)-1 {
		t.Fatalf("asked again: reused %d tokens, want %d", r.final.Usage.CachedTokens, len(p)-1)
	}
}
