package llamacpp

import "github.com/asi1d/asi1d/engine/threads"

// Governor exposes the worker governor to tests; nil when fixed.
func (b *Backend) Governor() *threads.Governor { return b.gov }
