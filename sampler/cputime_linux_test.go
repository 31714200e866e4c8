//go:build linux

package sampler

import "syscall"

// threadCPU returns the CPU time of the calling OS thread in nanoseconds
// (getrusage RUSAGE_THREAD): on a loaded machine it measures the work, not
// the time spent waiting for a core.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
