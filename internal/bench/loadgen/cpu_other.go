//go:build !unix

package loadgen

import "time"

// ProcessCPU returns the CPU time this process has used so far; 0 where the
// platform does not say, as here.
func ProcessCPU() time.Duration { return 0 }
