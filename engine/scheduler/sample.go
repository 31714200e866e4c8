package scheduler

import (
	"slices"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/sampler"
)

// Sampling the rows of a decoded step, applying them to their slots and
// waking the streams' readers.
// rowJob is one logits row to sample after a decode. sampleRow fills in
// the result, possibly on a worker goroutine; applyRow applies it on the
// loop, in batch order.

type rowJob struct {
	sl  *slot
	row []float32
	// Results.
	gen bool         // a token was generated (it counts, even if it ends the request)
	ev  Event        // text and logprobs to deliver before the request ends
	end FinishReason // "" when the request goes on
	err error
	// wake: ev went to the stream without waking its reader (deferWake).
	wake bool
}

// sampleRow picks the next token of a sequence and turns it into text. It
// touches only the state of w.sl's request (sampler, grammar, detokenizer,
// stop matcher, splitter) and the backend's concurrency-safe Piece and
// IsEOG, so different rows may run on different goroutines; whatever is
// shared (counters, the slot table, ending the request) is left to applyRow.
// A request that goes on gets its event here, off the loop.
func (s *Scheduler) sampleRow(w *rowJob) {
	sl, row := w.sl, w.row
	r := &sl.job.req
	// Log-probabilities are of the model's own row: keep a copy only when
	// sampling will change it (a vocabulary's worth of floats).
	raw := row
	if r.Logprobs && (r.Grammar != nil || changesRow(r.Sampling)) {
		sl.rowCopy = append(sl.rowCopy[:0], row...)
		raw = sl.rowCopy
	}
	var tok engine.Token
	if g := r.Grammar; g == nil || !sl.constrained {
		tok = engine.Token(sl.smp.Sample(row))
		if g != nil && slices.Contains(r.GrammarTriggers, tok) {
			// A lazy grammar starts at its trigger, which it accepts.
			if err := g.Accept(tok); err != nil {
				w.end, w.err = FinishError, err
				return
			}
			sl.constrained = true
		}
	} else {
		// Draw first; when the grammar refuses the draw, constrain the
		// most likely tokens, and the whole row only if none of them fits.
		sl.smp.Prepare(row)
		tok = engine.Token(sl.smp.Pick(row))
		if !g.Allows(tok) {
			if !sl.smp.ConstrainTop(row, grammarTopK, g.AllowsEach) {
				g.Mask(row)
			}
			tok = engine.Token(sl.smp.Pick(row))
			if !g.Allows(tok) {
				w.end, w.err = FinishError, ErrGrammarDeadEnd
				return
			}
		}
		if !s.be.IsEOG(tok) {
			if err := g.Accept(tok); err != nil {
				w.end, w.err = FinishError, err
				return
			}
		}
	}
	sl.smp.Accept(tok)
	ev := &w.ev
	if r.Logprobs {
		l, top := sampler.Logprobs(raw, tok, r.TopLogprobs)
		lp := TokenLogprob{Token: tok, Text: s.be.Piece(tok), Logprob: l}
		for _, a := range top {
			lp.Top = append(lp.Top, Alternative{Token: a.Token, Text: s.be.Piece(a.Token), Logprob: a.Logprob})
		}
		ev.Logprobs = []TokenLogprob{lp}
	}
	sl.ngen++
	w.gen = true

	if s.be.IsEOG(tok) {
		s.emitText(sl, ev, sl.detok.Flush(), true)
		w.end = FinishStop
		return
	}
	piece := s.be.Piece(tok)
	if s.be.IsControl(tok) && !slices.Contains(r.Markers, tok) {
		piece = nil // vocabulary markup, not text
	}
	if s.emitText(sl, ev, sl.detok.Add(piece), false) {
		w.end = FinishStop
		return
	}
	sl.pending, sl.hasTok = tok, true
	// Room: the pending token needs a cell, and the next one another.
	if (r.MaxTokens > 0 && sl.ngen >= r.MaxTokens) || len(sl.cached)+1 >= s.info.NCtxSeq {
		s.emitText(sl, ev, sl.detok.Flush(), true)
		w.end = FinishLength
		return
	}
	if len(ev.Fragments) > 0 || len(ev.Logprobs) > 0 {
		if s.deferWake {
			sl.job.stream.merge(*ev)
			w.wake = true
		} else {
			sl.job.stream.push(*ev)
		}
	}
}

// wakeReaders wakes the readers of the events that deferWake held back.
func (s *Scheduler) wakeReaders() {
	for i, st := range s.woken {
		st.wake()
		s.woken[i] = nil
	}
	s.woken = s.woken[:0]
}

// changesRow reports whether a sampler with p modifies the rows it samples:
// the sampler adds the logit bias and applies the penalties in place, and
// does nothing else to them (see sampler.Sampler.Sample).
func changesRow(p sampler.Params) bool {
	return len(p.LogitBias) > 0 || (p.RepeatPenalty > 0 && p.RepeatPenalty != 1) ||
		p.PresencePenalty != 0 || p.FrequencyPenalty != 0
}

// applyRow records a sampled row on the loop: counters, timings, and the
// end of the request when it ended.
func (s *Scheduler) applyRow(w *rowJob, now time.Time) {
	sl := w.sl
	if w.wake {
		s.woken = append(s.woken, sl.job.stream)
	}
	if w.gen {
		s.st.generated.Add(1)
		if sl.firstTok.IsZero() {
			sl.firstTok = now
		} else {
			sl.gaps = append(sl.gaps, now.Sub(sl.lastTok))
		}
		sl.lastTok = now
	}
	switch w.end {
	case "":
	case FinishError:
		s.finish(sl, w.end, w.err)
	default:
		sl.job.stream.push(w.ev)
		s.finish(sl, w.end, nil)
	}
}

// emitText runs text through the splitter and the stop matcher into ev. With
// final, everything held back is released. It reports a stop-string match.
func (s *Scheduler) emitText(sl *slot, ev *Event, text string, final bool) (stopped bool) {
	var frags []Fragment
	if sp := sl.job.req.Splitter; sp != nil {
		if text != "" {
			frags = sp.Push(text)
		}
		if final {
			frags = append(frags, sp.Flush()...)
		}
	} else if text != "" {
		frags = []Fragment{{Text: text}}
	}
	for _, f := range frags {
		if f.Thought {
			ev.Fragments = append(ev.Fragments, f)
			continue
		}
		out, stop := sl.stop.Push(f.Text)
		if out != "" {
			ev.Fragments = append(ev.Fragments, Fragment{Text: out})
		}
		if stop {
			return true
		}
	}
	if final {
		if out := sl.stop.Flush(); out != "" {
			ev.Fragments = append(ev.Fragments, Fragment{Text: out})
		}
	}
	return false
}
