package server

import (
	"fmt"
	"testing"
	"time"
)

// The store forgets a response after its time limit and the oldest ones
// beyond its size, on a clock the test moves.
func TestResponseStoreBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newResponseStore(3, time.Hour)
	s.now = func() time.Time { return now }
	msg := func(i int) []ChatMessage { return []ChatMessage{{Role: RoleUser, Content: fmt.Sprint(i)}} }
	for i := range 4 {
		s.put(fmt.Sprintf("resp_%d", i), msg(i))
		now = now.Add(time.Minute)
	}
	if _, ok := s.get("resp_0"); ok {
		t.Errorf("resp_0 kept beyond the limit of 3")
	}
	for i := 1; i < 4; i++ {
		m, ok := s.get(fmt.Sprintf("resp_%d", i))
		if !ok || m[0].Content != fmt.Sprint(i) {
			t.Errorf("resp_%d: %v %v", i, m, ok)
		}
	}
	// An hour after resp_1 was stored, it is gone;
	// resp_3, stored two minutes later, is not.
	now = time.Unix(1000, 0).Add(time.Minute + time.Hour)
	if _, ok := s.get("resp_1"); ok {
		t.Errorf("resp_1 kept past its hour")
	}
	if _, ok := s.get("resp_3"); !ok {
		t.Errorf("resp_3 dropped before its hour")
	}
	if n := s.len(); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
	// Defaults.
	d := newResponseStore(0, 0)
	if d.max != DefaultResponsesMax || d.ttl != DefaultResponsesTTL {
		t.Errorf("defaults %d %v", d.max, d.ttl)
	}
}
