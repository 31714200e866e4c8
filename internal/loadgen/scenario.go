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
	"slices"
	"strconv"
	"strings"
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

// PrefillConfig describes RunPrefill.
type PrefillConfig struct {
	ScenarioConfig
	Streams int `json:"streams"` // running streams
	// StreamTokens is the prompt length of the streams and of the short
	// requests.
	StreamTokens int `json:"stream_tokens"`
	// StreamMaxTokens is max_tokens of a stream's request; a stream whose
	// request ends (max_tokens or EOS) sends the next one at once.
	StreamMaxTokens int           `json:"stream_max_tokens"`
	LongTokens      int           `json:"long_tokens"` // prompt length of the long request
	Idle            time.Duration `json:"idle_ns"`     // the idle window
	Shorts          int           `json:"shorts"`      // short requests in the idle window, one at a time
	ShortMaxTokens  int           `json:"short_max_tokens"`
	// ShortDelay is how long after sending the long request the first
	// short one is sent; they then follow one another until the long
	// request's first token.
	ShortDelay time.Duration `json:"short_delay_ns"`
	Rounds     int           `json:"rounds"`   // long requests, one after the other
	Pause      time.Duration `json:"pause_ns"` // between rounds, and after the streams start
}

// Defaults of PrefillConfig.
const (
	DefaultPrefillStreams     = 8
	DefaultPrefillLongTokens  = 2000
	DefaultPrefillShortTokens = 32
)

func (c *PrefillConfig) normalize() error {
	switch {
	case c.Streams <= 0 || c.StreamTokens <= 0 || c.StreamMaxTokens <= 0 || c.LongTokens <= 0 ||
		c.Shorts <= 0 || c.ShortMaxTokens <= 0 || c.Rounds <= 0 || c.Idle <= 0:
		return errors.New("prefill: streams, token counts, shorts, rounds and the idle window must be positive")
	case c.ShortDelay < 0 || c.Pause < 0:
		return errors.New("prefill: negative delay")
	}
	return nil
}

// PrefillRound is one long request and what happened during its prefill
// (from its send to its first token).
type PrefillRound struct {
	StartMs          float64   `json:"start_ms"` // from the scenario's start
	LongTTFTMs       float64   `json:"long_ttft_ms"`
	LongPromptTokens int       `json:"long_prompt_tokens"`
	LongCachedTokens int       `json:"long_cached_tokens"`
	Gaps             Dist      `json:"gaps"`            // stream chunk gaps overlapping the window
	IdleGapP50Ms     float64   `json:"idle_gap_p50_ms"` // the streams' gaps in the idle window before the round
	ShortTTFTMs      []float64 `json:"short_ttft_ms"`   // short requests sent in the window
	ShortsLate       int       `json:"shorts_late"`     // sent after the long request's first token: not counted
	Error            string    `json:"error,omitempty"`
}

// PrefillReport is RunPrefill's outcome. Times are milliseconds.
type PrefillReport struct {
	Config      PrefillConfig `json:"config"`
	StreamWords int           `json:"stream_words"`
	LongWords   int           `json:"long_words"`

	IdleWindowMs float64 `json:"idle_window_ms"`
	// IdleGaps are the streams' chunk gaps in the idle windows, all rounds
	// together; IdleTTFT the TTFT of the short requests sent then (only the
	// streams running).
	IdleGaps Dist `json:"idle_gaps"`
	IdleTTFT Dist `json:"idle_ttft"`
	// PrefillGaps are the streams' chunk gaps overlapping a long request's
	// prefill, all rounds together; PrefillTTFT the TTFT of the short
	// requests sent during one.
	PrefillGaps Dist `json:"prefill_gaps"`
	PrefillTTFT Dist `json:"prefill_ttft"`
	LongTTFT    Dist `json:"long_ttft"`

	// ITLRatio is PrefillGaps.P99 / IdleGaps.P50 (target <= 3).
	ITLRatio float64 `json:"itl_ratio"`
	// TTFTRatio is PrefillTTFT.P50 / IdleTTFT.P50 (target <= 3);
	// TTFTMaxRatio uses PrefillTTFT.Max.
	TTFTRatio     float64 `json:"ttft_ratio"`
	TTFTMaxRatio  float64 `json:"ttft_max_ratio"`
	ITLTargetMet  bool    `json:"itl_target_met"`
	TTFTTargetMet bool    `json:"ttft_target_met"`

	Rounds []PrefillRound `json:"rounds"`

	StreamRequests int            `json:"stream_requests"` // stream requests sent (restarts included)
	StreamErrors   map[string]int `json:"stream_errors"`
	StreamFinish   map[string]int `json:"stream_finish"` // of the stream requests that ended before the scenario did
	ShortErrors    map[string]int `json:"short_errors"`
	TokensPerChunk float64        `json:"tokens_per_chunk"` // of every request that finished
	Warnings       []string       `json:"warnings,omitempty"`
}

// PrefillTarget is the bound of both ratios of the prefill scenario.
const PrefillTarget = 3.0

// RunPrefill runs the chunked-prefill scenario:
//
//  1. Streams streaming requests start and run until the end; once each has
//     had a first token and Pause passed, the rounds begin.
//  2. Each of Rounds rounds opens with an idle window (Idle): the streams'
//     chunk gaps are recorded and Shorts short requests are sent one at a
//     time, spread over the window. A window per round measures the idle
//     gaps at the depth the streams have reached by then, since a stream's
//     step slows as its KV grows.
//  3. The round then sends one request with a LongTokens prompt
//     (max_tokens 1). Its prefill window runs from its send to its first
//     token. ShortDelay after the send, short requests are sent one at a
//     time until the long request's first token; their TTFT and the
//     streams' gaps overlapping the window are recorded. Pause follows.
//
// Streams whose request ends start another at once, so that Streams keep
// running (ban EOS with LogitBias to avoid the restarts' short prefills).
// The server needs Streams+2 slots (streams, long, short) so that nothing
// queues.
func RunPrefill(ctx context.Context, c PrefillConfig) (*PrefillReport, error) {
	if err := c.normalize(); err != nil {
		return nil, err
	}
	g, release, err := newScenarioGen(&c.ScenarioConfig, c.Streams+4)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &PrefillReport{Config: c, ShortErrors: map[string]int{}}
	if rep.StreamWords, err = g.wordsFor(ctx, &c.ScenarioConfig, c.StreamTokens); err != nil {
		return nil, err
	}
	if rep.LongWords, err = g.wordsFor(ctx, &c.ScenarioConfig, c.LongTokens); err != nil {
		return nil, err
	}
	nShort := 0
	short := func() RequestResult {
		nShort++
		r := g.doBody(ctx, g.body(Prompt(shortBase+nShort, rep.StreamWords), c.ShortMaxTokens, true), reqOpts{})
		if r.ErrorKind != "" && r.ErrorKind != ErrCancelled {
			rep.ShortErrors[r.ErrorKind]++
		}
		return r
	}

	t0 := time.Now()
	c.logf("prefill: starting %d streams (prompt %d words, max_tokens %d)", c.Streams, rep.StreamWords, c.StreamMaxTokens)
	ss := startStreams(ctx, g, c.Streams, rep.StreamWords, c.StreamMaxTokens)
	if err := ss.waitRunning(ctx, c.Streams, c.RequestTimeout); err != nil {
		ss.stop()
		return nil, err
	}
	if err := sleepCtx(ctx, c.Pause); err != nil {
		ss.stop()
		return nil, err
	}

	// Idle windows: one before each round, so that the streams' idle gaps
	// are measured at the depths their prefill-window gaps reach (a
	// stream's step slows as its KV grows).
	var idles []span
	var idleShorts []RequestResult
	idleWindow := func() {
		c.logf("prefill: idle window %v with %d short requests", c.Idle, c.Shorts)
		w := span{from: time.Now()}
		for k := range c.Shorts {
			if err := sleepCtx(ctx, time.Until(w.from.Add(c.Idle*time.Duration(k)/time.Duration(c.Shorts)))); err != nil {
				break
			}
			idleShorts = append(idleShorts, short())
		}
		_ = sleepCtx(ctx, time.Until(w.from.Add(c.Idle)))
		w.to = time.Now()
		idles = append(idles, w)
	}

	// Rounds.
	type roundRun struct {
		long    RequestResult
		shorts  []RequestResult
		idleP50 float64 // the streams' gaps in the idle window before it, ms
	}
	var runs []roundRun
	for round := range c.Rounds {
		if ctx.Err() != nil {
			break
		}
		idleWindow()
		c.logf("prefill: round %d/%d: long request (%d words)", round+1, c.Rounds, rep.LongWords)
		longFirst := make(chan struct{})
		done := make(chan RequestResult, 1)
		go func() {
			var once sync.Once
			end := func(time.Time) { once.Do(func() { close(longFirst) }) }
			r := g.doBody(ctx, g.body(Prompt(longBase+round, rep.LongWords), 1, true), reqOpts{onFirst: end})
			end(time.Time{}) // also when it failed or had no text
			done <- r
		}()
		var rr roundRun
		select {
		case <-time.After(c.ShortDelay):
		case <-longFirst:
		case <-ctx.Done():
		}
	shorts:
		for ctx.Err() == nil {
			select {
			case <-longFirst:
				break shorts
			default:
			}
			rr.shorts = append(rr.shorts, short())
		}
		rr.long = <-done
		runs = append(runs, rr)
		if err := sleepCtx(ctx, c.Pause); err != nil {
			break
		}
	}
	streams := ss.stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Arithmetic.
	var idleGaps []time.Duration
	for i, w := range idles {
		rep.IdleWindowMs += ms(w.to.Sub(w.from))
		gaps := gapsWithin(streams, w)
		idleGaps = append(idleGaps, gaps...)
		if i < len(runs) {
			runs[i].idleP50 = Summarize(gaps).P50
		}
	}
	rep.IdleGaps = Summarize(idleGaps)
	var idleTTFT []time.Duration
	for i := range idleShorts {
		if d, ok := ttftOf(&idleShorts[i]); ok {
			idleTTFT = append(idleTTFT, d)
		}
	}
	rep.IdleTTFT = Summarize(idleTTFT)
	var allGaps, allTTFT, longTTFT []time.Duration
	for _, rr := range runs {
		pr := PrefillRound{StartMs: msSince(t0, rr.long.start), LongPromptTokens: rr.long.PromptTokens, LongCachedTokens: rr.long.CachedTokens, IdleGapP50Ms: rr.idleP50}
		d, ok := ttftOf(&rr.long)
		if !ok {
			pr.Error = rr.long.ErrorKind + ": " + rr.long.Error
			if rr.long.ErrorKind == "" {
				pr.Error = "no token"
			}
			rep.Rounds = append(rep.Rounds, pr)
			continue
		}
		pr.LongTTFTMs = ms(d)
		longTTFT = append(longTTFT, d)
		w := span{from: rr.long.start, to: rr.long.first}
		gaps, _ := gapsIn(streams, w)
		pr.Gaps = Summarize(gaps)
		allGaps = append(allGaps, gaps...)
		for i := range rr.shorts {
			s := &rr.shorts[i]
			if !s.start.Before(w.to) {
				pr.ShortsLate++
				continue
			}
			if d, ok := ttftOf(s); ok {
				pr.ShortTTFTMs = append(pr.ShortTTFTMs, ms(d))
				allTTFT = append(allTTFT, d)
			}
		}
		rep.Rounds = append(rep.Rounds, pr)
	}
	rep.PrefillGaps, rep.PrefillTTFT, rep.LongTTFT = Summarize(allGaps), Summarize(allTTFT), Summarize(longTTFT)
	rep.ITLRatio = ratio(rep.PrefillGaps.P99, rep.IdleGaps.P50)
	rep.TTFTRatio = ratio(rep.PrefillTTFT.P50, rep.IdleTTFT.P50)
	rep.TTFTMaxRatio = ratio(rep.PrefillTTFT.Max, rep.IdleTTFT.P50)
	rep.ITLTargetMet = rep.PrefillGaps.N > 0 && rep.IdleGaps.N > 0 && rep.ITLRatio <= PrefillTarget
	rep.TTFTTargetMet = rep.PrefillTTFT.N > 0 && rep.IdleTTFT.N > 0 && rep.TTFTRatio <= PrefillTarget

	rep.StreamRequests = len(streams)
	rep.StreamErrors = errorCounts(streams)
	rep.StreamFinish = map[string]int{}
	for _, r := range streams {
		if r.ErrorKind == "" && r.Finish != "" {
			rep.StreamFinish[r.Finish]++
		}
	}
	// Streams cut off at the end have no usage: count the short and long
	// requests too.
	all := append(slices.Clone(streams), idleShorts...)
	for _, rr := range runs {
		all = append(append(all, rr.shorts...), rr.long)
	}
	rep.TokensPerChunk = tokensPerChunk(all)
	rep.prefillWarnings()
	return rep, nil
}

func (rep *PrefillReport) prefillWarnings() {
	c := rep.Config
	warn := func(format string, args ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, args...)) }
	if rep.IdleGaps.N == 0 {
		warn("no stream chunk gaps in the idle windows: lengthen --idle or raise --stream-max-tokens")
	}
	if rep.PrefillGaps.N == 0 {
		warn("no stream chunk gaps during any prefill window")
	}
	if rep.PrefillTTFT.N == 0 {
		warn("no short request was sent during a prefill window (the long request's TTFT is shorter than --short-delay %v?)", c.ShortDelay)
	}
	if restarts := rep.StreamRequests - c.Streams; restarts > 0 {
		warn("%d stream requests ended and were restarted (finish %s): their short prefills disturb the gaps a little; ban EOS with --logit-bias or raise --stream-max-tokens",
			restarts, counts(rep.StreamFinish))
	}
	if len(rep.StreamErrors) > 0 {
		warn("stream errors: %s", counts(rep.StreamErrors))
	}
	if len(rep.ShortErrors) > 0 {
		warn("short request errors: %s", counts(rep.ShortErrors))
	}
	if rep.TokensPerChunk > 1.05 {
		warn("%.2f tokens per chunk: chunk gaps are not token gaps", rep.TokensPerChunk)
	}
	for i, r := range rep.Rounds {
		if r.Error != "" {
			warn("round %d: long request failed: %.200s", i+1, r.Error)
		} else if r.LongCachedTokens > r.LongPromptTokens/10 {
			warn("round %d: %d of the long prompt's %d tokens came from the prefix cache", i+1, r.LongCachedTokens, r.LongPromptTokens)
		}
	}
}

// WriteText prints the report for a person.
func (rep *PrefillReport) WriteText(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "prefill     %s (model %s): %d streams (prompt ~%d tokens, %d words), long prompt ~%d tokens (%d words), %d rounds\n",
		c.URL, c.Model, c.Streams, c.StreamTokens, rep.StreamWords, c.LongTokens, rep.LongWords, c.Rounds)
	fmt.Fprintf(w, "streams     %d requests (%d restarts), finish %s, errors %s; %.2f tokens per chunk\n",
		rep.StreamRequests, max(0, rep.StreamRequests-c.Streams), counts(rep.StreamFinish), counts(rep.StreamErrors), rep.TokensPerChunk)
	fmt.Fprintf(w, "%-28s %6s %9s %9s %9s %9s\n", "ms", "n", "p50", "p90", "p99", "max")
	for _, row := range []struct {
		name string
		d    Dist
	}{
		{fmt.Sprintf("idle gap (%.0f ms windows)", rep.IdleWindowMs), rep.IdleGaps},
		{"prefill gap", rep.PrefillGaps},
		{"idle short ttft", rep.IdleTTFT},
		{"prefill short ttft", rep.PrefillTTFT},
		{"long ttft", rep.LongTTFT},
	} {
		fmt.Fprintf(w, "%-28s %6d %9.3f %9.3f %9.3f %9.3f\n", row.name, row.d.N, row.d.P50, row.d.P90, row.d.P99, row.d.Max)
	}
	for i, r := range rep.Rounds {
		if r.Error != "" {
			fmt.Fprintf(w, "round %d     failed: %.200s\n", i+1, r.Error)
			continue
		}
		fmt.Fprintf(w, "round %d     long ttft %.1f ms (prompt %d, cached %d), idle gap p50 %.3f ms, gaps n %d p50 %.3f p99 %.3f max %.3f ms, shorts %d (ttft %s ms), late %d\n",
			i+1, r.LongTTFTMs, r.LongPromptTokens, r.LongCachedTokens, r.IdleGapP50Ms, r.Gaps.N, r.Gaps.P50, r.Gaps.P99, r.Gaps.Max,
			len(r.ShortTTFTMs), fmtList(r.ShortTTFTMs), r.ShortsLate)
	}
	fmt.Fprintf(w, "itl         prefill gap p99 / idle gap p50 = %.3f / %.3f = %.2f (target <= %g): %s\n",
		rep.PrefillGaps.P99, rep.IdleGaps.P50, rep.ITLRatio, PrefillTarget, verdict(rep.ITLTargetMet))
	fmt.Fprintf(w, "ttft        prefill short p50 / idle short p50 = %.3f / %.3f = %.2f (target <= %g): %s; max %.2fx\n",
		rep.PrefillTTFT.P50, rep.IdleTTFT.P50, rep.TTFTRatio, PrefillTarget, verdict(rep.TTFTTargetMet), rep.TTFTMaxRatio)
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "warning     %s\n", s)
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func fmtList(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strings.Join(parts, " ")
}

// ---------------------------------------------------------------------------
// chat

// ChatConfig describes RunChat.
type ChatConfig struct {
	ScenarioConfig
	Turns        int `json:"turns"`
	SystemTokens int `json:"system_tokens"` // the system message (0: none)
	TurnTokens   int `json:"turn_tokens"`   // each user message
	MaxTokens    int `json:"max_tokens"`    // each answer
	// Evict requests with distinct EvictTokens prompts, all at once, push
	// the chat out of the server's prefix cache before the cold request
	// (use at least the server's --parallel).
	Evict          int `json:"evict"`
	EvictTokens    int `json:"evict_tokens"`
	EvictMaxTokens int `json:"evict_max_tokens"`
	// SessionID is sent as x-session-id with the chat's requests ("": none).
	SessionID string `json:"session_id,omitempty"`
	// Slack is how many tokens a turn may process beyond those it added
	// (re-tokenization where the answer meets the next message) and still
	// count as reusing its history.
	Slack int `json:"slack"`
}

func (c *ChatConfig) normalize() error {
	switch {
	case c.Turns < 2:
		return errors.New("chat: at least 2 turns")
	case c.TurnTokens <= 0 || c.MaxTokens <= 0 || c.SystemTokens < 0:
		return errors.New("chat: turn tokens and max tokens must be positive")
	case c.Evict < 0 || c.Slack < 0 || (c.Evict > 0 && (c.EvictTokens <= 0 || c.EvictMaxTokens <= 0)):
		return errors.New("chat: bad eviction or slack")
	}
	return nil
}

// MetricDelta is the change of the server's counters over one request.
type MetricDelta struct {
	Queried float64 `json:"prefix_queried_tokens"`
	Hit     float64 `json:"prefix_hit_tokens"`
	// Processed is Queried - Hit: prompt tokens the server computed.
	Processed    float64 `json:"processed_tokens"`
	PromptTokens float64 `json:"prompt_tokens"` // asi1_prompt_tokens_total
}

func metricDelta(before, after Metrics) *MetricDelta {
	if before == nil || after == nil {
		return nil
	}
	d := &MetricDelta{
		Queried:      after.Sum(MetricPrefixQueried) - before.Sum(MetricPrefixQueried),
		Hit:          after.Sum(MetricPrefixHit) - before.Sum(MetricPrefixHit),
		PromptTokens: after.Sum(MetricPromptTokens) - before.Sum(MetricPromptTokens),
	}
	d.Processed = d.Queried - d.Hit
	return d
}

// ChatTurn is one request of the chat.
type ChatTurn struct {
	Turn             int     `json:"turn"` // 0: the cold request
	PromptTokens     int     `json:"prompt_tokens"`
	CachedTokens     int     `json:"cached_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	TTFTMs           float64 `json:"ttft_ms"`
	E2EMs            float64 `json:"e2e_ms"`
	Finish           string  `json:"finish_reason"`
	// Added is the prompt tokens added since the previous turn (the
	// previous answer, the new message, their template); turn 1: all.
	Added int `json:"added_tokens"`
	// Processed is PromptTokens - CachedTokens: what the server computed.
	Processed int `json:"processed_tokens"`
	// Extra is Processed - Added (negative: the previous answer's KV was
	// reused as well).
	Extra   int          `json:"extra_tokens"`
	Metrics *MetricDelta `json:"metrics,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// ChatReport is RunChat's outcome.
type ChatReport struct {
	Config      ChatConfig `json:"config"`
	SystemWords int        `json:"system_words"`
	TurnWords   int        `json:"turn_words"`
	Metrics     bool       `json:"metrics"` // the server's counters were read
	Turns       []ChatTurn `json:"turns"`
	Cold        ChatTurn   `json:"cold"`
	EvictFailed int        `json:"evict_failed"`
	// ReuseOK: every turn after the first processed at most Added + Slack
	// tokens (by usage, and by the counters when read).
	ReuseOK bool `json:"reuse_ok"`
	// TTFTRatio is the last turn's TTFT over the cold request's (target <= 0.2).
	TTFTRatio     float64  `json:"ttft_ratio"`
	TTFTTargetMet bool     `json:"ttft_target_met"`
	Warnings      []string `json:"warnings,omitempty"`
}

// ChatTarget bounds ChatReport.TTFTRatio.
const ChatTarget = 0.2

// RunChat runs the prefix-reuse scenario: Turns turns, each resending the
// whole history (system message, user messages, the model's answers) plus a
// new user message, one request at a time; the server's metrics are scraped
// before and after each. Then Evict distinct requests at once, and a cold
// request with exactly the last turn's messages.
func RunChat(ctx context.Context, c ChatConfig) (*ChatReport, error) {
	if err := c.normalize(); err != nil {
		return nil, err
	}
	g, release, err := newScenarioGen(&c.ScenarioConfig, max(c.Evict, 1)+2)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &ChatReport{Config: c}
	if c.SystemTokens > 0 {
		if rep.SystemWords, err = g.wordsFor(ctx, &c.ScenarioConfig, c.SystemTokens); err != nil {
			return nil, err
		}
	}
	if rep.TurnWords, err = g.wordsFor(ctx, &c.ScenarioConfig, c.TurnTokens); err != nil {
		return nil, err
	}
	murl := c.metricsURL()
	scrape := func() Metrics {
		if murl == "" {
			return nil
		}
		m, err := g.scrape(ctx, murl)
		if err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("metrics not read (%v): usage only", err))
			murl = ""
			return nil
		}
		return m
	}
	var hdr http.Header
	if c.SessionID != "" {
		hdr = http.Header{"X-Session-Id": {c.SessionID}}
	}
	send := func(turn int, msgs []api.Message, maxTokens int) (ChatTurn, string) {
		before := scrape()
		r := g.doBody(ctx, g.chatBody(msgs, maxTokens, true), reqOpts{header: hdr, keepText: true})
		after := scrape()
		t := ChatTurn{Turn: turn, PromptTokens: r.PromptTokens, CachedTokens: r.CachedTokens, CompletionTokens: r.CompletionTokens,
			E2EMs: r.E2E, Finish: r.Finish, Metrics: metricDelta(before, after)}
		if d, ok := ttftOf(&r); ok {
			t.TTFTMs = ms(d)
		}
		if r.ErrorKind != "" {
			t.Error = r.ErrorKind + ": " + r.Error
		} else if !r.HasUsage {
			t.Error = "no usage in the stream"
		}
		t.Processed = t.PromptTokens - t.CachedTokens
		return t, string(r.content)
	}

	// A session-specific start keeps this chat's prefix apart from other
	// prompts (which start with "Story").
	var msgs []api.Message
	if c.SystemTokens > 0 {
		msgs = append(msgs, api.NewMessage(api.RoleSystem, "You are a storyteller. "+Text(rep.SystemWords)))
	}
	prev := 0
	var last []api.Message
	for turn := 1; turn <= c.Turns; turn++ {
		msgs = append(msgs, api.NewMessage(api.RoleUser, fmt.Sprintf("Question %d. ", turn)+Text(rep.TurnWords)))
		last = slices.Clone(msgs)
		t, answer := send(turn, msgs, c.MaxTokens)
		t.Added = t.PromptTokens - prev
		t.Extra = t.Processed - t.Added
		prev = t.PromptTokens
		rep.Turns = append(rep.Turns, t)
		c.logf("chat: turn %d: prompt %d, cached %d, ttft %.1f ms", turn, t.PromptTokens, t.CachedTokens, t.TTFTMs)
		if t.Error != "" {
			return rep, fmt.Errorf("chat turn %d: %s", turn, t.Error)
		}
		msgs = append(msgs, api.NewMessage(api.RoleAssistant, answer))
	}
	rep.Metrics = murl != ""

	if c.Evict > 0 {
		c.logf("chat: evicting with %d requests", c.Evict)
		var (
			wg     sync.WaitGroup
			failed atomic.Int64
		)
		evictWords := c.EvictTokens
		for i := range c.Evict {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := g.do(ctx, Prompt(evictBase+i, evictWords), c.EvictMaxTokens)
				if r.ErrorKind != "" {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		rep.EvictFailed = int(failed.Load())
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Cold, _ = send(0, last, c.MaxTokens)
	rep.Cold.Added = rep.Cold.PromptTokens
	rep.Cold.Extra = rep.Cold.Processed - rep.Cold.Added
	c.logf("chat: cold: prompt %d, cached %d, ttft %.1f ms", rep.Cold.PromptTokens, rep.Cold.CachedTokens, rep.Cold.TTFTMs)
	if rep.Cold.Error != "" {
		return rep, fmt.Errorf("chat cold request: %s", rep.Cold.Error)
	}
	rep.chatVerdicts()
	return rep, nil
}

func (rep *ChatReport) chatVerdicts() {
	c := rep.Config
	warn := func(format string, args ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, args...)) }
	rep.ReuseOK = true
	for _, t := range rep.Turns[1:] {
		if t.Extra > c.Slack || (t.Metrics != nil && t.Metrics.Processed > float64(t.Added+c.Slack)) {
			rep.ReuseOK = false
		}
		if t.Metrics != nil && t.Metrics.Hit != float64(t.CachedTokens) {
			warn("turn %d: usage says %d cached tokens, the prefix-cache counters %g", t.Turn, t.CachedTokens, t.Metrics.Hit)
		}
	}
	last := rep.Turns[len(rep.Turns)-1]
	rep.TTFTRatio = ratio(last.TTFTMs, rep.Cold.TTFTMs)
	rep.TTFTTargetMet = last.TTFTMs > 0 && rep.Cold.TTFTMs > 0 && rep.TTFTRatio <= ChatTarget
	if rep.Cold.PromptTokens != last.PromptTokens {
		warn("the cold request's prompt has %d tokens, the last turn's %d", rep.Cold.PromptTokens, last.PromptTokens)
	}
	if rep.Cold.CachedTokens > max(16, rep.Cold.PromptTokens/10) {
		warn("the cold request was not cold: %d of %d tokens cached (raise --evict to at least the server's --parallel)",
			rep.Cold.CachedTokens, rep.Cold.PromptTokens)
	}
	if rep.EvictFailed > 0 {
		warn("%d of %d evicting requests failed", rep.EvictFailed, c.Evict)
	}
	for _, t := range append(slices.Clone(rep.Turns), rep.Cold) {
		if t.TTFTMs == 0 {
			warn("turn %d: no content token, no TTFT (ban EOS with --logit-bias)", t.Turn)
		}
	}
	if last.PromptTokens > 0 {
		// What a perfect cache can reach if TTFT were proportional to the
		// prompt tokens computed.
		if floor := float64(last.Added) / float64(last.PromptTokens); floor > ChatTarget {
			warn("the last turn adds %d of its %d prompt tokens (%.2f): with TTFT proportional to the tokens computed the ratio cannot reach %g; raise --system-tokens",
				last.Added, last.PromptTokens, floor, ChatTarget)
		}
	}
}

// WriteText prints the report for a person.
func (rep *ChatReport) WriteText(w io.Writer) {
	c := rep.Config
	src := "usage and /metrics"
	if !rep.Metrics {
		src = "usage only"
	}
	fmt.Fprintf(w, "chat        %s (model %s): %d turns, system ~%d tokens (%d words), user ~%d tokens (%d words), max_tokens %d; %s\n",
		c.URL, c.Model, c.Turns, c.SystemTokens, rep.SystemWords, c.TurnTokens, rep.TurnWords, c.MaxTokens, src)
	fmt.Fprintf(w, "%5s %7s %7s %7s %9s %7s %9s %9s %9s %9s %7s\n",
		"turn", "prompt", "cached", "added", "processed", "extra", "m.queried", "m.hit", "m.process", "ttft ms", "answer")
	row := func(name string, t ChatTurn) {
		q, h, p := "-", "-", "-"
		if t.Metrics != nil {
			q, h, p = fmt.Sprint(t.Metrics.Queried), fmt.Sprint(t.Metrics.Hit), fmt.Sprint(t.Metrics.Processed)
		}
		fmt.Fprintf(w, "%5s %7d %7d %7d %9d %7d %9s %9s %9s %9.1f %7d\n",
			name, t.PromptTokens, t.CachedTokens, t.Added, t.Processed, t.Extra, q, h, p, t.TTFTMs, t.CompletionTokens)
	}
	for _, t := range rep.Turns {
		row(strconv.Itoa(t.Turn), t)
	}
	row("cold", rep.Cold)
	fmt.Fprintf(w, "reuse       turns 2..%d processed only the tokens they added (slack %d): %v\n", c.Turns, c.Slack, rep.ReuseOK)
	last := rep.Turns[len(rep.Turns)-1]
	fmt.Fprintf(w, "ttft        turn %d / cold = %.1f / %.1f ms = %.3f (target <= %g): %s\n",
		last.Turn, last.TTFTMs, rep.Cold.TTFTMs, rep.TTFTRatio, ChatTarget, verdict(rep.TTFTTargetMet))
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "warning     %s\n", s)
	}
}

// ---------------------------------------------------------------------------
// overload

// OverloadConfig describes RunOverload.
type OverloadConfig struct {
	ScenarioConfig
	// Fill is how many long streaming requests fill the slots and the
	// queue; 0: send them until one is refused with 503 (at most FillMax).
	Fill          int           `json:"fill"`
	FillMax       int           `json:"fill_max"`
	FillInterval  time.Duration `json:"fill_interval_ns"` // between fill requests
	FillTokens    int           `json:"fill_tokens"`
	FillMaxTokens int           `json:"fill_max_tokens"`
	Settle        time.Duration `json:"settle_ns"`         // after the last fill request, before the probes
	Probes        int           `json:"probes"`            // sent one at a time, alternately non-streaming and streaming
	ProbeInterval time.Duration `json:"probe_interval_ns"` // from a probe's answer to the next probe
	ProbeTokens   int           `json:"probe_tokens"`
	// ProbeTimeout ends a probe that was not answered: it was queued.
	ProbeTimeout time.Duration `json:"probe_timeout_ns"`
	Target       time.Duration `json:"target_ns"` // refusal latency bound
}

func (c *OverloadConfig) normalize() error {
	switch {
	case c.Fill < 0 || (c.Fill == 0 && c.FillMax <= 0) || c.FillTokens <= 0 || c.FillMaxTokens <= 0 ||
		c.Probes <= 0 || c.ProbeTokens <= 0 || c.ProbeTimeout <= 0 || c.Target <= 0:
		return errors.New("overload: fill, token counts, probes, probe timeout and target must be positive")
	case c.FillInterval < 0 || c.Settle < 0 || c.ProbeInterval < 0:
		return errors.New("overload: negative interval")
	}
	return nil
}

// Probe is one request sent while the server was full.
type Probe struct {
	Index  int  `json:"index"`
	Stream bool `json:"stream"`
	// Status is the HTTP status; 0 when no answer came within the probe
	// timeout (the request was queued: it is then cancelled) or the
	// connection failed.
	Status     int     `json:"status"`
	RetryAfter string  `json:"retry_after,omitempty"`
	Code       string  `json:"code,omitempty"` // error.code
	Type       string  `json:"type,omitempty"` // error.type
	LatencyMs  float64 `json:"latency_ms"`     // send to response headers
	Error      string  `json:"error,omitempty"`
}

// OverloadReport is RunOverload's outcome.
type OverloadReport struct {
	Config OverloadConfig `json:"config"`
	// Fill requests: sent, refused at once (503: the server was full),
	// admitted (the others), and of those the ones that finished with stop
	// or length.
	FillSent     int            `json:"fill_sent"`
	FillRejected int            `json:"fill_rejected"`
	FillAdmitted int            `json:"fill_admitted"`
	FillOK       int            `json:"fill_ok"`
	FillErrors   map[string]int `json:"fill_errors"`
	FillFinish   map[string]int `json:"fill_finish"`
	// The server's asi1_requests_running and _waiting just before the
	// probes; -1 unknown.
	Running float64 `json:"running"`
	Waiting float64 `json:"waiting"`

	Probes     []Probe `json:"probes"`
	Overloaded int     `json:"overloaded"`  // 503 with error code server_overloaded
	RetryAfter int     `json:"retry_after"` // of those, with a Retry-After header
	Admitted   int     `json:"admitted"`    // 200
	NoAnswer   int     `json:"no_answer"`   // no answer within the probe timeout
	Other      int     `json:"other"`       // any other status or error
	// Latency of the 503 answers (send to headers); AllLatency of every
	// answered probe.
	Latency    Dist `json:"latency"`
	AllLatency Dist `json:"all_latency"`
	// The admitted fill requests' chunk gaps overlapping the probe window
	// and the others.
	ProbeWindowMs   float64  `json:"probe_window_ms"`
	GapsDuring      Dist     `json:"gaps_during_probes"`
	GapsOutside     Dist     `json:"gaps_outside_probes"`
	RefusalTarget   bool     `json:"refusal_target_met"`  // every probe 503 server_overloaded with Retry-After, p99 <= Target
	AdmittedHealthy bool     `json:"admitted_target_met"` // every admitted fill finished with stop or length
	Warnings        []string `json:"warnings,omitempty"`
}

// RunOverload runs the overload scenario: fill requests (long streams) are
// sent FillInterval apart, until one is refused with 503 (Fill 0) or Fill
// were sent; after Settle, Probes requests are sent one at a time,
// ProbeInterval apart, and their answers recorded; then every fill request
// is awaited.
func RunOverload(ctx context.Context, c OverloadConfig) (*OverloadReport, error) {
	if err := c.normalize(); err != nil {
		return nil, err
	}
	g, release, err := newScenarioGen(&c.ScenarioConfig, 256)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &OverloadReport{Config: c, Running: -1, Waiting: -1}
	fillWords, err := g.wordsFor(ctx, &c.ScenarioConfig, c.FillTokens)
	if err != nil {
		return nil, err
	}
	probeWords, err := g.wordsFor(ctx, &c.ScenarioConfig, c.ProbeTokens)
	if err != nil {
		return nil, err
	}

	var (
		mu       sync.Mutex
		fills    []RequestResult
		wg       sync.WaitGroup
		rejected atomic.Int64
	)
	limit := c.Fill
	if limit == 0 {
		limit = c.FillMax
	}
	if c.Fill == 0 {
		c.logf("overload: sending fill requests until one is refused (at most %d)", limit)
	} else {
		c.logf("overload: sending %d fill requests", limit)
	}
	for i := range limit {
		if ctx.Err() != nil || (c.Fill == 0 && rejected.Load() > 0) {
			break
		}
		rep.FillSent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.do(ctx, Prompt(fillBase+i, fillWords), c.FillMaxTokens)
			r.Index = i
			if r.ErrorKind == "http_503" {
				rejected.Add(1)
			}
			mu.Lock()
			fills = append(fills, r)
			mu.Unlock()
		}()
		_ = sleepCtx(ctx, c.FillInterval)
	}
	_ = sleepCtx(ctx, c.Settle)
	if c.Fill == 0 && rejected.Load() == 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no 503 after %d fill requests: the server never filled up (raise --fill-max)", rep.FillSent))
	}
	if murl := c.metricsURL(); murl != "" {
		if m, err := g.scrape(ctx, murl); err == nil {
			rep.Running, rep.Waiting = m.Sum(MetricRunning), m.Sum(MetricWaiting)
		}
	}
	c.logf("overload: %d fill requests sent, %d refused; %d probes", rep.FillSent, rejected.Load(), c.Probes)

	pw := span{from: time.Now()}
	for k := range c.Probes {
		if ctx.Err() != nil {
			break
		}
		if k > 0 && sleepCtx(ctx, c.ProbeInterval) != nil {
			break
		}
		rep.Probes = append(rep.Probes, g.probe(ctx, k, k%2 == 1, Prompt(overloadBase+k, probeWords), c.ProbeTimeout))
	}
	pw.to = time.Now()
	c.logf("overload: waiting for the fill requests to finish")
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.ProbeWindowMs = ms(pw.to.Sub(pw.from))
	rep.overloadArithmetic(fills, pw)
	return rep, nil
}

// probe sends one request and reads how it was answered.
func (g *gen) probe(ctx context.Context, k int, stream bool, prompt string, timeout time.Duration) (p Probe) {
	p.Index, p.Stream = k, stream
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	resp, err := g.post(pctx, g.body(prompt, 1, stream), nil)
	p.LatencyMs = ms(time.Since(t0))
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		p.Status, p.Type, p.Code, p.Error = ae.Status, ae.Detail.Type, ae.Detail.Code, fmt.Sprintf("%.200s", ae.Detail.Message)
		if ae.RetryAfter > 0 {
			p.RetryAfter = strconv.Itoa(int(ae.RetryAfter / time.Second))
		}
		return p
	case err != nil:
		p.Error = err.Error()
		if pctx.Err() != nil && ctx.Err() == nil {
			p.Error = "no answer within " + timeout.String()
		}
		return p
	}
	// Admitted: closing the body cancels the request on the server.
	p.Status, p.RetryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	resp.Body.Close()
	return p
}

// Values of an overload refusal.
const (
	OverloadStatus = http.StatusServiceUnavailable
	OverloadCode   = "server_overloaded"
)

func (rep *OverloadReport) overloadArithmetic(fills []RequestResult, pw span) {
	c := rep.Config
	warn := func(format string, args ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, args...)) }
	sortByIndex(fills)
	rep.FillErrors, rep.FillFinish = map[string]int{}, map[string]int{}
	var admitted []RequestResult
	for _, r := range fills {
		if r.ErrorKind == "http_503" {
			rep.FillRejected++
			continue
		}
		rep.FillAdmitted++
		admitted = append(admitted, r)
		if r.ErrorKind != "" {
			rep.FillErrors[r.ErrorKind]++
			continue
		}
		rep.FillFinish[r.Finish]++
		if r.Finish == "stop" || r.Finish == "length" {
			rep.FillOK++
		}
	}
	rep.AdmittedHealthy = rep.FillAdmitted > 0 && rep.FillOK == rep.FillAdmitted
	during, outside := gapsIn(admitted, pw)
	rep.GapsDuring, rep.GapsOutside = Summarize(during), Summarize(outside)

	var lat, all []time.Duration
	for _, p := range rep.Probes {
		d := dur(p.LatencyMs)
		switch {
		case p.Status == OverloadStatus && p.Code == OverloadCode:
			rep.Overloaded++
			if p.RetryAfter != "" {
				rep.RetryAfter++
			}
			lat = append(lat, d)
		case p.Status == http.StatusOK:
			rep.Admitted++
		case p.Status == 0 && strings.HasPrefix(p.Error, "no answer"):
			rep.NoAnswer++
		default:
			rep.Other++
		}
		if p.Status != 0 {
			all = append(all, d)
		}
	}
	rep.Latency, rep.AllLatency = Summarize(lat), Summarize(all)
	n := len(rep.Probes)
	rep.RefusalTarget = n > 0 && rep.Overloaded == n && rep.RetryAfter == n && rep.Latency.P99 <= ms(c.Target)
	if rep.Admitted+rep.NoAnswer > 0 {
		warn("%d probes were admitted or queued: the server was not full (ban EOS with --logit-bias and raise --fill-max-tokens so that the fill requests outlast the probes)",
			rep.Admitted+rep.NoAnswer)
	}
	if rep.Overloaded > rep.RetryAfter {
		warn("%d refusals without Retry-After", rep.Overloaded-rep.RetryAfter)
	}
	if len(rep.FillErrors) > 0 {
		for _, r := range admitted {
			if r.ErrorKind != "" {
				warn("admitted fill requests failed (%s); first: %s: %.200s", counts(rep.FillErrors), r.ErrorKind, r.Error)
				break
			}
		}
	}
}

// WriteText prints the report for a person.
func (rep *OverloadReport) WriteText(w io.Writer) {
	c := rep.Config
	fmt.Fprintf(w, "overload    %s (model %s): fill prompt ~%d tokens, max_tokens %d; %d probes\n",
		c.URL, c.Model, c.FillTokens, c.FillMaxTokens, len(rep.Probes))
	srv := ""
	if rep.Running >= 0 {
		srv = fmt.Sprintf("; server before the probes: %g running, %g waiting", rep.Running, rep.Waiting)
	}
	fmt.Fprintf(w, "fill        %d sent, %d refused (503), %d admitted%s\n", rep.FillSent, rep.FillRejected, rep.FillAdmitted, srv)
	fmt.Fprintf(w, "probes      %d: %d 503 %s (%d with Retry-After), %d admitted, %d unanswered within %v, %d other\n",
		len(rep.Probes), rep.Overloaded, OverloadCode, rep.RetryAfter, rep.Admitted, rep.NoAnswer, c.ProbeTimeout, rep.Other)
	for _, p := range rep.Probes {
		if !(p.Status == OverloadStatus && p.Code == OverloadCode) {
			fmt.Fprintf(w, "first odd   probe %d (stream %v): status %d code %q: %.200s\n", p.Index, p.Stream, p.Status, p.Code, p.Error)
			break
		}
	}
	fmt.Fprintf(w, "%-22s %6s %9s %9s %9s %9s\n", "ms", "n", "p50", "p90", "p99", "max")
	for _, row := range []struct {
		name string
		d    Dist
	}{{"503 latency", rep.Latency}, {"answer latency", rep.AllLatency},
		{"fill gap during probes", rep.GapsDuring}, {"fill gap otherwise", rep.GapsOutside}} {
		fmt.Fprintf(w, "%-22s %6d %9.3f %9.3f %9.3f %9.3f\n", row.name, row.d.N, row.d.P50, row.d.P90, row.d.P99, row.d.Max)
	}
	fmt.Fprintf(w, "refusal     every probe 503 %s with Retry-After, p99 %.3f ms (target <= %v; max %.3f ms): %s\n",
		OverloadCode, rep.Latency.P99, c.Target, rep.Latency.Max, verdict(rep.RefusalTarget))
	fmt.Fprintf(w, "admitted    %d of %d finished with stop or length (finish %s, errors %s): %s\n",
		rep.FillOK, rep.FillAdmitted, counts(rep.FillFinish), counts(rep.FillErrors), verdict(rep.AdmittedHealthy))
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "warning     %s\n", s)
	}
}
