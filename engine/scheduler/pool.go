package scheduler

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// minParallelLogits is how many logits a step's rows must hold together
// before they are sampled on several goroutines: waking a worker costs a
// few microseconds, a row of 128k logits tens of them (two such rows are
// worth it, a step of the test fake's 260-token rows is not).
var minParallelLogits = 1 << 18

// rowPool samples the rows of a step on a fixed set of goroutines: the loop
// and workers-1 helpers, which Run starts and stops. Rows are handed out one
// at a time from a shared counter, so a slow row (logprobs, a grammar mask)
// does not hold up the others; which goroutine takes a row does not change
// its result, since a row touches only its own request's state.
type rowPool struct {
	workers int // goroutines in all, the loop included
	minRows int // fewer rows than this stay on the loop

	wake    chan struct{}
	stopped sync.WaitGroup // the helpers, for stop
	busy    sync.WaitGroup // helpers working on the current rows

	// The current step, set by do before it wakes the helpers.
	rows []rowJob
	fn   func(*rowJob)
	next atomic.Int64
}

func newRowPool(workers, minRows int) *rowPool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &rowPool{workers: workers, minRows: max(2, minRows)}
}

// start starts the helpers. Called by Run.
func (p *rowPool) start() {
	if p.workers < 2 {
		return
	}
	p.wake = make(chan struct{})
	for range p.workers - 1 {
		p.stopped.Go(func() {
			for range p.wake {
				p.drain()
				p.busy.Done()
			}
		})
	}
}

// stop ends the helpers and waits for them. Called when Run returns.
func (p *rowPool) stop() {
	if p.wake != nil {
		close(p.wake)
		p.stopped.Wait()
		p.wake = nil
	}
}

// do calls fn on every row and returns when all are done.
func (p *rowPool) do(rows []rowJob, fn func(*rowJob)) {
	if p.wake == nil || len(rows) < p.minRows {
		for i := range rows {
			fn(&rows[i])
		}
		return
	}
	p.rows, p.fn = rows, fn
	p.next.Store(0)
	helpers := min(p.workers-1, len(rows)-1)
	p.busy.Add(helpers)
	for range helpers {
		p.wake <- struct{}{}
	}
	p.drain()
	p.busy.Wait()
	p.rows, p.fn = nil, nil
}

func (p *rowPool) drain() {
	for {
		i := int(p.next.Add(1)) - 1
		if i >= len(p.rows) {
			return
		}
		p.fn(&p.rows[i])
	}
}
