package llamacpp

/*
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/asi1d/asi1d/engine"
)

var _ engine.SeqStater = (*Backend)(nil)

// StateID implements engine.SeqStater. It names llama.cpp's sequence-state
// format version and the settings that shape a sequence's KV: cells per
// sequence, the KV streams (one when unified, else one per sequence, and
// llama.cpp refuses a state of another stream count), the KV types (f16:
// asi1d does not change them) and flash attention as asked (off stores V
// transposed). GPU layers change where the KV lives, not its bytes, so they
// are not part of it. llama.cpp checks layer count, types and row sizes
// again when it restores, so a state that slips through is refused, never
// misread.
func (b *Backend) StateID() string {
	streams := 1
	if !b.info.KVUnified {
		streams = b.info.Parallel
	}
	return fmt.Sprintf("llama.cpp seq state v%d; n_ctx_seq=%d; streams=%d; type_k=f16; type_v=f16; flash_attn=%s",
		C.LLAMA_STATE_SEQ_VERSION, b.info.NCtxSeq, streams, C.GoString(C.llama_flash_attn_type_name(b.flash)))
}

// SaveSeq implements engine.SeqStater.
func (b *Backend) SaveSeq(seq engine.SeqID) ([]byte, error) {
	if b.ctx == nil {
		return nil, engine.ErrClosed
	}
	if seq < 0 || int(seq) >= b.info.Parallel {
		return nil, fmt.Errorf("save state: sequence %d out of range", seq)
	}
	n := C.llama_state_seq_get_size(b.ctx, C.llama_seq_id(seq))
	if n == 0 {
		return nil, fmt.Errorf("save state of sequence %d: llama.cpp reports no state, see the log", seq)
	}
	buf := make([]byte, int(n))
	got := C.llama_state_seq_get_data(b.ctx, (*C.uint8_t)(unsafe.Pointer(&buf[0])), n, C.llama_seq_id(seq))
	if got == 0 || got > n {
		return nil, fmt.Errorf("save state of sequence %d: llama.cpp wrote %d of %d bytes", seq, got, n)
	}
	return buf[:got], nil
}

// RestoreSeq implements engine.SeqStater. llama.cpp clears the sequence,
// then checks the state's stream count, layer count, KV types and row
// sizes, and reads past no end; any failure leaves the sequence empty.
func (b *Backend) RestoreSeq(seq engine.SeqID, state []byte) error {
	if b.ctx == nil {
		return engine.ErrClosed
	}
	if seq < 0 || int(seq) >= b.info.Parallel {
		return fmt.Errorf("restore state: sequence %d out of range", seq)
	}
	if len(state) == 0 {
		return fmt.Errorf("restore state of sequence %d: empty state", seq)
	}
	got := C.llama_state_seq_set_data(b.ctx, (*C.uint8_t)(unsafe.Pointer(&state[0])), C.size_t(len(state)), C.llama_seq_id(seq))
	if got == 0 {
		C.llama_memory_seq_rm(C.llama_get_memory(b.ctx), C.llama_seq_id(seq), -1, -1)
		return fmt.Errorf("restore state of sequence %d: llama.cpp refused it (%d bytes), see the log", seq, len(state))
	}
	return nil
}
