package stack

import (
	"maps"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
)

func (s *Stack) addRetired(st scheduler.Stats) {
	r := &s.retired
	r.PromptTokens += st.PromptTokens
	r.GeneratedTokens += st.GeneratedTokens
	r.PrefixQueriedTokens += st.PrefixQueriedTokens
	r.PrefixHitTokens += st.PrefixHitTokens
	r.Steps += st.Steps
	r.StepTokens += st.StepTokens
	r.SessionsSaved += st.SessionsSaved
	r.SessionsRestored += st.SessionsRestored
	r.SessionRestoredTokens += st.SessionRestoredTokens
	if r.Finished == nil {
		r.Finished = map[scheduler.FinishReason]uint64{}
	}
	for k, v := range st.Finished {
		r.Finished[k] += v
	}
}

// List implements server.Models.
func (s *Stack) List() []server.ModelStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]server.ModelStatus, 0, len(s.slots))
	for _, sl := range s.slots {
		if !sl.retired {
			out = append(out, s.status(sl))
		}
	}
	return out
}

// Status implements server.Models.
func (s *Stack) Status(id string) (server.ModelStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.byName[id]
	if !ok {
		return server.ModelStatus{}, false
	}
	return s.status(sl), true
}

func (s *Stack) status(sl *slot) server.ModelStatus {
	sp := sl.spec
	st := server.ModelStatus{
		ID: sp.ID, Aliases: sp.Aliases, Created: sp.Created, ContextLength: sl.ctxLen, Arch: sp.Arch,
		Quantization: sp.Quantization, SizeBytes: sp.SizeBytes, SHA256: sp.SHA256, State: sl.state,
		Loads: sl.loads, Unloads: maps.Clone(sl.unloads), LoadSeconds: sl.loadSeconds,
		HostBytes: sp.HostBytes, GPUBytes: sp.GPUBytes,
	}
	if sl.unusable != nil {
		st.Error = sl.unusable.Error()
	} else if sl.loadErr != nil {
		st.Error = "last load failed: " + sl.loadErr.Error()
	}
	return st
}

// Stats implements server.Models: the counters of every scheduler since
// the start, the gauges of the loaded ones.
func (s *Stack) Stats() scheduler.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.retired
	t.Finished = maps.Clone(s.retired.Finished)
	if t.Finished == nil {
		t.Finished = map[scheduler.FinishReason]uint64{}
	}
	for _, sl := range s.slots {
		if sl.sched == nil {
			continue
		}
		st := sl.sched.Stats()
		t.Running += st.Running
		t.Waiting += st.Waiting
		t.Slots += st.Slots
		t.KVCells += st.KVCells
		t.KVUsed += st.KVUsed
		t.PromptTokens += st.PromptTokens
		t.GeneratedTokens += st.GeneratedTokens
		t.PrefixQueriedTokens += st.PrefixQueriedTokens
		t.PrefixHitTokens += st.PrefixHitTokens
		t.Steps += st.Steps
		t.StepTokens += st.StepTokens
		t.SessionsSaved += st.SessionsSaved
		t.SessionsRestored += st.SessionsRestored
		t.SessionRestoredTokens += st.SessionRestoredTokens
		for k, v := range st.Finished {
			t.Finished[k] += v
		}
		// A model being unloaded stops its loop as a drain does; only a
		// served model's drain is the server's.
		t.Draining = t.Draining || (st.Draining && sl.state == server.StateLoaded)
		t.CtxPerSeq = max(t.CtxPerSeq, st.CtxPerSeq)
		t.StepLimit = max(t.StepLimit, st.StepLimit)
	}
	for _, sl := range s.slots {
		t.Waiting += sl.waiters // requests waiting for a load or for room
	}
	return t
}
