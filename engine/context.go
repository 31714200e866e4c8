package engine

import (
	"fmt"
	"os"
	"strings"
)

// Context sizing. A model's context is one KV pool shared by its parallel
// sequences (llama.cpp's kv_unified): a request may use up to the model's
// trained context, as long as the pool has room, so one long request and
// many short ones fit together, and nothing is set aside per sequence that
// it may never use. PlanContext sizes the pool, the context of one request
// and the number of sequences from the model, the machine and what the
// operator asked; the server, the catalog listing and the memory check all
// use its answer, so they give the same numbers.

// Defaults of PlanContext.
const (
	// PoolTrainedFactor: without --ctx the pool holds this many times the
	// trained context: one request of the full trained length, and as
	// much again for the others.
	PoolTrainedFactor = 2
	// UnknownTrainedCtx is assumed for a model that does not say its
	// trained context.
	UnknownTrainedCtx = 4096
	// MinAutoParallel and MaxAutoParallel bound the sequences decoded
	// together when --parallel is not set: at least 16 short streams run
	// at once (measured on the small synth model at 16 streams: 1.5x the
	// throughput and a third of the TTFT p50 of 4 sequences), more for a
	// large pool (one per AutoParallelCells cells).
	MinAutoParallel   = 16
	MaxAutoParallel   = 32
	AutoParallelCells = 2048
	// MemoryShare is the share of the available memory that a model's
	// estimate may take when the pool is sized automatically; the rest is
	// left to the OS, the server and estimate errors.
	MemoryShare = 0.9
	// minPoolCells is the smallest pool a memory cap may leave; below it
	// the model does not fit.
	minPoolCells = 256
	// poolAlign: llama.cpp pads a context to 256 cells; a capped pool is
	// rounded down to it.
	poolAlign = 256
)

// ContextAsk is what PlanContext sizes a context from.
type ContextAsk struct {
	// Trained is the context the model was trained with (0: unknown,
	// UnknownTrainedCtx assumed).
	Trained int
	// Ctx is the pool asked for (serve --ctx or the manifest's ctx; 0:
	// sized automatically). CtxFrom names where it came from, for the
	// messages ("--ctx", "the manifest's ctx").
	Ctx     int
	CtxFrom string
	// Parallel is the sequences asked for (0: automatic).
	Parallel int
	// Split gives each sequence its own Ctx/Parallel cells instead of one
	// shared pool (serve --kv-unified=false).
	Split bool
	// Batch is the most tokens one decode carries.
	Batch int
	// Shape and GPULayers are for the memory estimate.
	Shape     Shape
	GPULayers int
	// HostLimit and GPULimit are what the model may take of host and GPU
	// memory (the available memory, or a configured budget, whichever is
	// smaller); 0: unknown, the pool is not capped.
	HostLimit, GPULimit uint64
}

// ContextPlan is a sized context.
type ContextPlan struct {
	Pool     int // KV cells in all (llama.cpp's n_ctx)
	PerSeq   int // cells one request may use: prompt and completion
	Parallel int // sequences decoded together
	Batch    int
	Trained  int
	Split    bool
	// Why says how the pool was sized, for the start-up log.
	Why string
	// Capped is set when memory made the pool smaller than asked.
	Capped bool
	// Warnings are for the log (a --ctx above the trained context).
	Warnings []string
	// Memory is the estimate at Pool.
	Memory Memory
}

// PlanContext sizes a context. An explicit Ctx is honoured (the memory
// check at load refuses it when it does not fit); an automatic pool is
// capped to the memory limits and is an error only when not even
// minPoolCells fit.
func PlanContext(a ContextAsk) (ContextPlan, error) {
	p := ContextPlan{Trained: a.Trained, Split: a.Split}
	if p.Trained <= 0 {
		p.Trained = UnknownTrainedCtx
	}
	from := a.CtxFrom
	if from == "" {
		from = "--ctx"
	}
	if a.Split {
		return planSplit(a, p, from)
	}
	auto := a.Ctx <= 0
	if auto {
		p.Pool = PoolTrainedFactor * p.Trained
		p.Why = fmt.Sprintf("%d x the trained context of %d: one request of the full length, as much again for the others", PoolTrainedFactor, p.Trained)
	} else {
		p.Pool = a.Ctx
		p.Why = from
		if a.Ctx > p.Trained {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s %d is above the model's trained context of %d: one request still uses at most %d tokens (positions past the trained length degrade the model), the rest of the pool holds other requests",
				from, a.Ctx, p.Trained, p.Trained))
		}
	}
	batch := batchFor(a.Batch, p.Pool)
	if auto {
		n, capped, why, err := capPool(a, p.Pool)
		if err != nil {
			return p, err
		}
		if capped {
			p.Pool, p.Capped = n, true
			p.Why += "; " + why
		}
	}
	p.Batch = batchFor(batch, p.Pool)
	p.PerSeq = min(p.Trained, p.Pool)
	p.Parallel = a.Parallel
	if p.Parallel <= 0 {
		p.Parallel = AutoParallel(p.Pool)
	}
	p.Memory = EstimateMemory(a.Shape, p.Pool, p.Batch)
	return p, nil
}

// planSplit sizes a context of Parallel pools of Ctx/Parallel cells.
func planSplit(a ContextAsk, p ContextPlan, from string) (ContextPlan, error) {
	p.Parallel = a.Parallel
	if p.Parallel <= 0 {
		p.Parallel = MinAutoParallel
	}
	if a.Ctx > 0 {
		p.Pool, p.Why = a.Ctx, from
		if a.Ctx/p.Parallel > p.Trained {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s %d gives each of %d sequences %d cells, above the model's trained context of %d: capped to %d each",
				from, a.Ctx, p.Parallel, a.Ctx/p.Parallel, p.Trained, p.Trained))
			p.Pool = p.Trained * p.Parallel
		}
	} else {
		p.Pool = p.Trained * p.Parallel
		p.Why = fmt.Sprintf("the trained context of %d for each of %d sequences", p.Trained, p.Parallel)
		n, capped, why, err := capPool(a, p.Pool)
		if err != nil {
			return p, err
		}
		if capped {
			p.Pool, p.Capped = max(n/p.Parallel*p.Parallel, p.Parallel), true
			p.Why += "; " + why
		}
	}
	p.Batch = batchFor(a.Batch, p.Pool)
	p.PerSeq = p.Pool / p.Parallel
	p.Memory = EstimateMemory(a.Shape, p.Pool, p.Batch)
	return p, nil
}

// AutoParallel is the number of sequences decoded together for a pool of
// cells when --parallel is not set: one per AutoParallelCells cells,
// between MinAutoParallel and MaxAutoParallel, and never more than one per
// 32 cells of a small pool.
func AutoParallel(pool int) int {
	n := min(max(pool/AutoParallelCells, MinAutoParallel), MaxAutoParallel)
	return max(min(n, pool/32), 1)
}

func batchFor(batch, pool int) int {
	if batch <= 0 {
		batch = 512
	}
	return max(min(batch, pool), 1)
}

// capPool returns the largest pool of at most want cells whose estimate
// fits the memory limits (capped: smaller than want), and why.
func capPool(a ContextAsk, want int) (n int, capped bool, why string, err error) {
	fits := func(n int) bool {
		host, gpu := EstimateMemory(a.Shape, n, batchFor(a.Batch, n)).Split(a.GPULayers, a.Shape.Layers)
		return (a.HostLimit == 0 || float64(host) <= MemoryShare*float64(a.HostLimit)) &&
			(a.GPULimit == 0 || a.GPULayers <= 0 || float64(gpu) <= MemoryShare*float64(a.GPULimit))
	}
	if fits(want) {
		return want, false, "", nil
	}
	lo, hi := 0, want // fits(lo) or lo == 0; !fits(hi)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	n = lo / poolAlign * poolAlign
	est := EstimateMemory(a.Shape, want, batchFor(a.Batch, want))
	var limits []string
	if a.HostLimit > 0 {
		limits = append(limits, fmt.Sprintf("%d MiB of host memory", a.HostLimit>>20))
	}
	if a.GPULimit > 0 && a.GPULayers > 0 {
		limits = append(limits, fmt.Sprintf("%d MiB of GPU memory", a.GPULimit>>20))
	}
	lim := strings.Join(limits, " and ")
	if n < minPoolCells {
		return 0, false, "", fmt.Errorf("the model does not fit in %s: the weights take %d MiB and even %d KV cells do not fit beside them; use a smaller quantization, free memory, or pass --no-mem-check",
			lim, est.Weights>>20, minPoolCells)
	}
	return n, true, fmt.Sprintf("capped to %d cells by memory: %d MiB (weights %d MiB, KV cache %d MiB, buffers %d MiB) would not fit in %.0f%% of %s",
		n, est.Total()>>20, est.Weights>>20, est.KV>>20, est.Overhead>>20, MemoryShare*100, lim), nil
}

// MemAvailable is the host memory available to a new model: MemAvailable
// of /proc/meminfo (false where it cannot be read).
func MemAvailable() (uint64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb uint64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err == nil {
				return kb << 10, true
			}
		}
	}
	return 0, false
}
