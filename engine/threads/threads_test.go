package threads

import (
	"testing"
	"time"
)

// host simulates decodes: each takes 10 ms of wall time, and its workers
// get avail CPUs (a quiet host: as many as there are workers).
type host struct {
	t     *testing.T
	g     *Governor
	now   time.Time
	avail float64
	seen  []Decision
}

// run decodes for d of simulated time.
func (h *host) run(d time.Duration) {
	const wall = 10 * time.Millisecond
	for end := h.now.Add(d); h.now.Before(end); {
		n := h.g.Threads()
		share := min(h.avail/float64(n), 1)
		h.now = h.now.Add(wall)
		if dec, ok := h.g.Observe(h.now, wall, time.Duration(share*float64(n)*float64(wall))); ok {
			if dec.From < 1 || dec.Threads < 1 || dec.Threads > 2*dec.From {
				h.t.Fatalf("bad decision %+v", dec)
			}
			h.seen = append(h.seen, dec)
		}
	}
}

func newHost(t *testing.T, n int, avail float64) *host {
	return &host{t: t, g: New(n), now: time.Unix(1000, 0), avail: avail}
}

func TestQuietHostKeepsEveryWorker(t *testing.T) {
	h := newHost(t, 4, 4)
	h.run(time.Minute)
	if h.g.Threads() != 4 {
		t.Fatalf("threads = %d on a quiet host, want 4", h.g.Threads())
	}
	for _, d := range h.seen {
		if d.Probe || d.Reverted || d.Threads != 4 {
			t.Fatalf("decision %+v on a quiet host", d)
		}
	}
}

func TestStarvedHostDropsWorkersAndProbesRarely(t *testing.T) {
	h := newHost(t, 2, 1.5) // one core of two half taken
	h.run(time.Second)
	if h.g.Threads() != 1 {
		t.Fatalf("threads = %d after a starved second, want 1", h.g.Threads())
	}
	h.seen = nil
	h.run(5 * time.Minute)
	probes := 0
	for _, d := range h.seen {
		if d.Probe {
			probes++
		}
	}
	// Backoff 2, 4, 8, 16, 32, 32...: about 12 probes in 5 minutes, not 150.
	if probes == 0 || probes > 15 {
		t.Fatalf("%d probes in 5 minutes of starvation", probes)
	}
	if h.g.Threads() != 1 {
		t.Fatalf("threads = %d, want 1 while starved", h.g.Threads())
	}
}

func TestRecoversWhenTheNeighbourLeaves(t *testing.T) {
	h := newHost(t, 4, 1) // a cgroup quota of one CPU
	h.run(10 * time.Second)
	if got := h.g.Threads(); got != 1 {
		t.Fatalf("threads = %d under a 1-CPU quota, want 1", got)
	}
	h.avail = 4
	h.run(2 * time.Minute)
	if got := h.g.Threads(); got != 4 {
		t.Fatalf("threads = %d two minutes after the host went quiet, want 4", got)
	}
}

func TestOneWorkerIsNeverJudged(t *testing.T) {
	h := newHost(t, 1, 0.1)
	h.run(time.Minute)
	if h.g.Threads() != 1 || len(h.seen) != 0 {
		t.Fatalf("threads %d, decisions %v", h.g.Threads(), h.seen)
	}
}
