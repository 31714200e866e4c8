package scheduler

import (
	"slices"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/sampler"
	"github.com/asi1d/asi1d/tokenizer"
)

// Admission: the waiting requests that take a slot, and which slot (prefix
// reuse, eviction cost).
// admit moves queued requests into idle slots, FIFO, except that a
// request whose session state is worth reading first waits in its place
// while the state is read off the loop (readState), and the ones behind it
// go on.

func (s *Scheduler) admit() {
	for i := 0; i < len(s.queue); {
		j := s.queue[i]
		if j == s.reading {
			i++
			continue
		}
		sl, lcp := s.pickSlot(j.req)
		if sl == nil {
			return
		}
		if s.needState(sl, j, lcp) {
			if s.reading == nil {
				s.readState(j)
			}
			i++
			continue
		}
		if s.pooled && s.committed+s.holdFor(j.req) > s.info.NCtx {
			return // the pool is full: the queue waits, in order, for room
		}
		s.queue = slices.Delete(s.queue, i, i+1)
		s.waiting.Add(-1)
		s.start(sl, j, lcp)
	}
}

// pickSlot chooses the idle slot whose cache shares the longest prefix with
// the prompt; when that is at most half the prompt (the slot holds another
// conversation), less a quarter of the cached tokens it would throw away
// (evictCost: another conversation's prefix is worth keeping, so a request
// that shares only a BOS or a short system prompt with it takes a free slot
// instead, while a prompt asked again keeps its slot); ties go to the slot of the same session, then to the least
// recently used. Without a unified KV cache, each busy neighbour of a slot
// counts as adjacentWorth cached tokens (see layoutBonus).
func (s *Scheduler) pickSlot(r Request) (*slot, int) {
	var best *slot
	bestN, bestScore := -1, 0
	same := func(sl *slot) bool { return r.SessionID != "" && sl.session == r.SessionID }
	for _, sl := range s.slots {
		if sl.job != nil {
			continue
		}
		n := engine.CommonPrefix(sl.cached, r.Prompt)
		score := n + s.layoutBonus(sl)
		if 2*n <= len(r.Prompt) {
			// Not this request's conversation: what it would evict counts.
			score -= (len(sl.cached) - n) / evictCost
		}
		better := best == nil || score > bestScore
		if !better && score == bestScore {
			if same(sl) != same(best) {
				better = same(sl)
			} else {
				better = sl.lastUsed.Before(best.lastUsed)
			}
		}
		if better {
			best, bestN, bestScore = sl, n, score
		}
	}
	return best, bestN
}

// adjacentWorth is what a busy neighbour of a slot is worth, in cached
// prompt tokens, when a request picks its slot.
const adjacentWorth = 32

// evictCost: a cached token thrown away costs 1/evictCost of a token
// reused. Not 1: the other conversation may never come back, and a slot
// is reused by the next request of its own session before any other.
const evictCost = 4

// layoutBonus favours slots next to busy ones when the KV cache is not
// unified. llama.cpp then splits a batch at every gap in the sequence ids
// (engine.Ubatches), so a request placed apart from the running ones costs
// every decode step of its life one more pass over the weights (2.1x the
// step for 8 strided sequences, BenchmarkSeqLayout), while a cached prefix
// saves its tokens once. Least-recently-used ties would otherwise spread
// requests over all the slots.
func (s *Scheduler) layoutBonus(sl *slot) int {
	if s.info.KVUnified {
		return 0
	}
	n := 0
	for _, id := range [2]int{int(sl.id) - 1, int(sl.id) + 1} {
		if id >= 0 && id < len(s.slots) && s.slots[id].job != nil {
			n++
		}
	}
	return n * adjacentWorth
}

// start places a job in a slot, keeping the cached prefix.
func (s *Scheduler) start(sl *slot, j *job, lcp int) {
	lcp = s.swapSession(sl, j, lcp)
	// At least one prompt token is always evaluated, to get logits.
	keep := min(lcp, len(j.req.Prompt)-1)
	if keep < len(sl.cached) {
		if err := s.be.RemoveKV(sl.id, int32(keep), -1); err != nil {
			// Cannot trim: start from scratch.
			s.log.Warn("KV trim refused; clearing the sequence", "slot", sl.id, "err", err)
			_ = s.be.RemoveKV(sl.id, -1, -1)
			keep = 0
		}
		s.addKV(keep - len(sl.cached))
		sl.cached = sl.cached[:keep]
		if keep < sl.savedN {
			sl.savedN = -1 // no longer what was saved
		}
	}
	now := s.now()
	s.admits++
	*sl = slot{
		id: sl.id, cached: sl.cached, lastUsed: now, session: j.req.SessionID, savedN: sl.savedN,
		job: j, admitSeq: s.admits, prompt: j.req.Prompt, nPast: keep, cachedN: keep, hold: s.hold(keep, j.req),
		admitted: now, smp: sampler.New(j.req.Sampling), stop: tokenizer.NewStopMatcher(j.req.Stop),
		rowCopy: sl.rowCopy, constrained: len(j.req.GrammarTriggers) == 0,
	}
	s.running++
	s.st.running.Add(1)
	s.commit(sl.hold)
	s.st.queried.Add(uint64(len(j.req.Prompt)))
	s.st.hit.Add(uint64(keep))
	s.st.prompt.Add(uint64(len(j.req.Prompt)))
	j.stream.push(Event{Started: true})
}
