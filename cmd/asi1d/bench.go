package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asi1d/asi1d/cmd/asi1d/cliflag"
	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/internal/bench/loadgen"
	"github.com/asi1d/asi1d/internal/bench/rawloop"
	"github.com/asi1d/asi1d/internal/chatclient"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

const benchUsage = `Usage:
  asi1d bench --url URL [flags]           load-test an OpenAI-compatible server
  asi1d bench compare [--model FILE] [flags]
                                          the raw engine loop against the in-process server, side by side
  asi1d bench scenario prefill|chat|overload|soak --url URL [flags]
                                          measure a serving target (asi1d bench scenario -h)

asi1d bench -h or asi1d bench compare -h lists the flags.
`

// runBench is asi1d bench: with no subcommand the load generator, with
// "compare" the raw-loop-versus-server comparison.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "compare" {
		return runCompare(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "scenario" {
		return runScenario(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "help" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, benchUsage)
		return 0
	}
	return runLoad(ctx, args, stdout, stderr)
}

// isTerminal tells whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// parseLogitBias reads "ID=VALUE" entries.
func parseLogitBias(list []string) (map[int]float64, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[int]float64{}
	for _, e := range list {
		for _, kv := range strings.Split(e, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			id, err1 := strconv.Atoi(k)
			x, err2 := strconv.ParseFloat(v, 64)
			if !ok || err1 != nil || err2 != nil || id < 0 {
				return nil, fmt.Errorf("--logit-bias %q: want TOKEN_ID=VALUE", kv)
			}
			m[id] = x
		}
	}
	return m, nil
}

// writeJSON writes v to path ("-": w).
func writeJSON(path string, w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// runLoad is asi1d bench --url ...
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		c        loadgen.Config
		bias     stringList
		jsonOut  string
		progress bool
	)
	fs := flag.NewFlagSet("asi1d bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "", "server base URL, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&c.Model, "model", "", "model id sent in requests (default: the first of the server's /v1/models, as asi1d chat)")
	fs.StringVar(&c.APIKey, "api-key", "", "API key, sent as a bearer token")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "concurrent streams")
	fs.IntVar(&c.Requests, "requests", 64, "measured requests (0: until --duration)")
	fs.DurationVar(&c.Duration, "duration", 0, "start no request after this long (0: no limit); running ones finish")
	fs.IntVar(&c.PromptTokens, "prompt-tokens", 128, "prompt length in tokens (approximate; see --calibrate)")
	fs.IntVar(&c.MaxTokens, "max-tokens", 256, "max_tokens of every request")
	fs.Float64Var(&c.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	fs.BoolVar(&c.SamePrompt, "same-prompt", false, "send the same prompt in every request (default: each starts with its number)")
	fs.BoolVar(&c.Calibrate, "calibrate", true, "probe the server first to size prompts from usage.prompt_tokens")
	fs.IntVar(&c.Warmup, "warmup", 0, fmt.Sprintf("unmeasured requests first (max_tokens at most %d)", loadgen.WarmupMaxTokens))
	fs.Var(&bias, "logit-bias", "TOKEN_ID=VALUE sent as logit_bias (repeatable or comma-separated), e.g. the EOS id=-100 to run to max_tokens")
	fs.DurationVar(&c.RequestTimeout, "timeout", loadgen.DefaultRequestTimeout, "per-request timeout")
	fs.StringVar(&jsonOut, "json", "", "write all statistics as JSON to this file (- for stdout)")
	fs.BoolVar(&progress, "progress", true, "show progress on stderr (a bar on a terminal, plain lines otherwise)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage+"\nFlags of asi1d bench:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, "asi1d bench", stderr); !ok {
		return code
	}
	if c.URL == "" {
		fmt.Fprint(stderr, "asi1d bench: --url is required\n\n"+benchUsage)
		return 2
	}
	var err error
	if c.LogitBias, err = parseLogitBias(bias); err != nil {
		fmt.Fprintf(stderr, "asi1d bench: %v\n", err)
		return 2
	}
	if progress {
		c.Progress, c.ProgressTTY = stderr, isTerminal(stderr)
	}
	if c.Model == "" {
		ids, err := chatclient.New(c.URL, c.APIKey).Models(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "asi1d bench: %v (or pass --model ID)\n", err)
			return 1
		}
		if len(ids) == 0 {
			fmt.Fprintf(stderr, "asi1d bench: %s serves no model (GET /v1/models is empty); pass --model ID\n", c.URL)
			return 1
		}
		c.Model = ids[0]
	}
	rep, err := loadgen.Run(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d bench: %v\n", err)
		return 1
	}
	if jsonOut != "-" {
		rep.WriteText(stdout)
	}
	if jsonOut != "" {
		if err := writeJSON(jsonOut, stdout, rep); err != nil {
			fmt.Fprintf(stderr, "asi1d bench: %v\n", err)
			return 1
		}
	}
	if rep.Succeeded == 0 {
		return 1
	}
	return 0
}

// compareConfig is asi1d bench compare's configuration.
type compareConfig struct {
	Model        string `json:"model"`
	Threads      int    `json:"threads"`
	CtxPerSeq    int    `json:"ctx_per_seq"`
	Concurrency  []int  `json:"concurrency"`
	PromptTokens int    `json:"prompt_tokens"`
	MaxTokens    int    `json:"max_tokens"`
	Runs         int    `json:"runs"`
	StepTokens   int    `json:"step_tokens"`
	Batch        int    `json:"batch"`
	GPULayers    int    `json:"gpu_layers"`
	KVUnified    bool   `json:"kv_unified"`
	Flash        string `json:"flash_attn"`
	ThreadPoll   int    `json:"thread_poll"`
	BanEOS       bool   `json:"ban_eos"`
	Warmup       bool   `json:"warmup"`
}

// compareRun is one raw run and the server run after it.
type compareRun struct {
	Raw    rawloop.Result  `json:"raw"`
	Server *loadgen.Report `json:"server"`
	// CPU time of the whole process per output token, in microseconds:
	// the raw loop's, and the server's (engine, scheduler, HTTP and the
	// in-process client).
	RawCPUPerToken    float64 `json:"raw_cpu_us_per_token"`
	ServerCPUPerToken float64 `json:"server_cpu_us_per_token"`
	// ServerDecodeP50Ms is the median Decode call of the server's steps
	// that carried exactly one token per sequence (pure decode steps at
	// full concurrency), from the scheduler's OnStep hook.
	ServerDecodeP50Ms float64 `json:"server_decode_p50_ms"`
}

// compareRow is one concurrency's result: medians over the runs.
type compareRow struct {
	Concurrency int `json:"concurrency"`

	RawOutputTokS    float64 `json:"raw_output_tok_s"`
	ServerOutputTokS float64 `json:"server_output_tok_s"`
	OutputRatio      float64 `json:"output_ratio"` // server / raw
	RawDecodeTokS    float64 `json:"raw_decode_tok_s"`
	ServerDecodeTokS float64 `json:"server_decode_tok_s"`
	DecodeRatio      float64 `json:"decode_ratio"` // server / raw
	RawPrefillTokS   float64 `json:"raw_prefill_tok_s"`

	ServerCompletionTokensMean float64 `json:"server_completion_tokens_mean"`
	ServerPromptTokensMean     float64 `json:"server_prompt_tokens_mean"`
	ServerFailed               int     `json:"server_failed"`
	RawStepP50Ms               float64 `json:"raw_step_p50_ms"`
	ServerITLP50Ms             float64 `json:"server_itl_p50_ms"`
	ServerChunkGapP50Ms        float64 `json:"server_chunk_gap_p50_ms"`
	ServerChunkGapP99Ms        float64 `json:"server_chunk_gap_p99_ms"`
	ServerTokensPerChunk       float64 `json:"server_tokens_per_chunk"`
	ServerDecodeP50Ms          float64 `json:"server_decode_p50_ms"`
	RawCPUPerToken             float64 `json:"raw_cpu_us_per_token"`
	ServerCPUPerToken          float64 `json:"server_cpu_us_per_token"`
	// StepRatio is RawStepP50Ms over ServerChunkGapP50Ms: the typical
	// decode step against the typical gap a client sees (one token per
	// chunk), less sensitive to a busy machine than the rates.
	StepRatio       float64 `json:"step_ratio"`
	ServerTTFTP50Ms float64 `json:"server_ttft_p50_ms"`
	ServerFairness  float64 `json:"server_fairness"`

	Runs []compareRun `json:"runs"`
}

// compareReport is the JSON of asi1d bench compare.
type compareReport struct {
	Config compareConfig `json:"config"`
	Rows   []compareRow  `json:"rows"`
	// Scaling: output tok/s at the largest concurrency over the smallest.
	ScalingFrom   int     `json:"scaling_from"`
	ScalingTo     int     `json:"scaling_to"`
	RawScaling    float64 `json:"raw_scaling"`
	ServerScaling float64 `json:"server_scaling"`
}

func parseIntList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--concurrency %q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// runCompare is asi1d bench compare.
func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		c                 compareConfig
		conc, jsonOut, lv string
	)
	fs := flag.NewFlagSet("asi1d bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Model, "model", "", "GGUF model file (default "+defaultModel+" when it exists)")
	fs.IntVar(&c.Threads, "threads", 0, "CPU threads (0: all cores)")
	fs.IntVar(&c.CtxPerSeq, "ctx", 0, "KV cells per sequence (0: enough for the prompt and max-tokens)")
	fs.StringVar(&conc, "concurrency", "1,16", "comma-separated concurrencies: sequences of the raw loop, streams (and --parallel) of the server")
	fs.IntVar(&c.PromptTokens, "prompt-tokens", 128, "prompt length in tokens")
	fs.IntVar(&c.MaxTokens, "max-tokens", 256, "tokens generated per sequence")
	fs.IntVar(&c.Runs, "runs", 3, "raw/server pairs per concurrency; medians are reported")
	fs.IntVar(&c.StepTokens, "step-tokens", 0, "the server's scheduler step budget (0: sized from the measured cost of a pass, as serve does)")
	fs.IntVar(&c.Batch, "batch", llamacpp.DefaultBatch, "most tokens per decode call (raw prefill chunk)")
	fs.IntVar(&c.GPULayers, "gpu-layers", 0, "layers to offload to a GPU")
	fs.BoolVar(&c.KVUnified, "kv-unified", false, "one KV pool shared by all sequences")
	fs.StringVar(&c.Flash, "flash-attn", "auto", "flash attention: auto, on or off")
	fs.IntVar(&c.ThreadPoll, "thread-poll", 0, "CPU thread pool polling level, -1: threads made per decode (see asi1d serve -h)")
	fs.BoolVar(&c.BanEOS, "ban-eos", true, "send logit_bias -100 on the end-of-generation tokens so that server requests run to max-tokens, as the raw loop does")
	fs.BoolVar(&c.Warmup, "warmup", true, "a short unmeasured raw run and server requests before the measured runs of each concurrency")
	fs.StringVar(&jsonOut, "json", "", "write the results as JSON to this file (- for stdout)")
	fs.Var(cliflag.NewEnum(&lv, "warn", logLevels...), "log-level", "log level of the engine and the server: "+strings.Join(logLevels, ", "))
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage+"\nFlags of asi1d bench compare:\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, "asi1d bench compare", stderr); !ok {
		return code
	}
	var err error
	if c.Concurrency, err = parseIntList(conc); err != nil {
		fmt.Fprintf(stderr, "asi1d bench compare: %v\n", err)
		return 2
	}
	switch {
	case c.PromptTokens < 1 || c.MaxTokens < 1 || c.Runs < 1 || c.StepTokens < 0 || c.Batch < 1 || c.Threads < 0 || c.CtxPerSeq < 0:
		fmt.Fprintln(stderr, "asi1d bench compare: --prompt-tokens, --max-tokens, --runs and --batch must be positive, --step-tokens at least 0")
		return 2
	}
	if c.Model == "" {
		if _, err := os.Stat(defaultModel); err != nil {
			fmt.Fprintln(stderr, "asi1d bench compare: no model: pass --model FILE.gguf")
			return 2
		}
		c.Model = defaultModel
	}
	if c.CtxPerSeq == 0 {
		// The server's prompt may come out a little longer than asked
		// (template, calibration); leave room, in whole 256-cell blocks.
		need := c.PromptTokens + c.PromptTokens/4 + c.MaxTokens + 64
		c.CtxPerSeq = (need + 255) / 256 * 256
	}
	log := newLogger(&serveConfig{LogLevel: lv}, stderr)

	rep := &compareReport{Config: c}
	for _, n := range c.Concurrency {
		row, err := compareOne(ctx, c, n, log, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "asi1d bench compare: concurrency %d: %v\n", n, err)
			return 1
		}
		rep.Rows = append(rep.Rows, row)
	}
	if k := len(rep.Rows); k > 1 {
		lo, hi := rep.Rows[0], rep.Rows[0]
		for _, r := range rep.Rows {
			if r.Concurrency < lo.Concurrency {
				lo = r
			}
			if r.Concurrency > hi.Concurrency {
				hi = r
			}
		}
		rep.ScalingFrom, rep.ScalingTo = lo.Concurrency, hi.Concurrency
		rep.RawScaling = ratio(hi.RawOutputTokS, lo.RawOutputTokS)
		rep.ServerScaling = ratio(hi.ServerOutputTokS, lo.ServerOutputTokS)
	}
	if jsonOut != "-" {
		rep.writeText(stdout)
	}
	if jsonOut != "" {
		if err := writeJSON(jsonOut, stdout, rep); err != nil {
			fmt.Fprintf(stderr, "asi1d bench compare: %v\n", err)
			return 1
		}
	}
	return 0
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// compareOne measures one concurrency: one backend, then runs of the raw
// loop alternating with the server on the same backend.
func compareOne(ctx context.Context, c compareConfig, n int, log *slog.Logger, stderr io.Writer) (compareRow, error) {
	row := compareRow{Concurrency: n}
	var steps []time.Duration // pure decode steps of the last server run
	stk := stack.New(stack.Options{
		Server: server.Options{Logger: log, Version: version},
		Scheduler: scheduler.Options{StepTokens: c.StepTokens, MaxQueue: max(64, 2*n), Logger: log,
			OnStep: func(d time.Duration, tokens int) {
				if tokens == n {
					steps = append(steps, d) // the loop goroutine only; read after Unload
				}
			}},
		Open: func() (engine.Backend, error) {
			return llamacpp.Open(c.Model, llamacpp.Options{
				CtxSize: c.CtxPerSeq * n, Parallel: n, Batch: c.Batch, Threads: c.Threads, GPULayers: c.GPULayers,
				KVUnified: c.KVUnified, FlashAttention: c.Flash, ThreadPoll: c.ThreadPoll, Logger: log,
			})
		},
	})
	// The first Load opens the backend; the raw loop shares it between
	// server runs (Unload keeps it open).
	if err := stk.Load(); err != nil {
		return row, err
	}
	stk.Unload()
	defer stk.Close()
	be := stk.Backend
	info := be.Info()
	if c.PromptTokens+c.MaxTokens > info.NCtxSeq {
		return row, fmt.Errorf("prompt %d + max-tokens %d exceed the %d cells of a sequence (raise --ctx)", c.PromptTokens, c.MaxTokens, info.NCtxSeq)
	}
	var bias map[int]float64
	if c.BanEOS {
		bias = map[int]float64{}
		for _, t := range info.EOG {
			bias[int(t)] = -100
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return row, err
	}
	hs := &http.Server{Handler: stk.Server.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	url := "http://" + ln.Addr().String()
	tr := loadgen.NewTransport(n)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	// serverRun starts a scheduler on the backend, runs the load and stops
	// the scheduler again, so that the raw loop can have the backend.
	words := 0
	serverRun := func(requests, warmup int) (*loadgen.Report, error) {
		be.ClearKV()
		steps = steps[:0]
		if err := stk.Load(); err != nil {
			return nil, err
		}
		defer func() {
			stk.Unload()
			be.ClearKV()
		}()
		return loadgen.Run(ctx, loadgen.Config{
			URL: url, Concurrency: n, Requests: requests, PromptTokens: c.PromptTokens, MaxTokens: c.MaxTokens,
			PromptWords: words, Calibrate: words == 0, LogitBias: bias, Warmup: warmup, Client: client,
		})
	}
	raw := func(gen int) (rawloop.Result, error) {
		return rawloop.Run(be, rawloop.Options{Seqs: n, PromptTokens: c.PromptTokens, GenTokens: gen})
	}

	if c.Warmup {
		if _, err := raw(min(c.MaxTokens, 8)); err != nil {
			return row, err
		}
		rep, err := serverRun(n, 0)
		if err != nil {
			return row, err
		}
		words = rep.PromptWords
	}
	for k := range c.Runs {
		if err := ctx.Err(); err != nil {
			return row, err
		}
		cpu0 := loadgen.ProcessCPU()
		r, err := raw(c.MaxTokens)
		if err != nil {
			return row, err
		}
		rawCPU := loadgen.ProcessCPU() - cpu0
		s, err := serverRun(n, 0)
		if err != nil {
			return row, err
		}
		run := compareRun{Raw: r, Server: s, ServerCPUPerToken: s.CPUPerToken, ServerDecodeP50Ms: medianMs(steps)}
		if r.OutputTokens > 0 {
			run.RawCPUPerToken = float64(rawCPU.Microseconds()) / float64(r.OutputTokens)
		}
		words = s.PromptWords
		if s.Failed > 0 || s.Cancelled > 0 {
			return row, fmt.Errorf("server run: %d of %d requests failed (%v)", s.Failed+s.Cancelled, s.Requests, s.Errors)
		}
		fmt.Fprintf(stderr, "concurrency %d run %d/%d: raw %.1f tok/s (decode %.1f, step p50 %.3f ms, %.0f cpu µs/tok), "+
			"server %.1f tok/s (decode %.1f, decode call p50 %.3f ms, gap p50 %.3f ms, %.0f cpu µs/tok), %.1f tokens/request\n",
			n, k+1, c.Runs, r.OutputTokS, r.DecodeTokS, float64(r.StepP50)/1e6, run.RawCPUPerToken,
			s.OutputTokS, s.DecodeTokS, run.ServerDecodeP50Ms, s.ChunkGap.P50, run.ServerCPUPerToken, s.OutputTokensMean)
		row.Runs = append(row.Runs, run)
	}
	med := func(f func(compareRun) float64) float64 {
		xs := make([]float64, len(row.Runs))
		for i, r := range row.Runs {
			xs[i] = f(r)
		}
		return loadgen.Median(xs)
	}
	row.RawOutputTokS = med(func(r compareRun) float64 { return r.Raw.OutputTokS })
	row.ServerOutputTokS = med(func(r compareRun) float64 { return r.Server.OutputTokS })
	row.RawDecodeTokS = med(func(r compareRun) float64 { return r.Raw.DecodeTokS })
	row.ServerDecodeTokS = med(func(r compareRun) float64 { return r.Server.DecodeTokS })
	row.RawPrefillTokS = med(func(r compareRun) float64 { return r.Raw.PrefillTokS })
	row.OutputRatio = ratio(row.ServerOutputTokS, row.RawOutputTokS)
	row.DecodeRatio = ratio(row.ServerDecodeTokS, row.RawDecodeTokS)
	row.ServerCompletionTokensMean = med(func(r compareRun) float64 { return r.Server.OutputTokensMean })
	row.ServerPromptTokensMean = med(func(r compareRun) float64 { return r.Server.PromptTokensMean })
	row.RawStepP50Ms = med(func(r compareRun) float64 { return float64(r.Raw.StepP50) / 1e6 })
	row.ServerITLP50Ms = med(func(r compareRun) float64 { return r.Server.ITL.P50 })
	row.ServerChunkGapP50Ms = med(func(r compareRun) float64 { return r.Server.ChunkGap.P50 })
	row.ServerChunkGapP99Ms = med(func(r compareRun) float64 { return r.Server.ChunkGap.P99 })
	row.ServerTokensPerChunk = med(func(r compareRun) float64 { return r.Server.TokensPerChunk })
	row.StepRatio = ratio(row.RawStepP50Ms, row.ServerChunkGapP50Ms)
	row.ServerDecodeP50Ms = med(func(r compareRun) float64 { return r.ServerDecodeP50Ms })
	row.RawCPUPerToken = med(func(r compareRun) float64 { return r.RawCPUPerToken })
	row.ServerCPUPerToken = med(func(r compareRun) float64 { return r.ServerCPUPerToken })
	row.ServerTTFTP50Ms = med(func(r compareRun) float64 { return r.Server.TTFT.P50 })
	row.ServerFairness = med(func(r compareRun) float64 { return r.Server.Fairness })
	for _, r := range row.Runs {
		row.ServerFailed += r.Server.Failed
	}
	return row, nil
}

// medianMs is the median of ds in milliseconds; 0 when empty.
func medianMs(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d) / 1e6
	}
	return loadgen.Median(xs)
}

func (r *compareReport) writeText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "model %s, threads %d, prompt %d, max-tokens %d, step-tokens %d, ctx/seq %d, runs %d (medians), ban-eos %v\n",
		c.Model, c.Threads, c.PromptTokens, c.MaxTokens, c.StepTokens, c.CtxPerSeq, c.Runs, c.BanEOS)
	fmt.Fprintf(w, "%5s | %9s %9s %6s | %9s %9s %6s | %8s %8s %6s | %6s %6s | %8s %8s %8s %6s\n",
		"conc", "raw out", "srv out", "ratio", "raw dec", "srv dec", "ratio", "raw step", "srv gap", "ratio", "ptok", "ctok", "srv itl", "gap p99", "ttft", "fair")
	fmt.Fprintf(w, "%5s | %9s %9s %6s | %9s %9s %6s | %8s %8s %6s | %6s %6s | %8s %8s %8s %6s\n",
		"", "tok/s", "tok/s", "", "tok/s", "tok/s", "", "p50 ms", "p50 ms", "", "srv", "srv", "mean ms", "ms", "p50 ms", "")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%5d | %9.1f %9.1f %6.3f | %9.1f %9.1f %6.3f | %8.3f %8.3f %6.3f | %6.1f %6.1f | %8.3f %8.3f %8.2f %6.3f\n",
			row.Concurrency, row.RawOutputTokS, row.ServerOutputTokS, row.OutputRatio,
			row.RawDecodeTokS, row.ServerDecodeTokS, row.DecodeRatio,
			row.RawStepP50Ms, row.ServerChunkGapP50Ms, row.StepRatio,
			row.ServerPromptTokensMean, row.ServerCompletionTokensMean,
			row.ServerITLP50Ms, row.ServerChunkGapP99Ms, row.ServerTTFTP50Ms, row.ServerFairness)
	}
	fmt.Fprintf(w, "%5s | %12s %12s %12s | %12s %12s %12s\n", "conc", "raw cpu", "srv cpu", "srv - raw", "raw step", "srv decode", "srv gap")
	fmt.Fprintf(w, "%5s | %12s %12s %12s | %12s %12s %12s\n", "", "µs/tok", "µs/tok", "µs/tok", "p50 ms", "call p50 ms", "p50 ms")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%5d | %12.1f %12.1f %12.1f | %12.3f %12.3f %12.3f\n", row.Concurrency, row.RawCPUPerToken, row.ServerCPUPerToken,
			row.ServerCPUPerToken-row.RawCPUPerToken, row.RawStepP50Ms, row.ServerDecodeP50Ms, row.ServerChunkGapP50Ms)
	}
	if r.ScalingTo > 0 {
		fmt.Fprintf(w, "scaling %d vs %d streams (output tok/s): raw %.2fx, server %.2fx\n", r.ScalingTo, r.ScalingFrom, r.RawScaling, r.ServerScaling)
	}
}

// parseFlags parses a bench flag set; when it returns ok false the command
// exits with code (0 for -h, 2 for a bad flag or a stray argument).
func parseFlags(fs *flag.FlagSet, args []string, cmd string, stderr io.Writer) (code int, ok bool) {
	if err := cliflag.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2, false
	}
	return 0, true
}
