package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServerPerToken is the server's own cost per generated token
// (SERVING.md T2): 16 streams through HTTP and SSE on the fake backend,
// whose steps sleep 0.5 ms and cost no CPU, with a plain client that
// discards the bytes.
// cpu-µs/token is the whole process's CPU time (server, scheduler, fake
// and client) divided by the tokens generated.
func BenchmarkServerPerToken(b *testing.B) {
	for _, stream := range []bool{true, false} {
		name := "stream"
		if !stream {
			name = "whole"
		}
		b.Run(name, func(b *testing.B) {
			const streams, maxTokens = 16, 256
			fake := enginetest.New(streams, 512, 512)
			// A decode step that takes time, as a real one does, so that
			// every token leaves in its own SSE chunk instead of being
			// coalesced with the next.
			fake.StepDelay = 500 * time.Microsecond
			stk := stack.New(stack.Options{
				Server:    server.Options{Registry: prometheus.NewRegistry(), Logger: ctQuiet, Version: "bench"},
				Scheduler: scheduler.Options{Logger: ctQuiet},
				Open:      func() (engine.Backend, error) { return fake, nil },
			})
			if err := stk.Load(); err != nil {
				b.Fatal(err)
			}
			defer stk.Unload()
			srv := stk.Server
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			body, _ := json.Marshal(map[string]any{
				"model": "asi1-mini", "max_tokens": maxTokens, "stream": stream, "temperature": 0,
				"messages": []map[string]any{{"role": "user", "content": "Once upon a time"}},
				// The fake ends a sequence early on EOS; ban it so every
				// request runs to max_tokens.
				"logit_bias": map[string]any{"2": -100},
			})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
			var (
				mu     sync.Mutex
				tokens int
			)
			one := func() {
				resp, err := client.Post(hs.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
				mu.Lock()
				tokens += maxTokens
				mu.Unlock()
			}
			b.ResetTimer()
			c0 := cpuTime()
			var wg sync.WaitGroup
			work := make(chan struct{})
			for range streams {
				wg.Go(func() {
					for range work {
						one()
					}
				})
			}
			for i := 0; i < b.N; i++ {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			cpu := cpuTime() - c0
			b.ReportMetric(float64(cpu.Microseconds())/float64(tokens), "cpu-µs/token")
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
