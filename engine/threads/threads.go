// Package threads decides how many CPU workers a decode gets when the host
// does not give the process all the CPUs it was configured for.
//
// ggml's CPU workers meet at a spin barrier after every operation of the
// graph, so one worker that the kernel takes off its CPU (a neighbour
// process, a cgroup quota spent) stalls every other one: with one of two
// cores taken, two workers ran 2.9x slower than on a quiet host, where one
// worker alone would be about 2x slower. A starved worker shows in the
// process's CPU time: during a decode each of n workers either computes or
// spins, both on a CPU, so the CPU time is about n times the wall time; what
// falls short is time the workers were waiting for a CPU.
//
// Governor watches that share over windows of at least Window of decode
// time (one starved decode can be a whole window: waiting for three took
// 80 s on a swamped host). When it falls below
// Starved it runs one worker fewer; from time to time it tries one more
// again (a probe) and keeps it when the workers then get their CPUs. The
// probes back off while they fail, up to MaxProbeEvery. A probe costs one
// window at the larger count, or one decode when that decode is longer (a
// long prefill on a starved host).
package threads

import "time"

// Defaults of Governor.
const (
	DefaultWindow        = 200 * time.Millisecond
	DefaultStarved       = 0.8
	DefaultProbeEvery    = 2 * time.Second
	DefaultMaxProbeEvery = 32 * time.Second
)

// Governor is owned by the goroutine that decodes; it is not safe for
// concurrent use. The zero value is not usable: use New.
type Governor struct {
	// Window is the decode wall time judged at once; Starved the share of
	// n workers' time below which they were starved.
	Window  time.Duration
	Starved float64
	// ProbeEvery is the wait, after a change, before trying one worker
	// more; it doubles after each failed probe, up to MaxProbeEvery.
	ProbeEvery, MaxProbeEvery time.Duration

	max, cur  int
	wall, cpu time.Duration
	probing   bool
	backoff   time.Duration
	nextProbe time.Time
}

// New returns a governor for at most n workers, starting with n.
func New(n int) *Governor {
	n = max(n, 1)
	return &Governor{Window: DefaultWindow, Starved: DefaultStarved, ProbeEvery: DefaultProbeEvery,
		MaxProbeEvery: DefaultMaxProbeEvery, max: n, cur: n}
}

// Threads is the worker count for the next decode.
func (g *Governor) Threads() int { return g.cur }

// Decision is what one window decided.
type Decision struct {
	Threads  int     // workers for the next decodes
	From     int     // workers of the judged window
	Share    float64 // CPU time over wall time times From
	Probe    bool    // Threads is a trial of one more worker
	Reverted bool    // a probe failed and was undone
}

// Observe records one decode that ran with Threads() workers, took wall
// and used cpu of the process's CPU time, ending at now. When a window is
// complete it returns the decision and true; the caller then sets
// Decision.Threads workers when it differs from Decision.From.
func (g *Governor) Observe(now time.Time, wall, cpu time.Duration) (Decision, bool) {
	if g.max == 1 {
		return Decision{}, false
	}
	g.wall += wall
	g.cpu += cpu
	if g.wall < g.Window {
		return Decision{}, false
	}
	d := Decision{From: g.cur, Share: float64(g.cpu) / (float64(g.wall) * float64(g.cur))}
	g.wall, g.cpu = 0, 0
	starved := g.cur > 1 && d.Share < g.Starved
	switch {
	case g.probing && starved:
		// The extra worker did not get a CPU: back to the count before.
		g.cur--
		g.probing, d.Reverted = false, true
		g.backoff = min(g.backoff*2, g.MaxProbeEvery)
		g.nextProbe = now.Add(g.backoff)
	case starved:
		g.cur--
		g.probing = false
		g.backoff = g.ProbeEvery
		g.nextProbe = now.Add(g.backoff)
	case g.probing:
		// The probe held: keep it, and later try one more.
		g.probing = false
		g.backoff = g.ProbeEvery
		g.nextProbe = now.Add(g.backoff)
	case g.cur < g.max && !now.Before(g.nextProbe):
		g.cur++
		g.probing, d.Probe = true, true
	}
	d.Threads = g.cur
	return d, true
}
