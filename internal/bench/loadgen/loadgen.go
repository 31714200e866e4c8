// Package loadgen drives an OpenAI-compatible chat-completions server with
// concurrent streaming requests and measures what a client sees: time to
// first token, inter-token latency, end-to-end latency, output tokens per
// second in aggregate and per stream, and errors by kind.
//
// Each of Config.Concurrency workers sends one streaming request at a time
// (stream true, stream_options.include_usage true) until Config.Requests
// requests were started or Config.Duration has passed; requests then in
// flight finish. Token counts come from the usage chunk, never from counting
// chunks, because a server may coalesce several tokens into one chunk.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

// Config describes a load test. Zero values take the Default* values where
// one exists.
type Config struct {
	// URL is the server's base URL (http://host:port); the path
	// /v1/chat/completions is appended unless the URL already ends with it.
	URL    string
	Model  string // model id sent in requests; "": DefaultModel
	APIKey string // sent as a bearer token when set

	Concurrency int           // parallel streams; 0: 1
	Requests    int           // measured requests to start; 0: no count bound (Duration must be set)
	Duration    time.Duration // no new request starts after it; 0: no time bound

	PromptTokens int     // wanted prompt length in tokens (approximate unless calibrated)
	MaxTokens    int     // max_tokens of every request
	Temperature  float64 // 0: greedy
	// SamePrompt sends the same prompt in every request (normally each
	// request's prompt starts with its own number).
	SamePrompt bool
	// LogitBias is sent as logit_bias, e.g. {EOS: -100} so that requests run
	// to MaxTokens on a server without ignore_eos.
	LogitBias map[int]float64
	// Calibrate sends a few short non-streamed probes first to find how many
	// words make PromptTokens prompt tokens (usage.prompt_tokens, template
	// included). Off: one word per token.
	Calibrate bool
	// PromptWords, when positive, is the number of words of Text in every
	// prompt (e.g. from an earlier Report.PromptWords); Calibrate is then
	// skipped.
	PromptWords int

	// Warmup requests run, unmeasured, before the measured ones (at most
	// Concurrency at a time, max_tokens at most WarmupMaxTokens).
	Warmup int

	RequestTimeout time.Duration // per request; 0: DefaultRequestTimeout

	// Progress receives a progress display; nil: none. ProgressTTY draws a
	// bar redrawn in place (for a terminal); otherwise a plain line is
	// written every ProgressEvery.
	Progress      io.Writer
	ProgressTTY   bool
	ProgressEvery time.Duration

	// Client to use; nil: one with a transport sized for Concurrency.
	Client *http.Client
}

// Defaults for Config.
const (
	DefaultModel          = "asi1-mini"
	DefaultRequestTimeout = 10 * time.Minute
	WarmupMaxTokens       = 16
)

// Error kinds counted in Report.Errors (besides "http_<status>").
const (
	ErrConnect   = "connect"          // no response: refused, reset, DNS...
	ErrTimeout   = "timeout"          // RequestTimeout passed
	ErrStream    = "stream_error"     // the server sent an error event mid-stream
	ErrTruncated = "stream_truncated" // the stream ended without [DONE], or a read failed
	ErrBadChunk  = "bad_chunk"        // an event that is not valid JSON
	// ErrCancelled marks requests cut short by the caller's context; they
	// are counted in Report.Cancelled, not in Report.Errors.
	ErrCancelled = "cancelled"
)

// RequestResult is what one request saw. Times are milliseconds from the
// start of the measured window (Start) or from the request's start.
type RequestResult struct {
	Index            int     `json:"index"`
	Stream           int     `json:"stream"` // worker number
	Start            float64 `json:"start_ms"`
	TTFT             float64 `json:"ttft_ms"` // to the first non-empty content or reasoning chunk
	E2E              float64 `json:"e2e_ms"`
	ITL              float64 `json:"itl_ms"` // (last chunk - first chunk) / (completion_tokens - 1)
	StreamTokS       float64 `json:"stream_tok_s"`
	Chunks           int     `json:"chunks"` // non-empty content/reasoning chunks
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	CachedTokens     int     `json:"cached_tokens"`
	Finish           string  `json:"finish_reason,omitempty"`
	Error            string  `json:"error,omitempty"`
	ErrorKind        string  `json:"error_kind,omitempty"`
	HasUsage         bool    `json:"has_usage"`

	start, first, last, end time.Time
	gaps                    []time.Duration

	// For the scenarios (see reqOpts): onFirst is called at the first text
	// chunk; with keepText the content is gathered in content.
	onFirst  func(time.Time)
	keepText bool
	content  []byte
}

// Report is the outcome of Run. Durations are in milliseconds, rates in
// tokens per second.
type Report struct {
	URL          string  `json:"url"`
	Model        string  `json:"model"`
	Concurrency  int     `json:"concurrency"`
	PromptTokens int     `json:"prompt_tokens_wanted"`
	MaxTokens    int     `json:"max_tokens"`
	Temperature  float64 `json:"temperature"`
	PromptWords  int     `json:"prompt_words"`
	Warmup       int     `json:"warmup"`

	WallSeconds float64 `json:"wall_s"` // the measured window: first request start to last request end
	Requests    int     `json:"requests"`
	Succeeded   int     `json:"succeeded"`
	Failed      int     `json:"failed"`
	Cancelled   int     `json:"cancelled"` // cut short by the caller's context
	// Errors counts failed requests by kind: http_<status>, connect, timeout,
	// stream_error, stream_truncated, bad_chunk.
	Errors       map[string]int `json:"errors"`
	FinishReason map[string]int `json:"finish_reasons"`
	MissingUsage int            `json:"missing_usage"` // successful streams without a usage chunk (tokens then = chunks)

	PromptTokensTotal int     `json:"prompt_tokens_total"`
	PromptTokensMean  float64 `json:"prompt_tokens_mean"`
	CachedTokensTotal int     `json:"cached_tokens_total"`
	OutputTokens      int     `json:"output_tokens"`
	OutputTokensMean  float64 `json:"output_tokens_mean"`
	// OutputTokS is OutputTokens over WallSeconds.
	OutputTokS float64 `json:"output_tok_s"`
	// DecodeTokS is sum(completion_tokens-1) over the window from the
	// earliest first chunk to the latest last chunk: the decode rate without
	// the first prefill.
	DecodeTokS     float64 `json:"decode_tok_s"`
	TokensPerChunk float64 `json:"tokens_per_chunk"`

	// ProcessCPUSeconds is the CPU time this process used during the
	// measured window: the client's cost against a remote server; in bench
	// compare, the server's and the engine's too.
	ProcessCPUSeconds float64 `json:"process_cpu_s"`
	// CPUPerToken is ProcessCPUSeconds per output token, in microseconds.
	CPUPerToken float64 `json:"cpu_us_per_token"`

	TTFT     Dist `json:"ttft"`
	ITL      Dist `json:"itl"`       // one value per request: its mean inter-token latency
	ChunkGap Dist `json:"chunk_gap"` // every gap between consecutive content chunks
	E2E      Dist `json:"e2e"`

	// Per-stream decode rate (StreamTokS of each request): fairness is
	// Min/Max.
	StreamTokSMin  float64 `json:"stream_tok_s_min"`
	StreamTokSMax  float64 `json:"stream_tok_s_max"`
	StreamTokSMean float64 `json:"stream_tok_s_mean"`
	Fairness       float64 `json:"fairness"`

	Results []RequestResult `json:"results"`
}

// Run performs the load test described by cfg. It returns an error only
// when the test cannot run at all (bad config, calibration impossible);
// failed requests are counted in the report. When ctx ends, requests in
// flight are cancelled and the report covers what finished.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		tr := NewTransport(cfg.Concurrency)
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	g := newGen(cfg, client)

	g.words = cfg.PromptTokens
	if cfg.PromptWords > 0 {
		g.words = cfg.PromptWords
	} else if cfg.Calibrate {
		w, err := g.calibrate(ctx)
		if err != nil {
			return nil, err
		}
		g.words = w
	}

	if cfg.Warmup > 0 {
		g.phase(ctx, "warmup", cfg.Warmup, 0, warmupBase, min(cfg.MaxTokens, WarmupMaxTokens))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cpu0 := ProcessCPU()
	res, wall := g.phase(ctx, "", cfg.Requests, cfg.Duration, 0, cfg.MaxTokens)
	cpu := ProcessCPU() - cpu0
	rep := g.report(res, wall)
	rep.ProcessCPUSeconds = cpu.Seconds()
	if rep.OutputTokens > 0 {
		rep.CPUPerToken = 1e6 * rep.ProcessCPUSeconds / float64(rep.OutputTokens)
	}
	return rep, nil
}

func (c *Config) normalize() error {
	if c.URL == "" {
		return errors.New("loadgen: no URL")
	}
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return fmt.Errorf("loadgen: URL %q: want http:// or https://", c.URL)
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Requests < 0 || c.Duration < 0 || c.Warmup < 0 {
		return errors.New("loadgen: negative requests, duration or warmup")
	}
	if c.Requests == 0 && c.Duration == 0 {
		return errors.New("loadgen: set a request count or a duration (or both)")
	}
	if c.PromptTokens <= 0 {
		return errors.New("loadgen: prompt tokens must be positive")
	}
	if c.MaxTokens <= 0 {
		return errors.New("loadgen: max tokens must be positive")
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
		if c.ProgressTTY {
			c.ProgressEvery = 200 * time.Millisecond
		}
	}
	return nil
}

// newGen returns a generator sending to cfg.URL through client.
func newGen(cfg Config, client *http.Client) *gen {
	w := &api.Client{BaseURL: cfg.URL, APIKey: cfg.APIKey, HTTP: client}
	return &gen{cfg: cfg, client: client, wire: w, url: w.URL(api.ChatPath)}
}

// NewTransport returns an HTTP transport sized for n concurrent streams:
// enough idle connections per host to reuse one per stream, and no
// compression (which would buffer the event stream).
func NewTransport(n int) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2*n + 4,
		MaxIdleConnsPerHost:   2*n + 4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ReadBufferSize:        32 << 10,
	}
}

type gen struct {
	cfg    Config
	client *http.Client
	wire   *api.Client // cfg.URL's server through client
	url    string      // the chat endpoint's URL
	words  int

	// progress counters of the current phase
	started, done, failed atomic.Int64
	tokens                atomic.Int64
}

// phase runs n requests (0: unbounded) with up to Concurrency at a time,
// stopping new ones after dur (0: never). Request i uses prompt base+i.
func (g *gen) phase(ctx context.Context, name string, n int, dur time.Duration, base, maxTokens int) ([]RequestResult, time.Duration) {
	g.started.Store(0)
	g.done.Store(0)
	g.failed.Store(0)
	g.tokens.Store(0)
	workers := g.cfg.Concurrency
	if n > 0 {
		workers = min(workers, n)
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		results []RequestResult
		wg      sync.WaitGroup
	)
	t0 := time.Now()
	var deadline time.Time
	if dur > 0 {
		deadline = t0.Add(dur)
	}
	stopProgress := g.progress(name, n, dur, t0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if n > 0 && i >= n {
					return
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				g.started.Add(1)
				idx := base + i
				if g.cfg.SamePrompt {
					idx = base
				}
				r := g.do(ctx, Prompt(idx, g.words), maxTokens)
				r.Index, r.Stream = i, w
				g.done.Add(1)
				if r.ErrorKind != "" {
					g.failed.Add(1)
				}
				g.tokens.Add(int64(r.CompletionTokens))
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	stopProgress()
	for i := range results {
		results[i].Start = ms(results[i].start.Sub(t0))
	}
	return results, wall
}

// progress starts the progress display; the returned func stops it.
func (g *gen) progress(name string, n int, dur time.Duration, t0 time.Time) func() {
	w := g.cfg.Progress
	if w == nil {
		return func() {}
	}
	if name == "" {
		name = "bench"
	}
	line := func() string {
		el := time.Since(t0)
		done, tok := g.done.Load(), g.tokens.Load()
		rate := 0.0
		if s := el.Seconds(); s > 0 {
			rate = float64(tok) / s
		}
		frac := 0.0
		switch {
		case n > 0:
			frac = float64(done) / float64(n)
		case dur > 0:
			frac = min(1, el.Seconds()/dur.Seconds())
		}
		total := "?"
		if n > 0 {
			total = strconv.Itoa(n)
		}
		return fmt.Sprintf("%s %5.1f%% %d/%s done, %d running, %d failed, %d tokens, %.0f tok/s, %s",
			name, 100*frac, done, total, g.started.Load()-done, g.failed.Load(), tok, rate, el.Round(100*time.Millisecond))
	}
	bar := func() string {
		const width = 30
		l := line()
		frac := 0.0
		if n > 0 {
			frac = float64(g.done.Load()) / float64(n)
		} else if dur > 0 {
			frac = min(1, time.Since(t0).Seconds()/dur.Seconds())
		}
		k := int(frac * width)
		return "\r\033[K[" + strings.Repeat("=", k) + strings.Repeat(" ", width-k) + "] " + l
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(g.cfg.ProgressEvery)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				if g.cfg.ProgressTTY {
					fmt.Fprint(w, bar()+"\n")
				} else {
					fmt.Fprintln(w, line())
				}
				return
			case <-tk.C:
				if g.cfg.ProgressTTY {
					fmt.Fprint(w, bar())
				} else {
					fmt.Fprintln(w, line())
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}

// body builds a request body with one user message.
func (g *gen) body(prompt string, maxTokens int, stream bool) []byte {
	return g.chatBody([]api.Message{api.NewMessage(api.RoleUser, prompt)}, maxTokens, stream)
}

// chatBody builds a request body.
func (g *gen) chatBody(msgs []api.Message, maxTokens int, stream bool) []byte {
	temp := g.cfg.Temperature
	req := api.ChatCompletionRequest{Model: g.cfg.Model, Messages: msgs, MaxTokens: maxTokens, Temperature: &temp, Stream: stream}
	if stream {
		req.StreamOptions = &api.StreamOptions{IncludeUsage: true}
	}
	if len(g.cfg.LogitBias) > 0 {
		req.LogitBias = make(map[string]float64, len(g.cfg.LogitBias))
		for k, v := range g.cfg.LogitBias {
			req.LogitBias[strconv.Itoa(k)] = v
		}
	}
	b, _ := json.Marshal(&req) // plain types: cannot fail
	return b
}

// post sends a chat request body. A non-2xx answer is an *api.Error.
func (g *gen) post(ctx context.Context, body []byte, header http.Header) (*http.Response, error) {
	h := http.Header{"Accept": {"text/event-stream"}}
	for k, v := range header {
		h[k] = v
	}
	return g.wire.Do(ctx, http.MethodPost, api.ChatPath, body, h)
}

// do sends one streaming request and reads it to the end.
func (g *gen) do(parent context.Context, prompt string, maxTokens int) RequestResult {
	return g.doBody(parent, g.body(prompt, maxTokens, true), reqOpts{})
}

// reqOpts are the extras of a request sent by a scenario.
type reqOpts struct {
	header   http.Header     // added to the request's headers
	onFirst  func(time.Time) // called (on the reading goroutine) at the first text chunk
	keepText bool            // gather the content (RequestResult.content)
}

// doBody sends one streaming request with body and reads it to the end.
func (g *gen) doBody(parent context.Context, body []byte, o reqOpts) (r RequestResult) {
	r.onFirst, r.keepText = o.onFirst, o.keepText
	ctx, cancel := context.WithTimeout(parent, g.cfg.RequestTimeout)
	defer cancel()
	r.start = time.Now()
	defer func() {
		r.end = time.Now()
		r.E2E = ms(r.end.Sub(r.start))
		if r.ErrorKind != "" && parent.Err() != nil {
			r.ErrorKind = ErrCancelled
		} else if r.ErrorKind != "" && ctx.Err() == context.DeadlineExceeded {
			r.ErrorKind = ErrTimeout
		}
	}()
	resp, err := g.post(ctx, body, o.header)
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		r.ErrorKind, r.Error = "http_"+strconv.Itoa(ae.Status), ae.Error()
		return r
	case err != nil:
		r.ErrorKind, r.Error = ErrConnect, err.Error()
		return r
	}
	defer resp.Body.Close()
	g.readStream(resp.Body, &r)
	return r
}

func (g *gen) report(res []RequestResult, wall time.Duration) *Report {
	rep := &Report{
		URL: g.url, Model: g.cfg.Model, Concurrency: g.cfg.Concurrency, PromptTokens: g.cfg.PromptTokens,
		MaxTokens: g.cfg.MaxTokens, Temperature: g.cfg.Temperature, PromptWords: g.words, Warmup: g.cfg.Warmup,
		WallSeconds: wall.Seconds(), Requests: len(res),
		Errors: map[string]int{}, FinishReason: map[string]int{},
	}
	Aggregate(rep, res)
	return rep
}

// Aggregate fills rep's totals and distributions from per-request results
// (it sorts res by Index). WallSeconds must be set.
func Aggregate(rep *Report, res []RequestResult) {
	sortByIndex(res)
	rep.Results = res
	if rep.Errors == nil {
		rep.Errors = map[string]int{}
	}
	if rep.FinishReason == nil {
		rep.FinishReason = map[string]int{}
	}
	var ttft, itl, e2e, gaps []time.Duration
	var firstMin, lastMax time.Time
	decodeTokens, chunks := 0, 0
	rates := []float64{}
	for i := range res {
		r := &res[i]
		switch {
		case r.ErrorKind == ErrCancelled:
			rep.Cancelled++
			continue
		case r.ErrorKind != "":
			rep.Failed++
			rep.Errors[r.ErrorKind]++
			continue
		}
		rep.Succeeded++
		if r.Finish != "" {
			rep.FinishReason[r.Finish]++
		}
		if !r.HasUsage {
			rep.MissingUsage++
		}
		rep.PromptTokensTotal += r.PromptTokens
		rep.CachedTokensTotal += r.CachedTokens
		rep.OutputTokens += r.CompletionTokens
		chunks += r.Chunks
		e2e = append(e2e, dur(r.E2E))
		if r.first.IsZero() {
			continue
		}
		ttft = append(ttft, dur(r.TTFT))
		gaps = append(gaps, r.gaps...)
		if r.CompletionTokens > 1 && r.last.After(r.first) {
			itl = append(itl, dur(r.ITL))
			rates = append(rates, r.StreamTokS)
			decodeTokens += r.CompletionTokens - 1
			if firstMin.IsZero() || r.first.Before(firstMin) {
				firstMin = r.first
			}
			if r.last.After(lastMax) {
				lastMax = r.last
			}
		}
	}
	if rep.Succeeded > 0 {
		rep.PromptTokensMean = float64(rep.PromptTokensTotal) / float64(rep.Succeeded)
		rep.OutputTokensMean = float64(rep.OutputTokens) / float64(rep.Succeeded)
	}
	if rep.WallSeconds > 0 {
		rep.OutputTokS = float64(rep.OutputTokens) / rep.WallSeconds
	}
	if span := lastMax.Sub(firstMin); span > 0 {
		rep.DecodeTokS = float64(decodeTokens) / span.Seconds()
	}
	if chunks > 0 {
		rep.TokensPerChunk = float64(rep.OutputTokens) / float64(chunks)
	}
	rep.TTFT, rep.ITL, rep.ChunkGap, rep.E2E = Summarize(ttft), Summarize(itl), Summarize(gaps), Summarize(e2e)
	if len(rates) > 0 {
		lo, hi, sum := rates[0], rates[0], 0.0
		for _, x := range rates {
			lo, hi, sum = min(lo, x), max(hi, x), sum+x
		}
		rep.StreamTokSMin, rep.StreamTokSMax, rep.StreamTokSMean = lo, hi, sum/float64(len(rates))
		if hi > 0 {
			rep.Fairness = lo / hi
		}
	}
}

func sortByIndex(res []RequestResult) {
	slices.SortStableFunc(res, func(a, b RequestResult) int { return a.Index - b.Index })
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func dur(msv float64) time.Duration { return time.Duration(msv * float64(time.Millisecond)) }
