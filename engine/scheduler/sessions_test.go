package scheduler_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/engine/sessions"
)

const sessMin = 32

// sessionRig is a store on a directory and the model file the fakes stand
// for.
type sessionRig struct {
	dir, model string
}

func newSessionRig(t *testing.T) sessionRig {
	t.Helper()
	r := sessionRig{dir: t.TempDir(), model: filepath.Join(t.TempDir(), "fake.gguf")}
	if err := os.WriteFile(r.model, []byte("GGUF fake weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// store opens a store on the rig's directory (a replica's), with the
// model identified already.
func (r sessionRig) store(t *testing.T) *sessions.Store {
	t.Helper()
	st, err := sessions.Open(sessions.Options{Dir: r.dir, MinTokens: sessMin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.WaitIdentify(context.Background(), r.model, "fake"); err != nil {
		t.Fatal(err)
	}
	return st
}

// fake is a one-slot fake (every other session evicts the last) for the
// rig's model.
func (r sessionRig) fake() *enginetest.Fake {
	f := enginetest.New(1, 1024, 64)
	f.SetPath(r.model)
	return f
}

func (r sessionRig) files(t *testing.T) int {
	m, _ := filepath.Glob(filepath.Join(r.dir, "*.sess"))
	return len(m)
}

// tokens of text without BOS, as the fake tokenizes a continuation.
func more(text string) []engine.Token { return prompt(text)[1:] }

// turn runs one request of a session and checks its text against the
// fake's rule, which reads the sequence's KV: a restored KV that is not the
// prompt's prefix gives other text.
func turn(t *testing.T, s *scheduler.Scheduler, session string, p []engine.Token, n int) result {
	t.Helper()
	r := run(t, s, scheduler.Request{Prompt: p, MaxTokens: n, SessionID: session})
	if r.final.Err != nil {
		t.Fatal(r.final.Err)
	}
	if want := expected(p, n); r.text != want {
		t.Fatalf("session %s: text %q, want %q", session, r.text, want)
	}
	return r
}

// A session evicted from its slot by another is saved; its next turn
// restores it and prefills only the rest of the prompt.
func TestSessionSavedOnEvictionAndRestored(t *testing.T) {
	rig := newSessionRig(t)
	st := rig.store(t)
	fake := rig.fake()
	s := harness(t, fake, scheduler.Options{Sessions: st})

	pa := prompt(strings.Repeat("Alice asks a long question. ", 6))
	ra := turn(t, s, "a", pa, 5)
	turn(t, s, "short", prompt("hi"), 3) // evicts a
	st.Flush()
	if rig.files(t) != 1 || fake.Counters().Saves != 1 {
		t.Fatalf("after eviction: %d files, %d saves; want 1, 1", rig.files(t), fake.Counters().Saves)
	}
	turn(t, s, "b", prompt(strings.Repeat("Bob asks something else. ", 6)), 5) // evicts short: too short to save
	st.Flush()
	if rig.files(t) != 1 {
		t.Fatalf("a %d-token session was saved (min %d)", len(prompt("hi"))+2, sessMin)
	}

	p2 := slices.Concat(pa, more(ra.text), more(" And a follow-up?"))
	before := fake.Counters()
	r2 := turn(t, s, "a", p2, 5)
	after := fake.Counters()
	cached := len(pa) + 4 // the prompt and the generated tokens decoded (not the last)
	if got := r2.final.Usage.CachedTokens; got != cached {
		t.Fatalf("cached tokens %d, want %d restored", got, cached)
	}
	if after.Restores-before.Restores != 1 {
		t.Fatalf("%d restores, want 1", after.Restores-before.Restores)
	}
	if got, want := after.PromptEntries-before.PromptEntries, len(p2)-cached-1; got != want {
		t.Fatalf("prefilled %d prompt tokens, want only the %d after the restored prefix", got, want)
	}
	if sv := s.Stats(); sv.SessionsRestored != 1 || sv.SessionRestoredTokens != uint64(cached) || sv.SessionsSaved != 2 {
		t.Fatalf("stats: %d saved, %d restored, %d tokens", sv.SessionsSaved, sv.SessionsRestored, sv.SessionRestoredTokens)
	}
}

// Draining, or ending Run's context (a model unloaded), saves the sessions
// in the slots; a new scheduler with a new backend on the same directory
// (the replica restarted, or another one) restores them.
func TestSessionSurvivesRestart(t *testing.T) {
	for _, how := range []string{"drain", "cancel"} {
		t.Run(how, func(t *testing.T) { sessionSurvivesRestart(t, how == "drain") })
	}
}

func sessionSurvivesRestart(t *testing.T, drain bool) {
	rig := newSessionRig(t)
	pa := prompt(strings.Repeat("A long system prompt and a question. ", 4))
	var ra result
	{
		st := rig.store(t)
		fake := rig.fake()
		s := scheduler.New(fake, scheduler.Options{Sessions: st})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.Run(ctx)
		ra = turn(t, s, "a", pa, 5)
		if drain {
			s.Drain(time.Second)
		} else {
			cancel()
		}
		<-s.Done()
		st.Close()
		if rig.files(t) != 1 {
			t.Fatalf("%d files after the drain, want 1", rig.files(t))
		}
	}
	st := rig.store(t)
	fake := rig.fake()
	s := harness(t, fake, scheduler.Options{Sessions: st})
	p2 := slices.Concat(pa, more(ra.text), more(" Next?"))
	r2 := turn(t, s, "a", p2, 8)
	if got, want := r2.final.Usage.CachedTokens, len(pa)+4; got != want {
		t.Fatalf("cached tokens %d after a restart, want %d", got, want)
	}
	// A cold prompt of another session is not helped.
	cold := turn(t, s, "c", slices.Concat(pa[:10], more(strings.Repeat(" cold", 20))), 3)
	if cold.final.Usage.CachedTokens > 10 || fake.Counters().Restores != 1 {
		t.Fatalf("another session restored something (cached %d)", cold.final.Usage.CachedTokens)
	}
}

// A prompt that leaves the saved prefix restores the common part when it
// is long enough, and otherwise starts cold; a state the backend refuses is
// removed and the prompt starts cold.
func TestSessionRestorePartialAndFallback(t *testing.T) {
	rig := newSessionRig(t)
	st := rig.store(t)
	fake := rig.fake()
	s := harness(t, fake, scheduler.Options{Sessions: st})
	pa := prompt(strings.Repeat("Shared words of a session. ", 5))
	turn(t, s, "a", pa, 4)
	turn(t, s, "x", prompt(strings.Repeat("Evicting words. ", 5)), 2)

	// Diverges at token 60: the first 60 are restored.
	div := slices.Concat(pa[:60], more(" but now something else entirely."))
	r := turn(t, s, "a", div, 4)
	if got := r.final.Usage.CachedTokens; got != 60 {
		t.Fatalf("diverging prompt: cached %d, want 60", got)
	}
	// Evict a again (saved again, now with the diverged prompt), then a
	// prompt that shares less than the minimum: cold.
	turn(t, s, "x", prompt(strings.Repeat("Evicting words. ", 5)), 2)
	before := fake.Counters().Restores
	r = turn(t, s, "a", slices.Concat(pa[:sessMin-5], more(strings.Repeat(" other", 10))), 4)
	if r.final.Usage.CachedTokens >= sessMin || fake.Counters().Restores != before {
		t.Fatalf("a prompt sharing %d tokens restored (cached %d)", sessMin-5, r.final.Usage.CachedTokens)
	}

	// A state the backend refuses (another backend wrote garbage under
	// the right key): a clean cold start, and the file goes.
	m, _ := st.Identify(rig.model, "fake")
	key := sessions.Key{Model: m, Settings: fake.StateID()}
	pg := prompt(strings.Repeat("Garbage ahead. ", 5))
	st.Save(key, "g", pg, []byte("not a state"))
	st.Flush()
	r = turn(t, s, "g", slices.Concat(pg, more(" more")), 4)
	if r.final.Usage.CachedTokens > 1 { // BOS, from the slot's cache
		t.Fatalf("a refused state counted %d cached tokens", r.final.Usage.CachedTokens)
	}
	if _, ok := st.Load(key, "g", pg); ok {
		t.Fatal("the refused state is still there")
	}

	// A backend of other settings does not see the states.
	other := rig.fake()
	other.StateSettings = "flash_attn=on"
	s2 := harness(t, other, scheduler.Options{Sessions: st})
	r = turn(t, s2, "a", slices.Concat(pa, more(" again")), 2)
	if r.final.Usage.CachedTokens > 1 || other.Counters().Restores != 0 {
		t.Fatal("a backend of other settings restored a state")
	}
}

// A session's state is read off the loop: while the read is held, a
// running stream keeps generating and the request waits in the queue; when
// the read ends, the request restores the state and prefills only the
// rest. (Read on the loop, the held read would stop the stream: the test
// would time out waiting for its tokens.)
func TestSessionStateReadOffTheLoop(t *testing.T) {
	rig := newSessionRig(t)
	pa := prompt(strings.Repeat("A long system prompt and a question. ", 4))
	var ra result
	{ // a replica that served session a, then drained: a's state is on disk
		st := rig.store(t)
		s := scheduler.New(rig.fake(), scheduler.Options{Sessions: st})
		go s.Run(context.Background())
		ra = turn(t, s, "a", pa, 5)
		s.Drain(time.Second)
		<-s.Done()
		st.Close()
	}
	st := rig.store(t)
	fake := enginetest.New(2, 1024, 64)
	fake.SetPath(rig.model)
	fake.StepDelay = time.Millisecond // b generates for about half a second
	s := scheduler.New(fake, scheduler.Options{Sessions: st})
	started, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	scheduler.SetStateLoader(s, func(k sessions.Key, session string, p []engine.Token) (sessions.Entry, bool) {
		close(started)
		<-release
		return st.Load(k, session, p)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { open(); cancel(); <-s.Done() }()
	go s.Run(ctx)

	pb := prompt("Bob's long story goes on and on.")
	const nb = 500
	sb := mustSubmit(t, s, scheduler.Request{Prompt: pb, MaxTokens: nb, SessionID: "b"})
	read := func(st *scheduler.Stream, atLeast int) string {
		t.Helper()
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		var b strings.Builder
		for b.Len() < atLeast {
			ev, err := st.Next(rctx)
			if err != nil {
				t.Fatalf("after %q: %v", b.String(), err)
			}
			for _, f := range ev.Fragments {
				b.WriteString(f.Text)
			}
		}
		return b.String()
	}
	gotB := read(sb, 1) // b is generating

	p2 := slices.Concat(pa, more(ra.text), more(" Next?"))
	sa := mustSubmit(t, s, scheduler.Request{Prompt: p2, MaxTokens: 6, SessionID: "a"})
	<-started
	gotB += read(sb, 10) // b goes on while a's state is read
	if w := s.Stats().Waiting; w != 1 {
		t.Fatalf("%d requests waiting while a's state is read, want 1 (a)", w)
	}
	open()
	r := collect(t, context.Background(), sa)
	if r.final.Err != nil || r.text != expected(p2, 6) {
		t.Fatalf("a: text %q err %v, want %q", r.text, r.final.Err, expected(p2, 6))
	}
	if got, want := r.final.Usage.CachedTokens, len(pa)+4; got != want {
		t.Fatalf("a: cached tokens %d, want the %d restored", got, want)
	}
	if fake.Counters().Restores != 1 {
		t.Fatalf("%d restores, want 1", fake.Counters().Restores)
	}
	rb := collect(t, context.Background(), sb)
	if want := expected(pb, nb); gotB+rb.text != want {
		t.Fatalf("b: text %q, want %q", gotB+rb.text, want)
	}
}
