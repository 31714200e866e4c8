package scheduler_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
)

// Helpers of the package's tests: a running scheduler over the fake, what
// the fake generates, reading a stream, and a clock that only decodes move.

// harness runs a scheduler over a fake and checks on cleanup that the loop
// stopped and no slot stayed busy (leaked goroutines: goleak in TestMain).
func harness(t *testing.T, fake *enginetest.Fake, o scheduler.Options) *scheduler.Scheduler {
	t.Helper()
	return harnessWith(t, fake, o, nil)
}

// harnessWith is harness with setup called on the scheduler before Run.
func harnessWith(t *testing.T, fake *enginetest.Fake, o scheduler.Options, setup func(*scheduler.Scheduler)) *scheduler.Scheduler {
	t.Helper()
	s := scheduler.New(fake, o)
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	t.Cleanup(func() {
		st := s.Stats()
		cancel()
		<-s.Done()
		if st.Running != 0 || st.Waiting != 0 {
			t.Errorf("at the end: %d running, %d waiting", st.Running, st.Waiting)
		}
	})
	return s
}

// expected is what the fake generates greedily after prompt.
func expected(prompt []engine.Token, n int) string {
	h := append([]engine.Token(nil), prompt...)
	var b strings.Builder
	for range n {
		tok := enginetest.DefaultNext(h)
		h = append(h, tok)
		b.WriteByte(byte(tok - enginetest.ByteBase))
	}
	return b.String()
}

func prompt(s string) []engine.Token {
	toks, _ := enginetest.New(1, 8, 8).Tokenize(s, true, false)
	return toks
}

type result struct {
	text    string
	thought string
	final   scheduler.Event
	events  int
}

func collect(t *testing.T, ctx context.Context, st *scheduler.Stream) result {
	t.Helper()
	var r result
	for {
		ev, err := st.Next(ctx)
		if err == io.EOF {
			return r
		}
		if err != nil {
			r.final.Err = err
			return r
		}
		r.events++
		for _, f := range ev.Fragments {
			if f.Thought {
				r.thought += f.Text
			} else {
				r.text += f.Text
			}
		}
		if ev.Done {
			r.final = ev
		}
	}
}

func run(t *testing.T, s *scheduler.Scheduler, r scheduler.Request) result {
	t.Helper()
	st, err := s.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, context.Background(), st)
}

func mustSubmit(t *testing.T, s *scheduler.Scheduler, r scheduler.Request) *scheduler.Stream {
	t.Helper()
	st, err := s.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// costClock is a scheduler clock (scheduler.SetClock) that only the fake's
// decodes move, each by what the test says a pass of its tokens costs: the
// scheduler measures exactly those costs, whatever the machine's load.
type costClock struct {
	ns   atomic.Int64
	cost func(tokens int) time.Duration
}

func (c *costClock) now() time.Time { return time.Unix(0, c.ns.Load()) }

// useCostClock makes s measure fake's decodes by cost. Call it before Run
// (harness runs s: pass it as harness's setup).
func useCostClock(s *scheduler.Scheduler, fake *enginetest.Fake, cost func(tokens int) time.Duration) {
	c := &costClock{cost: cost}
	scheduler.SetClock(s, c.now)
	fake.FailDecode = func(batch []engine.BatchEntry) error {
		c.ns.Add(int64(c.cost(len(batch))))
		return nil
	}
}
