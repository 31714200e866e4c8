package scheduler

import (
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
