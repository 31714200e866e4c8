package scheduler

// Unit tests of the step cost model (cost.go): costs are fed to the learner
// as the loop would after each decode, and the tests check its arithmetic
// and decisions. No test here measures time.

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine/enginetest"
)

// The automatic step budget follows the fitted cost of a pass: a pass whose
// cost is flat in its tokens (a GPU) gets big chunks, one whose cost grows
// with every token (a CPU) keeps DefaultStepTokens. Costs are fed to the
// learner directly, as the loop would after each decode.
func TestSizeBudgetFromPassCost(t *testing.T) {
	cases := []struct {
		name       string
		fixed, per time.Duration // the cost of a pass: fixed + per*tokens
		auto       bool
		want       func(budget, fill int) bool
	}{
		// An H200-like 1B model: 2.5 ms a pass, 10 µs a token.
		{"flat", 2500 * time.Microsecond, 10 * time.Microsecond, true, func(b, f int) bool { return b >= 400 && f >= 200 }},
		// A 2-core CPU: 35 ms a pass, 23 ms a token.
		{"linear", 35 * time.Millisecond, 23 * time.Millisecond, true, func(b, f int) bool { return b == DefaultStepTokens && f <= 2 }},
		// Fixed StepTokens: the budget stays, only fill is learned.
		{"flat-fixed", 2500 * time.Microsecond, 10 * time.Microsecond, false, func(b, f int) bool { return b == 32 && f >= 200 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{}
			if !c.auto {
				o.StepTokens = 32
			}
			s := New(enginetest.New(64, 1024, 512), o)
			cost := func(n int) time.Duration { return c.fixed + time.Duration(n)*c.per }
			var sizes []int
			for range 20 {
				s.learnCost(cost(16), 16, 0) // 16 streams decode
				n := s.budget
				s.learnCost(cost(n), 0, n) // a prompt pass of the whole budget
				sizes = append(sizes, s.budget)
			}
			if !c.want(s.budget, s.fill) {
				t.Fatalf("budget %d, fill %d; budgets pass by pass %v", s.budget, s.fill, sizes)
			}
			for i := 1; i < len(sizes); i++ {
				if sizes[i] > 2*sizes[i-1] {
					t.Fatalf("the budget more than doubled in one pass: %v", sizes)
				}
			}
			if st := s.Stats(); st.StepLimit != s.budget {
				t.Fatalf("Stats.StepLimit %d, budget %d", st.StepLimit, s.budget)
			}
		})
	}
}

// Decode-only steps and prompt passes of about the same size tell nothing
// about the fixed part: the budget stays.
func TestSizeBudgetNeedsTwoPoints(t *testing.T) {
	s := New(enginetest.New(64, 1024, 512), Options{})
	for range 10 {
		s.learnCost(2*time.Millisecond, 64, 0)
		s.learnCost(2*time.Millisecond, 0, 64)
	}
	if s.budget != DefaultStepTokens || s.fill != 0 {
		t.Fatalf("budget %d, fill %d from one point", s.budget, s.fill)
	}
}

// newCostModel is a scheduler that is never run: the cost model's state and
// the options it reads. nbatch is the backend's batch size.
func newCostModel(nbatch int, o Options) *Scheduler {
	return New(enginetest.New(16, 1024, nbatch), o)
}

// promptLimit is StepLatency-1 decode-only steps' worth of prompt tokens,
// rounded down; nothing to protect or nothing learned is no limit (-1);
// a bound of at most one decode step leaves 0; huge values are capped.
func TestPromptLimit(t *testing.T) {
	cases := []struct {
		name           string
		latency        float64
		ndec           int
		decode, prompt time.Duration
		want           int
	}{
		{"default bound", DefaultStepLatency, 4, 40 * time.Millisecond, time.Millisecond, 30},
		{"3x", 3, 1, 10 * time.Millisecond, 2 * time.Millisecond, 10},
		{"rounds down", DefaultStepLatency, 1, 10 * time.Millisecond, 3 * time.Millisecond, 2},
		{"a prompt token dearer than the slack", DefaultStepLatency, 1, 10 * time.Millisecond, 20 * time.Millisecond, 0},
		{"no streams", DefaultStepLatency, 0, 40 * time.Millisecond, time.Millisecond, -1},
		{"decode cost unknown", DefaultStepLatency, 4, 0, time.Millisecond, -1},
		{"prompt cost unknown", DefaultStepLatency, 4, 40 * time.Millisecond, 0, -1},
		{"bound off", -1, 4, 40 * time.Millisecond, time.Millisecond, -1},
		// A bound of one decode step or less leaves no time for prompt
		// tokens: 0, not a negative number that would read as no limit.
		{"bound of one step", 1, 4, 40 * time.Millisecond, time.Millisecond, 0},
		{"bound under one step", 0.5, 4, 40 * time.Millisecond, time.Millisecond, 0},
		{"NaN bound", math.NaN(), 4, 40 * time.Millisecond, time.Millisecond, 0},
		{"huge bound", 1e300, 4, 40 * time.Millisecond, time.Millisecond, maxPromptLimit},
		{"huge ratio", DefaultStepLatency, 4, time.Hour, time.Nanosecond, maxPromptLimit},
		{"infinite bound", math.Inf(1), 4, 40 * time.Millisecond, time.Millisecond, maxPromptLimit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newCostModel(512, Options{})
			s.opts.StepLatency = c.latency
			s.decodeCost, s.promptCost = c.decode, c.prompt
			if got := s.promptLimit(c.ndec); got != c.want {
				t.Fatalf("promptLimit(%d) with bound %v, decode %v, prompt token %v: %d, want %d",
					c.ndec, c.latency, c.decode, c.prompt, got, c.want)
			}
		})
	}
}

// New's zero StepLatency is the default bound, which promptLimit applies.
func TestPromptLimitDefaultBound(t *testing.T) {
	s := newCostModel(512, Options{})
	s.decodeCost, s.promptCost = 40*time.Millisecond, time.Millisecond
	if got, want := s.promptLimit(1), int((DefaultStepLatency-1)*40); got != want {
		t.Fatalf("promptLimit %d, want %d", got, want)
	}
}

// learnCost: the first measurement is taken as it is, later ones move the
// average by a quarter; a decode-only step teaches the decode cost, a
// prompt-only pass the cost per prompt token, a mixed step what its prompt
// tokens added to the decode cost.
func TestLearnCost(t *testing.T) {
	ms := time.Millisecond
	s := newCostModel(512, Options{})

	s.learnCost(40*ms, 4, 0)
	if s.decodeCost != 40*ms || s.promptCost != 0 {
		t.Fatalf("first decode step: decode %v, prompt %v", s.decodeCost, s.promptCost)
	}
	s.learnCost(80*ms, 4, 0) // 0.25*80 + 0.75*40
	if s.decodeCost != 50*ms {
		t.Fatalf("second decode step: decode %v, want 50ms", s.decodeCost)
	}

	s.learnCost(64*ms, 0, 64) // 1 ms a token
	if s.promptCost != ms {
		t.Fatalf("first prompt pass: %v a token, want 1ms", s.promptCost)
	}
	s.learnCost(64*ms, 0, 32) // 2 ms a token: 0.25*2 + 0.75*1
	if s.promptCost != 1250*time.Microsecond {
		t.Fatalf("second prompt pass: %v a token, want 1.25ms", s.promptCost)
	}

	// Mixed: 10 prompt tokens added 20 ms to the 50 ms decode step, 2 ms
	// each: 0.25*2 + 0.75*1.25.
	s.learnCost(70*ms, 4, 10)
	if s.promptCost != 1437500*time.Nanosecond || s.decodeCost != 50*ms {
		t.Fatalf("mixed step: prompt %v a token (want 1.4375ms), decode %v (want 50ms)", s.promptCost, s.decodeCost)
	}
	// Mixed and no dearer than a decode step alone (noise): nothing learned.
	s.learnCost(45*ms, 4, 10)
	if s.promptCost != 1437500*time.Nanosecond || s.decodeCost != 50*ms {
		t.Fatalf("mixed step under the decode cost: prompt %v, decode %v", s.promptCost, s.decodeCost)
	}
	// A step of no tokens teaches nothing.
	s.learnCost(time.Hour, 0, 0)
	if s.promptCost != 1437500*time.Nanosecond || s.decodeCost != 50*ms {
		t.Fatalf("empty step: prompt %v, decode %v", s.promptCost, s.decodeCost)
	}
	if s.decodeAt != 2 || s.passAt != 2 {
		t.Fatalf("rings: %d decode steps, %d prompt passes recorded; want 2 and 2", s.decodeAt, s.passAt)
	}
}

// A mixed step before any decode-only step cannot tell its prompt tokens'
// share: nothing is learned, and promptLimit stays off.
func TestLearnCostMixedFirst(t *testing.T) {
	s := newCostModel(512, Options{})
	s.learnCost(70*time.Millisecond, 4, 10)
	if s.decodeCost != 0 || s.promptCost != 0 || s.promptLimit(4) != -1 {
		t.Fatalf("decode %v, prompt %v, limit %d", s.decodeCost, s.promptCost, s.promptLimit(4))
	}
}

// Steps measured at zero time learn zero costs, which read as unknown: no
// limit, and the budget stays where it was.
func TestLearnCostZeroDurations(t *testing.T) {
	s := newCostModel(512, Options{})
	for range 20 {
		s.learnCost(0, 16, 0)
		s.learnCost(0, 0, s.budget)
		s.learnCost(0, 16, 8)
	}
	if s.decodeCost != 0 || s.promptCost != 0 || s.promptLimit(16) != -1 {
		t.Fatalf("decode %v, prompt %v, limit %d", s.decodeCost, s.promptCost, s.promptLimit(16))
	}
	if s.budget != DefaultStepTokens || s.fill != 0 {
		t.Fatalf("budget %d, fill %d", s.budget, s.fill)
	}
}

// passes feeds s rounds of a decode-only step of 16 streams and a prompt
// pass of the whole budget, each costing fixed + per*tokens, and returns
// the budget after each round.
func passes(s *Scheduler, rounds int, fixed, per time.Duration) []int {
	cost := func(n int) time.Duration { return fixed + time.Duration(n)*per }
	var sizes []int
	for range rounds {
		s.learnCost(cost(16), 16, 0)
		s.learnCost(cost(s.budget), 0, s.budget)
		sizes = append(sizes, s.budget)
	}
	return sizes
}

// The fit, worked by hand: a pass of 2 ms + 20 µs a token makes 100 tokens
// cost its fixed part, so fill is 100 and the budget aims at 200, reached
// from 64 by doubling at most: 128, then 200.
func TestSizeBudgetArithmetic(t *testing.T) {
	s := newCostModel(512, Options{})
	sizes := passes(s, 3, 2*time.Millisecond, 20*time.Microsecond)
	if want := []int{128, 200, 200}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("budgets %v, want %v", sizes, want)
	}
	if s.fill != 100 {
		t.Fatalf("fill %d, want 100", s.fill)
	}
}

// What a pass takes is capped by the backend's batch: fill at NBatch, and
// the budget doubles up to it.
func TestSizeBudgetCappedByNBatch(t *testing.T) {
	s := newCostModel(512, Options{})
	sizes := passes(s, 5, 10*time.Millisecond, time.Microsecond) // 10,000 tokens cost the fixed part
	if want := []int{128, 256, 512, 512, 512}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Fatalf("budgets %v, want %v", sizes, want)
	}
	if s.fill != 512 {
		t.Fatalf("fill %d, want NBatch 512", s.fill)
	}
}

// A pass that costs no more for more tokens (b = 0), or less (b < 0, noise),
// is all fixed part: fill is NBatch. One whose cost is all per token (a <= 0)
// has none: fill 0, and the budget stays at DefaultStepTokens.
func TestSizeBudgetDegenerateFits(t *testing.T) {
	for _, c := range []struct {
		name            string
		fixed, per      time.Duration
		wantFill, wantB int
	}{
		{"flat", 5 * time.Millisecond, 0, 512, 512},
		{"all per token", 0, time.Millisecond, 0, DefaultStepTokens},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newCostModel(512, Options{})
			passes(s, 10, c.fixed, c.per)
			if s.fill != c.wantFill || s.budget != c.wantB {
				t.Fatalf("fill %d, budget %d; want %d, %d", s.fill, s.budget, c.wantFill, c.wantB)
			}
		})
	}
	t.Run("larger pass cheaper", func(t *testing.T) {
		s := newCostModel(512, Options{})
		for range 10 {
			s.learnCost(10*time.Millisecond, 16, 0)
			s.learnCost(9*time.Millisecond, 0, s.budget)
		}
		if s.fill != 512 || s.budget != 512 {
			t.Fatalf("fill %d, budget %d; want 512, 512", s.fill, s.budget)
		}
	})
}

// The fit takes the quickest recent decode step (an inflated one would pass
// for a large fixed part) and the least cost per token that the passes
// imply.
func TestSizeBudgetIgnoresInflatedSteps(t *testing.T) {
	ref := newCostModel(512, Options{})
	passes(ref, 3, 2*time.Millisecond, 20*time.Microsecond)

	s := newCostModel(512, Options{})
	passes(s, 3, 2*time.Millisecond, 20*time.Microsecond)
	s.learnCost(50*time.Millisecond, 16, 0)        // a decode step that waited for a core
	s.learnCost(100*time.Millisecond, 0, s.budget) // a pass that did
	if s.fill != ref.fill || s.budget != ref.budget {
		t.Fatalf("after inflated steps: fill %d, budget %d; without them %d, %d", s.fill, s.budget, ref.fill, ref.budget)
	}
}

// A backend whose batch is smaller than DefaultStepTokens: New caps the
// budget at NBatch, and the fit never sizes past it.
func TestSizeBudgetSmallBatch(t *testing.T) {
	for _, per := range []time.Duration{0, time.Microsecond, time.Millisecond} {
		s := newCostModel(32, Options{})
		if s.budget != 32 {
			t.Fatalf("budget %d with NBatch 32", s.budget)
		}
		passes(s, 5, 2*time.Millisecond, per)
		if s.budget != 32 || s.fill > 32 {
			t.Fatalf("per token %v: budget %d, fill %d with NBatch 32", per, s.budget, s.fill)
		}
	}
}

// Over a grid of costs from none to huge, the budget stays between
// DefaultStepTokens and NBatch, never more than doubles in a pass, and fill
// stays between 0 and NBatch.
func TestSizeBudgetBounds(t *testing.T) {
	durs := []time.Duration{0, time.Nanosecond, time.Microsecond, time.Millisecond, time.Second, time.Hour, 1 << 50}
	for _, fixed := range durs {
		for _, per := range durs {
			s := newCostModel(512, Options{})
			sizes := passes(s, 12, fixed, per)
			prev := DefaultStepTokens
			for _, b := range sizes {
				if b < DefaultStepTokens || b > 512 || b > 2*prev {
					t.Fatalf("fixed %v, per token %v: budgets %v", fixed, per, sizes)
				}
				prev = b
			}
			if s.fill < 0 || s.fill > 512 {
				t.Fatalf("fixed %v, per token %v: fill %d", fixed, per, s.fill)
			}
		}
	}
}
