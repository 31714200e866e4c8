package scheduler

import (
	"slices"
	"time"

	"github.com/asi1d/asi1d/engine"
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
// small synth model: 16 ms for 2,000 tokens, BenchmarkSessionRestore) and
// leaves the file to the store's writer; restoring reads the file and
// restores it on the loop (55 ms for those 2,000 tokens, with the first
// token's decode, against 6.3 s of prefill), which stalls the running
// streams once for that long instead of spreading a prefill over many
// steps.

// initSessions turns session states on when the options and the backend
// allow, and starts identifying the model (its checksum may take a while).
func (s *Scheduler) initSessions() {
	st, ok := s.be.(engine.SeqStater)
	if s.opts.Sessions == nil || !ok {
		return
	}
	s.stater = st
	s.sessionKey()
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

// swapSession runs when a request is about to take slot sl, where lcp of
// its prompt is cached: it saves the session that sl served if it is
// another one, and restores the request's session when that gains more.
// It returns how much of the prompt sl holds now.
func (s *Scheduler) swapSession(sl *slot, r *Request, lcp int) int {
	if s.stater == nil || sl.session == r.SessionID {
		return lcp
	}
	s.saveSlot(sl)
	sl.savedN = -1
	if r.SessionID == "" || !s.sessionKey() {
		return lcp
	}
	least := s.opts.Sessions.MinTokens()
	if len(r.Prompt)-1-lcp < least {
		return lcp // what is left to prefill is not worth a look
	}
	e, ok := s.opts.Sessions.Load(s.sessKey, r.SessionID, r.Prompt)
	if !ok || min(e.Common, len(r.Prompt)-1)-lcp < least {
		return lcp
	}
	t0 := time.Now()
	s.addKV(-len(sl.cached))
	sl.cached = sl.cached[:0]
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
