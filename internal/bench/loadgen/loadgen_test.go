package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {50, 5.5}, {90, 9.1}, {99, 9.91}, {100, 10}} {
		if got := Percentile(s, c.p); !near(got, c.want, 1e-9) {
			t.Errorf("p%g = %g, want %g", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("single: %g", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty: want NaN")
	}
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median %g", got)
	}
	d := Summarize([]time.Duration{4 * time.Millisecond, 1 * time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond})
	if d.N != 4 || d.Min != 1 || d.Max != 4 || d.Mean != 2.5 || d.P50 != 2.5 || !near(d.P90, 3.7, 1e-9) {
		t.Errorf("summary %+v", d)
	}
}

// Aggregate's arithmetic on results with exact times.
func TestAggregateMath(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(msv float64) time.Time { return t0.Add(dur(msv)) }
	mk := func(i int, start, first, last, end float64, tokens int, gaps ...float64) RequestResult {
		r := RequestResult{Index: i, start: at(start), first: at(first), last: at(last), end: at(end),
			CompletionTokens: tokens, PromptTokens: 10, HasUsage: true, Finish: "length", Chunks: len(gaps) + 1}
		r.E2E = end - start
		for _, g := range gaps {
			r.gaps = append(r.gaps, dur(g))
		}
		(&gen{}).finishTiming(&r)
		return r
	}
	res := []RequestResult{
		// 11 tokens over 100 ms after a 50 ms TTFT: ITL 10 ms, 100 tok/s.
		mk(1, 0, 50, 150, 160, 11, 50, 50), // two chunks of 5 tokens each after the first
		// 5 tokens over 80 ms after 20 ms: ITL 20 ms, 50 tok/s.
		mk(0, 10, 30, 110, 120, 5, 20, 20, 20, 20),
		{Index: 2, ErrorKind: "http_503", Error: "overloaded"},
		{Index: 3, ErrorKind: ErrStream},
		{Index: 4, ErrorKind: "http_503"},
		{Index: 5, ErrorKind: ErrCancelled},
	}
	rep := &Report{WallSeconds: 0.2}
	Aggregate(rep, res)
	if rep.Results[0].Index != 0 || rep.Results[5].Index != 5 {
		t.Fatal("results not sorted by index")
	}
	r0, r1 := rep.Results[0], rep.Results[1]
	if !near(r1.TTFT, 50, 1e-6) || !near(r1.ITL, 10, 1e-6) || !near(r1.StreamTokS, 100, 1e-6) {
		t.Errorf("request 1: ttft %g itl %g rate %g", r1.TTFT, r1.ITL, r1.StreamTokS)
	}
	if !near(r0.TTFT, 20, 1e-6) || !near(r0.ITL, 20, 1e-6) || !near(r0.StreamTokS, 50, 1e-6) {
		t.Errorf("request 0: ttft %g itl %g rate %g", r0.TTFT, r0.ITL, r0.StreamTokS)
	}
	if rep.Succeeded != 2 || rep.Failed != 3 || rep.Cancelled != 1 || rep.Errors["http_503"] != 2 || rep.Errors[ErrStream] != 1 {
		t.Errorf("counts: ok %d failed %d cancelled %d errors %v", rep.Succeeded, rep.Failed, rep.Cancelled, rep.Errors)
	}
	if rep.OutputTokens != 16 || !near(rep.OutputTokS, 80, 1e-9) || rep.FinishReason["length"] != 2 {
		t.Errorf("output %d tok/s %g finish %v", rep.OutputTokens, rep.OutputTokS, rep.FinishReason)
	}
	// Decode window: first chunks at 30 ms, last at 150 ms; 10+4 decode tokens.
	if !near(rep.DecodeTokS, 14/0.120, 1e-6) {
		t.Errorf("decode tok/s %g", rep.DecodeTokS)
	}
	if rep.StreamTokSMin != 50 || rep.StreamTokSMax != 100 || rep.Fairness != 0.5 || rep.StreamTokSMean != 75 {
		t.Errorf("per stream: %g %g %g %g", rep.StreamTokSMin, rep.StreamTokSMax, rep.StreamTokSMean, rep.Fairness)
	}
	if rep.ChunkGap.N != 6 || rep.ChunkGap.Max != 50 || rep.ChunkGap.Min != 20 || rep.ITL.N != 2 || rep.ITL.Mean != 15 {
		t.Errorf("chunk gaps %+v itl %+v", rep.ChunkGap, rep.ITL)
	}
	if rep.TTFT.P50 != 35 || rep.E2E.Max != 160 || rep.E2E.Min != 110 {
		t.Errorf("ttft %+v e2e %+v", rep.TTFT, rep.E2E)
	}
	if !near(rep.TokensPerChunk, 16.0/8, 1e-9) {
		t.Errorf("tokens per chunk %g", rep.TokensPerChunk)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	for _, want := range []string{"http_503 2", "stream_error 1", "fairness (min/max) 0.500", "80.0 tok/s output"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, buf.String())
		}
	}
}

// script is a fake server that streams a scripted answer.
type script struct {
	tokens   int           // completion tokens per request
	perChunk int           // tokens per content chunk
	ttft     time.Duration // before the first content chunk
	gap      time.Duration // between content chunks
	// fail decides a request's fate by its number: "" (stream normally),
	// "503", "midstream" (error event), "truncate" (no [DONE]), "garbage".
	fail func(n int) string

	mu        sync.Mutex
	bodies    []map[string]any
	headers   []http.Header
	n         atomic.Int64
	running   atomic.Int64
	maxActive atomic.Int64
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.n.Add(1) - 1)
	act := s.running.Add(1)
	// Not running any more once the answer's end is on its way: the
	// client may start its next request as soon as it reads [DONE], before
	// this handler returns.
	done := sync.OnceFunc(func() { s.running.Add(-1) })
	defer done()
	for {
		m := s.maxActive.Load()
		if act <= m || s.maxActive.CompareAndSwap(m, act) {
			break
		}
	}
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	content := body["messages"].([]any)[0].(map[string]any)["content"].(string)
	promptTokens := len(strings.Fields(content)) + 3
	if body["stream"] != true {
		fmt.Fprintf(w, `{"choices":[{"message":{"content":"x"},"finish_reason":"length"}],"usage":{"prompt_tokens":%d,"completion_tokens":1,"total_tokens":%d}}`, promptTokens, promptTokens+1)
		return
	}
	fate := ""
	if s.fail != nil {
		fate = s.fail(n)
	}
	if fate == "503" {
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":{"message":"overloaded"}}`, 503)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	send := func(s string) {
		io.WriteString(w, s)
		fl.Flush()
	}
	send(`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	send(": keep-alive\n\n")
	time.Sleep(s.ttft)
	for sent := 0; sent < s.tokens; {
		k := min(s.perChunk, s.tokens-sent)
		if sent > 0 {
			time.Sleep(s.gap)
		}
		if fate == "midstream" && sent > 0 {
			send(`data: {"error":{"message":"Generation failed: boom","type":"server_error"}}` + "\n\ndata: [DONE]\n\n")
			return
		}
		// Multi-line data, CRLF line ends: both legal SSE.
		send(fmt.Sprintf("data: {\"choices\":[{\"index\":0,\r\ndata: \"delta\":{\"content\":%q},\"finish_reason\":null}],\"usage\":null}\r\n\r\n", strings.Repeat("ab", k)))
		sent += k
	}
	switch fate {
	case "truncate":
		return
	case "garbage":
		send("data: {not json\n\n")
	}
	done()
	send(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}` + "\n\n")
	send(fmt.Sprintf(`data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":2}}}`+"\n\n", promptTokens, s.tokens, promptTokens+s.tokens))
	send("data: [DONE]\n\n")
}

func TestRunAgainstScriptedServer(t *testing.T) {
	s := &script{tokens: 9, perChunk: 2, ttft: 30 * time.Millisecond, gap: 10 * time.Millisecond}
	hs := httptest.NewServer(s)
	defer hs.Close()
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		// max_tokens 20 (the script answers 9 tokens whatever is asked), so
		// the warm-ups' cap (WarmupMaxTokens) shows in their bodies.
		URL: hs.URL, APIKey: "k", Concurrency: 4, Requests: 8, PromptTokens: 20, MaxTokens: 20,
		LogitBias: map[int]float64{2: -100}, Warmup: 2, Progress: &progress, ProgressEvery: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 8 || rep.Succeeded != 8 || rep.Failed != 0 || rep.OutputTokens != 72 || rep.CachedTokensTotal != 16 {
		t.Fatalf("report: %+v", rep)
	}
	if got := s.maxActive.Load(); got != 4 {
		t.Errorf("server saw at most %d concurrent requests, want 4", got)
	}
	// 9 tokens in 5 chunks: ttft >= 30 ms, 4 gaps of >= 10 ms, ITL = span/8.
	for _, r := range rep.Results {
		if r.Chunks != 5 || r.CompletionTokens != 9 || r.PromptTokens != 25 || r.Finish != "length" || !r.HasUsage {
			t.Fatalf("result %+v", r)
		}
		if r.TTFT < 30 || r.TTFT > 500 || r.ITL < 40.0/8 || r.ITL > 500.0/8 {
			t.Errorf("request %d: ttft %.1f itl %.2f", r.Index, r.TTFT, r.ITL)
		}
	}
	// A chunk delivered late shortens the next gap, so only the mean of
	// the 10 ms gaps is bounded.
	if rep.ChunkGap.N != 8*4 || rep.ChunkGap.Mean < 5 || rep.TokensPerChunk != 9.0/5 {
		t.Errorf("chunk gaps %+v, tokens per chunk %g", rep.ChunkGap, rep.TokensPerChunk)
	}
	// Two rounds of four ~70 ms requests: output tok/s is about 72 tokens
	// over 140 ms; allow for a slow machine.
	if rep.OutputTokS <= 0 || rep.OutputTokS > 72/0.13 || rep.Fairness <= 0 || rep.Fairness > 1 {
		t.Errorf("output %.1f tok/s, fairness %.3f", rep.OutputTokS, rep.Fairness)
	}
	// The requests: 2 warm-ups then 8 measured, all distinct, all as asked.
	if len(s.bodies) != 10 {
		t.Fatalf("%d requests reached the server", len(s.bodies))
	}
	seen := map[string]bool{}
	for i, b := range s.bodies {
		so, _ := b["stream_options"].(map[string]any)
		lb, _ := b["logit_bias"].(map[string]any)
		if b["stream"] != true || so["include_usage"] != true || b["temperature"] != 0.0 || b["model"] != DefaultModel || lb["2"] != -100.0 {
			t.Fatalf("body %d: %v", i, b)
		}
		if got := s.headers[i].Get("Authorization"); got != "Bearer k" {
			t.Fatalf("authorization %q", got)
		}
		content := b["messages"].([]any)[0].(map[string]any)["content"].(string)
		if len(strings.Fields(content)) != 22 {
			t.Errorf("prompt of %d words, want 20 + prefix: %q", len(strings.Fields(content)), content)
		}
		want := 20.0
		if i < 2 {
			want = WarmupMaxTokens // warm-up: min(max_tokens, WarmupMaxTokens)
		}
		if b["max_tokens"] != want {
			t.Errorf("max_tokens %v", b["max_tokens"])
		}
		seen[content] = true
	}
	if len(seen) != 10 {
		t.Errorf("%d distinct prompts in 10 requests", len(seen))
	}
	if !strings.Contains(progress.String(), "bench 100.0% 8/8 done") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestErrorsByKind(t *testing.T) {
	fates := []string{"", "503", "midstream", "truncate", "garbage", "", "503", ""}
	s := &script{tokens: 4, perChunk: 1, gap: time.Millisecond, fail: func(n int) string { return fates[n%len(fates)] }}
	hs := httptest.NewServer(s)
	defer hs.Close()
	rep, err := Run(context.Background(), Config{URL: hs.URL + "/v1/chat/completions", Concurrency: 1, Requests: 8, PromptTokens: 4, MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"http_503": 2, ErrStream: 1, ErrTruncated: 1, ErrBadChunk: 1}
	if rep.Succeeded != 3 || rep.Failed != 5 || fmt.Sprint(rep.Errors) != fmt.Sprint(want) || rep.OutputTokens != 12 {
		t.Fatalf("ok %d failed %d errors %v output %d", rep.Succeeded, rep.Failed, rep.Errors, rep.OutputTokens)
	}
	if r := rep.Results[1]; !strings.Contains(r.Error, "overloaded") {
		t.Errorf("503 error text %q", r.Error)
	}
	if r := rep.Results[2]; r.Error != "Generation failed: boom" {
		t.Errorf("stream error text %q", r.Error)
	}
	// A refused connection.
	rep, err = Run(context.Background(), Config{URL: "http://127.0.0.1:1", Requests: 2, PromptTokens: 4, MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors[ErrConnect] != 2 {
		t.Fatalf("errors %v", rep.Errors)
	}
}

func TestDurationBoundAndCancel(t *testing.T) {
	s := &script{tokens: 3, perChunk: 1, ttft: 20 * time.Millisecond, gap: 10 * time.Millisecond}
	hs := httptest.NewServer(s)
	defer hs.Close()
	rep, err := Run(context.Background(), Config{URL: hs.URL, Concurrency: 2, Duration: 150 * time.Millisecond, PromptTokens: 4, MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Each request takes at least 40 ms (the script sleeps): at most 4
	// rounds of 2 in 150 ms, then the in-flight ones finish. Without the
	// bound the run would not end (no request count is set).
	if rep.Requests < 2 || rep.Requests > 10 || rep.Failed != 0 {
		t.Fatalf("%d requests, %d failed", rep.Requests, rep.Failed)
	}

	slow := &script{tokens: 100, perChunk: 1, gap: 20 * time.Millisecond}
	hs2 := httptest.NewServer(slow)
	defer hs2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	rep, err = Run(ctx, Config{URL: hs2.URL, Concurrency: 2, Requests: 4, PromptTokens: 4, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cancelled != 2 || rep.Failed != 0 || rep.Succeeded != 0 {
		t.Fatalf("cancelled %d failed %d ok %d: %v", rep.Cancelled, rep.Failed, rep.Succeeded, rep.Errors)
	}
}

func TestCalibrate(t *testing.T) {
	s := &script{tokens: 2, perChunk: 1}
	hs := httptest.NewServer(s)
	defer hs.Close()
	// The fake counts one token per word plus 3; the prefix is 2 words.
	rep, err := Run(context.Background(), Config{URL: hs.URL, Requests: 1, PromptTokens: 40, MaxTokens: 2, Calibrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PromptWords != 35 || rep.PromptTokensMean != 40 {
		t.Fatalf("words %d, prompt tokens %g", rep.PromptWords, rep.PromptTokensMean)
	}
	if len(s.bodies) > 6 {
		t.Errorf("%d requests: too many probes", len(s.bodies))
	}
}

func TestSamePromptAndText(t *testing.T) {
	if Text(5) != Text(5) || len(strings.Fields(Text(50))) != 50 {
		t.Fatal("Text is not deterministic or miscounts words")
	}
	if len(Prefix(1)) != len(Prefix(999999)) || Prompt(1, 3) == Prompt(2, 3) {
		t.Fatal("prefixes")
	}
	s := &script{tokens: 1, perChunk: 1}
	hs := httptest.NewServer(s)
	defer hs.Close()
	if _, err := Run(context.Background(), Config{URL: hs.URL, Concurrency: 2, Requests: 4, PromptTokens: 8, MaxTokens: 1, SamePrompt: true, Temperature: 0.7}); err != nil {
		t.Fatal(err)
	}
	for _, b := range s.bodies {
		if b["messages"].([]any)[0].(map[string]any)["content"] != Prompt(0, 8) || b["temperature"] != 0.7 {
			t.Fatalf("body %v", b)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{URL: "localhost:8080", Requests: 1, PromptTokens: 1, MaxTokens: 1},
		{URL: "http://x", PromptTokens: 1, MaxTokens: 1},
		{URL: "http://x", Requests: 1, MaxTokens: 1},
		{URL: "http://x", Requests: 1, PromptTokens: 1},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}

func TestScanChunk(t *testing.T) {
	cases := []struct {
		data   string
		ok     bool
		text   bool
		finish string
	}{
		{`{"choices":[{"index":0,"delta":{"content":" little"},"logprobs":null,"finish_reason":null}],"usage":null}`, true, true, ""},
		{`{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`, true, false, ""},
		{`{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}`, true, false, "length"},
		{`{"choices":[{"index":0, "delta": {"reasoning_content": "hm"}, "finish_reason": null}]}`, true, true, ""},
		{`{"choices":[{"delta":{"content":"say \"content\":\"\" and \"usage\":{"},"finish_reason":null}]}`, true, true, ""},
		{`{"choices":[{"delta":{"content":null},"finish_reason":"stop"}]}`, true, false, "stop"},
		{`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, false, false, ""},
		{`{"error":{"message":"boom"}}`, false, false, ""},
		{`{"choices":[{"delta":{"content":"a"}}]}`, false, false, ""},
		{`{"choices":[{"delta":{"content":"a"},"finish_reason":null},{"delta":{"content":"b"},"finish_reason":null}]}`, false, false, ""},
	}
	for _, c := range cases {
		got, ok := scanChunk([]byte(c.data))
		if ok != c.ok || (ok && (got.text != c.text || got.finish != c.finish)) {
			t.Errorf("%s: got %+v %v", c.data, got, ok)
		}
		// Agrees with the full decoder whenever it answers.
		var r1, r2 RequestResult
		g := &gen{}
		g.event([]byte(c.data), time.Now(), &r1)
		if ch, err := api.DecodeChunk([]byte(c.data)); err == nil {
			for _, x := range ch.Choices {
				if x.Delta.Text() != "" || x.Delta.ReasoningContent != "" {
					r2.Chunks++
				}
				if x.FinishReason != nil {
					r2.Finish = *x.FinishReason
				}
			}
			if r1.Chunks != r2.Chunks || r1.Finish != r2.Finish {
				t.Errorf("%s: fast %d %q, full %d %q", c.data, r1.Chunks, r1.Finish, r2.Chunks, r2.Finish)
			}
		}
	}
}

// The client's cost per chunk matters when it shares the CPU with the server.
func BenchmarkEvent(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"asi1-mini","system_fingerprint":"fp_0123456789","choices":[{"index":0,"delta":{"content":" little"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	g := &gen{}
	var r RequestResult
	now := time.Now()
	for b.Loop() {
		g.event(data, now, &r)
		r.gaps = r.gaps[:0]
	}
}
