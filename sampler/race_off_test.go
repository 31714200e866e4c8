//go:build !race

package sampler

// raceOn: see race_on_test.go.
const raceOn = false
