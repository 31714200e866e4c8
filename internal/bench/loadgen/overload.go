package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

// The overload scenario: beyond the queue, fast refusals and probes.
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
