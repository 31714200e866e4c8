package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/asi1d/asi1d/internal/bench/loadgen"
)

const scenarioUsage = `Usage:
  asi1d bench scenario prefill  --url URL [flags]
      chunked prefill: N streams run; the gaps between their chunks and the TTFT of
      short requests, first with only the streams (idle), then while a long prompt
      is prefilled. Targets: prefill gap p99 <= 3x idle gap p50, short TTFT during
      prefill <= 3x idle.
  asi1d bench scenario chat     --url URL [flags]
      prefix reuse: a chat resends its whole history each turn; per turn prompt,
      cached and processed tokens (usage and /metrics); then a cold request with the
      last turn's prompt. Target: last turn's TTFT <= 0.2x the cold one.
  asi1d bench scenario overload --url URL [flags]
      long streams fill the slots and the queue; probes must get 503
      server_overloaded with Retry-After within 10 ms, and every admitted stream
      must finish.
  asi1d bench scenario soak     --url URL [flags]
      mixed traffic for --requests or --duration at --concurrency: streamed and
      not, a fifth aborted mid-stream, mixed lengths and sampling, some with tools
      and response_format. Then, idle: no 5xx, no panic, every slot free,
      goroutines back to their idle count, RSS within 5% of its value after the
      warm-up, and chat requests = finished + cancelled + refused. Exit 1 when a
      check fails.

The server needs enough slots (--parallel) for what a scenario runs at once:
prefill streams+2, chat evict (16 by default, at least --parallel).
Ban the end-of-sequence token with --logit-bias EOS_ID=-100 so that streams run
to max_tokens. asi1d bench scenario NAME -h lists a scenario's flags.
`

// runScenario is asi1d bench scenario NAME.
func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, scenarioUsage)
		return 2
	}
	switch args[0] {
	case "prefill":
		return runPrefillScenario(ctx, args[1:], stdout, stderr)
	case "chat":
		return runChatScenario(ctx, args[1:], stdout, stderr)
	case "overload":
		return runOverloadScenario(ctx, args[1:], stdout, stderr)
	case "soak":
		return runSoakScenario(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, scenarioUsage)
		return 0
	}
	fmt.Fprintf(stderr, "asi1d bench scenario: unknown scenario %q\n\n%s", args[0], scenarioUsage)
	return 2
}

// scenarioFlags are the flags every scenario has.
type scenarioFlags struct {
	name     string
	sc       loadgen.ScenarioConfig
	bias     stringList
	jsonOut  string
	progress bool
}

func newScenarioFlags(name string, stderr io.Writer) (*scenarioFlags, *flag.FlagSet) {
	f := &scenarioFlags{name: name}
	fs := flag.NewFlagSet("asi1d bench scenario "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.sc.URL, "url", "", "server base URL, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&f.sc.Model, "model", loadgen.DefaultModel, "model id sent in requests")
	fs.StringVar(&f.sc.APIKey, "api-key", "", "API key, sent as a bearer token")
	fs.Float64Var(&f.sc.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fs.Var(&f.bias, "logit-bias", "TOKEN_ID=VALUE sent as logit_bias (repeatable or comma-separated), e.g. the EOS id=-100 to run to max_tokens")
	fs.BoolVar(&f.sc.Calibrate, "calibrate", true, "probe the server first to size prompts from usage.prompt_tokens")
	fs.DurationVar(&f.sc.RequestTimeout, "timeout", loadgen.DefaultRequestTimeout, "per-request timeout")
	fs.StringVar(&f.sc.MetricsURL, "metrics-url", "", "Prometheus metrics of the server (default: the URL's /metrics; off: none)")
	fs.StringVar(&f.jsonOut, "json", "", "write all results as JSON to this file (- for stdout)")
	fs.BoolVar(&f.progress, "progress", true, "progress lines on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), scenarioUsage+"\nFlags of asi1d bench scenario "+name+":\n")
		fs.PrintDefaults()
	}
	return f, fs
}

// parse parses args; when it returns ok false the command exits with code.
func (f *scenarioFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	cmd := "asi1d bench scenario " + f.name
	if code, ok := parseFlags(fs, args, cmd, stderr); !ok {
		return code, false
	}
	if f.sc.URL == "" {
		fmt.Fprintf(stderr, "%s: --url is required\n", cmd)
		return 2, false
	}
	var err error
	if f.sc.LogitBias, err = parseLogitBias(f.bias); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 2, false
	}
	if f.progress {
		f.sc.Log = stderr
	}
	return 0, true
}

// report is a scenario's report.
type report interface{ WriteText(io.Writer) }

// finish prints rep (text, JSON) and gives the exit code: 1 when err.
func (f *scenarioFlags) finish(rep report, err error, stdout, stderr io.Writer) int {
	cmd := "asi1d bench scenario " + f.name
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 1
	}
	if f.jsonOut != "-" {
		rep.WriteText(stdout)
	}
	if f.jsonOut != "" {
		if err := writeJSON(f.jsonOut, stdout, rep); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
			return 1
		}
	}
	return 0
}

func runPrefillScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, fs := newScenarioFlags("prefill", stderr)
	var c loadgen.PrefillConfig
	fs.IntVar(&c.Streams, "streams", loadgen.DefaultPrefillStreams, "running streams")
	fs.IntVar(&c.StreamTokens, "stream-tokens", loadgen.DefaultPrefillShortTokens, "prompt tokens of the streams and of the short requests")
	fs.IntVar(&c.StreamMaxTokens, "stream-max-tokens", 1024, "max_tokens of a stream's request; a stream whose request ends sends another")
	fs.IntVar(&c.LongTokens, "long-tokens", loadgen.DefaultPrefillLongTokens, "prompt tokens of the long request")
	fs.DurationVar(&c.Idle, "idle", 3*time.Second, "the idle window before each round: gaps and short requests with only the streams running")
	fs.IntVar(&c.Shorts, "shorts", 5, "short requests in each idle window, one at a time")
	fs.IntVar(&c.ShortMaxTokens, "short-max-tokens", 2, "max_tokens of a short request")
	fs.DurationVar(&c.ShortDelay, "short-delay", 10*time.Millisecond, "first short request this long after the long one; then one after another until its first token")
	fs.IntVar(&c.Rounds, "rounds", 3, "long requests, one after the other")
	fs.DurationVar(&c.Pause, "pause", 500*time.Millisecond, "pause after the streams start and after each round")
	if code, ok := f.parse(fs, args, stderr); !ok {
		return code
	}
	c.ScenarioConfig = f.sc
	rep, err := loadgen.RunPrefill(ctx, c)
	return f.finish(rep, err, stdout, stderr)
}

func runChatScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, fs := newScenarioFlags("chat", stderr)
	var c loadgen.ChatConfig
	fs.IntVar(&c.Turns, "turns", 5, "turns of the chat")
	fs.IntVar(&c.SystemTokens, "system-tokens", 1024, "tokens of the system message (0: none)")
	fs.IntVar(&c.TurnTokens, "turn-tokens", 128, "tokens of each user message")
	fs.IntVar(&c.MaxTokens, "max-tokens", 64, "max_tokens of each answer")
	fs.IntVar(&c.Evict, "evict", 16, "distinct requests sent at once before the cold request, to push the chat out of the prefix cache (at least the server's --parallel)")
	fs.IntVar(&c.EvictTokens, "evict-tokens", 64, "prompt tokens of an evicting request (one word each, not calibrated)")
	fs.IntVar(&c.EvictMaxTokens, "evict-max-tokens", 16, "max_tokens of an evicting request")
	fs.StringVar(&c.SessionID, "session-id", "asi1d-bench-chat", "x-session-id of the chat's requests (empty: none)")
	fs.IntVar(&c.Slack, "slack", 4, "tokens a turn may compute beyond those it added and still count as reusing its history")
	if code, ok := f.parse(fs, args, stderr); !ok {
		return code
	}
	c.ScenarioConfig = f.sc
	rep, err := loadgen.RunChat(ctx, c)
	if err != nil && rep != nil && len(rep.Turns) > 0 {
		// Show the turns that ran.
		fmt.Fprintf(stderr, "asi1d bench scenario chat: %v\n", err)
		for _, t := range rep.Turns {
			fmt.Fprintf(stderr, "turn %d: prompt %d, cached %d, ttft %.1f ms %s\n", t.Turn, t.PromptTokens, t.CachedTokens, t.TTFTMs, t.Error)
		}
		return 1
	}
	return f.finish(rep, err, stdout, stderr)
}

func runOverloadScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, fs := newScenarioFlags("overload", stderr)
	var c loadgen.OverloadConfig
	fs.IntVar(&c.Fill, "fill", 0, "fill requests (e.g. parallel + max-queue); 0: send them until one is refused with 503")
	fs.IntVar(&c.FillMax, "fill-max", 1024, "with --fill 0, send at most this many")
	fs.DurationVar(&c.FillInterval, "fill-interval", 5*time.Millisecond, "between fill requests")
	fs.IntVar(&c.FillTokens, "fill-tokens", 32, "prompt tokens of a fill request")
	fs.IntVar(&c.FillMaxTokens, "fill-max-tokens", 1024, "max_tokens of a fill request: they must outlast the probes")
	fs.DurationVar(&c.Settle, "settle", 200*time.Millisecond, "wait after the last fill request before the probes")
	fs.IntVar(&c.Probes, "probes", 40, "probe requests, one at a time, alternately non-streaming and streaming")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", 10*time.Millisecond, "from a probe's answer to the next probe")
	fs.IntVar(&c.ProbeTokens, "probe-tokens", 16, "prompt tokens of a probe")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", 2*time.Second, "a probe unanswered this long was queued: it is cancelled")
	fs.DurationVar(&c.Target, "target", 10*time.Millisecond, "refusal latency target (p99)")
	if code, ok := f.parse(fs, args, stderr); !ok {
		return code
	}
	c.ScenarioConfig = f.sc
	rep, err := loadgen.RunOverload(ctx, c)
	return f.finish(rep, err, stdout, stderr)
}

func runSoakScenario(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, fs := newScenarioFlags("soak", stderr)
	var c loadgen.SoakConfig
	fs.IntVar(&c.Requests, "requests", loadgen.DefaultSoakRequests, "requests after the warm-up (0: only --duration bounds the run)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop sending after this long (0: only --requests bounds the run)")
	fs.IntVar(&c.Concurrency, "concurrency", loadgen.DefaultSoakConcurrency, "requests in flight")
	fs.IntVar(&c.Warmup, "warmup", loadgen.DefaultSoakWarmup, "warm-up requests before the RSS and goroutine baseline is read (RSS grows for a few thousand requests while the C allocator's arenas fill)")
	fs.Float64Var(&c.AbortShare, "abort-share", 0.2, "share of requests streamed and closed by the client at a random chunk")
	fs.Float64Var(&c.StreamShare, "stream-share", 0.4, "share of requests streamed to the end")
	fs.Float64Var(&c.ToolShare, "tool-share", 0.1, "share of requests with tools (tool_choice auto, required or named)")
	fs.Float64Var(&c.FormatShare, "format-share", 0.1, "share of requests with response_format (json_object or json_schema)")
	fs.IntVar(&c.MaxPromptWords, "max-prompt-words", 200, "prompt words drawn from 1..this")
	fs.IntVar(&c.MaxAnswer, "max-answer", 128, "max_tokens drawn from 1..this")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the request mix")
	fs.Float64Var(&c.RSSTolerance, "rss-tolerance", 0.05, "RSS at the end may differ this much (a share) from RSS after the warm-up")
	fs.IntVar(&c.GoroutineSlack, "goroutine-slack", 0, "goroutines above the idle count that still pass")
	fs.DurationVar(&c.Settle, "settle", 10*time.Second, "how long the end checks wait for the server to become idle")
	if code, ok := f.parse(fs, args, stderr); !ok {
		return code
	}
	c.ScenarioConfig = f.sc
	rep, err := loadgen.RunSoak(ctx, c)
	code := f.finish(rep, err, stdout, stderr)
	if code == 0 && !rep.Pass {
		return 1
	}
	return code
}
