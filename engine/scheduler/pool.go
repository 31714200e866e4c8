package scheduler

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// minParallelLogits is how many logits a step's rows must hold together
// before they are sampled on several goroutines: waking a helper costs a
// few microseconds, a row of 128k logits tens of them (two such rows are
// worth it, a step of the test fake's 260-token rows is not).
var minParallelLogits = 1 << 18

// rowPool samples the rows of a step on the loop and workers-1 helpers,
// which Run starts and stops. Rows are handed out one at a time from a
// shared counter, so a slow row (logprobs, a grammar mask) does not hold up
// the others, and the loop waits for the rows, not for the helpers: a
// helper that the OS has not scheduled yet finds nothing left when it runs,
// and the loop has done its share. Which goroutine takes a row does not
// change its result, since a row touches only its own request's state.
type rowPool struct {
	workers int // goroutines in all, the loop included
	minRows int // fewer rows than this stay on the loop

	wake    chan *rowTask
	stopped sync.WaitGroup
}

// rowTask is the rows of one step.
type rowTask struct {
	rows []rowJob
	fn   func(*rowJob)
	next atomic.Int64 // the next row to take
	left atomic.Int64 // rows not finished
	done chan struct{}
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
	p.wake = make(chan *rowTask, p.workers-1)
	for range p.workers - 1 {
		p.stopped.Go(func() {
			for t := range p.wake {
				t.drain()
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
	t := &rowTask{rows: rows, fn: fn, done: make(chan struct{})}
	t.left.Store(int64(len(rows)))
	for range min(p.workers-1, len(rows)-1) {
		select {
		case p.wake <- t:
		default: // helpers still busy with an old step's leftovers
		}
	}
	t.drain()
	<-t.done
}

// drain takes rows until none is left; whoever finishes the last row
// closes done.
func (t *rowTask) drain() {
	for {
		i := int(t.next.Add(1)) - 1
		if i >= len(t.rows) {
			return
		}
		t.fn(&t.rows[i])
		if t.left.Add(-1) == 0 {
			close(t.done)
		}
	}
}
