// Package stack wires one serving stack: a model backend, the scheduler
// that owns it and the HTTP server that serves it, from one Options value.
// The binary (serve, bench) and the tests build their stacks here, so a new
// option is threaded in one place.
//
// The package is pure Go: the backend comes from Options.Open, which the
// binary points at llamacpp.Open (cgo) and tests at the fake engine
// (engine/enginetest), so server and scheduler tests keep building with
// CGO_ENABLED=0.
package stack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
)

// Options configure a stack.
type Options struct {
	Server    server.Options
	Scheduler scheduler.Options // OnStep, when set, is called after the server's own
	// Open loads the model; Load calls it once, the first time.
	Open func() (engine.Backend, error)
	// Tokenizer, when set, is what the server tokenizes with instead of the
	// backend itself (tests wrap the fake's vocabulary).
	Tokenizer func(engine.Backend) server.Tokenizer
}

// Stack is one serving stack. Server exists from New on (its /health
// answers 503 loading); Backend, Sched and Model from Load on.
type Stack struct {
	Server  *server.Server
	Backend engine.Backend
	Sched   *scheduler.Scheduler
	Model   *server.Model

	o    Options
	mu   sync.Mutex
	stop context.CancelFunc
}

// New builds the server of the stack; nothing is loaded yet.
func New(o Options) *Stack {
	return &Stack{Server: server.New(o.Server), o: o}
}

// Load opens the backend (the first time), starts a scheduler loop on it
// and makes the server serve the model. After Unload it starts a new
// scheduler on the same backend.
func (s *Stack) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return errors.New("stack: already loaded")
	}
	if s.Backend == nil {
		if s.o.Open == nil {
			return errors.New("stack: no Open function")
		}
		be, err := s.o.Open()
		if err != nil {
			return err
		}
		s.Backend = be
	}
	so := s.o.Scheduler
	if onStep := so.OnStep; onStep != nil {
		so.OnStep = func(d time.Duration, tokens int) {
			s.Server.OnStep(d, tokens)
			onStep(d, tokens)
		}
	} else {
		so.OnStep = s.Server.OnStep
	}
	if so.Logger == nil {
		so.Logger = s.o.Server.Logger
	}
	sched := scheduler.New(s.Backend, so)
	ctx, stop := context.WithCancel(context.Background())
	go sched.Run(ctx)
	var tok server.Tokenizer = s.Backend
	if s.o.Tokenizer != nil {
		tok = s.o.Tokenizer(s.Backend)
	}
	m, err := server.NewModel(tok, sched, s.o.Server.Version)
	if err != nil {
		stop()
		<-sched.Done()
		return fmt.Errorf("prepare the model: %w", err)
	}
	s.Sched, s.Model, s.stop = sched, m, stop
	s.Server.SetModel(m)
	return nil
}

// Drain refuses new requests and lets running ones finish within timeout;
// Done is closed when the scheduler has stopped.
func (s *Stack) Drain(timeout time.Duration) {
	s.Server.SetDraining()
	if sched := s.sched(); sched != nil {
		sched.Drain(timeout)
	}
}

// Done is closed when the scheduler loop has ended (nil before Load: it
// never closes).
func (s *Stack) Done() <-chan struct{} {
	if sched := s.sched(); sched != nil {
		return sched.Done()
	}
	return nil
}

func (s *Stack) sched() *scheduler.Scheduler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Sched
}

// Unload stops the scheduler loop, waits for it and takes the model off
// the server; the backend stays open for another Load.
func (s *Stack) Unload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop == nil {
		return
	}
	s.stop()
	<-s.Sched.Done()
	s.Server.SetModel(nil)
	s.stop = nil
}

// Close unloads and closes the backend. It is safe to call twice.
func (s *Stack) Close() error {
	s.Unload()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Backend == nil {
		return nil
	}
	err := s.Backend.Close()
	s.Backend = nil
	return err
}
