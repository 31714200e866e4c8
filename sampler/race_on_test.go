//go:build race

package sampler

// raceOn: the race detector slows the statistical tests ~10x; they draw
// fewer samples under it (their bounds scale with the number of draws).
const raceOn = true
