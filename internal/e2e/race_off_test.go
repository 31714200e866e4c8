//go:build !race

package e2e

// raceOn: see race_on_test.go.
const raceOn = false
