package server

import (
	"container/list"
	"sync"
	"time"
)

// Stored responses, for previous_response_id: a bounded map in memory,
// oldest first out. A response is kept until DefaultResponsesTTL after it
// was made, and at most DefaultResponsesMax of them (Options.ResponsesMax
// and Options.ResponsesTTL change both); nothing survives a restart, and
// each replica has its own (docs/API.md, "Responses").

// Defaults of the response store.
const (
	DefaultResponsesMax = 1000
	DefaultResponsesTTL = time.Hour
)

// storedResponse is what a later request continues: the conversation up
// to and including the response's output, without its instructions.
type storedResponse struct {
	id       string
	messages []ChatMessage
	expires  time.Time
}

// responseStore is safe for concurrent use. Entries are added in the order
// they expire (one TTL for all), so expired ones are at the front.
type responseStore struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // of *storedResponse, oldest first
	byID  map[string]*list.Element
}

func newResponseStore(max int, ttl time.Duration) *responseStore {
	if max <= 0 {
		max = DefaultResponsesMax
	}
	if ttl <= 0 {
		ttl = DefaultResponsesTTL
	}
	return &responseStore{max: max, ttl: ttl, now: time.Now, order: list.New(), byID: map[string]*list.Element{}}
}

// put stores the conversation of response id, dropping expired entries
// and the oldest ones beyond the limit.
func (s *responseStore) put(id string, messages []ChatMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expire(now)
	if e, ok := s.byID[id]; ok {
		s.order.Remove(e)
	}
	s.byID[id] = s.order.PushBack(&storedResponse{id: id, messages: messages, expires: now.Add(s.ttl)})
	for s.order.Len() > s.max {
		s.remove(s.order.Front())
	}
}

// get returns the conversation of response id; false when it is unknown,
// expired or pushed out.
func (s *responseStore) get(id string) ([]ChatMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now())
	e, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return e.Value.(*storedResponse).messages, true
}

// len is the number of entries held (expired ones included until the next
// put or get).
func (s *responseStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}

func (s *responseStore) expire(now time.Time) {
	for e := s.order.Front(); e != nil && !now.Before(e.Value.(*storedResponse).expires); e = s.order.Front() {
		s.remove(e)
	}
}

func (s *responseStore) remove(e *list.Element) {
	delete(s.byID, e.Value.(*storedResponse).id)
	s.order.Remove(e)
}
