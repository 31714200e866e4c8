package stack_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/server/stack"
)

// spec is a model served by a fake; version names its file.
func (e *catalogEnv) spec(id, version string) stack.ModelSpec {
	return stack.ModelSpec{ID: id, Version: version, HostBytes: 100, Open: func() (engine.Backend, error) {
		f := enginetest.New(2, 128, 64)
		e.mu.Lock()
		e.fakes[id] = append(e.fakes[id], f)
		e.mu.Unlock()
		return f, nil
	}}
}

func TestUpdateAddRemoveReplace(t *testing.T) {
	e := newCatalog(t, stack.Options{})
	e.stk.Update([]stack.ModelSpec{e.spec("a", "1"), e.spec("b", "1")})
	for _, m := range []string{"a", "b"} {
		if code, body := e.chat(t.Context(), m); code != 200 {
			t.Fatalf("%s: %d %s", m, code, body)
		}
	}
	r := e.stk.Update([]stack.ModelSpec{e.spec("a", "1"), e.spec("c", "1")})
	if strings.Join(r.Added, ",") != "c" || strings.Join(r.Removed, ",") != "b" || len(r.Replaced) != 0 {
		t.Fatalf("update %+v", r)
	}
	ms := e.models()
	if _, ok := ms["b"]; ok || ms["c"] == nil || ms["a"]["loaded"] != true {
		t.Fatalf("models after the update: %v", ms)
	}
	waitFor(t, func() bool { return closed(e.opened("b")[0]) })
	code, body := e.chat(t.Context(), "b")
	if code != 404 || !strings.Contains(body, "model_not_found") || !strings.Contains(body, "a, c") {
		t.Fatalf("removed b: %d %s", code, body)
	}
	if code, body := e.chat(t.Context(), "c"); code != 200 {
		t.Fatalf("added c: %d %s", code, body)
	}
	// a's file is replaced: the next request loads the new one, the old
	// backend is closed.
	r = e.stk.Update([]stack.ModelSpec{e.spec("a", "2"), e.spec("c", "1")})
	if strings.Join(r.Replaced, ",") != "a" {
		t.Fatalf("update %+v", r)
	}
	if code, body := e.chat(t.Context(), "a"); code != 200 {
		t.Fatalf("replaced a: %d %s", code, body)
	}
	fa := e.opened("a")
	if len(fa) != 2 || !closed(fa[0]) {
		t.Fatalf("a opened %d times, first closed: %v", len(fa), len(fa) > 0 && closed(fa[0]))
	}
	if got := len(e.opened("c")); got != 1 {
		t.Fatalf("c, unchanged, was opened %d times", got)
	}
}

// A model removed while it runs a request finishes that request first.
func TestUpdateRemovedModelFinishesItsRequest(t *testing.T) {
	e := newCatalog(t, stack.Options{})
	var fake atomic.Pointer[enginetest.Fake]
	gate, hold := make(chan struct{}), atomic.Bool{}
	hold.Store(true)
	slow := stack.ModelSpec{ID: "x", Version: "1", Open: func() (engine.Backend, error) {
		f := enginetest.New(2, 128, 64)
		f.FailDecode = func([]engine.BatchEntry) error {
			if hold.Load() {
				<-gate
			}
			return nil
		}
		fake.Store(f)
		return f, nil
	}}
	e.stk.Update([]stack.ModelSpec{slow, e.spec("a", "1")})
	var wg sync.WaitGroup
	var code int
	var body string
	wg.Add(1)
	go func() {
		defer wg.Done()
		code, body = e.chat(context.Background(), "x")
	}()
	waitFor(t, func() bool { return e.stk.Stats().Running == 1 })
	e.stk.Update([]stack.ModelSpec{e.spec("a", "1")})
	if _, ok := e.models()["x"]; ok {
		t.Fatal("x still listed after its removal")
	}
	if c, b := e.chat(t.Context(), "x"); c != 404 {
		t.Fatalf("new request to the removed x: %d %s", c, b)
	}
	if st := e.stk.Stats(); st.Running != 1 || st.Slots == 0 {
		t.Fatalf("x was unloaded under its running request: %+v", st)
	}
	hold.Store(false)
	close(gate)
	wg.Wait()
	if code != 200 || !strings.Contains(body, `"finish_reason":"length"`) {
		t.Fatalf("x's running request: %d %s", code, body)
	}
	waitFor(t, func() bool { return closed(fake.Load()) })
}

func TestRescanLoop(t *testing.T) {
	var mu sync.Mutex
	var specs []stack.ModelSpec
	set := func(s ...stack.ModelSpec) {
		mu.Lock()
		specs = append([]stack.ModelSpec{}, s...) // empty, not nil: no models
		mu.Unlock()
	}
	var e *catalogEnv
	e = newCatalog(t, stack.Options{RescanEvery: 5 * time.Millisecond, Rescan: func() []stack.ModelSpec {
		mu.Lock()
		defer mu.Unlock()
		return specs // nil until set: nothing changes
	}})
	set(e.spec("new", "1"))
	waitFor(t, func() bool { _, ok := e.models()["new"]; return ok })
	if code, body := e.chat(t.Context(), "new"); code != 200 {
		t.Fatalf("new: %d %s", code, body)
	}
	set()
	waitFor(t, func() bool { return len(e.models()) == 0 })
}
