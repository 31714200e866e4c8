package scheduler_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
)

// stepGate holds every decode of a fake until the test lets it run, so a
// test can look at the scheduler between steps.
type stepGate struct {
	on   atomic.Bool
	step chan struct{}
}

// gateDecodes gates f's decodes; call it after harness, so that the gate
// opens before the harness stops the loop.
func gateDecodes(t *testing.T, f *enginetest.Fake) *stepGate {
	g := &stepGate{step: make(chan struct{})}
	t.Cleanup(g.open)
	g.on.Store(true)
	f.FailDecode = func([]engine.BatchEntry) error {
		if g.on.Load() {
			<-g.step
		}
		return nil
	}
	return g
}

// let lets n decodes run (each loop iteration admits before it decodes).
func (g *stepGate) let(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case g.step <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("no decode came to the gate")
		}
	}
}

// open lets every decode run from now on.
func (g *stepGate) open() {
	g.on.Store(false)
	for {
		select {
		case g.step <- struct{}{}:
		default:
			return
		}
	}
}

// await is a request's result, or a failure after a deadline.
func await(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("a request did not end")
		return result{}
	}
}

func startRequests(t *testing.T, s *scheduler.Scheduler, reqs []scheduler.Request) []chan result {
	t.Helper()
	out := make([]chan result, len(reqs))
	for i, r := range reqs {
		st, err := s.Submit(context.Background(), r)
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		out[i] = make(chan result, 1)
		go func() { out[i] <- collect(t, context.Background(), st) }()
	}
	return out
}

func TestPoolAdmitsByRoom(t *testing.T) {
	fake := enginetest.NewPooled(4, 64, 64, 64)
	s := harness(t, fake, scheduler.Options{})
	g := gateDecodes(t, fake)
	// A holds its prompt of 10 and 40 reserved: 50 of 64 cells. B (10 + 10)
	// has a free sequence but no room: it waits, it does not fail.
	a := startRequests(t, s, []scheduler.Request{{Prompt: prompt("abcdefghi"), MaxTokens: 40, Reserve: 40}})
	g.let(t, 2)
	b := startRequests(t, s, []scheduler.Request{{Prompt: prompt("jklmnopqr"), MaxTokens: 10, Reserve: 10}})
	g.let(t, 4)
	st := s.Stats()
	if st.Running != 1 || st.Waiting != 1 || st.KVReserved != 50 {
		t.Fatalf("with A running: %d running, %d waiting, %d cells reserved; want 1, 1, 50", st.Running, st.Waiting, st.KVReserved)
	}
	g.open()
	g.open()
	ra, rb := await(t, a[0]), await(t, b[0])
	for name, r := range map[string]result{"A": ra, "B": rb} {
		if r.final.Err != nil || r.final.Finish != scheduler.FinishLength {
			t.Fatalf("%s: finish %q err %v", name, r.final.Finish, r.final.Err)
		}
	}
	if ra.final.Usage.CompletionTokens != 40 || rb.final.Usage.CompletionTokens != 10 {
		t.Fatalf("completions %d and %d, want 40 and 10", ra.final.Usage.CompletionTokens, rb.final.Usage.CompletionTokens)
	}
	if rb.final.Queued <= 0 {
		t.Fatal("B did not wait in the queue")
	}
}

// A request that outgrows a full pool ends with "length" and its text; no
// decode fails for room (the fake refuses a batch beyond the pool).
func TestPoolFullEndsWithLength(t *testing.T) {
	fake := enginetest.NewPooled(2, 32, 32, 32)
	s := harness(t, fake, scheduler.Options{})
	p1, p2 := prompt("abc"), prompt("xyz")
	rs := startRequests(t, s, []scheduler.Request{
		{Prompt: p1, MaxTokens: 100, Reserve: 1},
		{Prompt: p2, MaxTokens: 100, Reserve: 1},
	})
	r1, r2 := await(t, rs[0]), await(t, rs[1])
	total := 0
	for i, r := range []result{r1, r2} {
		if r.final.Err != nil || r.final.Finish != scheduler.FinishLength {
			t.Fatalf("request %d: finish %q err %v", i, r.final.Finish, r.final.Err)
		}
		if len(r.text) != r.final.Usage.CompletionTokens {
			t.Fatalf("request %d: %d bytes of text for %d tokens", i, len(r.text), r.final.Usage.CompletionTokens)
		}
		total += r.final.Usage.PromptTokens + r.final.Usage.CompletionTokens
	}
	// Both fit together only while they hold at most 32 cells: the one
	// cut by the full pool is shorter than the per-request limit of 32.
	short := min(r1.final.Usage.CompletionTokens, r2.final.Usage.CompletionTokens)
	if short+len(p1) >= 31 {
		t.Fatalf("no request was cut by the pool: completions %d and %d", r1.final.Usage.CompletionTokens, r2.final.Usage.CompletionTokens)
	}
	if r1.text != expected(p1, len(r1.text)) || r2.text != expected(p2, len(r2.text)) {
		t.Fatal("text differs from the fake's greedy output: the KV was corrupted")
	}
	if st := s.Stats(); st.Finished[scheduler.FinishError] != 0 || st.KVReserved != 0 {
		t.Fatalf("stats after: %+v", st)
	}
	_ = total
}

// 16 short streams that fit the pool together all run at once.
func TestPoolRunsSixteenShortStreams(t *testing.T) {
	// stories260K's default: a pool of 2 x 2048 cells, 16 sequences.
	fake := enginetest.NewPooled(engine.AutoParallel(4096), 4096, 2048, 512)
	s := harness(t, fake, scheduler.Options{})
	g := gateDecodes(t, fake)
	var reqs []scheduler.Request
	for i := range 16 {
		reqs = append(reqs, scheduler.Request{Prompt: prompt("a short question " + string(rune('a'+i))), MaxTokens: 16})
	}
	rs := startRequests(t, s, reqs)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Running < 16 && time.Now().Before(deadline) {
		g.let(t, 1)
	}
	if st := s.Stats(); st.Running != 16 || st.Waiting != 0 {
		t.Fatalf("%d running, %d waiting; want all 16 running", st.Running, st.Waiting)
	}
	g.open()
	var wg sync.WaitGroup
	for _, ch := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := await(t, ch); r.final.Err != nil || r.final.Usage.CompletionTokens != 16 {
				t.Errorf("stream: %+v", r.final)
			}
		}()
	}
	wg.Wait()
}

// A cancelled request frees its slot within one step: with one slot, a
// request queued behind a cancelled one starts at once. Decodes are let
// through one at a time (stepGate) and counted, so the loop cannot run
// ahead while the test waits for a core.
func TestCancelFreesSlotWithinAStep(t *testing.T) {
	fake := enginetest.New(1, 4096, 64)
	s := harness(t, fake, scheduler.Options{})
	g := gateDecodes(t, fake)
	ctx, cancel := context.WithCancel(context.Background())
	st, _ := s.Submit(ctx, scheduler.Request{Prompt: prompt("a"), MaxTokens: 4000})
	if _, err := st.Next(ctx); err != nil {
		t.Fatal(err)
	}
	g.let(t, 3) // the prompt and two tokens
	cancel()
	st2 := mustSubmit(t, s, scheduler.Request{Prompt: prompt("b"), MaxTokens: 1})
	done := make(chan result, 1)
	go func() { done <- collect(t, context.Background(), st2) }()
	// At most one more decode for the cancelled request (the one it may
	// have started), then the new one's prompt pass, which samples its
	// only token.
	for n := 0; ; n++ {
		select {
		case r := <-done:
			if r.final.Finish != scheduler.FinishLength {
				t.Fatalf("follow-up request: %+v", r.final)
			}
			if n > 2 {
				t.Fatalf("%d decodes between cancel and the next request's end", n)
			}
			return
		case g.step <- struct{}{}:
			if n >= 2 {
				t.Fatalf("a decode beyond the cancelled request's last and the next request's prompt")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the next request did not end")
		}
	}
}
