package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

// fakeLLM is a scripted chat-completions server with a prefix cache per
// slot, Prometheus counters, an optional capacity (503 beyond it) and an
// optional stall: while a long prompt is prefilled every other stream waits
// (a server without chunked prefill).
type fakeLLM struct {
	gap         time.Duration // between tokens
	prefillTok  time.Duration // per uncached prompt token before the first token
	slots       int           // prefix-cache entries (0: 4)
	stallAbove  int           // prompts with more uncached tokens stall everyone else (0: never)
	capacity    int           // requests at once; beyond: 503 (0: unlimited)
	noRetry     bool          // 503 without Retry-After
	releaseFill int           // fill requests (prompt "Story 6...") hold until this many probes were refused

	stall sync.RWMutex

	mu        sync.Mutex
	cache     []fakeSlot
	queried   int
	hit       int
	promptTot int
	active    int
	refused   int
	released  chan struct{}
	bodies    []map[string]any
	headers   []http.Header
}

type fakeSlot struct {
	toks []string
	used time.Time
	busy bool
}

// tokens is the fake's tokenization: a BOS, then per message a role marker,
// its words and an end marker, then the generation prompt.
func fakeTokens(msgs []any) []string {
	t := []string{"<s>"}
	for _, m := range msgs {
		mm := m.(map[string]any)
		t = append(t, "<"+mm["role"].(string)+">")
		t = append(t, strings.Fields(mm["content"].(string))...)
		t = append(t, "</>")
	}
	return append(t, "<assistant>")
}

func (f *fakeLLM) init() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cache == nil {
		n := f.slots
		if n == 0 {
			n = 4
		}
		f.cache = make([]fakeSlot, n)
		f.released = make(chan struct{})
		if f.releaseFill == 0 {
			close(f.released)
		}
	}
}

func (f *fakeLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.init()
	if r.URL.Path == "/metrics" {
		f.mu.Lock()
		defer f.mu.Unlock()
		fmt.Fprintf(w, "# HELP x\n# TYPE %s counter\n%s %d\n%s %d\n%s{model=\"m\"} %d\n%s %d\n%s 0\nasi1_requests_finished_total{finish_reason=\"stop\"} 2\nasi1_requests_finished_total{finish_reason=\"length\"} 3\n",
			MetricPrefixQueried, MetricPrefixQueried, f.queried, MetricPrefixHit, f.hit, MetricPromptTokens, f.promptTot, MetricRunning, f.active, MetricWaiting)
		return
	}
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	msgs := body["messages"].([]any)
	content := msgs[len(msgs)-1].(map[string]any)["content"].(string)
	isProbe, isFill := strings.HasPrefix(content, "Story 7"), strings.HasPrefix(content, "Story 6")

	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.headers = append(f.headers, r.Header.Clone())
	if f.capacity > 0 && f.active >= f.capacity {
		if isProbe {
			f.refused++
			if f.refused == f.releaseFill {
				close(f.released)
			}
		}
		f.mu.Unlock()
		if !f.noRetry {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","param":null,"code":"server_overloaded"}}`)
		return
	}
	f.active++
	toks := fakeTokens(msgs)
	// The idle slot sharing the longest prefix, ties to the least recently used.
	best, bestN := -1, -1
	for i, s := range f.cache {
		if s.busy {
			continue
		}
		n := 0
		for n < min(len(s.toks), len(toks)) && s.toks[n] == toks[n] {
			n++
		}
		if best < 0 || n > bestN || (n == bestN && s.used.Before(f.cache[best].used)) {
			best, bestN = i, n
		}
	}
	cached := 0
	if best >= 0 {
		cached = min(bestN, len(toks)-1)
		f.cache[best] = fakeSlot{toks: toks, used: time.Now(), busy: true}
	}
	f.queried += len(toks)
	f.hit += cached
	f.mu.Unlock()
	// end frees the slot; before the last event, so that the client's
	// next request finds it free.
	var once sync.Once
	end := func() {
		once.Do(func() {
			f.mu.Lock()
			f.active--
			if best >= 0 {
				f.cache[best].busy = false
			}
			f.promptTot += len(toks)
			f.mu.Unlock()
		})
	}
	defer end()

	maxTok := int(body["max_tokens"].(float64))
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d}}`,
		len(toks), maxTok, len(toks)+maxTok, cached)
	ctx := r.Context()
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	if isFill {
		select {
		case <-f.released:
		case <-ctx.Done():
			return
		}
	}
	uncached := len(toks) - cached
	if f.stallAbove > 0 && uncached > f.stallAbove {
		f.stall.Lock()
		ok := wait(f.prefillTok * time.Duration(uncached))
		f.stall.Unlock()
		if !ok {
			return
		}
	} else if !wait(f.prefillTok * time.Duration(uncached)) {
		return
	}
	if body["stream"] != true {
		end()
		fmt.Fprintf(w, `{"choices":[{"message":{"content":"x"},"finish_reason":"length"}],"usage":%s}`, usage)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	send := func(s string) {
		io.WriteString(w, "data: "+s+"\n\n")
		fl.Flush()
	}
	send(`{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`)
	for i := range maxTok {
		if i > 0 && !wait(f.gap) {
			return
		}
		f.stall.RLock()
		f.stall.RUnlock() //lint:ignore SA2001 waits out a stall
		send(fmt.Sprintf(`{"choices":[{"index":0,"delta":{"content":" a%d"},"finish_reason":null}]}`, i))
	}
	end()
	send(`{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`)
	send(`{"choices":[],"usage":` + usage + `}`)
	send("[DONE]")
}

func at(t0 time.Time, msv float64) time.Time { return t0.Add(dur(msv)) }

// A result whose chunks arrived at the given times (ms from t0).
func chunksAt(t0 time.Time, times ...float64) RequestResult {
	r := RequestResult{start: t0, first: at(t0, times[0])}
	for k := 1; k < len(times); k++ {
		r.gaps = append(r.gaps, dur(times[k]-times[k-1]))
	}
	r.last = at(t0, times[len(times)-1])
	return r
}

func TestGapsIn(t *testing.T) {
	t0 := time.Unix(1000, 0)
	res := []RequestResult{
		chunksAt(t0, 10, 20, 30, 40, 50),
		chunksAt(t0, 15, 100), // a stall across the whole window
		chunksAt(t0, 5),       // one chunk: no gap
		{},                    // failed before any chunk
	}
	if ts := res[0].chunkTimes(); len(ts) != 5 || !ts[4].Equal(at(t0, 50)) {
		t.Fatalf("chunk times %v", ts)
	}
	in, out := gapsIn(res, span{at(t0, 25), at(t0, 35)})
	// Overlapping (25, 35): 20-30, 30-40 and 15-100.
	if len(in) != 3 || len(out) != 2 || !slices.Contains(in, dur(85)) {
		t.Fatalf("in %v out %v", in, out)
	}
	// A gap that ends exactly at the window's start does not overlap it.
	in, _ = gapsIn(res[:1], span{at(t0, 30), at(t0, 31)})
	if len(in) != 1 || in[0] != dur(10) {
		t.Fatalf("boundary: %v", in)
	}
	if d, ok := ttftOf(&res[1]); !ok || d != dur(15) {
		t.Fatalf("ttft %v %v", d, ok)
	}
	if _, ok := ttftOf(&res[3]); ok {
		t.Fatal("ttft of a result without chunks")
	}
}

// The scenarios read the server's counters from a scrape (api.ParseMetrics):
// a name's samples summed over their labels.
func TestMetricDelta(t *testing.T) {
	scrape := func(queried, hit, prompt1, prompt2 int) Metrics {
		text := fmt.Sprintf(`# HELP asi1_prefix_cache_hit_tokens_total Prompt tokens reused.
# TYPE asi1_prefix_cache_hit_tokens_total counter
asi1_prefix_cache_hit_tokens_total %d
asi1_prefix_cache_queried_tokens_total %d
asi1_prompt_tokens_total{model="asi1-mini"} %d
asi1_prompt_tokens_total{model="other",x="a}b"} %d
asi1_requests_waiting 3 1700000000000
`, hit, queried, prompt1, prompt2)
		m, err := api.ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before, after := scrape(100, 40, 5, 2), scrape(350, 260, 200, 57)
	if before.Sum(MetricPromptTokens) != 7 || before.Sum(MetricWaiting) != 3 {
		t.Fatalf("scrape %v", before)
	}
	d := metricDelta(before, after)
	if d.Queried != 250 || d.Hit != 220 || d.Processed != 30 || d.PromptTokens != 250 {
		t.Fatalf("delta %+v", d)
	}
	if metricDelta(nil, Metrics{}) != nil {
		t.Fatal("delta without a scrape")
	}
	for url, want := range map[string]string{
		"http://h:1":                         "http://h:1/metrics",
		"http://h:1/":                        "http://h:1/metrics",
		"http://h:1/v1":                      "http://h:1/metrics",
		"http://h:1/v1/chat/completions":     "http://h:1/metrics",
		"http://h:1/api/v1/chat/completions": "http://h:1/api/metrics",
	} {
		if got := (&ScenarioConfig{URL: url}).metricsURL(); got != want {
			t.Errorf("%s: metrics at %s, want %s", url, got, want)
		}
	}
	if got := (&ScenarioConfig{URL: "http://h", MetricsURL: "off"}).metricsURL(); got != "" {
		t.Errorf("off: %q", got)
	}
}

func quickPrefill(url string) PrefillConfig {
	return PrefillConfig{
		ScenarioConfig: ScenarioConfig{URL: url},
		Streams:        3, StreamTokens: 4, StreamMaxTokens: 20, LongTokens: 200,
		Idle: 150 * time.Millisecond, Shorts: 3, ShortMaxTokens: 2, ShortDelay: 5 * time.Millisecond, Rounds: 2, Pause: 20 * time.Millisecond,
	}
}

// Without chunked prefill (the fake stalls every stream during a long
// prompt), both ratios are far above the target.
func TestPrefillStall(t *testing.T) {
	f := &fakeLLM{gap: 2 * time.Millisecond, prefillTok: time.Millisecond, stallAbove: 50, slots: 8}
	hs := httptest.NewServer(f)
	defer hs.Close()
	var log bytes.Buffer
	c := quickPrefill(hs.URL)
	c.Log = &log
	c.StreamMaxTokens = 100 // mostly mid-answer when a stall begins
	rep, err := RunPrefill(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rounds) != 2 || rep.IdleTTFT.N != 2*3 || rep.IdleGaps.N == 0 || rep.PrefillGaps.N == 0 || rep.PrefillTTFT.N == 0 {
		t.Fatalf("report %+v", rep)
	}
	// The stalls are at least the prefill's sleeps (203 ms, against the
	// fake's 2 ms gap); the idle checks below compare with the stall, not
	// with a number of milliseconds this machine must keep.
	stall := rep.Rounds[0].LongTTFTMs * 0.9
	for i, r := range rep.Rounds {
		// "Story N." and 200 words, 4 template tokens; 3 cached, the rest at
		// 1 ms each (a lower bound: sleeps).
		if r.Error != "" || r.LongPromptTokens != 206 || r.LongCachedTokens != 3 || r.LongTTFTMs < 203 || len(r.ShortTTFTMs) == 0 || r.Gaps.N == 0 {
			t.Fatalf("round %d: %+v", i, r)
		}
		// Every stream stalls for the whole prefill: its gap spans it.
		if r.Gaps.Max < r.LongTTFTMs*0.9 {
			t.Errorf("round %d: longest gap %.1f ms during a %.1f ms prefill", i, r.Gaps.Max, r.LongTTFTMs)
		}
		stall = min(stall, r.LongTTFTMs*0.9)
	}
	// Each round has its idle window before it, holding no gap of the
	// previous round's stall.
	if rep.IdleGaps.Max >= stall {
		t.Errorf("idle gaps reach %.1f ms, a stall's length (%.1f ms)", rep.IdleGaps.Max, stall)
	}
	for i, r := range rep.Rounds {
		if r.IdleGapP50Ms <= 0 || r.IdleGapP50Ms >= stall {
			t.Errorf("round %d: idle gap p50 %.1f ms (a stall: %.1f ms)", i, r.IdleGapP50Ms, stall)
		}
	}
	if rep.ITLRatio <= PrefillTarget || rep.ITLTargetMet || rep.TTFTRatio <= PrefillTarget || rep.TTFTTargetMet {
		t.Errorf("itl ratio %.2f, ttft ratio %.2f: want both above the target", rep.ITLRatio, rep.TTFTRatio)
	}
	seen := map[string]int{}
	for _, b := range f.bodies {
		seen[b["messages"].([]any)[0].(map[string]any)["content"].(string)]++
	}
	for p, n := range seen {
		if n > 1 {
			t.Errorf("prompt sent %d times: %.40s", n, p)
		}
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	for _, want := range []string{"prefill gap", "NOT met", "round 2"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
	if !strings.Contains(log.String(), "round 2/2") {
		t.Errorf("log:\n%s", log.String())
	}
}

// Without a stall the scenario still finds its windows; the ratios depend
// on this machine's timing and are not checked.
func TestPrefillNoStall(t *testing.T) {
	f := &fakeLLM{gap: 2 * time.Millisecond, prefillTok: 500 * time.Microsecond, slots: 8}
	hs := httptest.NewServer(f)
	defer hs.Close()
	c := quickPrefill(hs.URL)
	c.Rounds = 1
	c.LogitBias = map[int]float64{2: -100}
	rep, err := RunPrefill(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rounds) != 1 || rep.Rounds[0].Error != "" || rep.PrefillTTFT.N == 0 || rep.PrefillGaps.N == 0 || rep.ITLRatio <= 0 || rep.TTFTRatio <= 0 {
		t.Fatalf("report %+v", rep)
	}
	// Streams restart when their 20 tokens run out.
	if rep.StreamRequests <= c.Streams || len(rep.StreamErrors) != 0 || rep.TokensPerChunk != 1 || rep.StreamFinish["length"] == 0 {
		t.Errorf("streams: %d requests, errors %v, %.2f tokens per chunk, finish %v", rep.StreamRequests, rep.StreamErrors, rep.TokensPerChunk, rep.StreamFinish)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "were restarted") {
		t.Errorf("warnings %v", rep.Warnings)
	}
	for _, b := range f.bodies {
		if lb, _ := b["logit_bias"].(map[string]any); lb["2"] != -100.0 {
			t.Fatalf("body without the logit bias: %v", b)
		}
	}
}

func TestPrefillFailures(t *testing.T) {
	// A server that refuses everything: the streams never start.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"nope"}}`, 500)
	}))
	defer hs.Close()
	c := quickPrefill(hs.URL)
	if _, err := RunPrefill(context.Background(), c); err == nil || !strings.Contains(err.Error(), "http_500") {
		t.Fatalf("err %v", err)
	}
	c.Rounds = 0
	if _, err := RunPrefill(context.Background(), c); err == nil {
		t.Fatal("no rounds: want an error")
	}
}

func TestChat(t *testing.T) {
	f := &fakeLLM{gap: time.Millisecond, prefillTok: 50 * time.Microsecond, slots: 4}
	hs := httptest.NewServer(f)
	defer hs.Close()
	c := ChatConfig{
		ScenarioConfig: ScenarioConfig{URL: hs.URL, Calibrate: true},
		Turns:          5, SystemTokens: 100, TurnTokens: 20, MaxTokens: 6, Evict: 4, EvictTokens: 10, EvictMaxTokens: 3,
		SessionID: "s1", Slack: 2,
	}
	rep, err := RunChat(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// Calibrated on one-message probes ("Story N." and the words, with
	// BOS, role, end and generation markers): 94 words make 100 tokens, 14
	// make 20.
	if rep.SystemWords != 94 || rep.TurnWords != 14 || !rep.Metrics || len(rep.Turns) != 5 {
		t.Fatalf("words %d %d, metrics %v, %d turns", rep.SystemWords, rep.TurnWords, rep.Metrics, len(rep.Turns))
	}
	// Turn 1: BOS + system (1+4+94+1) + user (1+2+14+1) + generation prompt.
	// Each later turn adds the answer (6 words and an end marker after the
	// generation prompt, which becomes the answer's role marker), a user
	// message (18) and a new generation prompt.
	prompt := 1 + 100 + 18 + 1
	for i, tr := range rep.Turns {
		added := prompt
		if i > 0 {
			added = 7 + 18 + 1
			prompt += added
		}
		if tr.Turn != i+1 || tr.PromptTokens != prompt || tr.Added != added || tr.CompletionTokens != 6 || tr.Finish != "length" || tr.TTFTMs <= 0 {
			t.Fatalf("turn %d: %+v", i+1, tr)
		}
		// The fake caches the prompt, not the answer: every later turn
		// computes exactly what it added.
		if i > 0 && (tr.CachedTokens != prompt-added || tr.Processed != added || tr.Extra != 0) {
			t.Fatalf("turn %d: %+v", i+1, tr)
		}
		m := tr.Metrics
		if m == nil || m.Queried != float64(tr.PromptTokens) || m.Hit != float64(tr.CachedTokens) || m.Processed != float64(tr.Processed) || m.PromptTokens != float64(tr.PromptTokens) {
			t.Fatalf("turn %d metrics %+v", i+1, m)
		}
	}
	if !rep.ReuseOK {
		t.Error("reuse not ok")
	}
	// The cold request: the last turn's messages, evicted from the cache.
	last := rep.Turns[4]
	if rep.Cold.PromptTokens != last.PromptTokens || rep.Cold.CachedTokens > 2 || rep.Cold.Processed < last.PromptTokens-2 || rep.EvictFailed != 0 {
		t.Fatalf("cold %+v", rep.Cold)
	}
	if rep.TTFTRatio <= 0 || rep.TTFTRatio != last.TTFTMs/rep.Cold.TTFTMs {
		t.Errorf("ratio %g", rep.TTFTRatio)
	}
	// The requests: history resent with the answers, the session header.
	var chat []map[string]any
	for i, b := range f.bodies {
		msgs := b["messages"].([]any)
		if msgs[0].(map[string]any)["role"] == "system" {
			chat = append(chat, b)
			if f.headers[i].Get("x-session-id") != "s1" {
				t.Errorf("request %d without the session id", i)
			}
		}
	}
	if len(chat) != 6 {
		t.Fatalf("%d chat requests", len(chat))
	}
	turn5 := chat[4]["messages"].([]any)
	if len(turn5) != 1+5+4 || turn5[2].(map[string]any)["role"] != "assistant" || turn5[2].(map[string]any)["content"] != " a0 a1 a2 a3 a4 a5" {
		t.Fatalf("turn 5 messages %v", turn5)
	}
	if fmt.Sprint(chat[5]["messages"]) != fmt.Sprint(turn5) {
		t.Fatal("the cold request's messages differ from turn 5's")
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	for _, want := range []string{"cold", "turn 5 / cold", "usage and /metrics", "reuse       turns 2..5 processed only the tokens they added (slack 2): true"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

// Without eviction the "cold" request is served from the cache, and the
// report says so; without /metrics the report uses usage only.
func TestChatNotColdNoMetrics(t *testing.T) {
	f := &fakeLLM{gap: time.Millisecond, slots: 4}
	hs := httptest.NewServer(f)
	defer hs.Close()
	rep, err := RunChat(context.Background(), ChatConfig{
		ScenarioConfig: ScenarioConfig{URL: hs.URL, MetricsURL: hs.URL + "/nope"},
		Turns:          2, SystemTokens: 50, TurnTokens: 10, MaxTokens: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Metrics || rep.Turns[1].Metrics != nil || rep.Cold.CachedTokens < rep.Cold.PromptTokens/2 {
		t.Fatalf("report %+v", rep)
	}
	joined := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{"metrics not read", "was not cold"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q: %s", want, joined)
		}
	}
}

// The verdict arithmetic on a made-up report.
func TestChatVerdicts(t *testing.T) {
	rep := &ChatReport{
		Config: ChatConfig{Turns: 3, Slack: 2},
		Turns: []ChatTurn{
			{Turn: 1, PromptTokens: 1000, Added: 1000, Processed: 1000, TTFTMs: 100},
			{Turn: 2, PromptTokens: 1100, CachedTokens: 1000, Added: 100, Processed: 100, Extra: 0, TTFTMs: 12},
			{Turn: 3, PromptTokens: 1200, CachedTokens: 1098, Added: 100, Processed: 102, Extra: 2, TTFTMs: 15},
		},
		Cold: ChatTurn{PromptTokens: 1200, CachedTokens: 1, TTFTMs: 120},
	}
	rep.chatVerdicts()
	if !rep.ReuseOK || rep.TTFTRatio != 0.125 || !rep.TTFTTargetMet || len(rep.Warnings) != 0 {
		t.Fatalf("%+v", rep)
	}
	rep.Turns[2].Extra = 3
	rep.Turns[2].Metrics = &MetricDelta{Hit: 1000}
	rep.Turns[2].TTFTMs = 30
	rep.Warnings = nil
	rep.chatVerdicts()
	if rep.ReuseOK || rep.TTFTTargetMet || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "counters 1000") {
		t.Fatalf("%+v", rep)
	}
}

func quickOverload(url string) OverloadConfig {
	return OverloadConfig{
		ScenarioConfig: ScenarioConfig{URL: url},
		FillMax:        50, FillInterval: time.Millisecond, FillTokens: 8, FillMaxTokens: 5, Settle: 20 * time.Millisecond,
		Probes: 6, ProbeTokens: 4, ProbeTimeout: 5 * time.Second, Target: 10 * time.Second,
	}
}

func TestOverload(t *testing.T) {
	f := &fakeLLM{gap: time.Millisecond, capacity: 5, releaseFill: 6}
	hs := httptest.NewServer(f)
	defer hs.Close()
	rep, err := RunOverload(context.Background(), quickOverload(hs.URL))
	if err != nil {
		t.Fatal(err)
	}
	// Fill requests until the sixth is refused (a few more may be sent
	// before that 503 comes back).
	if rep.FillAdmitted != 5 || rep.FillRejected < 1 || rep.FillSent != rep.FillAdmitted+rep.FillRejected || rep.FillOK != 5 || !rep.AdmittedHealthy {
		t.Fatalf("fill: %+v", rep)
	}
	if rep.Running != 5 || rep.Waiting != 0 {
		t.Errorf("server gauges %g %g", rep.Running, rep.Waiting)
	}
	if len(rep.Probes) != 6 || rep.Overloaded != 6 || rep.RetryAfter != 6 || rep.Admitted+rep.NoAnswer+rep.Other != 0 || rep.Latency.N != 6 || !rep.RefusalTarget {
		t.Fatalf("probes: %+v", rep)
	}
	for i, p := range rep.Probes {
		if p.Stream != (i%2 == 1) || p.Status != 503 || p.RetryAfter != "1" || p.Code != OverloadCode || p.Type != "server_error" || p.LatencyMs <= 0 {
			t.Fatalf("probe %d: %+v", i, p)
		}
	}
	nonStream := 0
	for _, b := range f.bodies {
		if c := b["messages"].([]any)[0].(map[string]any)["content"].(string); strings.HasPrefix(c, "Story 7") && b["stream"] != true { // stream false is left out
			nonStream++
		}
	}
	if nonStream != 3 {
		t.Errorf("%d non-streaming probes", nonStream)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	for _, want := range []string{"6 503 server_overloaded (6 with Retry-After)", "5 of 5 finished", "refusal", ": met"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

// A fixed fill that does not fill the server: probes are admitted, and
// one that waits in the queue is cut off at the probe timeout.
func TestOverloadNotFull(t *testing.T) {
	f := &fakeLLM{gap: time.Millisecond, capacity: 10, noRetry: true}
	hs := httptest.NewServer(f)
	defer hs.Close()
	c := quickOverload(hs.URL)
	c.Fill = 3
	rep, err := RunOverload(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FillSent != 3 || rep.FillAdmitted != 3 || rep.Admitted != 6 || rep.RefusalTarget || !rep.AdmittedHealthy {
		t.Fatalf("%+v", rep)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "6 probes were admitted") {
		t.Errorf("warnings %v", rep.Warnings)
	}
	// Probes that get no answer.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		<-r.Context().Done()
	}))
	defer slow.Close()
	p := newGen(Config{URL: slow.URL, Model: "m"}, http.DefaultClient).probe(context.Background(), 0, false, "hi", 30*time.Millisecond)
	if p.Status != 0 || !strings.HasPrefix(p.Error, "no answer within") {
		t.Fatalf("probe %+v", p)
	}
}

// The overload verdicts on made-up results.
func TestOverloadArithmetic(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ok := chunksAt(t0, 10, 20, 30)
	ok.Finish = "length"
	stop := chunksAt(t0, 10, 200)
	stop.Finish = "stop"
	broken := chunksAt(t0, 10)
	broken.ErrorKind, broken.Error = ErrStream, "boom"
	fills := []RequestResult{ok, stop, broken, {ErrorKind: "http_503"}}
	for i := range fills {
		fills[i].Index = i
	}
	rep := &OverloadReport{Config: OverloadConfig{Target: 10 * time.Millisecond}, Probes: []Probe{
		{Status: 503, Code: OverloadCode, RetryAfter: "1", LatencyMs: 1},
		{Status: 503, Code: OverloadCode, LatencyMs: 3},
		{Status: 503, Code: "other", LatencyMs: 2},
		{Status: 200, LatencyMs: 40},
		{Error: "no answer within 1s"},
	}}
	rep.overloadArithmetic(fills, span{at(t0, 15), at(t0, 25)})
	if rep.FillRejected != 1 || rep.FillAdmitted != 3 || rep.FillOK != 2 || rep.AdmittedHealthy || rep.FillErrors[ErrStream] != 1 || rep.FillFinish["stop"] != 1 {
		t.Fatalf("fills %+v", rep)
	}
	if rep.Overloaded != 2 || rep.RetryAfter != 1 || rep.Admitted != 1 || rep.NoAnswer != 1 || rep.Other != 1 || rep.RefusalTarget {
		t.Fatalf("probes %+v", rep)
	}
	if rep.Latency.N != 2 || rep.Latency.Max != 3 || rep.AllLatency.N != 4 || rep.AllLatency.Max != 40 {
		t.Fatalf("latency %+v %+v", rep.Latency, rep.AllLatency)
	}
	// Gaps overlapping (15, 25): 10-20, 20-30 of ok, 10-200 of stop.
	if rep.GapsDuring.N != 3 || rep.GapsOutside.N != 0 || rep.GapsDuring.Max != 190 {
		t.Fatalf("gaps %+v %+v", rep.GapsDuring, rep.GapsOutside)
	}
	if w := strings.Join(rep.Warnings, "\n"); !strings.Contains(w, "1 refusals without Retry-After") || !strings.Contains(w, "boom") || !strings.Contains(w, "2 probes were admitted or queued") {
		t.Fatalf("warnings %s", w)
	}
	// All refused fast and with Retry-After: met; a slow one: not.
	rep = &OverloadReport{Config: OverloadConfig{Target: 10 * time.Millisecond}, Probes: []Probe{
		{Status: 503, Code: OverloadCode, RetryAfter: "1", LatencyMs: 1},
		{Status: 503, Code: OverloadCode, RetryAfter: "1", LatencyMs: 2},
	}}
	rep.overloadArithmetic([]RequestResult{ok}, span{})
	if !rep.RefusalTarget || !rep.AdmittedHealthy {
		t.Fatalf("%+v", rep)
	}
	rep = &OverloadReport{Config: rep.Config, Probes: rep.Probes}
	rep.Probes[1].LatencyMs = 50
	rep.overloadArithmetic([]RequestResult{ok}, span{})
	if rep.RefusalTarget {
		t.Fatal("p99 above the target: met")
	}
}

func TestScenarioConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := RunPrefill(ctx, PrefillConfig{}); err == nil {
		t.Error("prefill: empty config")
	}
	p := quickPrefill("localhost:1")
	if _, err := RunPrefill(ctx, p); err == nil {
		t.Error("prefill: URL without scheme")
	}
	if _, err := RunChat(ctx, ChatConfig{ScenarioConfig: ScenarioConfig{URL: "http://x"}, Turns: 1, TurnTokens: 1, MaxTokens: 1}); err == nil {
		t.Error("chat: one turn")
	}
	if _, err := RunOverload(ctx, OverloadConfig{ScenarioConfig: ScenarioConfig{URL: "http://x"}}); err == nil {
		t.Error("overload: empty config")
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", 404)
	}))
	defer hs.Close()
	c := quickOverload(hs.URL)
	c.Calibrate = true
	if _, err := RunOverload(ctx, c); err == nil || !strings.Contains(err.Error(), "calibrat") {
		t.Errorf("calibration against a 404: %v", err)
	}
}
