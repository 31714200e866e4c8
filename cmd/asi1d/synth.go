package main

import (
	"context"
	"fmt"
	"io"
)

// runSynth is asi1d synth. (Being written: see models/synth.)
func runSynth(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "asi1d synth: not built yet")
	return 2
}
