package stack_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

func health(t *testing.T, url string) int {
	t.Helper()
	r, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func TestLoadUnloadClose(t *testing.T) {
	fake := enginetest.New(1, 64, 64)
	opens := 0
	var steps atomic.Int64
	stk := stack.New(stack.Options{
		Server:    server.Options{Registry: prometheus.NewRegistry()},
		Scheduler: scheduler.Options{OnStep: func(time.Duration, int) { steps.Add(1) }},
		Open:      func() (engine.Backend, error) { opens++; return fake, nil },
	})
	hs := httptest.NewServer(stk.Server.Handler())
	defer hs.Close()
	if got := health(t, hs.URL); got != 503 {
		t.Fatalf("before Load: %d", got)
	}
	if err := stk.Load(); err != nil {
		t.Fatal(err)
	}
	if err := stk.Load(); err == nil {
		t.Fatal("second Load while loaded")
	}
	if got := health(t, hs.URL); got != 200 {
		t.Fatalf("after Load: %d", got)
	}
	st, err := stk.Sched.Submit(t.Context(), scheduler.Request{Prompt: []engine.Token{enginetest.BOS, 10}, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := st.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Done {
			break
		}
	}
	if steps.Load() == 0 {
		t.Error("the caller's OnStep was not called")
	}
	stk.Unload()
	<-stk.Done()
	if got := health(t, hs.URL); got != 503 {
		t.Fatalf("after Unload: %d", got)
	}
	if err := stk.Load(); err != nil { // the same backend again
		t.Fatal(err)
	}
	if opens != 1 {
		t.Fatalf("opened %d times", opens)
	}
	if err := stk.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fake.Decode([]engine.BatchEntry{{Token: 5}}); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("backend not closed: %v", err)
	}
	if err := stk.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLoadError(t *testing.T) {
	boom := errors.New("boom")
	stk := stack.New(stack.Options{
		Server: server.Options{Registry: prometheus.NewRegistry()},
		Open:   func() (engine.Backend, error) { return nil, boom },
	})
	if err := stk.Load(); !errors.Is(err, boom) {
		t.Fatalf("Load: %v", err)
	}
	if err := stk.Close(); err != nil {
		t.Fatal(err)
	}
}
