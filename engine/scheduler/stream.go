package scheduler

import (
	"context"
	"io"
	"sync"
)

// Stream delivers one request's events. Its writers (the loop, and a
// sampling helper for the row it holds) merge into one pending event under a
// mutex that each side holds only to merge or take that event, so a writer
// never waits for the reader to read; a reader that falls behind gets the
// text and logprobs coalesced into its next event. It has one reader
// goroutine, which uses Next, or Ready with TryNext.
type Stream struct {
	notify chan struct{} // capacity 1: "something is pending"

	mu       sync.Mutex
	pending  Event
	has      bool
	finished bool // the Done event is pending or was read
	read     bool // the Done event was read
}

func newStream() *Stream {
	return &Stream{notify: make(chan struct{}, 1)}
}

// push merges ev into the pending event and wakes the reader. Called by
// the loop, or by a sampling helper for the row it holds (sampleRow, where
// the readers are woken at once: see Scheduler.deferWake).
func (s *Stream) push(ev Event) {
	s.merge(ev)
	s.wake()
}

// merge merges ev into the pending event without waking the reader (see
// Scheduler.deferWake); wake must follow. Called by the loop, or by a
// sampling helper for the row it holds.
func (s *Stream) merge(ev Event) {
	s.mu.Lock()
	p := &s.pending
	p.Started = p.Started || ev.Started
	for _, f := range ev.Fragments {
		if n := len(p.Fragments); n > 0 && p.Fragments[n-1].Thought == f.Thought && p.Fragments[n-1].Block == f.Block {
			p.Fragments[n-1].Text += f.Text
		} else {
			p.Fragments = append(p.Fragments, f)
		}
	}
	p.Logprobs = append(p.Logprobs, ev.Logprobs...)
	if ev.Done {
		p.Done, p.Finish, p.Err, p.Usage = true, ev.Finish, ev.Err, ev.Usage
		p.Queued, p.FirstTok, p.Generated, p.Gaps = ev.Queued, ev.FirstTok, ev.Generated, ev.Gaps
		s.finished = true
	}
	s.has = true
	s.mu.Unlock()
}

// wake tells the reader that an event is pending.
func (s *Stream) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next waits for the next event. It returns io.EOF after the Done event was
// returned, and ctx.Err() when ctx ends first.
func (s *Stream) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if s.read {
			s.mu.Unlock()
			return Event{}, io.EOF
		}
		if s.has {
			ev := s.pending
			s.pending, s.has = Event{}, false
			s.read = ev.Done
			s.mu.Unlock()
			return ev, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Ready returns a channel that receives when an event may be pending: wait
// on it in a select, then take the event with TryNext, which does not wait.
// Next looks for a pending event before it waits for the signal, so one
// reader may use both.
func (s *Stream) Ready() <-chan struct{} { return s.notify }

// TryNext returns the pending event, if any, without waiting.
func (s *Stream) TryNext() (Event, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read {
		return Event{}, false, io.EOF
	}
	if !s.has {
		return Event{}, false, nil
	}
	ev := s.pending
	s.pending, s.has = Event{}, false
	s.read = ev.Done
	return ev, true, nil
}
