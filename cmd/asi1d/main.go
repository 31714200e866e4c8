// Command asi1d is a self-hosted inference server for the ASI1 (and OpenAI)
// chat-completions API over GGUF models.
//
//	asi1d serve [flags]    serve a model (asi1d serve -h lists the flags)
//	asi1d models CMD       the model catalog: ls, import, pull, rm
//	asi1d chat [flags]     talk to a server in the terminal, or ask once
//	asi1d synth [flags]    write a dummy-weights GGUF for benchmarks and tests
//	asi1d bench [flags]    load-test a server, or compare it with the raw engine
//	asi1d version          (or asi1d --version, -v)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/asi1d/asi1d/cmd/asi1d/cliflag"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `Usage: asi1d <command> [flags]

Commands:
  serve     serve a GGUF model over the ASI1 chat-completions API
  models    the catalog of --models-dir: ls, import FILE, pull REF, rm ID (asi1d models -h)
  chat      talk to a server in the terminal (asi1d chat -h), or ask once: asi1d chat "question"
  synth     write a GGUF model with deterministic dummy weights at real shapes
  bench     load-test an OpenAI-compatible URL, or compare the server with the raw engine
  version   print the version (also asi1d --version, -v)

asi1d <command> -h lists a command's flags; docs/CLI.md describes them all.
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServeTo(args[1:], getenv, stdout)
		if errors.Is(err, cliflag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "asi1d serve: %v\n", err)
			return 2
		}
		if err := serve(ctx, cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "asi1d: %v\n", err)
			return 1
		}
		return 0
	case "models":
		return runModelsCLI(ctx, args[1:], stdout, stderr, getenv)
	case "chat":
		return runChat(ctx, args[1:], os.Stdin, stdout, stderr, getenv)
	case "synth":
		return runSynth(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version", "-v", "-V":
		fmt.Fprintf(stdout, "asi1d %s (%s)\n", version, runtime.Version())
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "asi1d: unknown flag %s: flags follow a command, e.g. asi1d serve %s (see asi1d -h)\n", args[0], args[0])
		return 2
	}
	hint := ""
	if m := cliflag.Closest(args[0], commands); m != "" {
		hint = ": did you mean " + m + "?"
	}
	fmt.Fprintf(stderr, "asi1d: unknown command %q%s (see asi1d -h)\n", args[0], hint)
	return 2
}

// commands are asi1d's commands, for a typo's suggestion.
var commands = []string{"serve", "models", "chat", "synth", "bench", "version", "help"}

// newLogger is serve's logger: --log-level (trace is scheduler.LevelTrace,
// written TRACE) and --log-format.
func newLogger(cfg *serveConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if cfg.LogLevel == "trace" {
		lvl = scheduler.LevelTrace
	} else if err := lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel))); err != nil {
		lvl = slog.LevelInfo
	}
	o := &slog.HandlerOptions{Level: lvl, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey && a.Value.Any() == scheduler.LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
		return a
	}}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// serve runs the server until ctx ends (first signal): then it drains, and a
// second signal exits at once.
func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	slog.SetDefault(slog.New(demoted{log.Handler()}))
	if cfg.Model == "" && cfg.ModelsDir == "" {
		if _, err := os.Stat(defaultModel); err != nil {
			return errors.New("no model: pass --model FILE.gguf (or set ASI1D_MODEL), or --models-dir DIR; get one with: asi1d models pull --models-dir DIR hf.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF:Q4_K_M")
		}
		cfg.Model = defaultModel
	}
	// Check the file before listening, so a bad path fails fast and plainly.
	if cfg.Model != "" {
		if st, err := os.Stat(cfg.Model); err != nil {
			return fmt.Errorf("model %s: %w", cfg.Model, err)
		} else if st.IsDir() {
			return fmt.Errorf("model %s: is a directory, not a GGUF file (a directory of models is --models-dir)", cfg.Model)
		}
	}
	cat, err := openCatalog(cfg)
	if err != nil {
		return err
	}
	for _, e := range cat.Entries {
		if e.Err != nil {
			log.Warn("model unusable", "model", e.ID, "path", e.Path, "err", e.Err)
		}
	}
	if cfg.Threads == 0 {
		n, why := usableCPUs()
		cfg.Threads = n
		log.Debug("threads", "threads", n, "from", why)
	}

	gpuFree, err := checkDevices(cfg, log)
	if err != nil {
		return err
	}
	mem := newMemLimits(cfg, gpuFree)
	logged := map[string]bool{} // model versions whose context was logged
	readyQueue := cfg.ReadyQueue
	if readyQueue == 0 {
		readyQueue = cfg.MaxQueue
	}
	limits, err := newLimits(cfg, log)
	if err != nil {
		return err
	}
	defer limits.Close()
	maxQueue := cfg.MaxQueue
	store, err := openSessions(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close() // after the stack's: writes what the drain saved
	// A bar for the first load only on a terminal, and only when no
	// debug lines (llama.cpp's load chatter) could be written across it.
	var bar io.Writer
	if isTerminal(stderr) && !log.Enabled(ctx, slog.LevelDebug) {
		bar = stderr
	}
	so := stack.Options{
		Server: server.Options{
			APIKeys: cfg.APIKeys, BodyLimit: cfg.BodyLimit,
			ReadyQueue: readyQueue, Version: version, Logger: log, Playground: cfg.Playground,
			ReplicaID: cfg.ReplicaID, Limits: limits, WriteTimeout: cfg.WriteTimeout,
			AllowedOrigins: cfg.AllowedOrigins,
		},
		Scheduler: scheduler.Options{StepTokens: cfg.StepTokens, StepLatency: cfg.StepLatency, MaxQueue: maxQueue, Logger: log, Sessions: store},
		Models:    modelSpecs(cat, cfg, mem, log, bar, logged),
		KeepAlive: cfg.KeepAlive,
	}
	if cfg.Model != "" && so.Models[0].Err != nil {
		return so.Models[0].Err // --model: a model that cannot be served is the end
	}
	if cfg.ModelsDir != "" {
		so.MaxLoaded, so.HostBytes, so.GPUBytes = cfg.MaxLoadedModels, uint64(cfg.MaxModelMemory), uint64(cfg.MaxGPUMemory)
		so.RescanEvery, so.Rescan = cfg.Rescan, rescanner(cfg, log, logged)
	}
	stk := stack.New(so)
	srv := stk.Server
	registerDevices(srv, cfg)
	ln, tc, err := listen(cfg, log)
	if err != nil {
		return err
	}
	hs := newHTTPServer(cfg, srv.Handler(), log)
	httpDone := make(chan error, 1)
	go func() { httpDone <- serveHTTP(hs, ln, tc) }()
	closeHTTP := func() {
		_ = hs.Close()
		<-httpDone
	}

	// Load the preloaded models while /health answers 503 loading. A
	// catalog serves on when one fails (it is listed with its error).
	if err := stk.Load(); err != nil && cfg.ModelsDir == "" {
		_ = stk.Close()
		closeHTTP()
		return err
	} else if err != nil {
		log.Error("preloading failed", "err", err)
	}
	defer stk.Close()
	log.Debug("config", "step_tokens", cfg.StepTokens, "max_queue", maxQueue, "tls", tc != nil,
		"rate_rpm", cfg.RateRPM, "rate_tpm", cfg.RateTPM, "rate_shared", limits.Shared(), "keep_alive", cfg.KeepAlive)
	model, ctxPerReq, parallel := "", 0, 0
	if m := stk.Model; m != nil {
		info := stk.Backend.Info()
		model, ctxPerReq, parallel = cat.Entries[0].ID, info.NCtxSeq, info.Parallel
		log.Debug("model", "model", model, "aliases", cat.Entries[0].Aliases, "kv_pool", info.NCtx,
			"reasoning_tags", m.Tags.Open != "", "chat_template", m.Template != nil)
	} else {
		log.Debug("catalog", "models_dir", cfg.ModelsDir, "max_loaded", so.MaxLoaded, "keep_alive", cfg.KeepAlive, "rescan", cfg.Rescan)
	}
	msg, attrs := startLine(ln.Addr().String(), tc != nil, cfg, model, ctxPerReq, parallel, len(cat.Entries))
	log.Info(msg, attrs...)

	select {
	case err := <-httpDone:
		stk.Unload()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	// Drain: refuse new work, let running sequences finish, then stop.
	log.Info("shutting down: draining", "timeout", cfg.DrainTimeout)
	stk.Drain(cfg.DrainTimeout)
	second := make(chan os.Signal, 1)
	signal.Notify(second, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(second)
	select {
	case <-stk.Done():
	case <-second:
		log.Warn("second signal: exiting now")
		stk.Unload()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	<-httpDone
	log.Info("stopped")
	return nil
}
