package stack

import (
	"errors"
	"time"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
)

// Drain refuses new requests and loads, and lets running ones finish
// within timeout; Done is closed when every scheduler has stopped.
func (s *Stack) Drain(timeout time.Duration) {
	s.Server.SetDraining()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	for _, sl := range s.slots {
		if sl.sched != nil {
			sl.sched.Drain(timeout)
		}
	}
}

// Done is closed when the scheduler loops that run now have ended (at once
// when none runs).
func (s *Stack) Done() <-chan struct{} {
	s.mu.Lock()
	var scheds []*scheduler.Scheduler
	for _, sl := range s.slots {
		if sl.sched != nil {
			scheds = append(scheds, sl.sched)
		}
	}
	s.mu.Unlock()
	if len(scheds) == 1 {
		return scheds[0].Done()
	}
	done := make(chan struct{})
	go func() { // ends when the schedulers have: Drain or Close ends them
		for _, sc := range scheds {
			<-sc.Done()
		}
		close(done)
	}()
	return done
}

// Unload stops the first model's scheduler and waits for it; its backend
// stays open for another Load (bench compares the raw engine on it).
// Other loaded models are unloaded and closed. Until the next Load the
// server answers 503 loading, and loads nothing.
func (s *Stack) Unload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = false
	for i, sl := range s.slots {
		if sl.state == server.StateLoaded {
			s.unload(sl, "", i == 0)
		}
	}
	s.Sched, s.Model = nil, nil
}

// Close unloads every model, closes the backends and stops the stack's
// goroutines. It is safe to call twice.
func (s *Stack) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already && s.janitor != nil {
		close(s.janitor)
		<-s.jdone
	}
	if !already && s.rescan != nil {
		close(s.rescan)
		<-s.rdone
	}
	s.loads.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sl := range s.slots {
		for sl.state == server.StateUnloading { // by a request that got in first
			ch := sl.unloaded
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
		}
		if sl.state == server.StateLoaded {
			s.unload(sl, "", true)
		}
		if sl.backend != nil {
			errs = append(errs, sl.backend.Close())
			sl.backend = nil
		}
	}
	s.Backend, s.Sched, s.Model = nil, nil, nil
	return errors.Join(errs...)
}
