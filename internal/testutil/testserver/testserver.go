// Package testserver starts the real server (llama.cpp engine, scheduler,
// Gin handlers) in the test process for tests that use it as a person or
// a client program would: the browser test of the playground and the
// terminal test of asi1d chat. A Gate on the scheduler's steps lets a test
// hold an answer in the middle, to look at it or stop it there.
package testserver

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/api"
	"github.com/asi1d/asi1d/server/stack"
)

// Options configure Start; zero values take the defaults noted.
type Options struct {
	Parallel  int // sequences (2)
	CtxPerSeq int // KV cells per sequence (512)
	APIKeys   []string
	// AllowedOrigins is server.Options.AllowedOrigins (CORS).
	AllowedOrigins []string
	// NoPlayground leaves the web playground out.
	NoPlayground bool
}

// Server is a running server.
type Server struct {
	URL   string
	Gate  *Gate
	Sched *scheduler.Scheduler
}

// Start serves the GGUF model at path until the test ends. One engine
// thread: on a busy machine llama.cpp's spinning thread barrier makes two
// threads much slower on models this small.
func Start(t testing.TB, path string, o Options) *Server {
	t.Helper()
	if o.Parallel == 0 {
		o.Parallel = 2
	}
	if o.CtxPerSeq == 0 {
		o.CtxPerSeq = 512
	}
	gate := &Gate{left: -1}
	stk := stack.New(stack.Options{
		Server:    server.Options{APIKeys: o.APIKeys, Playground: !o.NoPlayground, AllowedOrigins: o.AllowedOrigins},
		Scheduler: scheduler.Options{OnStep: func(time.Duration, int) { gate.step() }},
		Open: func() (engine.Backend, error) {
			return llamacpp.Open(path, llamacpp.Options{CtxSize: o.CtxPerSeq * o.Parallel, Parallel: o.Parallel, Threads: 1})
		},
	})
	if err := stk.Load(); err != nil {
		_ = stk.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(stk.Server.Handler())
	t.Cleanup(func() {
		gate.Open()
		hs.Close()
		_ = stk.Close()
	})
	sched := stk.Sched
	return &Server{URL: hs.URL, Gate: gate, Sched: sched}
}

// Gate holds the scheduler's loop after a number of decode steps. The
// loop calls step after each decode, before it samples and sends that
// step's tokens: holding after n steps means the tokens of n-1 steps have
// gone out. The zero Gate is not usable; Start makes one, open.
type Gate struct {
	mu      sync.Mutex
	left    int           // steps to let through before holding; <0: open
	release chan struct{} // closed by Open
}

// Hold lets n more steps through, then holds the loop until Open.
func (g *Gate) Hold(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release == nil {
		g.release = make(chan struct{})
	}
	g.left = n
}

// Open lets the loop run freely again.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.left = -1
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

func (g *Gate) step() {
	g.mu.Lock()
	if g.left != 0 {
		if g.left > 0 {
			g.left--
		}
		g.mu.Unlock()
		return
	}
	ch := g.release
	g.mu.Unlock()
	<-ch
}

// Metric returns the value of the sample of /metrics whose name with
// labels (as Prometheus writes them, labels sorted by name, e.g.
// `asi1_requests_finished_total{finish_reason="cancelled"}`) is series,
// and whether it was there.
func (s *Server) Metric(t testing.TB, series string) (float64, bool) {
	t.Helper()
	m, err := (&api.Client{BaseURL: s.URL}).Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m.Get(series)
}

// Greedy is the content of a non-streamed greedy answer to prompt from the
// server at base (at most maxTokens tokens): what a client's own view of
// the same request must show.
func Greedy(t testing.TB, base, prompt string, maxTokens int) string {
	t.Helper()
	temp := 0.0
	c, err := (&api.Client{BaseURL: base}).Chat(context.Background(), &api.ChatCompletionRequest{Model: "asi1-mini",
		Temperature: &temp, MaxTokens: maxTokens, Messages: []api.Message{api.NewMessage(api.RoleUser, prompt)}})
	if err != nil || len(c.Choices) == 0 {
		t.Fatalf("greedy answer: %v", err)
	}
	return c.Choices[0].Message.Text()
}

// WaitMetric polls /metrics until the sample series has the value want,
// for at most 30 s: a value the server publishes after the client has
// already seen its answer end (a cancel, a finished count).
func (s *Server) WaitMetric(t testing.TB, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, _ := s.Metric(t, series)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, v, want)
		}
		time.Sleep(20 * time.Millisecond) // polling an observable value, not synchronising on time
	}
}
