package loadgen

// RunSoak: hours of mixed traffic, then a check that the server is as it
// was. See SoakConfig and SoakReport.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

// SoakConfig describes RunSoak.
type SoakConfig struct {
	ScenarioConfig
	// Requests after the warm-up; with Duration, whichever ends first (0:
	// only Duration bounds the run).
	Requests    int           `json:"requests"`
	Duration    time.Duration `json:"duration_ns"`
	Concurrency int           `json:"concurrency"`
	// Warmup requests of every kind run first; the RSS, goroutine and
	// counter baselines are read after them.
	Warmup int `json:"warmup"`
	// Shares of the requests: streamed and aborted mid-stream (AbortShare,
	// at a random chunk), streamed, with tools, with response_format.
	AbortShare  float64 `json:"abort_share"`
	StreamShare float64 `json:"stream_share"`
	ToolShare   float64 `json:"tool_share"`
	FormatShare float64 `json:"format_share"`
	// Prompt words and max_tokens are drawn uniformly from 1..these.
	MaxPromptWords int    `json:"max_prompt_words"`
	MaxAnswer      int    `json:"max_answer"`
	Seed           uint64 `json:"seed"`
	// RSSTolerance bounds the growth of RSS: RSS at the end / RSS after the
	// warm-up - 1 (a smaller RSS passes).
	RSSTolerance float64 `json:"rss_tolerance"`
	// GoroutineSlack is how many goroutines above the idle count after the
	// warm-up still pass; Settle how long the end checks wait for the
	// server to become idle.
	GoroutineSlack int           `json:"goroutine_slack"`
	Settle         time.Duration `json:"settle_ns"`
}

// Defaults of SoakConfig (the long form of issue #14).
const (
	DefaultSoakRequests    = 5000
	DefaultSoakConcurrency = 16
	// DefaultSoakWarmup: on the tiny model at 16 concurrent, RSS grew 4.9%
	// over the 2,000 requests after a 300-request warm-up, then 0.8% and
	// 0.4% over the next two 2,000s, as the C allocator's arenas filled.
	DefaultSoakWarmup = 2000
)

func (c *SoakConfig) normalize() error {
	switch {
	case c.Requests < 0 || c.Duration < 0 || (c.Requests == 0 && c.Duration == 0):
		return errors.New("soak: set requests or duration")
	case c.Concurrency <= 0 || c.MaxPromptWords <= 0 || c.MaxAnswer <= 0 || c.Warmup < 0:
		return errors.New("soak: concurrency, prompt words and answer tokens must be positive")
	case c.AbortShare < 0 || c.StreamShare < 0 || c.ToolShare < 0 || c.FormatShare < 0 ||
		c.AbortShare+c.StreamShare > 1 || c.ToolShare+c.FormatShare > 1:
		return errors.New("soak: shares must be in 0..1 and abort+stream, tools+format at most 1")
	case c.RSSTolerance <= 0:
		c.RSSTolerance = 0.05
	}
	if c.Settle <= 0 {
		c.Settle = 10 * time.Second
	}
	return nil
}

// soakReq is one drawn request.
type soakReq struct {
	body    []byte
	stream  bool
	abortAt int // abort after this many events; -1: read to the end
	kind    string
}

// SoakOutcome counts requests by what happened to them.
type SoakOutcome struct {
	Sent      int            `json:"sent"`
	OK        int            `json:"ok"`      // 200 and a complete answer
	Aborted   int            `json:"aborted"` // closed by the client mid-stream, as planned
	Refused   int            `json:"refused"` // 4xx or 503 answered before any token
	Status5xx int            `json:"status_5xx"`
	Truncated int            `json:"truncated"` // a stream that ended without [DONE], or a bad body
	Errors    int            `json:"errors"`    // transport errors and timeouts
	ByStatus  map[string]int `json:"by_status"`
	ByKind    map[string]int `json:"by_kind"`
	Finish    map[string]int `json:"finish_reasons"`
	Samples   []string       `json:"error_samples,omitempty"`
}

// SoakServer is what the server's /metrics said.
type SoakServer struct {
	Goroutines   float64 `json:"goroutines"`
	RSSBytes     float64 `json:"rss_bytes"`
	Running      float64 `json:"running"`
	Waiting      float64 `json:"waiting"`
	InFlight     float64 `json:"in_flight"`
	Panics       float64 `json:"panics"`
	ChatRequests float64 `json:"chat_requests"` // asi1_requests_total of the chat route
	Chat200      float64 `json:"chat_200"`      // of those, status 200
	Chat499      float64 `json:"chat_499"`      // of those, client gone
	ChatRefused  float64 `json:"chat_refused"`  // of those, any other status
	Chat5xx      float64 `json:"chat_5xx"`      // of those, 5xx
	Finished     float64 `json:"finished"`      // asi1_requests_finished_total: stop, length, error
	Cancelled    float64 `json:"cancelled"`     // asi1_requests_finished_total{finish_reason="cancelled"}
}

// SoakCheck is one end check.
type SoakCheck struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// SoakReport is RunSoak's outcome.
type SoakReport struct {
	Config   SoakConfig  `json:"config"`
	WallMs   float64     `json:"wall_ms"`
	Outcome  SoakOutcome `json:"outcome"`
	Latency  Dist        `json:"latency_ms"` // of the completed requests
	Baseline SoakServer  `json:"baseline"`   // after the warm-up, idle
	End      SoakServer  `json:"end"`        // after the run, idle
	// RSS is the server's RSS every 10 s of the run (under load): a leak
	// grows through the run, a heap that settles levels off.
	RSS    []RSSSample `json:"rss"`
	Checks []SoakCheck `json:"checks"`
	Pass   bool        `json:"pass"`
}

// RSSSample is the server's RSS after Done requests of the run.
type RSSSample struct {
	Seconds float64 `json:"seconds"`
	Done    int64   `json:"done"`
	Bytes   float64 `json:"bytes"`
}

// Metric names the soak reads.
const (
	metricGoroutines = "go_goroutines"
	metricRSS        = "process_resident_memory_bytes"
	metricInFlight   = "asi1_requests_in_flight"
	metricPanics     = "asi1_panics_total"
	metricRequests   = "asi1_requests_total"
	metricFinished   = "asi1_requests_finished_total"
)

// RunSoak sends Warmup requests, reads the idle baseline, then keeps
// Concurrency requests in flight until Requests were sent or Duration has
// passed, waits for the server to be idle and checks: no 5xx, no panic,
// every slot free, goroutines back to the baseline, RSS within
// RSSTolerance of the baseline, and the counters adding up (chat requests =
// finished + cancelled + refused; every request sent was counted).
func RunSoak(ctx context.Context, c SoakConfig) (*SoakReport, error) {
	if err := c.normalize(); err != nil {
		return nil, err
	}
	murl := c.metricsURL()
	if murl == "" {
		return nil, errors.New("soak: needs the server's /metrics (--metrics-url)")
	}
	g, release, err := newScenarioGen(&c.ScenarioConfig, c.Concurrency)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &SoakReport{Config: c}
	rep.Outcome = SoakOutcome{ByStatus: map[string]int{}, ByKind: map[string]int{}, Finish: map[string]int{}}

	// A per-request timeout ends a hung request: it counts as an error.
	rng := rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	var rngMu sync.Mutex
	draw := func(i int) soakReq {
		rngMu.Lock()
		defer rngMu.Unlock()
		return c.draw(rng, g, i)
	}

	c.logf("soak: %d warm-up requests", c.Warmup)
	warm := &SoakOutcome{ByStatus: map[string]int{}, ByKind: map[string]int{}, Finish: map[string]int{}}
	var lat []time.Duration
	var warmMu sync.Mutex
	runPool(ctx, c.Concurrency, c.Warmup, 0, func(i int) { soakOne(ctx, g, c.RequestTimeout, draw(i), warm, &warmMu) })
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	base, err := c.idle(ctx, g, murl, release, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("soak: baseline: %w", err)
	}
	rep.Baseline = base

	c.logf("soak: %d requests (duration %v) at %d concurrent", c.Requests, c.Duration, c.Concurrency)
	var mu sync.Mutex
	t0 := time.Now()
	var done atomic.Int64
	stopProgress := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		tk := time.NewTicker(10 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tk.C:
				n := done.Load()
				c.logf("soak: %d done in %v", n, time.Since(t0).Round(time.Second))
				if st, err := scrapeSoak(ctx, murl, c.APIKey); err == nil && st.RSSBytes > 0 {
					mu.Lock()
					rep.RSS = append(rep.RSS, RSSSample{Seconds: time.Since(t0).Seconds(), Done: n, Bytes: st.RSSBytes})
					mu.Unlock()
				}
			}
		}
	}()
	runPool(ctx, c.Concurrency, c.Requests, c.Duration, func(i int) {
		d := soakOne(ctx, g, c.RequestTimeout, draw(c.Warmup+i), &rep.Outcome, &mu)
		if d > 0 {
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}
		done.Add(1)
	})
	close(stopProgress)
	pwg.Wait()
	rep.WallMs = ms(time.Since(t0))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Latency = Summarize(lat)
	end, err := c.idle(ctx, g, murl, release, &base, rep.Outcome.Sent)
	if err != nil {
		return nil, fmt.Errorf("soak: end: %w", err)
	}
	rep.End = end
	rep.check()
	return rep, nil
}

// runPool calls f(0), f(1)... from n workers until count calls were made
// (0: no count) or dur has passed (0: no bound) or ctx ends.
func runPool(ctx context.Context, n, count int, dur time.Duration, f func(i int)) {
	if count == 0 && dur == 0 {
		return
	}
	var next atomic.Int64
	deadline := time.Time{}
	if dur > 0 {
		deadline = time.Now().Add(dur)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				i := int(next.Add(1) - 1)
				if count > 0 && i >= count {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// draw makes request i.
func (c *SoakConfig) draw(rng *rand.Rand, g *gen, i int) soakReq {
	r := soakReq{abortAt: -1}
	u := rng.Float64()
	maxTok := 1 + rng.IntN(c.MaxAnswer)
	switch {
	case u < c.AbortShare:
		r.stream, r.abortAt, r.kind = true, rng.IntN(maxTok+1), "stream_abort"
	case u < c.AbortShare+c.StreamShare:
		r.stream, r.kind = true, "stream"
	default:
		r.kind = "plain"
	}
	body := map[string]any{
		"model":      g.cfg.Model,
		"messages":   []api.Message{api.NewMessage(api.RoleUser, Prompt(soakBase+i, 1+rng.IntN(c.MaxPromptWords)))},
		"max_tokens": maxTok,
		"stream":     r.stream,
	}
	if r.stream && rng.IntN(2) == 0 {
		body["stream_options"] = map[string]any{"include_usage": true}
	}
	// Sampling: greedy, or temperature with some of top_p, top_k, min_p,
	// penalties, a seed, a stop string.
	if rng.IntN(3) > 0 {
		body["temperature"] = []float64{0.3, 0.7, 1.0, 1.5}[rng.IntN(4)]
		if rng.IntN(2) == 0 {
			body["top_p"] = 0.9
		}
		if rng.IntN(3) == 0 {
			body["top_k"] = 40
		}
		if rng.IntN(4) == 0 {
			body["min_p"] = 0.05
		}
		if rng.IntN(2) == 0 {
			body["seed"] = rng.IntN(1 << 30)
		}
	} else {
		body["temperature"] = 0
	}
	if rng.IntN(4) == 0 {
		body["presence_penalty"], body["frequency_penalty"] = 0.5, 0.3
	}
	if rng.IntN(5) == 0 {
		body["stop"] = []string{"\n\n", "."}
	}
	if len(c.LogitBias) > 0 {
		lb := map[string]float64{}
		for k, v := range c.LogitBias {
			lb[strconv.Itoa(k)] = v
		}
		body["logit_bias"] = lb
	}
	v := rng.Float64()
	switch {
	case v < c.ToolShare:
		r.kind += "+tools"
		body["tools"] = []api.Tool{api.NewFunctionTool("get_weather", "Weather of a city",
			json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`))}
		switch rng.IntN(3) {
		case 0:
			body["tool_choice"] = api.ToolChoice{Mode: "auto"}
		case 1:
			body["tool_choice"] = api.ToolChoice{Mode: "required"}
		default:
			body["tool_choice"] = api.ToolChoice{Function: "get_weather"}
		}
	case v < c.ToolShare+c.FormatShare:
		r.kind += "+format"
		if rng.IntN(2) == 0 {
			body["response_format"] = api.ResponseFormat{Type: "json_object"}
		} else {
			body["response_format"] = api.ResponseFormat{Type: "json_schema", JSONSchema: &api.JSONSchema{
				Name: "answer", Strict: true, Schema: json.RawMessage(`{"type":"object",` +
					`"properties":{"name":{"type":"string"},"n":{"type":"integer"}},"required":["name","n"],"additionalProperties":false}`)}}
		}
	}
	r.body, _ = json.Marshal(body)
	return r
}

// soakBase is the prompt index range of the soak's requests.
const soakBase = 800000

// soakOne sends one request and counts its outcome in o under mu. It returns the request's duration when it completed, else 0.
func soakOne(ctx context.Context, g *gen, timeout time.Duration, r soakReq, o *SoakOutcome, mu *sync.Mutex) time.Duration {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, status, finish, detail := "", 0, "", ""
	t0 := time.Now()
	func() {
		resp, err := g.post(rctx, r.body, nil)
		var ae *api.Error
		switch {
		case errors.As(err, &ae):
			status = ae.Status
			res, detail = "refused", fmt.Sprintf("%.200s", ae.Error())
			if status >= 500 && (status != http.StatusServiceUnavailable || ae.Detail.Code != api.CodeOverloaded) {
				res = "5xx"
			}
			return
		case err != nil:
			res, detail = "error", err.Error()
			return
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		if !r.stream {
			var v api.ChatCompletion
			b, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				res, detail = "error", err.Error()
			case json.Unmarshal(b, &v) != nil || len(v.Choices) == 0:
				res, detail = "truncated", fmt.Sprintf("bad body: %.200s", b)
			default:
				res, finish = "ok", v.Choices[0].FinishReason
			}
			return
		}
		sr := api.NewSSEReader(resp.Body)
		events := 0
		for {
			ev, err := sr.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				res, detail = "truncated", fmt.Sprintf("stream ended after %d events without [DONE]", events)
				return
			}
			if err != nil {
				res, detail = "error", err.Error()
				return
			}
			if ev.IsDone() {
				res = "ok"
				return
			}
			ch, err := api.DecodeChunk(ev.Data)
			if errors.As(err, &ae) {
				res, detail = "5xx", fmt.Sprintf("error event: %.200s", ev.Data)
				return
			}
			if err != nil {
				res, detail = "truncated", err.Error()
				return
			}
			for _, c := range ch.Choices {
				if c.FinishReason != nil {
					finish = *c.FinishReason
				}
			}
			events++
			if r.abortAt >= 0 && events > r.abortAt {
				res = "aborted"
				return // closing the body cancels the request
			}
		}
	}()
	if res == "ok" && r.abortAt >= 0 {
		res = "aborted" // the answer ended before the planned abort point
	}
	if rctx.Err() != nil && ctx.Err() == nil && (res == "error" || res == "truncated") {
		res, detail = "error", "timeout after "+timeout.String()
	}
	mu.Lock()
	defer mu.Unlock()
	o.Sent++
	o.ByKind[r.kind]++
	if status != 0 {
		o.ByStatus[strconv.Itoa(status)]++
	}
	if finish != "" {
		o.Finish[finish]++
	}
	switch res {
	case "ok":
		o.OK++
	case "aborted":
		o.Aborted++
	case "refused":
		o.Refused++
	case "5xx":
		o.Status5xx++
	case "truncated":
		o.Truncated++
	default:
		o.Errors++
	}
	if detail != "" && res != "refused" && len(o.Samples) < 10 {
		o.Samples = append(o.Samples, r.kind+": "+detail)
	}
	if res == "ok" {
		return time.Since(t0)
	}
	return 0
}

// idle waits until the server has nothing running or waiting and its
// goroutines are down to want's (when given, plus the slack), at most
// Settle, and returns its metrics then. The client's idle connections are
// closed first: each holds a server goroutine.
//
// With want, it also waits for the counters of the sent requests: a
// handler counts its request in asi1_requests_total as it returns, a moment
// after the request left the scheduler.
func (c *SoakConfig) idle(ctx context.Context, g *gen, murl string, closeIdle func(), want *SoakServer, sent int) (SoakServer, error) {
	deadline := time.Now().Add(c.Settle)
	for {
		closeIdle()
		s, err := scrapeSoak(ctx, murl, c.APIKey)
		if err != nil {
			return s, err
		}
		quiet := s.Running == 0 && s.Waiting == 0 && s.InFlight == 0
		counted := want == nil || (s.ChatRequests-want.ChatRequests == float64(sent) &&
			s.Finished+s.Cancelled+s.ChatRefused-want.Finished-want.Cancelled-want.ChatRefused == float64(sent))
		if quiet && counted && (want == nil || s.Goroutines <= want.Goroutines+float64(c.GoroutineSlack)) {
			return s, nil
		}
		if time.Now().After(deadline) {
			return s, nil // the checks report what is still busy
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return s, err
		}
	}
}

// scrapeSoak reads /metrics on a connection of its own (not kept alive, so
// that it holds no server goroutine afterwards).
func scrapeSoak(ctx context.Context, url, key string) (SoakServer, error) {
	var s SoakServer
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	req.Close = true
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	m, err := api.ParseMetrics(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return s, err
	}
	for _, x := range m {
		v := x.Value
		switch x.Name {
		case metricGoroutines:
			s.Goroutines = v
		case metricRSS:
			s.RSSBytes = v
		case MetricRunning:
			s.Running = v
		case MetricWaiting:
			s.Waiting = v
		case metricInFlight:
			s.InFlight = v
		case metricPanics:
			s.Panics = v
		case metricFinished:
			if x.Labels["finish_reason"] == "cancelled" {
				s.Cancelled += v
			} else {
				s.Finished += v
			}
		case metricRequests:
			if x.Labels["endpoint"] != api.ChatPath {
				continue
			}
			s.ChatRequests += v
			switch st := x.Labels["status"]; {
			case st == "200":
				s.Chat200 += v
			case st == "499":
				s.Chat499 += v
			default:
				s.ChatRefused += v
				if strings.HasPrefix(st, "5") {
					s.Chat5xx += v
				}
			}
		}
	}
	return s, nil
}

// check fills Checks and Pass.
func (rep *SoakReport) check() {
	b, e, o := rep.Baseline, rep.End, rep.Outcome
	add := func(name string, pass bool, format string, args ...any) {
		rep.Checks = append(rep.Checks, SoakCheck{Name: name, Pass: pass, Detail: fmt.Sprintf(format, args...)})
	}
	d5xx := e.Chat5xx - b.Chat5xx
	add("no_5xx", o.Status5xx == 0 && d5xx == 0, "client saw %d 5xx answers or error events, server counted %.0f", o.Status5xx, d5xx)
	add("no_panics", e.Panics == 0, "asi1_panics_total %.0f (%.0f after the warm-up)", e.Panics, e.Panics-b.Panics)
	add("no_hung_or_broken_requests", o.Errors == 0 && o.Truncated == 0, "%d transport errors or timeouts, %d truncated answers", o.Errors, o.Truncated)
	add("slots_free", e.Running == 0 && e.Waiting == 0 && e.InFlight == 0, "running %.0f, waiting %.0f, in flight %.0f", e.Running, e.Waiting, e.InFlight)
	add("goroutines_idle", e.Goroutines <= b.Goroutines+float64(rep.Config.GoroutineSlack),
		"%.0f at the end, %.0f idle after the warm-up (slack %d)", e.Goroutines, b.Goroutines, rep.Config.GoroutineSlack)
	drift := ratio(e.RSSBytes, b.RSSBytes) - 1
	add("rss_stable", b.RSSBytes > 0 && drift <= rep.Config.RSSTolerance,
		"%.1f MiB at the end, %.1f MiB after the warm-up (%+.1f%%, growth bound %.0f%%)", e.RSSBytes/(1<<20), b.RSSBytes/(1<<20), 100*drift, 100*rep.Config.RSSTolerance)
	reqs := e.ChatRequests - b.ChatRequests
	fin, can, ref := e.Finished-b.Finished, e.Cancelled-b.Cancelled, e.ChatRefused-b.ChatRefused
	add("metrics_add_up", reqs == fin+can+ref && int(reqs) == o.Sent,
		"chat requests %.0f = finished %.0f + cancelled %.0f + refused %.0f (sum %.0f); the client sent %d", reqs, fin, can, ref, fin+can+ref, o.Sent)
	rep.Pass = true
	for _, c := range rep.Checks {
		rep.Pass = rep.Pass && c.Pass
	}
}

// WriteText prints the report for a person.
func (rep *SoakReport) WriteText(w io.Writer) {
	o := rep.Outcome
	fmt.Fprintf(w, "soak: %d requests in %.1f s at %d concurrent (after %d warm-up)\n", o.Sent, rep.WallMs/1000, rep.Config.Concurrency, rep.Config.Warmup)
	fmt.Fprintf(w, "  ok %d, aborted mid-stream %d, refused %d, 5xx %d, truncated %d, errors %d\n", o.OK, o.Aborted, o.Refused, o.Status5xx, o.Truncated, o.Errors)
	fmt.Fprintf(w, "  kinds: %s\n", fmtCounts(o.ByKind))
	fmt.Fprintf(w, "  statuses: %s; finish reasons: %s\n", fmtCounts(o.ByStatus), fmtCounts(o.Finish))
	fmt.Fprintf(w, "  latency of completed requests: p50 %.0f ms, p99 %.0f ms\n", rep.Latency.P50, rep.Latency.P99)
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "  %-28s %s  %s\n", c.Name, verdict(c.Pass), c.Detail)
	}
	if line := rep.rssTrend(); line != "" {
		fmt.Fprintf(w, "  RSS under load: %s\n", line)
	}
	for _, s := range o.Samples {
		fmt.Fprintf(w, "  sample: %s\n", s)
	}
	fmt.Fprintf(w, "soak: %s\n", verdict(rep.Pass))
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// rssTrend says how RSS moved under load: at each quarter of the run and
// the growth over its second half ("" with fewer than 4 samples).
func (rep *SoakReport) rssTrend() string {
	n := len(rep.RSS)
	if n < 4 {
		return ""
	}
	var parts []string
	for _, q := range []int{0, n / 4, n / 2, 3 * n / 4, n - 1} {
		s := rep.RSS[q]
		parts = append(parts, fmt.Sprintf("%.1f MiB at %d", s.Bytes/(1<<20), s.Done))
	}
	mid, last := rep.RSS[n/2].Bytes, rep.RSS[n-1].Bytes
	return fmt.Sprintf("%s requests; second half %+.1f%%", strings.Join(parts, ", "), 100*(ratio(last, mid)-1))
}
