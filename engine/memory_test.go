package engine

import "testing"

func TestEstimateMemory(t *testing.T) {
	// 1b-like shape: 16 layers, 2048 wide, 32 heads of which 8 for K/V.
	sh := Shape{Layers: 16, Embd: 2048, Heads: 32, HeadsKV: 8, Vocab: 128256, WeightBytes: 700 << 20}
	m := EstimateMemory(sh, 4096, 512)
	// K and V, f16: 4096 cells x 16 layers x 2 x (2048/32*8) x 2 bytes = 128 MiB.
	if m.KV != 128<<20 {
		t.Fatalf("KV %d MiB, want 128", m.KV>>20)
	}
	if m.Weights != 700<<20 || m.Overhead <= 64<<20 || m.Total() != m.Weights+m.KV+m.Overhead {
		t.Fatalf("estimate %+v", m)
	}
	if h, g := m.Split(0, 16); h != m.Total() || g != 0 {
		t.Fatalf("CPU only: host %d gpu %d", h, g)
	}
	h, g := m.Split(8, 16) // half the layers on the GPU, with the buffers
	if g != (m.Weights+m.KV)/2+m.Overhead || h+g != m.Total() {
		t.Fatalf("half offloaded: host %d gpu %d of %d", h, g, m.Total())
	}
	if h, g := m.Split(999, 16); h != 0 || g != m.Total() {
		t.Fatalf("all offloaded: host %d gpu %d", h, g)
	}
}
