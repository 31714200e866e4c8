package llamacpp

/*
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"unsafe"

	"github.com/asi1d/asi1d/engine"
)

// Sizes of the embedding context (see newEmbedder).
const (
	// embedSeqs is the most inputs of one pass.
	embedSeqs = 64
	// embedBatch is the tokens of one pass of a chat model: every token is
	// an output, and llama.cpp keeps a logits row of the whole vocabulary
	// for each (512 x 150k x 4 bytes = 300 MB for a large vocabulary).
	embedBatch = 512
	// embedMaxModel is the longest input of an embedding model (one with a
	// pooling type: nomic-embed, bge, Qwen3-Embedding): its trained context
	// up to this; a non-causal model must see an input in one pass.
	embedMaxModel = 2048
)

// embedder is the Backend's embedding context: a second llama.cpp context
// on the same weights, with embeddings on and the model's pooling type,
// created at the first Embed. The chat context and its KV cache are not
// touched. Owned by the scheduler loop like Decode.
type embedder struct {
	limits  engine.EmbedLimits
	err     error // the model gives no embeddings
	pooling C.enum_llama_pooling_type
	threads int
	flash   C.enum_llama_flash_attn_type
	ctx     *C.struct_llama_context
	batch   C.struct_llama_batch
}

// newEmbedder reads the model's pooling type (GGUF <arch>.pooling_type):
// a chat model has none and is mean-pooled; a reranker's rank pooling
// gives no embeddings.
func (b *Backend) newEmbedder(threads int) *embedder {
	e := &embedder{threads: threads, flash: b.flash}
	nTrain := b.info.NCtxTrain
	if nTrain <= 0 {
		nTrain = embedMaxModel
	}
	pt, _ := strconv.Atoi(b.meta(b.info.Arch + ".pooling_type"))
	maxTok, nbatch := min(nTrain, embedBatch), embedBatch
	switch pt {
	case 0: // none or absent: a generative model
		e.pooling, e.limits.Pooling = C.LLAMA_POOLING_TYPE_MEAN, engine.PoolMean
	case 1:
		e.pooling, e.limits.Pooling = C.LLAMA_POOLING_TYPE_MEAN, engine.PoolMean
	case 2:
		e.pooling, e.limits.Pooling = C.LLAMA_POOLING_TYPE_CLS, engine.PoolCLS
	case 3:
		e.pooling, e.limits.Pooling = C.LLAMA_POOLING_TYPE_LAST, engine.PoolLast
	default:
		e.err = fmt.Errorf("%w: pooling type %d (a reranker) gives scores, not embeddings", engine.ErrNoEmbeddings, pt)
	}
	if pt != 0 {
		maxTok = min(nTrain, embedMaxModel)
		nbatch = max(maxTok, embedBatch)
	}
	e.limits.Dim = int(C.llama_model_n_embd(b.model))
	e.limits.MaxTokens, e.limits.NBatch, e.limits.NSeq = maxTok, nbatch, embedSeqs
	return e
}

// EmbedLimits implements engine.Embedder.
func (b *Backend) EmbedLimits() (engine.EmbedLimits, error) {
	if b.emb == nil {
		return engine.EmbedLimits{}, engine.ErrClosed
	}
	return b.emb.limits, b.emb.err
}

// Embed implements engine.Embedder: one llama_decode over every input, each
// its own sequence (an encoder such as BERT runs llama_encode through it:
// its context has no KV cache), then each sequence's pooled vector.
func (b *Backend) Embed(inputs [][]engine.Token) ([][]float32, error) {
	e := b.emb
	if e == nil || b.model == nil {
		return nil, engine.ErrClosed
	}
	if e.err != nil {
		return nil, e.err
	}
	l := e.limits
	if len(inputs) == 0 || len(inputs) > l.NSeq {
		return nil, fmt.Errorf("embed: %d inputs, want 1 to %d", len(inputs), l.NSeq)
	}
	total := 0
	for i, in := range inputs {
		if len(in) == 0 || len(in) > l.MaxTokens {
			return nil, fmt.Errorf("embed: input %d has %d tokens, want 1 to %d", i, len(in), l.MaxTokens)
		}
		for _, t := range in {
			if t < 0 || int(t) >= b.info.NVocab {
				return nil, fmt.Errorf("embed: input %d: token %d out of the vocabulary", i, t)
			}
		}
		total += len(in)
	}
	if total > l.NBatch {
		return nil, fmt.Errorf("embed: %d tokens exceed the batch of %d", total, l.NBatch)
	}
	if err := b.openEmbed(); err != nil {
		return nil, err
	}
	tok := unsafe.Slice(e.batch.token, total)
	pos := unsafe.Slice(e.batch.pos, total)
	nseq := unsafe.Slice(e.batch.n_seq_id, total)
	seq := unsafe.Slice(e.batch.seq_id, total)
	lg := unsafe.Slice(e.batch.logits, total)
	k := 0
	for i, in := range inputs {
		for p, t := range in {
			tok[k], pos[k], nseq[k], lg[k] = C.llama_token(t), C.llama_pos(p), 1, 1
			*seq[k] = C.llama_seq_id(i)
			k++
		}
	}
	e.batch.n_tokens = C.int32_t(total)
	mem := C.llama_get_memory(e.ctx)
	C.llama_memory_clear(mem, true)
	defer C.llama_memory_clear(mem, true)
	if rc := C.llama_decode(e.ctx, e.batch); rc != 0 {
		return nil, fmt.Errorf("embed: llama_decode of %d inputs (%d tokens): code %d", len(inputs), total, rc)
	}
	out := make([][]float32, len(inputs))
	for i := range inputs {
		p := C.llama_get_embeddings_seq(e.ctx, C.llama_seq_id(i))
		if p == nil {
			return nil, fmt.Errorf("embed: no pooled embedding for input %d", i)
		}
		out[i] = append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), l.Dim)...)
	}
	return out, nil
}

// openEmbed creates the embedding context at the first Embed: a chat-only
// server never pays for it.
func (b *Backend) openEmbed() error {
	e := b.emb
	if e.ctx != nil {
		return nil
	}
	l := e.limits
	cp := C.llama_context_default_params()
	cp.n_ctx = C.uint32_t(l.NBatch)
	cp.n_batch = C.uint32_t(l.NBatch)
	cp.n_ubatch = C.uint32_t(l.NBatch) // a non-causal model sees an input in one part
	cp.n_seq_max = C.uint32_t(l.NSeq)
	cp.n_threads = C.int32_t(e.threads)
	cp.n_threads_batch = C.int32_t(e.threads)
	cp.embeddings = true
	cp.pooling_type = e.pooling
	cp.kv_unified = true // the inputs share the cells: one short input leaves room for a long one
	cp.flash_attn_type = e.flash
	cp.no_perf = true
	stop := startCapture()
	ctx := C.llama_init_from_model(b.model, cp)
	lines := stop()
	if ctx == nil {
		return fmt.Errorf("create the embedding context (%d tokens, %d sequences): failed: %v", l.NBatch, l.NSeq, lines)
	}
	e.ctx = ctx
	e.batch = C.llama_batch_init(C.int32_t(l.NBatch), 0, 1)
	if b.pool != nil {
		// The chat context's workers: the loop never runs both contexts
		// at once, and ggml's per-pass threads cost more than a small pass.
		C.llama_attach_threadpool(ctx, b.pool, b.pool)
	}
	return nil
}

// free releases the embedding context; from Close.
func (e *embedder) free() {
	if e == nil || e.ctx == nil {
		return
	}
	C.llama_batch_free(e.batch)
	freeContext(e.ctx)
	e.ctx = nil
}
