package main

import (
	"context"
	"fmt"
	"io"
)

// runBench is asi1d bench. (Being written: see internal/loadgen.)
func runBench(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "asi1d bench: not built yet")
	return 2
}
