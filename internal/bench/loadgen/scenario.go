package loadgen

// Scenarios: three measurements of the serving targets of issue #3, each
// against any OpenAI-compatible URL.
//
//   - RunPrefill (chunked prefill): while a long prompt is being processed,
//     the chunk gaps of running streams and the TTFT of short requests that
//     arrive then, against the same with only the streams running.
//   - RunChat (prefix reuse): a multi-turn chat that resends its whole
//     history each turn; per turn the prompt tokens, cached tokens and the
//     server's prefix-cache counters, and the last turn's TTFT against a cold
//     request with the same prompt.
//   - RunOverload: with the slots and the queue full, how fast and how new
//     requests are refused, and whether the admitted ones finish.
//
// The scenarios reuse the load generator's request and stream reading
// (gen.doBody, gen.readStream). Chunk gaps stand for inter-token latency:
// each report gives the tokens per chunk of its streams (1 on asi1d).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

// ScenarioConfig is what every scenario needs.
type ScenarioConfig struct {
	URL         string          `json:"url"`
	Model       string          `json:"model"`
	APIKey      string          `json:"-"`
	Temperature float64         `json:"temperature"`
	LogitBias   map[int]float64 `json:"logit_bias,omitempty"`
	// Calibrate sizes prompts from usage.prompt_tokens of a few probes
	// (see Config.Calibrate); off: one word per token.
	Calibrate      bool          `json:"calibrate"`
	RequestTimeout time.Duration `json:"request_timeout_ns"`
	// MetricsURL is scraped for the server's Prometheus counters; "": the
	// URL's base with /metrics; "off": none.
	MetricsURL string `json:"metrics_url,omitempty"`
	// Log receives a line per step; nil: none.
	Log io.Writer `json:"-"`
	// Client to use; nil: one with its own transport.
	Client *http.Client `json:"-"`
}

// Index ranges of the scenarios' prompts, apart from each other and from
// warmupBase and probeBase: no two requests share more than a few tokens of
// prefix unless a scenario wants it.
const (
	streamBase   = 100000
	shortBase    = 300000
	longBase     = 400000
	evictBase    = 500000
	fillBase     = 600000
	overloadBase = 700000
)

// newScenarioGen returns a generator for a scenario and a func that
// releases its transport.
func newScenarioGen(sc *ScenarioConfig, conns int) (*gen, func(), error) {
	cfg := Config{
		URL: sc.URL, Model: sc.Model, APIKey: sc.APIKey, Temperature: sc.Temperature, LogitBias: sc.LogitBias,
		RequestTimeout: sc.RequestTimeout, Concurrency: conns, Requests: 1, PromptTokens: 1, MaxTokens: 1, Client: sc.Client,
	}
	if err := cfg.normalize(); err != nil {
		return nil, nil, err
	}
	sc.Model, sc.RequestTimeout = cfg.Model, cfg.RequestTimeout
	release := func() {}
	client := sc.Client
	if client == nil {
		tr := NewTransport(conns)
		release = tr.CloseIdleConnections
		client = &http.Client{Transport: tr}
	}
	return newGen(cfg, client), release, nil
}

// logf writes a progress line.
func (sc *ScenarioConfig) logf(format string, args ...any) {
	if sc.Log != nil {
		fmt.Fprintf(sc.Log, format+"\n", args...)
	}
}

// wordsFor returns how many words of Text make a prompt of about tokens
// tokens (template included): calibrated when sc.Calibrate, else tokens.
// A long prompt is first calibrated at calibrateSmall tokens, whose words
// per token give the first probe: a vocabulary with several tokens a word
// would otherwise overshoot the server's context with that probe.
func (g *gen) wordsFor(ctx context.Context, sc *ScenarioConfig, tokens int) (int, error) {
	if !sc.Calibrate {
		return tokens, nil
	}
	saved := g.cfg.PromptTokens
	defer func() { g.cfg.PromptTokens = saved }()
	start := tokens
	if tokens > 2*calibrateSmall {
		g.cfg.PromptTokens = calibrateSmall
		w, err := g.calibrate(ctx)
		if err != nil {
			return 0, fmt.Errorf("calibrating %d-token prompts: %w", calibrateSmall, err)
		}
		start = tokens * w / calibrateSmall
	}
	g.cfg.PromptTokens = tokens
	w, err := g.calibrateFrom(ctx, start)
	if err != nil {
		return 0, fmt.Errorf("calibrating %d-token prompts: %w", tokens, err)
	}
	return w, nil
}

// calibrateSmall is the prompt length (tokens) of wordsFor's first calibration.
const calibrateSmall = 128

// metricsURL is where the server's metrics are scraped; "" for none.
func (sc *ScenarioConfig) metricsURL() string {
	switch sc.MetricsURL {
	case "off", "-":
		return ""
	case "":
		return (&api.Client{BaseURL: sc.URL}).URL(api.MetricsPath)
	}
	return sc.MetricsURL
}

// Metrics is a scrape of the server's Prometheus metrics.
type Metrics = api.Metrics

// Prometheus metric names the scenarios read.
const (
	MetricPrefixQueried = "asi1_prefix_cache_queried_tokens_total"
	MetricPrefixHit     = "asi1_prefix_cache_hit_tokens_total"
	MetricPromptTokens  = "asi1_prompt_tokens_total"
	MetricRunning       = "asi1_requests_running"
	MetricWaiting       = "asi1_requests_waiting"
)

// scrape reads the server's metrics from url.
func (g *gen) scrape(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if g.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+g.cfg.APIKey)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return api.ParseMetrics(io.LimitReader(resp.Body, 16<<20))
}

// chunkTimes returns the arrival times of r's text chunks.
func (r *RequestResult) chunkTimes() []time.Time {
	if r.first.IsZero() {
		return nil
	}
	ts := make([]time.Time, 0, len(r.gaps)+1)
	t := r.first
	ts = append(ts, t)
	for _, g := range r.gaps {
		t = t.Add(g)
		ts = append(ts, t)
	}
	return ts
}

// span is a stretch of wall time.
type span struct{ from, to time.Time }

// gapsIn splits the chunk gaps of res (each between two consecutive text
// chunks of one request) by whether they overlap w: a gap overlaps when it
// ends after w.from and starts before w.to. A stall that begins before the
// window or ends after it is thus still counted in it.
func gapsIn(res []RequestResult, w span) (in, out []time.Duration) {
	return splitGaps(res, func(from, to time.Time) bool { return to.After(w.from) && from.Before(w.to) })
}

// gapsWithin are the chunk gaps of res that lie wholly inside w: an idle
// window's gaps, none of them begun in an earlier round's prefill.
func gapsWithin(res []RequestResult, w span) []time.Duration {
	in, _ := splitGaps(res, func(from, to time.Time) bool { return !from.Before(w.from) && !to.After(w.to) })
	return in
}

// splitGaps splits the chunk gaps of res by whether keep holds for the
// gap's start and end.
func splitGaps(res []RequestResult, keep func(from, to time.Time) bool) (in, out []time.Duration) {
	for i := range res {
		ts := res[i].chunkTimes()
		for k := 1; k < len(ts); k++ {
			if keep(ts[k-1], ts[k]) {
				in = append(in, ts[k].Sub(ts[k-1]))
			} else {
				out = append(out, ts[k].Sub(ts[k-1]))
			}
		}
	}
	return in, out
}

// ttftOf is r's time to first text chunk; ok false when it had none or failed.
func ttftOf(r *RequestResult) (time.Duration, bool) {
	if r.ErrorKind != "" || r.first.IsZero() {
		return 0, false
	}
	return r.first.Sub(r.start), true
}

// ratio is a/b, 0 when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tokensPerChunk is the completion tokens over the text chunks of the
// successful results with usage; 0 when there are none.
func tokensPerChunk(res []RequestResult) float64 {
	tok, ch := 0, 0
	for i := range res {
		if r := &res[i]; r.ErrorKind == "" && r.HasUsage && r.Chunks > 0 {
			tok += r.CompletionTokens
			ch += r.Chunks
		}
	}
	if ch == 0 {
		return 0
	}
	return float64(tok) / float64(ch)
}

// streamSet keeps n streams running: each sends a streaming request and,
// when it ends, the next one, until stop.
type streamSet struct {
	mu       sync.Mutex
	res      []RequestResult
	errs     atomic.Int64
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	pending  atomic.Int64  // streams without a first chunk yet
	allFirst chan struct{} // closed when every stream has had a first chunk
}

func startStreams(ctx context.Context, g *gen, n, words, maxTokens int) *streamSet {
	ctx, cancel := context.WithCancel(ctx)
	s := &streamSet{cancel: cancel, allFirst: make(chan struct{})}
	s.pending.Store(int64(n))
	for w := range n {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var once sync.Once
			first := func(time.Time) {
				once.Do(func() {
					if s.pending.Add(-1) == 0 {
						close(s.allFirst)
					}
				})
			}
			for i := 0; ctx.Err() == nil; i++ {
				r := g.doBody(ctx, g.body(Prompt(streamBase+i*n+w, words), maxTokens, true), reqOpts{onFirst: first})
				r.Stream, r.Index = w, i
				s.mu.Lock()
				s.res = append(s.res, r)
				s.mu.Unlock()
				if r.ErrorKind != "" && r.ErrorKind != ErrCancelled {
					s.errs.Add(1)
					_ = sleepCtx(ctx, 100*time.Millisecond) // no busy loop against a failing server
				}
			}
		}()
	}
	return s
}

// waitRunning waits until every stream has had a first chunk. It fails when
// ctx ends, after timeout, or when the streams failed 3n times first.
func (s *streamSet) waitRunning(ctx context.Context, n int, timeout time.Duration) error {
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	deadline := time.After(timeout)
	for {
		select {
		case <-s.allFirst:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the %d streams did not all start within %v", n, timeout)
		case <-tk.C:
			if s.errs.Load() >= int64(3*n) {
				s.mu.Lock()
				defer s.mu.Unlock()
				for _, r := range s.res {
					if r.ErrorKind != "" && r.ErrorKind != ErrCancelled {
						return fmt.Errorf("streams fail: %s: %.300s", r.ErrorKind, r.Error)
					}
				}
				return errors.New("streams fail")
			}
		}
	}
}

// stop cancels the streams and returns every request's result.
func (s *streamSet) stop() []RequestResult {
	s.cancel()
	s.wg.Wait()
	return s.res
}

// errorCounts counts results' errors by kind, cancellations left out.
func errorCounts(res []RequestResult) map[string]int {
	m := map[string]int{}
	for _, r := range res {
		if r.ErrorKind != "" && r.ErrorKind != ErrCancelled {
			m[r.ErrorKind]++
		}
	}
	return m
}

func msSince(t0, t time.Time) float64 { return ms(t.Sub(t0)) }

// ---------------------------------------------------------------------------
// prefill

// ---------------------------------------------------------------------------
// chat

// ---------------------------------------------------------------------------
// overload
