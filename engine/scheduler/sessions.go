package scheduler

import (
	"slices"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/sessions"
)

// Session states (Options.Sessions). A slot keeps the KV of the session it
// served last as a cache entry; when the slot goes to another request's
// session, and when the loop stops (a drain, or its owner ending Run's
// context to unload the model), that KV is saved with its tokens
// (if at least the store's MinTokens long and not saved as it is already).
// When a request of a session is admitted and the slot chosen for it holds
// less of its prompt than the session's saved state would, by at least
// MinTokens, the state is restored into the slot and only the rest of the
// prompt is prefilled; Usage.CachedTokens counts the restored tokens.
//
// Saving copies the sequence's state on the loop (36 KiB a token on the
// small synth model: 16-26 ms for 2,000 tokens, BenchmarkSessionRestore)
// and leaves the file to the store's writer. Reading the file (70 MiB for
// those 2,000 tokens read, checked and allocated: 18-62 ms, about half of
// a restore with its first decode, BenchmarkSessionRestore's load against
// restored) happens off the loop: a request whose session has a file and
// whose slot holds less of it than the minimum waits in the queue while
// one goroutine reads the state, the running streams go on, and the loop
// restores it (a copy into the KV) when the request takes its slot.

// stateResult is what readState's goroutine found for a job.
type stateResult struct {
	j  *job
	e  sessions.Entry
	ok bool
}

// initSessions turns session states on when the options and the backend
// allow, and starts identifying the model (its checksum may take a while).
func (s *Scheduler) initSessions() {
	st, ok := s.be.(engine.SeqStater)
	if s.opts.Sessions == nil || !ok {
		return
	}
	s.stater = st
	s.loadState = s.opts.Sessions.Load
	s.sessionKey()
}

// needState reports whether j's session state should be read before j
// takes slot sl, of which lcp tokens are its prompt's: it was not read yet,
// the slot does not hold the session, enough of the prompt is left to
// prefill, and the store has a file for the session.
func (s *Scheduler) needState(sl *slot, j *job, lcp int) bool {
	r := &j.req
	if s.stater == nil || j.stateRead || r.SessionID == "" || sl.session == r.SessionID {
		return false
	}
	if len(r.Prompt)-1-lcp < s.opts.Sessions.MinTokens() || !s.sessionKey() {
		return false
	}
	if !s.opts.Sessions.Has(s.sessKey, r.SessionID) {
		j.stateRead = true // nothing to read
		return false
	}
	return true
}

// readState reads j's session state on a goroutine, which hands it to the
// loop (gotState) or gives up when Run returns.
func (s *Scheduler) readState(j *job) {
	s.reading = j
	key, session, p := s.sessKey, j.req.SessionID, j.req.Prompt
	s.readers.Go(func() {
		e, ok := s.loadState(key, session, p)
		select {
		case s.states <- stateResult{j: j, e: e, ok: ok}:
		case <-s.stopRead:
		}
	})
}

// gotState records a state read for a job, which may have left the queue
// meanwhile (cancelled): then the state is dropped with it.
func (s *Scheduler) gotState(r stateResult) {
	if s.reading == r.j {
		s.reading = nil
	}
	r.j.stateRead = true
	if r.ok {
		r.j.state = &r.e
	}
}

// stopReads ends a state read still going when Run returns.
func (s *Scheduler) stopReads() {
	close(s.stopRead)
	s.readers.Wait()
}

// sessionKey returns the key of this scheduler's states, once the model's
// checksum is known.
func (s *Scheduler) sessionKey() bool {
	if s.keyOK {
		return true
	}
	m, ok := s.opts.Sessions.Identify(s.info.Path, s.info.Arch)
	if !ok {
		return false
	}
	s.sessKey.Model, s.sessKey.Settings, s.keyOK = m, s.stater.StateID(), true
	return true
}

// swapSession runs when job j is about to take slot sl, where lcp of its
// prompt is cached: it saves the session that sl served if it is another
// one, and restores j's session from the state read for it (readState)
// when that gains more. It returns how much of the prompt sl holds now.
func (s *Scheduler) swapSession(sl *slot, j *job, lcp int) int {
	r := &j.req
	e := j.state
	j.state = nil // the loop holds it no longer than this
	if s.stater == nil || sl.session == r.SessionID {
		return lcp
	}
	s.saveSlot(sl)
	sl.savedN = -1
	if e == nil || r.SessionID == "" || !s.sessionKey() {
		return lcp
	}
	if min(e.Common, len(r.Prompt)-1)-lcp < s.opts.Sessions.MinTokens() {
		return lcp
	}
	t0 := time.Now()
	s.addKV(-len(sl.cached))
	sl.cached = sl.cached[:0]
	if s.pooled {
		s.makeRoom(len(e.Tokens)) // the state's cells come from the shared pool
	}
	if err := s.stater.RestoreSeq(sl.id, e.State); err != nil {
		// The sequence is empty now.
		s.log.Warn("session state refused by the backend: removed", "session", r.SessionID, "slot", sl.id, "err", err)
		s.opts.Sessions.Remove(s.sessKey, r.SessionID)
		return 0
	}
	sl.cached = append(sl.cached, e.Tokens...)
	sl.savedN = len(sl.cached)
	s.addKV(len(sl.cached))
	s.st.restored.Add(1)
	s.st.restoredTok.Add(uint64(min(e.Common, len(r.Prompt)-1)))
	s.log.Info("session restored", "session", r.SessionID, "slot", sl.id, "tokens", len(e.Tokens),
		"common", e.Common, "prompt", len(r.Prompt), "ms", ms(time.Since(t0)))
	return e.Common
}

// saveSlot saves the KV of the session that sl served, unless it is short,
// saved as it is, or the model is not identified yet.
func (s *Scheduler) saveSlot(sl *slot) {
	if sl.session == "" || len(sl.cached) < s.opts.Sessions.MinTokens() || len(sl.cached) == sl.savedN || !s.sessionKey() {
		return
	}
	t0 := time.Now()
	state, err := s.stater.SaveSeq(sl.id)
	if err != nil {
		s.log.Warn("session state not saved", "session", sl.session, "slot", sl.id, "err", err)
		return
	}
	s.opts.Sessions.Save(s.sessKey, sl.session, slices.Clone(sl.cached), state)
	sl.savedN = len(sl.cached)
	s.st.saved.Add(1)
	s.log.Debug("session state saved", "session", sl.session, "slot", sl.id, "tokens", len(sl.cached),
		"bytes", len(state), "ms", ms(time.Since(t0)))
}

// saveSessions saves every slot's session: the loop is stopping.
func (s *Scheduler) saveSessions() {
	if s.stater == nil {
		return
	}
	for _, sl := range s.slots {
		if sl.job == nil {
			s.saveSlot(sl)
		}
	}
}
