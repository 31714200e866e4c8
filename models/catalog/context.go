package catalog

import "github.com/asi1d/asi1d/engine"

// ContextFlags are serve's settings that size a model's context; a
// manifest entry's ctx, parallel and gpu_layers replace them.
type ContextFlags struct {
	Ctx, Parallel, Batch, GPULayers int
	// Split: a KV pool per sequence (serve --kv-unified=false).
	Split bool
	// HostLimit and GPULimit cap an automatic pool (0: no cap).
	HostLimit, GPULimit uint64
}

// Shape is what a memory estimate needs of the model.
func (e *Entry) Shape() engine.Shape {
	f := e.Facts
	return engine.Shape{Layers: f.Layers, Embd: f.Embd, Heads: f.Heads, HeadsKV: f.HeadsKV, Vocab: f.Vocab,
		WeightBytes: uint64(max(e.Size, 0))}
}

// PlanContext sizes the model's context as serve will (engine.PlanContext
// with the manifest's settings over f), so that asi1d models ls, the
// server's /v1/models and its context errors give the same numbers.
func (e *Entry) PlanContext(f ContextFlags) (engine.ContextPlan, error) {
	a := engine.ContextAsk{
		Trained: e.Facts.CtxTrain, Ctx: f.Ctx, Parallel: f.Parallel, Split: f.Split, Batch: f.Batch,
		Shape: e.Shape(), GPULayers: f.GPULayers, HostLimit: f.HostLimit, GPULimit: f.GPULimit,
	}
	mc := e.Config
	if mc.Ctx > 0 {
		a.Ctx, a.CtxFrom = mc.Ctx, "the manifest's ctx"
	}
	if mc.Parallel > 0 {
		a.Parallel = mc.Parallel
	}
	if mc.GPULayers != nil {
		a.GPULayers = *mc.GPULayers
	}
	return engine.PlanContext(a)
}

// ServedContext is the context of one request that serve gives the model
// with its default flags on this machine (its available memory caps the
// pool): the CTX of asi1d models ls, the context_length of /v1/models.
// 0 when the model cannot be used.
func (e *Entry) ServedContext() int {
	if e.Err != nil {
		return 0
	}
	avail, _ := engine.MemAvailable()
	p, err := e.PlanContext(ContextFlags{HostLimit: avail})
	if err != nil {
		return 0
	}
	return p.PerSeq
}
