package scheduler

import "time"

// The step cost model: what a pass costs, learned from the passes run, and
// the prompt budget of a step that follows from it.

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// promptLimit is how many prompt tokens may follow a decode-only step of
// ndec streams so that the two last at most Options.StepLatency times the
// decode-only step, from the costs measured so far; -1 means no limit (no
// streams to protect, or nothing learned yet). On a CPU a step's time grows
// with every token in it, and a prompt token costs more the deeper it sits,
// so a fixed token budget either stalls the running streams or starves the
// prompt; a time budget does neither.
//
// A StepLatency of at most 1 leaves no time for prompt tokens: 0 (the
// caller still adds its floor of minPrefill). A limit beyond what an int
// holds (a huge StepLatency) is capped at maxPromptLimit, not left to the
// float conversion, which differs by platform (negative on amd64: no limit).
func (s *Scheduler) promptLimit(ndec int) int {
	if ndec == 0 || s.opts.StepLatency <= 0 || s.decodeCost <= 0 || s.promptCost <= 0 {
		return -1
	}
	lim := (s.opts.StepLatency - 1) * float64(s.decodeCost) / float64(s.promptCost)
	switch {
	case !(lim > 0): // NaN too
		return 0
	case lim >= maxPromptLimit:
		return maxPromptLimit
	}
	return int(lim)
}

// maxPromptLimit caps promptLimit: more than any batch holds.
const maxPromptLimit = 1 << 30

// learnCost updates the decode-only step time and the marginal time of a
// prompt token (moving averages) from a step of ndec decode and npr prompt
// tokens that took d.
func (s *Scheduler) learnCost(d time.Duration, ndec, npr int) {
	const w = 0.25 // weight of the newest step
	ewma := func(old, x time.Duration) time.Duration {
		if old <= 0 {
			return x
		}
		return time.Duration(w*float64(x) + (1-w)*float64(old))
	}
	switch {
	case npr == 0 && ndec > 0:
		s.decodeCost = ewma(s.decodeCost, d)
		s.decodes[s.decodeAt%len(s.decodes)] = stepCost{n: ndec, d: d}
		s.decodeAt++
	case npr > 0 && ndec == 0:
		s.promptCost = ewma(s.promptCost, d/time.Duration(npr))
		s.passes[s.passAt%len(s.passes)] = stepCost{n: npr, d: d}
		s.passAt++
		s.sizeBudget()
	case npr > 0 && s.decodeCost > 0:
		if extra := d - s.decodeCost; extra > 0 {
			s.promptCost = ewma(s.promptCost, extra/time.Duration(npr))
		}
	}
}

// stepCost is the time d of a pass of n tokens.
type stepCost struct {
	n int
	d time.Duration
}

// Sizing of a step from the cost of a pass.
const (
	// budgetRatio: an automatic step budget carries prompt tokens until
	// they cost this many times a pass's fixed part.
	budgetRatio = 2
	// fillRatio: with streams to protect, a prompt pass whose fixed part
	// alone breaks Options.StepLatency takes prompt tokens until they cost
	// this many times that fixed part.
	fillRatio = 1
)

// sizeBudget fits the cost of a pass as a fixed part a and a part b per
// token, a + b*n, through the recent decode-only steps and prompt-only
// passes, and sizes from it the prompt tokens that a pass takes cheaply:
// fill = fillRatio*a/b, and the automatic step budget budgetRatio*a/b
// between DefaultStepTokens and NBatch, growing at most twice per pass so
// that each larger pass checks the fit. On a CPU a prompt token costs about
// what a whole decode step of one sequence does (a/b about 1), so the
// budget stays at DefaultStepTokens; on a GPU a pass of hundreds of tokens
// costs little more than one of a few (a/b in the hundreds).
func (s *Scheduler) sizeBudget() {
	// A step's time only ever grows by noise (the loop's thread waits for
	// a core, a timer oversleeps): the quickest recent decode step is the
	// best estimate of what a pass of its size costs, and an inflated one
	// would pass for a large fixed part.
	// For the same reason the cost per token is the least that the recent
	// prompt passes, larger than that decode step, imply.
	var dec stepCost
	for _, c := range s.decodes {
		if c.n > 0 && (dec.n == 0 || c.d < dec.d) {
			dec = c
		}
	}
	b, ok := 0.0, false
	for _, c := range s.passes {
		if dec.n == 0 || c.n < dec.n+minPrefill {
			continue // too close to tell a from b
		}
		if bi := float64(c.d-dec.d) / float64(c.n-dec.n); !ok || bi < b {
			b, ok = bi, true
		}
	}
	if !ok {
		return
	}
	a := float64(dec.d) - b*float64(dec.n)
	var cheap float64 // tokens that cost a pass's fixed part
	switch {
	case a <= 0:
		cheap = 0
	case b <= 0:
		cheap = float64(s.info.NBatch)
	default:
		cheap = min(a/b, float64(s.info.NBatch))
	}
	s.fill = int(fillRatio * cheap)
	if !s.auto {
		return
	}
	n := int(min(budgetRatio*cheap, float64(s.info.NBatch)))
	n = max(min(n, 2*s.budget, s.info.NBatch), min(DefaultStepTokens, s.info.NBatch))
	s.budget = n
	s.st.budget.Store(int64(n))
}
