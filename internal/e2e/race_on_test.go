//go:build race

package e2e

// raceOn: under the race detector the process's RSS grows by itself (its
// shadow memory and per-goroutine state): TestSoakShort bounds it looser.
const raceOn = true
