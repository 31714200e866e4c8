package engine

import (
	"strings"
	"testing"
)

func TestPlanContextDefaults(t *testing.T) {
	// stories260K: trained on 2,048 tokens.
	p, err := PlanContext(ContextAsk{Trained: 2048, Batch: 512, Shape: Shape{Layers: 5, Embd: 64, Heads: 8, HeadsKV: 4, Vocab: 512}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Pool != 4096 || p.PerSeq != 2048 || p.Parallel < 16 || p.Capped || p.Split || len(p.Warnings) > 0 {
		t.Fatalf("plan %+v", p)
	}
	// Unknown trained context.
	if p, _ := PlanContext(ContextAsk{}); p.PerSeq != UnknownTrainedCtx || p.Pool != 2*UnknownTrainedCtx {
		t.Fatalf("unknown trained: %+v", p)
	}
}

func TestPlanContextExplicit(t *testing.T) {
	p, err := PlanContext(ContextAsk{Trained: 2048, Ctx: 8192, HostLimit: 1}) // an explicit pool is not capped
	if err != nil {
		t.Fatal(err)
	}
	if p.Pool != 8192 || p.PerSeq != 2048 || p.Capped || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "--ctx 8192 is above the model's trained context of 2048") {
		t.Fatalf("plan %+v", p)
	}
	p, _ = PlanContext(ContextAsk{Trained: 2048, Ctx: 1024, CtxFrom: "the manifest's ctx", Parallel: 3})
	if p.Pool != 1024 || p.PerSeq != 1024 || p.Parallel != 3 || len(p.Warnings) != 0 || p.Why != "the manifest's ctx" {
		t.Fatalf("plan %+v", p)
	}
}

func TestPlanContextCappedByMemory(t *testing.T) {
	// An 8B model trained on 128k tokens on a machine with 8 GiB free:
	// 256k cells of KV (32 GiB) do not fit, the pool is capped.
	sh := Shape{Layers: 32, Embd: 4096, Heads: 32, HeadsKV: 8, Vocab: 128256, WeightBytes: 4500 << 20}
	p, err := PlanContext(ContextAsk{Trained: 131072, Batch: 512, Shape: sh, HostLimit: 8 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Capped || p.Pool >= 2*131072 || p.Pool%256 != 0 || p.Pool < 256 || p.PerSeq != p.Pool {
		t.Fatalf("plan %+v", p)
	}
	if float64(p.Memory.Total()) > MemoryShare*float64(8<<30) {
		t.Fatalf("capped estimate %d MiB is over %.0f%% of 8 GiB", p.Memory.Total()>>20, MemoryShare*100)
	}
	if bigger := EstimateMemory(sh, p.Pool+256, p.Batch); float64(bigger.Total()) <= MemoryShare*float64(8<<30) {
		t.Fatalf("pool %d: 256 more cells would still fit", p.Pool)
	}
	if !strings.Contains(p.Why, "capped to") || !strings.Contains(p.Why, "8192 MiB of host memory") {
		t.Fatalf("why: %s", p.Why)
	}
	// Offloaded: the GPU's part is capped too.
	p, err = PlanContext(ContextAsk{Trained: 131072, Batch: 512, Shape: sh, GPULayers: 32, GPULimit: 16 << 30})
	if err != nil || !p.Capped {
		t.Fatalf("gpu plan %+v %v", p, err)
	}
	if _, gpu := p.Memory.Split(32, 32); float64(gpu) > MemoryShare*float64(16<<30) {
		t.Fatalf("gpu part %d MiB", gpu>>20)
	}
	// Weights alone beyond the memory: an error that says so.
	if _, err := PlanContext(ContextAsk{Trained: 131072, Shape: sh, HostLimit: 4 << 30}); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("err %v", err)
	}
}

func TestPlanContextSplit(t *testing.T) {
	p, err := PlanContext(ContextAsk{Trained: 2048, Ctx: 4096, Parallel: 4, Split: true})
	if err != nil || p.PerSeq != 1024 || p.Pool != 4096 || !p.Split {
		t.Fatalf("plan %+v %v", p, err)
	}
	p, _ = PlanContext(ContextAsk{Trained: 2048, Ctx: 1 << 20, Parallel: 4, Split: true})
	if p.PerSeq != 2048 || len(p.Warnings) != 1 {
		t.Fatalf("above trained: %+v", p)
	}
}

func TestAutoParallel(t *testing.T) {
	for pool, want := range map[int]int{4096: 16, 1 << 16: 32, 1 << 20: 32, 256: 8, 16: 1} {
		if got := AutoParallel(pool); got != want {
			t.Errorf("AutoParallel(%d) = %d, want %d", pool, got, want)
		}
	}
}
