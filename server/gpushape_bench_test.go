package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/api"
	"github.com/asi1d/asi1d/server/stack"
)

// BenchmarkServerGPUShape is issue #10's throughput target for the host
// path: 64 greedy streams through HTTP and SSE (the real server over the
// fake engine, 64 concurrent streaming clients) with rows of 128,256 logits
// and a decode that lasts 2 ms, as on a GPU. At no cost outside the decode
// they would get 64 tokens per 2 ms, 32,000 tok/s; the target is 0.85 of it
// (frac-of-2ms >= 0.85). Each op is one round of 64 simultaneous requests
// of 512 tokens. tok/s counts the whole round (prompts included);
// steady-tok/s counts the tokens the clients received between the moment
// every stream had its first token and the moment the first one ended.
//
//	CGO_ENABLED=0 go test -run '^$' -bench ServerGPUShape -cpu 2 -count 5 ./server/
func BenchmarkServerGPUShape(b *testing.B) {
	const streams, maxTokens = 64, 512
	fake := enginetest.NewWide(streams, 2048, 512, 128256)
	fake.DecodeTime = 2 * time.Millisecond
	stk := stack.New(stack.Options{
		Server:    server.Options{Registry: prometheus.NewRegistry(), Logger: ctQuiet, Version: "bench"},
		Scheduler: scheduler.Options{Logger: ctQuiet, MaxQueue: streams},
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
		"model": "asi1-mini", "max_tokens": maxTokens, "stream": true, "temperature": 0,
		"messages": []map[string]any{{"role": "user", "content": "Once upon a time"}},
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, MaxConnsPerHost: streams}}

	// one runs a request and counts the content bytes it receives (one per
	// token: the fake's greedy tokens are single letters), calling first
	// and last on its first and last content.
	one := func(count func(int), first func()) {
		resp, err := client.Post(hs.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Errorf("status %d", resp.StatusCode)
			return
		}
		sse := api.NewSSEReader(resp.Body)
		got := false
		for {
			ev, err := sse.Next()
			if err != nil {
				break
			}
			if ev.IsDone() {
				continue
			}
			var ch api.ChatCompletionChunk
			if json.Unmarshal(ev.Data, &ch) != nil || len(ch.Choices) == 0 {
				continue
			}
			n := len(ch.Choices[0].Delta.Text())
			if n == 0 {
				continue
			}
			if !got {
				got = true
				first()
			}
			count(n)
		}
	}

	var roundTok, steadyTok float64
	var roundTime, steadyTime time.Duration
	b.ResetTimer()
	for range b.N {
		var (
			mu                sync.Mutex
			total, atAll      int
			nFirst            int
			tAll, tEnd        time.Time
			wg                sync.WaitGroup
			firstEnd, allSeen bool
		)
		t0 := time.Now()
		for range streams {
			wg.Go(func() {
				one(func(n int) {
					mu.Lock()
					total += n
					mu.Unlock()
				}, func() {
					mu.Lock()
					nFirst++
					if nFirst == streams {
						allSeen, tAll, atAll = true, time.Now(), total
					}
					mu.Unlock()
				})
				mu.Lock()
				if !firstEnd && allSeen {
					firstEnd, tEnd = true, time.Now()
					steadyTok += float64(total - atAll)
					steadyTime += tEnd.Sub(tAll)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		roundTime += time.Since(t0)
		roundTok += float64(total)
		if total < streams*maxTokens*9/10 {
			b.Fatalf("received %d content bytes, want about %d", total, streams*maxTokens)
		}
	}
	b.ReportMetric(roundTok/roundTime.Seconds(), "tok/s")
	if steadyTime > 0 {
		st := steadyTok / steadyTime.Seconds()
		b.ReportMetric(st, "steady-tok/s")
		b.ReportMetric(st/32000, "frac-of-2ms")
	}
}
