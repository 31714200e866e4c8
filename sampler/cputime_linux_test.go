//go:build linux

package sampler

import (
	"syscall"
	"unsafe"
)

// threadCPU returns the CPU time of the calling OS thread in nanoseconds
// (clock_gettime CLOCK_THREAD_CPUTIME_ID, exact, unlike getrusage's tick
// sampling): on a loaded machine it measures the work, not the time spent
// waiting for a core. 0 if unavailable.
func threadCPU() int64 {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return ts.Nano()
}
