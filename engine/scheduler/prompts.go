package scheduler

import (
	"slices"

	"github.com/asi1d/asi1d/engine"
)

// Prompt work in a step: which prompts go into the next pass and in what
// chunks.
// prompting reports whether a running request still has prompt tokens to
// process.

func (s *Scheduler) prompting() bool {
	for _, sl := range s.slots {
		if sl.job != nil && sl.nPast < len(sl.prompt) {
			return true
		}
	}
	return false
}

// addPrompts appends prompt chunks to the batch: the shortest remaining
// prompt first (a short request is not held behind a long one), then in
// admission order, within the step budget. ndec streams are generating
// this step (in this batch or the one before it).
func (s *Scheduler) addPrompts(ndec int) {
	var pre []*slot
	for _, sl := range s.slots {
		if sl.job != nil && sl.nPast < len(sl.prompt) {
			pre = append(pre, sl)
		}
	}
	if len(pre) == 0 {
		return
	}
	used := len(s.batch)
	room := max(s.budget-used, min(minPrefill, s.info.NBatch-used))
	// The streams' gaps are protected while they are at least as many as
	// the requests still waiting for a first token; in a burst of new
	// requests, getting them all started matters more. A pass whose fixed
	// cost alone exceeds the bound (a GPU) takes what costs it little more.
	if lim := s.promptLimit(ndec); lim >= 0 && ndec >= len(pre) {
		room = min(room, max(lim, minPrefill, s.fill))
	}
	room = min(room, s.info.NBatch-used)
	if len(pre) > 1 {
		slices.SortFunc(pre, func(a, b *slot) int {
			if ra, rb := len(a.prompt)-a.nPast, len(b.prompt)-b.nPast; ra != rb {
				return ra - rb
			}
			return int(a.admitSeq - b.admitSeq)
		})
	}
	if !s.info.KVUnified {
		s.addPromptRuns(pre, room)
		return
	}
	for _, sl := range pre {
		if room <= 0 {
			break
		}
		k := min(room, len(sl.prompt)-sl.nPast)
		s.addChunk(sl, k)
		room -= k
	}
}

// promptRun is k prompt tokens from each of the sequences lo..hi.
type promptRun struct {
	lo, hi engine.SeqID
	k      int
}

// addPromptRuns adds the prompt chunks of a step when the KV cache is not
// unified, so that each becomes one part of llama.cpp's split
// (engine.Ubatches) instead of being cut up and padded to the depth of
// another sequence: in the order of pre, each prompt not yet taken starts a
// run that takes equal chunks from prompts in the sequences next to it, and
// the runs go into the batch in descending order, where none can continue
// into the next. (Decode tokens ahead of them, in the mixed batches that a
// negative StepLatency allows, may still join a run.)
func (s *Scheduler) addPromptRuns(pre []*slot, room int) {
	runs := s.runs[:0]
	taken := func(id engine.SeqID) bool {
		for _, r := range runs {
			if id >= r.lo && id <= r.hi {
				return true
			}
		}
		return false
	}
	for _, first := range pre {
		if room <= 0 {
			break
		}
		if taken(first.id) {
			continue
		}
		k := min(room, len(first.prompt)-first.nPast)
		joins := func(id engine.SeqID) bool {
			if id < 0 || int(id) >= len(s.slots) || taken(id) {
				return false
			}
			sl := s.slots[id]
			// Depths within one KV padding block (256 cells) cost alike.
			return sl.job != nil && len(sl.prompt)-sl.nPast >= k && abs(sl.nPast-first.nPast) < 256
		}
		r := promptRun{lo: first.id, hi: first.id, k: k}
		for n := 1; (n+1)*k <= room; n++ {
			if joins(r.hi + 1) {
				r.hi++
			} else if joins(r.lo - 1) {
				r.lo--
			} else {
				break
			}
		}
		runs = append(runs, r)
		room -= int(r.hi-r.lo+1) * k
	}
	slices.SortFunc(runs, func(a, b promptRun) int { return int(b.lo - a.lo) })
	for _, r := range runs {
		for id := r.lo; id <= r.hi; id++ {
			s.addChunk(s.slots[id], r.k)
		}
	}
	s.runs = runs
}

// addChunk appends the next k tokens of sl's prompt to the batch; the
// prompt's last token asks for logits.
func (s *Scheduler) addChunk(sl *slot, k int) {
	for i := range k {
		p := sl.nPast + i
		last := p == len(sl.prompt)-1
		s.batch = append(s.batch, engine.BatchEntry{Token: sl.prompt[p], Seq: sl.id, Pos: int32(p), Logits: last})
		s.owners = append(s.owners, sl)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
