//go:build !linux

package sampler

// threadCPU is not measured off Linux.
func threadCPU() int64 { return 0 }
