package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/models/catalog"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

// openCatalog is what serve serves: the catalog of --models-dir, or
// --model as a catalog of one (id --model-name or the file's base name,
// aliases --alias, loaded at start). The default model also answers to
// --default-alias (see defaultAlias).
func openCatalog(cfg *serveConfig) (*catalog.Catalog, error) {
	if cfg.ModelsDir != "" {
		cat, err := catalog.Scan(cfg.ModelsDir)
		if err != nil {
			return nil, err
		}
		if cfg.DefaultModel != "" && findEntry(cat, cfg.DefaultModel) == nil {
			return nil, fmt.Errorf("--default-model %q: no such model in %s (ids: %s)", cfg.DefaultModel, cat.Dir, strings.Join(entryIDs(cat), ", "))
		}
		defaultAlias(cat, cfg)
		return cat, nil
	}
	cat, err := catalog.Single(cfg.Model, cfg.ModelName, cfg.Aliases)
	if err != nil {
		return nil, err
	}
	for _, e := range cat.Entries {
		e.Config.Preload = true
	}
	defaultAlias(cat, cfg)
	return cat, nil
}

// defaultAlias adds --default-alias (asi1-mini unless changed; "" for
// none) to the aliases of the default model: --default-model, else the
// first usable preloaded model, else the first usable one by id. A name
// that a model already claims as its id or alias stays that model's. It
// returns the default model's id ("" when there is none).
func defaultAlias(cat *catalog.Catalog, cfg *serveConfig) string {
	var def *catalog.Entry
	if cfg.DefaultModel != "" {
		def = findEntry(cat, cfg.DefaultModel)
	}
	for _, e := range cat.Entries {
		if def == nil && e.Err == nil && e.Config.Preload {
			def = e
		}
	}
	for _, e := range cat.Entries {
		if def == nil && e.Err == nil {
			def = e
		}
	}
	if def == nil {
		return ""
	}
	alias := cfg.DefaultAlias
	if alias == "" || findEntry(cat, alias) != nil {
		return def.ID
	}
	def.Aliases = append(def.Aliases, alias)
	return def.ID
}

// findEntry is the entry that id names (its id or an alias), nil if none.
func findEntry(cat *catalog.Catalog, id string) *catalog.Entry {
	for _, e := range cat.Entries {
		if slices.Contains(e.Names(), id) {
			return e
		}
	}
	return nil
}

func entryIDs(cat *catalog.Catalog) []string {
	ids := make([]string, 0, len(cat.Entries))
	for _, e := range cat.Entries {
		ids = append(ids, e.ID)
	}
	return ids
}

// rescanner is the stack's Rescan for --models-dir: the models the folder
// holds now (nil when it cannot be read: the stack keeps what it serves).
// It runs on the stack's rescan goroutine only, which owns logged.
func rescanner(cfg *serveConfig, log *slog.Logger, logged map[string]bool) func() []stack.ModelSpec {
	return func() []stack.ModelSpec {
		cat, err := catalog.Scan(cfg.ModelsDir)
		if err != nil {
			log.Warn("rescan of the models folder failed; serving what was there", "dir", cfg.ModelsDir, "err", err)
			return nil
		}
		if cfg.DefaultModel != "" && findEntry(cat, cfg.DefaultModel) == nil {
			log.Warn("--default-model is not in the models folder", "model", cfg.DefaultModel)
		}
		defaultAlias(cat, cfg)
		mem := newMemLimits(cfg, 0)
		mem.gpu = uint64(cfg.MaxGPUMemory)
		return modelSpecs(cat, cfg, mem, log, nil, logged)
	}
}

// memLimits are what one model's automatic context may take of host and
// GPU memory: the available memory, or --max-model-memory and
// --max-gpu-memory when smaller (0: no cap, as with --no-mem-check).
type memLimits struct{ host, gpu uint64 }

func newMemLimits(cfg *serveConfig, gpuFree uint64) memLimits {
	var l memLimits
	if cfg.NoMemCheck {
		return l
	}
	if avail, ok := engine.MemAvailable(); ok {
		l.host = avail
	}
	if b := uint64(cfg.MaxModelMemory); b > 0 && cfg.ModelsDir != "" && (l.host == 0 || b < l.host) {
		l.host = b
	}
	l.gpu = gpuFree
	if b := uint64(cfg.MaxGPUMemory); b > 0 && cfg.ModelsDir != "" && (l.gpu == 0 || b < l.gpu) {
		l.gpu = b
	}
	return l
}

// specVersion names what a model is served from: its file (path, size,
// time) and its manifest entry. A rescan that finds another version of an
// id replaces the model.
func specVersion(e *catalog.Entry) string {
	cfg, _ := json.Marshal(e.Config)
	return fmt.Sprintf("%s|%d|%d|%x", e.Path, e.Size, e.ModTime.UnixNano(), sha256.Sum256(cfg))
}

// modelSpecs turns catalog entries into the stack's models: the manifest's
// settings over serve's flags, the context that engine.PlanContext sizes
// (logged once per model version: logged holds the versions already
// logged, nil to log every one), the memory estimate the budget counts,
// and an Open that verifies a pinned checksum before llama.cpp reads the
// file. progress, when set, draws the first load of preloaded models on a
// terminal.
func modelSpecs(cat *catalog.Catalog, cfg *serveConfig, mem memLimits, log *slog.Logger, progress io.Writer, logged map[string]bool) []stack.ModelSpec {
	specs := make([]stack.ModelSpec, 0, len(cat.Entries))
	for _, e := range cat.Entries {
		mc := e.Config
		gpuLayers := cfg.GPULayers
		if mc.GPULayers != nil {
			gpuLayers = *mc.GPULayers
		}
		f := e.Facts
		version := specVersion(e)
		sp := stack.ModelSpec{
			ID: e.ID, Aliases: e.Aliases, Err: e.Err, Preload: mc.Preload, Created: e.ModTime.Unix(),
			Arch: f.Arch, Quantization: f.FileType, SizeBytes: e.Size, SHA256: e.SHA256,
			ChatTemplate: mc.ChatTemplate, Sampling: samplingDefaults(mc.Sampling), Version: version,
		}
		plan, err := e.PlanContext(catalog.ContextFlags{Ctx: cfg.Ctx, Parallel: cfg.Parallel, Batch: cfg.Batch,
			GPULayers: cfg.GPULayers, Split: !cfg.KVUnified, HostLimit: mem.host, GPULimit: mem.gpu})
		if err != nil && sp.Err == nil {
			sp.Err = &engine.ModelError{Path: e.Path, Reason: "no room for its context", Err: err}
		}
		if sp.Err == nil {
			sp.ContextLength = plan.PerSeq
			sp.HostBytes, sp.GPUBytes = plan.Memory.Split(gpuLayers, f.Layers)
			if logged == nil || !logged[version] {
				logPlan(log, e.ID, plan)
			}
		}
		if logged != nil {
			logged[version] = true
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
				CtxSize: plan.Pool, Parallel: plan.Parallel, Batch: cfg.Batch, Threads: cfg.Threads,
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

// logPlan says how a model's context was sized.
func logPlan(log *slog.Logger, id string, p engine.ContextPlan) {
	for _, w := range p.Warnings {
		log.Warn("context", "model", id, "warning", w)
	}
	lvl := slog.LevelInfo
	if p.Capped {
		lvl = slog.LevelWarn
	}
	log.Log(context.Background(), lvl, "context", "model", id, "pool_cells", p.Pool, "ctx_per_request", p.PerSeq,
		"parallel", p.Parallel, "trained", p.Trained, "shared_pool", !p.Split, "capped_by_memory", p.Capped,
		"estimate_mib", p.Memory.Total()>>20, "why", p.Why)
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
