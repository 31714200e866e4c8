package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/sampler"
)

// gpuVocab is the width of a Llama 3 logits row.
const gpuVocab = 128256

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// BenchmarkLoopStep is the scheduler loop's own time per decode step
// (everything outside Decode: fetching rows, sampling, detokenizing, stop
// matching, events) at the shape of a GPU model: rows of 128,256 logits,
// every sequence generating. The fake's Decode takes no time, so the
// metric loop-ms/step is wall time minus the time inside Decode, per step.
// workers=1 samples on the loop alone, workers=auto on GOMAXPROCS
// goroutines (the fake stands for a GPU model). Readers drain every stream
// as an SSE writer would. cpu-ms/step is the
// CPU time of the whole process per step (loop, workers, readers and the
// fake's Decode): on a shared machine it says what the work costs when wall
// time says more about the neighbours.
//
//	go test -run '^$' -bench LoopStep -cpu 2 -count 5 ./engine/scheduler/
func BenchmarkLoopStep(b *testing.B) {
	settings := []struct {
		name string
		p    sampler.Params
	}{
		{"greedy", sampler.Params{}},
		{"temp0.8_top_p0.9", sampler.Params{Temperature: 0.8, TopP: 0.9}},
	}
	for _, set := range settings {
		for _, seqs := range []int{64, 256} {
			for _, workers := range []int{1, 0} {
				name := fmt.Sprintf("%s/seqs=%d/workers=%d", set.name, seqs, workers)
				if workers == 0 {
					name = fmt.Sprintf("%s/seqs=%d/workers=auto", set.name, seqs)
				}
				b.Run(name, func(b *testing.B) {
					benchLoop(b, seqs, workers, set.p)
				})
			}
		}
	}
}

func benchLoop(b *testing.B, seqs, workers int, p sampler.Params) {
	fake := enginetest.NewWide(seqs, 1<<20, max(512, seqs), gpuVocab)
	var (
		steps  atomic.Int64
		target atomic.Int64
		reach  = make(chan struct{}, 1)
	)
	target.Store(-1)
	onStep := func(time.Duration, int) {
		if n := steps.Add(1); n == target.Load() {
			reach <- struct{}{}
		}
	}
	s := scheduler.New(fake, scheduler.Options{OnStep: onStep, Logger: quiet, MaxQueue: seqs, SampleWorkers: workers})
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	var readers, started sync.WaitGroup
	for i := range seqs {
		r := p
		r.Seed, r.HasSeed = uint64(i), true
		st, err := s.Submit(ctx, scheduler.Request{Prompt: prompt(fmt.Sprintf("stream %d", i)), Sampling: r})
		if err != nil {
			b.Fatal(err)
		}
		started.Add(1)
		readers.Go(func() {
			first := true
			for {
				ev, err := st.Next(context.Background())
				if err != nil {
					return
				}
				if first && len(ev.Fragments) > 0 {
					first = false
					started.Done()
				}
			}
		})
	}
	started.Wait() // every stream is generating
	d0, n0 := fake.Counters().DecodeTime, steps.Load()
	b.ResetTimer()
	t0, c0 := time.Now(), cpuTime()
	target.Store(n0 + int64(b.N))
	if steps.Load() < n0+int64(b.N) {
		<-reach
	}
	wall, cpu := time.Since(t0), cpuTime()-c0
	b.StopTimer()
	c := fake.Counters()
	cancel()
	<-s.Done()
	readers.Wait()
	n := float64(steps.Load() - n0)
	dec := c.DecodeTime - d0
	b.ReportMetric(float64((wall-dec).Microseconds())/1000/n, "loop-ms/step")
	b.ReportMetric(float64(dec.Microseconds())/1000/n, "decode-ms/step")
	b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/step")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPrefillBurst is the time to first token of 64 simultaneous
// 256-token prompts at an idle scheduler (item 4 of issue #10), on a fake
// whose pass cost is flat in its tokens (a GPU: 2 ms a pass) and on one
// whose cost grows with them (a CPU: 0.25 ms a pass and 0.05 ms a token).
// It reports the p50 and p90 over the 64 requests and the decode calls.
//
//	go test -run '^$' -bench PrefillBurst -count 5 ./engine/scheduler/
func BenchmarkPrefillBurst(b *testing.B) {
	for _, shape := range []struct {
		name            string
		step, per, time time.Duration
	}{
		{"flat", 0, 0, 2 * time.Millisecond},
		{"linear", 250 * time.Microsecond, 50 * time.Microsecond, 0},
	} {
		b.Run(shape.name, func(b *testing.B) {
			var ttft []time.Duration
			decodes := 0
			for range b.N {
				fake := enginetest.New(64, 1024, 512)
				fake.StepDelay, fake.PerToken, fake.DecodeTime = shape.step, shape.per, shape.time
				s := scheduler.New(fake, scheduler.Options{Logger: quiet})
				ctx, cancel := context.WithCancel(context.Background())
				go s.Run(ctx)
				var wg sync.WaitGroup
				var mu sync.Mutex
				t0 := time.Now()
				for i := range 64 {
					p := prompt(fmt.Sprintf("%03d %s", i, string(make([]byte, 250))))
					st, err := s.Submit(ctx, scheduler.Request{Prompt: p, MaxTokens: 8})
					if err != nil {
						b.Fatal(err)
					}
					wg.Go(func() {
						for {
							ev, err := st.Next(ctx)
							if err != nil {
								return
							}
							if len(ev.Fragments) > 0 {
								mu.Lock()
								ttft = append(ttft, time.Since(t0))
								mu.Unlock()
								collectRest(ctx, st)
								return
							}
						}
					})
				}
				wg.Wait()
				decodes += fake.Counters().Decodes
				cancel()
				<-s.Done()
			}
			slices.Sort(ttft)
			b.ReportMetric(float64(ttft[len(ttft)/2].Microseconds())/1000, "ttft-p50-ms")
			b.ReportMetric(float64(ttft[len(ttft)*9/10].Microseconds())/1000, "ttft-p90-ms")
			b.ReportMetric(float64(decodes)/float64(b.N), "decodes/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func collectRest(ctx context.Context, st *scheduler.Stream) {
	for {
		if _, err := st.Next(ctx); err != nil {
			return
		}
	}
}
