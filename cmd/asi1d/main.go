// Command asi1d is a self-hosted inference server for the ASI1 (and OpenAI)
// chat-completions API over GGUF models.
//
//	asi1d serve [flags]    serve a model (asi1d serve -h lists the flags)
//	asi1d chat [flags]     talk to a server in the terminal, or ask once
//	asi1d synth [flags]    write a dummy-weights GGUF for benchmarks and tests
//	asi1d bench [flags]    load-test a server, or compare it with the raw engine
//	asi1d version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/internal/stack"
	"github.com/asi1d/asi1d/server"
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
  chat      talk to a server in the terminal (asi1d chat -h), or ask once: asi1d chat "question"
  synth     write a GGUF model with deterministic dummy weights at real shapes
  bench     load-test an OpenAI-compatible URL, or compare the server with the raw engine
  version   print the version
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:], getenv)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "asi1d: %v\n", err)
			return 2
		}
		if err := serve(ctx, cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "asi1d: %v\n", err)
			return 1
		}
		return 0
	case "chat":
		return runChat(ctx, args[1:], os.Stdin, stdout, stderr, getenv)
	case "synth":
		return runSynth(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "asi1d %s (%s)\n", version, runtime.Version())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "asi1d: unknown command %q\n%s", args[0], usage)
	return 2
}

func newLogger(cfg *serveConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel))); err != nil {
		lvl = slog.LevelInfo
	}
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// serve runs the server until ctx ends (first signal): then it drains, and a
// second signal exits at once.
func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	if cfg.Model == "" {
		if _, err := os.Stat(defaultModel); err != nil {
			return errors.New("no model: pass --model FILE.gguf or set ASI1D_MODEL")
		}
		cfg.Model = defaultModel
	}
	// Check the file before listening, so a bad path fails fast and plainly.
	if st, err := os.Stat(cfg.Model); err != nil {
		return fmt.Errorf("model %s: %w", cfg.Model, err)
	} else if st.IsDir() {
		return fmt.Errorf("model %s: is a directory, not a GGUF file", cfg.Model)
	}

	if err := checkDevices(cfg, log); err != nil {
		return err
	}
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
	stk := stack.New(stack.Options{
		Server: server.Options{
			ModelID: cfg.ModelName, Aliases: cfg.Aliases, APIKeys: cfg.APIKeys, BodyLimit: cfg.BodyLimit,
			ReadyQueue: readyQueue, Version: version, Logger: log, Playground: cfg.Playground,
			ReplicaID: cfg.ReplicaID, Limits: limits, WriteTimeout: cfg.WriteTimeout,
		},
		Scheduler: scheduler.Options{StepTokens: cfg.StepTokens, StepLatency: cfg.StepLatency, MaxQueue: maxQueue, Logger: log, Sessions: store},
		Open: func() (engine.Backend, error) {
			return llamacpp.Open(cfg.Model, llamacpp.Options{
				CtxSize: cfg.Ctx, Parallel: cfg.Parallel, Batch: cfg.Batch, Threads: cfg.Threads,
				GPULayers: cfg.GPULayers, KVUnified: cfg.KVUnified, FlashAttention: cfg.Flash, ThreadPoll: cfg.ThreadPoll, FixedThreads: !cfg.AdaptThreads, SkipMemCheck: cfg.NoMemCheck, Logger: log,
			})
		},
	})
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

	if cfg.Threads == 0 {
		n, why := usableCPUs()
		cfg.Threads = n
		log.Info("threads", "threads", n, "from", why)
	}
	// Load while /health answers 503 loading.
	if err := stk.Load(); err != nil {
		_ = stk.Close()
		closeHTTP()
		return err
	}
	defer stk.Close()
	m := stk.Model
	info := stk.Backend.Info()
	log.Info("serving", "addr", ln.Addr().String(), "model", cfg.ModelName, "ctx_per_request", info.NCtxSeq,
		"parallel", info.Parallel, "step_tokens", cfg.StepTokens, "max_queue", maxQueue, "auth", len(cfg.APIKeys) > 0,
		"tls", tc != nil, "rate_rpm", cfg.RateRPM, "rate_tpm", cfg.RateTPM, "rate_shared", limits.Shared(),
		"reasoning_tags", m.Tags.Open != "", "chat_template", m.Template != nil)

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
