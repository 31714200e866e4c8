package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/catalog"
	"github.com/asi1d/asi1d/internal/stack"
	"github.com/asi1d/asi1d/server"
)

// openCatalog is what serve serves: the catalog of --models-dir, or
// --model as a catalog of one (id --model-name, aliases --alias, loaded at
// start).
func openCatalog(cfg *serveConfig) (*catalog.Catalog, error) {
	if cfg.ModelsDir != "" {
		return catalog.Scan(cfg.ModelsDir)
	}
	cat, err := catalog.Single(cfg.Model, cfg.ModelName, cfg.Aliases)
	if err != nil {
		return nil, err
	}
	for _, e := range cat.Entries {
		e.Config.Preload = true
	}
	return cat, nil
}

// modelSpecs turns catalog entries into the stack's models: the manifest's
// settings over serve's flags, the memory estimate the budget counts, and
// an Open that verifies a pinned checksum before llama.cpp reads the file.
// progress, when set, draws the first load of preloaded models on a
// terminal.
func modelSpecs(cat *catalog.Catalog, cfg *serveConfig, log *slog.Logger, progress io.Writer) []stack.ModelSpec {
	specs := make([]stack.ModelSpec, 0, len(cat.Entries))
	for _, e := range cat.Entries {
		mc := e.Config
		ctx, parallel, gpuLayers := cfg.Ctx, cfg.Parallel, cfg.GPULayers
		if mc.Ctx > 0 {
			ctx = mc.Ctx
		}
		if mc.Parallel > 0 {
			parallel = mc.Parallel
		}
		if mc.GPULayers != nil {
			gpuLayers = *mc.GPULayers
		}
		f := e.Facts
		// What a request gets, as llamacpp.Open will size it.
		if f.CtxTrain > 0 && ctx > f.CtxTrain*parallel {
			ctx = f.CtxTrain * parallel
		}
		batch := min(cfg.Batch, ctx)
		est := engine.EstimateMemory(engine.Shape{Layers: f.Layers, Embd: f.Embd, Heads: f.Heads, HeadsKV: f.HeadsKV,
			Vocab: f.Vocab, WeightBytes: uint64(max(e.Size, 0))}, ctx, batch)
		host, gpu := est.Split(gpuLayers, f.Layers)
		sp := stack.ModelSpec{
			ID: e.ID, Aliases: e.Aliases, Err: e.Err, Preload: mc.Preload, Created: e.ModTime.Unix(),
			Arch: f.Arch, Quantization: f.FileType, SizeBytes: e.Size, SHA256: e.SHA256,
			HostBytes: host, GPUBytes: gpu, ChatTemplate: mc.ChatTemplate, Sampling: samplingDefaults(mc.Sampling),
		}
		if parallel > 0 && e.Err == nil {
			sp.ContextLength = ctx / parallel
		}
		sp.Check = func() error { // before another model is unloaded for this one
			if err := e.Verify(); err != nil {
				var ce *catalog.ChecksumError
				if errors.As(err, &ce) {
					return &engine.ModelError{Path: e.Path, Reason: ce.Error()}
				}
				return fmt.Errorf("verify %s: %w", e.Path, err)
			}
			return nil
		}
		first := true
		sp.Open = func() (engine.Backend, error) {
			var bar interface {
				Add(int64)
				Finish()
			}
			if first && mc.Preload && progress != nil {
				bar = catalog.NewProgress(progress, "loading "+e.ID, 100)
			}
			first = false
			be, err := llamacpp.Open(e.Path, llamacpp.Options{
				CtxSize: ctx, Parallel: parallel, Batch: cfg.Batch, Threads: cfg.Threads,
				GPULayers: gpuLayers, KVUnified: cfg.KVUnified, FlashAttention: cfg.Flash, ThreadPoll: cfg.ThreadPoll,
				FixedThreads: !cfg.AdaptThreads, SkipMemCheck: cfg.NoMemCheck, Logger: log,
				Progress: loadProgress(log, e.ID, bar),
			})
			if bar != nil {
				bar.Finish()
			}
			return be, err
		}
		specs = append(specs, sp)
	}
	return specs
}

// loadProgress moves bar (when set: a terminal) by the percent; without a
// bar it logs the load at each quarter, at debug (a bar and log lines never
// share the terminal).
func loadProgress(log *slog.Logger, id string, bar interface{ Add(int64) }) func(float64) {
	next, pct := 0.25, int64(0)
	return func(f float64) {
		if bar != nil {
			if p := int64(f * 100); p > pct {
				bar.Add(p - pct)
				pct = p
			}
		}
		for bar == nil && f >= next && next <= 1 {
			log.Debug("loading model", "model", id, "progress", fmt.Sprintf("%.0f%%", next*100))
			next += 0.25
		}
	}
}

func samplingDefaults(s *catalog.Sampling) server.SamplingDefaults {
	if s == nil {
		return server.SamplingDefaults{}
	}
	return server.SamplingDefaults{Temperature: s.Temperature, TopP: s.TopP, MinP: s.MinP, RepeatPenalty: s.RepeatPenalty, TopK: s.TopK}
}
