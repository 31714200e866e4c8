package engine

import "testing"

// llama3_2_1B is Llama 3.2 1B's shape: 16 layers, 2048 wide, 32 heads of
// which 8 for K/V.
var llama3_2_1B = Shape{Layers: 16, Embd: 2048, Heads: 32, HeadsKV: 8, Vocab: 128256, WeightBytes: 700 << 20}

// The KV cache of a known model against llama.cpp's own figure: for Llama
// 3.2 1B at 4096 cells its llama_kv_cache log line reads size = 128.00 MiB,
// K (f16) 64.00 MiB and V (f16) 64.00 MiB.
func TestEstimateMemoryKnownKV(t *testing.T) {
	if m := EstimateMemory(llama3_2_1B, 4096, 512); m.KV != 128<<20 {
		t.Fatalf("KV %d MiB, want llama.cpp's 128", m.KV>>20)
	}
}

// More cells, a larger batch, more K/V heads each cost more; the weights
// are what the shape says whatever the context.
func TestEstimateMemoryMonotone(t *testing.T) {
	prev := EstimateMemory(llama3_2_1B, 512, 512)
	for _, nctx := range []int{1024, 4096, 32768, 131072} {
		m := EstimateMemory(llama3_2_1B, nctx, 512)
		if m.KV <= prev.KV || m.Total() <= prev.Total() || m.Overhead != prev.Overhead || m.Weights != llama3_2_1B.WeightBytes {
			t.Fatalf("nctx %d: %+v after %+v", nctx, m, prev)
		}
		prev = m
	}
	small, big := EstimateMemory(llama3_2_1B, 4096, 512), EstimateMemory(llama3_2_1B, 4096, 2048)
	if big.Overhead <= small.Overhead || big.KV != small.KV {
		t.Fatalf("batch 2048 %+v, batch 512 %+v", big, small)
	}
	mha := llama3_2_1B
	mha.HeadsKV = 0 // unset: every head has its own K/V
	if m := EstimateMemory(mha, 4096, 512); m.KV != 4*small.KV {
		t.Fatalf("32 K/V heads: KV %d MiB, want 4x the 8 heads' %d MiB", m.KV>>20, small.KV>>20)
	}
}

// Zero and negative sizes count as nothing (no wrap-around to a huge
// unsigned figure), and a shape without heads does not divide by zero.
func TestEstimateMemoryDegenerate(t *testing.T) {
	if m := EstimateMemory(llama3_2_1B, 0, 512); m.KV != 0 {
		t.Fatalf("no cells: KV %d", m.KV)
	}
	if m, z := EstimateMemory(llama3_2_1B, -5, -5), EstimateMemory(llama3_2_1B, 0, 0); m != z {
		t.Fatalf("negative sizes %+v, zero sizes %+v", m, z)
	}
	if m := EstimateMemory(Shape{Layers: -1, Embd: -1, Heads: 0, Vocab: -1}, 4096, 512); m.KV != 0 || m.Weights != 0 || m.Total() > 1<<30 {
		t.Fatalf("empty shape: %+v", m)
	}
}

// Split divides the whole estimate between host and GPU, nothing lost or
// counted twice; the GPU's share grows with the offloaded layers, from
// nothing (CPU only) to everything (all layers or more).
func TestMemorySplit(t *testing.T) {
	m := EstimateMemory(llama3_2_1B, 4096, 512)
	if h, g := m.Split(0, 16); h != m.Total() || g != 0 {
		t.Fatalf("CPU only: host %d gpu %d of %d", h, g, m.Total())
	}
	if h, g := m.Split(-3, 16); h != m.Total() || g != 0 {
		t.Fatalf("negative layers: host %d gpu %d of %d", h, g, m.Total())
	}
	var prev uint64
	for n := 1; n <= 20; n++ {
		h, g := m.Split(n, 16)
		if h+g != m.Total() || g <= prev && n <= 16 || g < prev {
			t.Fatalf("%d of 16 layers: host %d gpu %d of %d (gpu %d with one layer fewer)", n, h, g, m.Total(), prev)
		}
		prev = g
	}
	if h, g := m.Split(16, 16); h != 0 || g != m.Total() {
		t.Fatalf("all offloaded: host %d gpu %d", h, g)
	}
	if h, g := m.Split(999, 16); h != 0 || g != m.Total() {
		t.Fatalf("more than all offloaded: host %d gpu %d", h, g)
	}
}
