package scheduler

import (
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/sessions"
)

// SetMinParallelLogits lowers the size of a step from which rows are
// sampled on several goroutines, so that tests with the small fake take the
// parallel path. It returns the old value.
func SetMinParallelLogits(n int) int {
	old := minParallelLogits
	minParallelLogits = n
	return old
}

// SetStateLoader replaces how s reads a session's saved state (the store's
// Load), so that a test can hold a read. Call it before Run.
func SetStateLoader(s *Scheduler, load func(sessions.Key, string, []engine.Token) (sessions.Entry, bool)) {
	s.loadState = load
}

// SetClock replaces the clock that the scheduler measures its steps and
// requests by (Scheduler.now), so that a test decides what each decode
// costs. Call it before Run.
func SetClock(s *Scheduler, now func() time.Time) {
	s.now = now
}
