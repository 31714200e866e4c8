package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The prefill scenario: streams keep flowing while long prompts prefill.
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
