package stack

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/asi1d/asi1d/server"
)

// A catalog's models change while it serves (Options.Rescan, Update): a
// new model is served from then on (loaded on its first request, or at
// once when it is preloaded), a removed one is no longer listed or named,
// and a replaced one (another Version under the same id) is served from
// its new version. A removed or replaced model that is running requests
// is never pulled from under them: it unloads when the last one is done.

// errRetired: the slot was removed or replaced while a request waited for
// it; Acquire looks the name up again.
var errRetired = errors.New("stack: the model was removed or replaced")

// UpdateResult says what an Update changed, by id.
type UpdateResult struct {
	Added, Removed, Replaced []string
}

// Changed reports whether anything changed.
func (r UpdateResult) Changed() bool {
	return len(r.Added)+len(r.Removed)+len(r.Replaced) > 0
}

// Update makes specs the models served: ids that are new are added, ids
// that are gone are removed, ids of another Version are replaced, and the
// others keep their loaded model (their aliases follow specs).
func (s *Stack) Update(specs []ModelSpec) UpdateResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var r UpdateResult
	if s.closed {
		return r
	}
	cur := map[string]*slot{}
	for _, sl := range s.slots {
		if !sl.retired {
			cur[sl.spec.ID] = sl
		}
	}
	next := make([]*slot, 0, len(specs))
	var preload []*slot
	seen := map[string]bool{}
	for _, sp := range specs {
		if seen[sp.ID] {
			continue
		}
		seen[sp.ID] = true
		if old := cur[sp.ID]; old != nil && old.spec.Version == sp.Version {
			old.spec.Aliases = sp.Aliases
			next = append(next, old)
			continue
		} else if old != nil {
			old.retired = true
			r.Replaced = append(r.Replaced, sp.ID)
		} else {
			r.Added = append(r.Added, sp.ID)
		}
		sl := s.newSlot(sp)
		next = append(next, sl)
		if sp.Preload && sl.unusable == nil {
			preload = append(preload, sl)
		}
	}
	for id, old := range cur {
		if !seen[id] {
			old.retired = true
			r.Removed = append(r.Removed, id)
		}
	}
	for _, sl := range s.slots {
		if sl.retired {
			next = append(next, sl) // until unloaded
		}
	}
	s.slots = next
	s.byName = map[string]*slot{}
	for _, sl := range s.slots {
		if sl.retired {
			continue
		}
		for _, name := range append([]string{sl.spec.ID}, sl.spec.Aliases...) {
			if _, dup := s.byName[name]; !dup {
				s.byName[name] = sl
			}
		}
	}
	if r.Changed() {
		slices.Sort(r.Removed)
		s.log.Info("models changed", "added", r.Added, "removed", r.Removed, "replaced", r.Replaced)
	}
	s.signalRoom() // requests waiting on a retired slot look again
	s.reapRetired()
	for _, sl := range preload {
		if !sl.retired && sl.state == server.StateUnloaded && !s.draining {
			s.loads.Add(1)
			go func() { // owned by the stack: Close waits for s.loads
				defer s.loads.Done()
				if err := s.load(context.Background(), sl); err != nil && !errors.Is(err, errRetired) {
					s.log.Warn("preload of a new model failed", "model", sl.spec.ID, "err", err)
				}
			}()
		}
	}
	return r
}

// newSlot is the slot of a model not loaded yet.
func (s *Stack) newSlot(sp ModelSpec) *slot {
	sl := &slot{spec: sp, state: server.StateUnloaded, unloads: map[string]uint64{}, ctxLen: sp.ContextLength}
	if sp.Err != nil {
		sl.unusable, sl.state = sp.Err, server.StateUnusable
	}
	if sp.Open == nil && sl.unusable == nil {
		sl.unusable, sl.state = errors.New("no way to open it"), server.StateUnusable
	}
	return sl
}

// reapRetired unloads the retired models that no request uses, and drops
// the retired slots that hold nothing any more. s.mu is held (and let go
// while a model unloads).
func (s *Stack) reapRetired() {
	for !s.closed {
		var idle *slot
		for _, sl := range s.slots {
			if sl.retired && sl.state == server.StateLoaded && sl.refs == 0 {
				idle = sl
				break
			}
		}
		if idle == nil {
			break
		}
		s.unload(idle, "removed", false) // lets s.mu go; the slot is unloaded after
	}
	s.slots = slices.DeleteFunc(s.slots, func(sl *slot) bool {
		if !sl.retired || sl.waiters > 0 || (sl.state != server.StateUnloaded && sl.state != server.StateUnusable) {
			return false
		}
		if sl.backend != nil { // kept open by Unload: close it now
			if err := sl.backend.Close(); err != nil {
				s.log.Warn("close removed model", "model", sl.spec.ID, "err", err)
			}
			sl.backend = nil
		}
		return true
	})
}

// unknown is the error of a name no model has: it lists the ids (and
// their aliases) that exist. s.mu is held.
func (s *Stack) unknown(id string) error {
	e := &server.UnknownModelError{ID: id}
	for _, sl := range s.slots {
		if !sl.retired {
			e.Known = append(e.Known, server.KnownModel{ID: sl.spec.ID, Aliases: sl.spec.Aliases})
		}
	}
	return e
}

// rescanLoop applies Options.Rescan every RescanEvery, until Close.
func (s *Stack) rescanLoop() {
	defer close(s.rdone)
	tick := time.NewTicker(s.o.RescanEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.rescan:
			return
		case <-tick.C:
			if specs := s.o.Rescan(); specs != nil {
				s.Update(specs)
			}
		}
	}
}
