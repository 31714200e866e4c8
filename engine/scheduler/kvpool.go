package scheduler

import "slices"

// The shared KV pool. When the backend's sequences share one pool of
// Info().NCtx cells (KVUnified), a request may use up to NCtxSeq of them
// (the model's trained context), and the scheduler admits by room in the
// pool, not only by a free sequence:
//
//   - A request holds its prompt plus its Reserve (max_tokens, or
//     DefaultReserve) cells from admission on, at most NCtxSeq. The
//     waiting queue is admitted in order while the held cells of the
//     running requests leave room for the next one; when they do not, the
//     queue waits (no error) until a request ends.
//   - A request generating past what it holds takes one more cell per
//     token while the pool has unheld cells. When it has none, the request
//     ends with finish_reason "length" (its text so far is delivered),
//     the requests admitted before it first: nothing is evicted from under
//     a running request and no decode fails for room. Waiting requests
//     are admitted before running ones grow, so growth never starves the
//     queue.
//   - Idle sequences keep their tokens as a prefix cache while the pool
//     has room; before a decode needs their cells they are dropped, least
//     recently used first (a session's state is saved first, when
//     sessions are on).

// holdFor is the cells a request holds from admission: its prompt and its
// reserve, at most NCtxSeq.
func (s *Scheduler) holdFor(r Request) int {
	res := r.Reserve
	if res <= 0 {
		res = DefaultReserve
	}
	if r.MaxTokens > 0 {
		res = min(res, r.MaxTokens)
	}
	return len(r.Prompt) + max(min(res, s.info.NCtxSeq-len(r.Prompt)), 1)
}

// hold is what a request admitted with keep cached cells holds (0 unless
// the pool is shared).
func (s *Scheduler) hold(keep int, r Request) int {
	if !s.pooled {
		return 0
	}
	return max(keep, s.holdFor(r))
}

func (s *Scheduler) commit(d int) {
	if d != 0 {
		s.committed += d
		s.st.reserved.Add(int64(d))
	}
}

// growHolds gives every generating request the cell its next token needs,
// oldest first; one that the pool has no cell for ends with "length".
func (s *Scheduler) growHolds() {
	var grow []*slot
	for _, sl := range s.slots {
		if sl.job != nil && sl.hasTok && len(sl.cached)+1 > sl.hold {
			grow = append(grow, sl)
		}
	}
	slices.SortFunc(grow, func(a, b *slot) int { return int(a.admitSeq - b.admitSeq) })
	for _, sl := range grow {
		if s.committed < s.info.NCtx {
			sl.hold++
			s.commit(1)
			continue
		}
		s.log.Debug("KV pool full: ending a request with length", "slot", sl.id, "tokens", len(sl.cached), "pool", s.info.NCtx)
		var ev Event
		s.emitText(sl, &ev, sl.detok.Flush(), true)
		if len(ev.Fragments) > 0 {
			sl.job.stream.push(ev)
		}
		s.finish(sl, FinishLength, nil)
	}
}

// makeRoom drops idle sequences' cached tokens, least recently used first,
// until the pool has n free cells.
func (s *Scheduler) makeRoom(n int) {
	free := func() int { return s.info.NCtx - int(s.st.kvUsed.Load()) }
	if free() >= n {
		return
	}
	var idle []*slot
	for _, sl := range s.slots {
		if sl.job == nil && len(sl.cached) > 0 {
			idle = append(idle, sl)
		}
	}
	slices.SortFunc(idle, func(a, b *slot) int { return a.lastUsed.Compare(b.lastUsed) })
	for _, sl := range idle {
		if free() >= n {
			return
		}
		if s.stater != nil {
			s.saveSlot(sl)
		}
		if err := s.be.RemoveKV(sl.id, -1, -1); err != nil {
			s.log.Warn("KV removal refused", "slot", sl.id, "err", err)
			continue
		}
		s.addKV(-len(sl.cached))
		sl.cached, sl.savedN = sl.cached[:0], -1
	}
}
