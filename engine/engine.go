// Package engine is the port between asi1d and a model runtime. It holds plain
// types and the narrow Backend interface that the scheduler drives; it has no
// cgo. engine/llamacpp implements Backend over llama.cpp, engine/enginetest
// implements it with a scripted fake for tests.
package engine

import (
	"errors"
	"fmt"
	"slices"
)

// Token is a vocabulary id.
type Token = int32

// SeqID names one sequence (one request's place) in the backend's KV cache.
// Valid ids are 0..Info().Parallel-1.
type SeqID = int32

// ErrNoKVSpace is returned by Decode when the batch does not fit in the KV
// cache. The batch was not applied; the caller must shrink it or end a
// sequence. It is a runtime condition, never a reason to panic.
var ErrNoKVSpace = errors.New("engine: no KV cache space for the batch")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("engine: backend is closed")

// Info describes a loaded model and the context built for it. It never
// changes after the backend is opened.
type Info struct {
	Path         string // the model file
	Arch         string // general.architecture, e.g. "llama"
	Name         string // general.name, when present
	Params       uint64 // number of parameters
	SizeBytes    uint64 // size of the weights
	NCtxTrain    int    // context length the model was trained with
	NCtx         int    // total KV cells of the context
	NCtxSeq      int    // KV cells available to one sequence
	Parallel     int    // number of sequences (SeqID 0..Parallel-1)
	NBatch       int    // most tokens one Decode call may carry
	NVocab       int
	BOS          Token // -1 when the vocabulary has none
	EOS          Token // -1 when the vocabulary has none
	AddBOS       bool  // the vocabulary asks for BOS at the start of a prompt
	EOG          []Token
	ChatTemplate string // tokenizer.chat_template, "" when absent
	// Tokens with special roles that parsers care about, by text, e.g.
	// "<think>" -> 151667. Only tokens of type control or user-defined.
	SpecialTokens map[string]Token
	Threads       int
	GPULayers     int
	KVUnified     bool // all sequences share one KV pool (else NCtxSeq cells each)

	// Fill-in-the-middle tokens (code models: "<|fim_prefix|>",
	// "<|fim_suffix|>", "<|fim_middle|>"); -1 when the vocabulary has
	// none. A FIM prompt is FIMPre prefix FIMSuf suffix FIMMid, and the
	// model writes the middle.
	FIMPre, FIMSuf, FIMMid Token
}

// HasFIM tells whether the vocabulary has the three fill-in-the-middle
// tokens (three distinct ones: a zero Info has none).
func (i *Info) HasFIM() bool {
	return i.FIMPre >= 0 && i.FIMSuf >= 0 && i.FIMMid >= 0 &&
		i.FIMPre != i.FIMSuf && i.FIMSuf != i.FIMMid && i.FIMPre != i.FIMMid
}

// BatchEntry is one token of a batch: the token, the sequence it belongs to,
// its position in that sequence, and whether the caller wants its logits.
type BatchEntry struct {
	Token  Token
	Seq    SeqID
	Pos    int32
	Logits bool
}

// Backend is one loaded model with one context. The methods that touch the
// context (Decode, Logits, RemoveKV, CopySeq, ClearKV) are not safe for
// concurrent use: exactly one goroutine (the scheduler loop) calls them.
// The vocabulary methods (Info, Tokenize, Piece, IsEOG, IsControl) are safe for
// concurrent use, also with a running Decode: they read only the vocabulary
// and tables fixed at open (llama_tokenize reads the llama_vocab only), so
// HTTP handlers tokenize prompts and the scheduler's sampling workers turn
// tokens into text while the loop decodes. The rows Logits returned may be
// read and modified by different goroutines at once, one row each. Close
// must not race Decode; racing Tokenize, it makes Tokenize return ErrClosed.
//
// KV limits of the llama.cpp binding: when Info().KVUnified is false each
// sequence has its own NCtxSeq cells, and a partial KV copy between sequences
// aborts the process, so CopySeq copies a whole sequence only. Such a batch
// is also split as Ubatches describes, and each part is a pass over all the
// weights: callers that batch many sequences keep them in runs of
// consecutive ids.
type Backend interface {
	Info() Info
	// Tokenize turns text into tokens. addSpecial adds BOS/EOS as the
	// vocabulary asks; parseSpecial turns special-token text into its token.
	Tokenize(text string, addSpecial, parseSpecial bool) ([]Token, error)
	// Piece returns the bytes a token stands for (possibly half a UTF-8
	// character). Special tokens render as their text.
	Piece(t Token) []byte
	// Decode runs the model over the batch and returns when the pass is
	// done (its time is the pass's cost, from which the scheduler sizes its
	// steps). After it returns nil, Logits(i) is valid for every entry i
	// with Logits set, until the next Decode.
	Decode(batch []BatchEntry) error
	// Logits returns the logits row of batch entry i of the last Decode,
	// without copying it: only the rows asked for exist. The slice is owned
	// by the backend and valid until the next Decode; the caller may modify
	// it in place.
	Logits(i int) []float32
	// RemoveKV drops positions [p0, p1) of a sequence; p1 < 0 means to the end.
	RemoveKV(seq SeqID, p0, p1 int32) error
	// CopySeq replaces dst's KV with a copy of src's whole KV. The scheduler
	// does not call it yet: it is the primitive for sharing one prompt's KV
	// among the choices of parallel sampling (n > 1).
	CopySeq(src, dst SeqID) error
	// ClearKV drops every sequence's KV.
	ClearKV()
	// IsEOG tells whether a token ends generation.
	IsEOG(t Token) bool
	// IsControl tells whether a token is vocabulary markup rather than
	// text: a control token ("<s>", "<|im_start|>", "[TOOL_CALLS]") or the
	// unknown token, the tokens llama.cpp renders only when asked for
	// special tokens. Piece renders them as their text; generated answers
	// drop that text unless a parser reads it as a marker (see
	// scheduler.Request.Markers). User-defined tokens (Qwen's "<think>")
	// are text and not control tokens.
	IsControl(t Token) bool
	// Close frees the model and the context. It is safe to call twice.
	Close() error
}

// ModelError reports a model file that cannot be used: missing, not a GGUF,
// truncated, or of an unsupported architecture.
type ModelError struct {
	Path   string
	Reason string
	Err    error
}

func (e *ModelError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("model %s: %s: %v", e.Path, e.Reason, e.Err)
	}
	return fmt.Sprintf("model %s: %s", e.Path, e.Reason)
}

func (e *ModelError) Unwrap() error { return e.Err }

// Ubatches is how many parts llama.cpp splits a batch into before computing
// it, when the KV cache is not unified (Info().KVUnified false; a unified
// cache splits by size only, so a batch within NBatch is one part), and
// whether every sequence's tokens stay in one part. It models
// llama_batch_allocr::split_equal in sequential mode: scanning the batch in
// order, a part starts with the sequence of the first token not yet taken
// and adds a sequence only when its id is the last one added plus one; it
// then takes the same number of tokens from each (the fewest any of them has
// left). Every part reads all the weights and attends as deep as the
// deepest of its sequences, so a batch is cheapest as runs of consecutive
// ids with equal token counts, each one part: ascending within a run, and
// the runs in descending order so that none continues into the next.
func Ubatches(batch []BatchEntry) (parts int, whole bool) {
	left := map[SeqID]int{}
	for _, e := range batch {
		left[e.Seq]++
	}
	whole = true
	for {
		var run []SeqID
		for _, e := range batch {
			if left[e.Seq] == 0 || slices.Contains(run, e.Seq) {
				continue
			}
			if len(run) == 0 || e.Seq == run[len(run)-1]+1 {
				run = append(run, e.Seq)
			}
		}
		if len(run) == 0 {
			return parts, whole
		}
		n := left[run[0]]
		for _, s := range run {
			n = min(n, left[s])
		}
		for _, s := range run {
			left[s] -= n
			whole = whole && left[s] == 0
		}
		parts++
	}
}

// Shape is what a memory estimate needs to know of a model; it can be read
// from a GGUF header without loading the model.
type Shape struct {
	Layers, Embd, Heads, HeadsKV, Vocab int
	// WeightBytes is the size of the weights (about the file's size).
	WeightBytes uint64
}

// Memory estimates what a loaded model takes: weights, an f16 KV cache and
// compute buffers.
type Memory struct {
	Weights, KV, Overhead uint64
}

// EstimateMemory is the one estimate of a model's memory, used to refuse a
// model that does not fit (engine/llamacpp) and to budget the loaded models
// of a catalog (server/stack): weights + f16 K and V for nctx cells +
// logits and activations for a batch of nbatch tokens + 64 MiB.
func EstimateMemory(sh Shape, nctx, nbatch int) Memory {
	heads, kvHeads := uint64(max(sh.Heads, 1)), uint64(max(sh.HeadsKV, 1))
	if sh.HeadsKV == 0 {
		kvHeads = heads
	}
	ne := uint64(max(sh.Embd, 0))
	kv := uint64(max(nctx, 0)) * uint64(max(sh.Layers, 0)) * 2 * (ne / heads * kvHeads) * 2
	overhead := uint64(max(nbatch, 0))*uint64(max(sh.Vocab, 0))*4 + uint64(max(nbatch, 0))*ne*4*16 + 64<<20
	return Memory{Weights: sh.WeightBytes, KV: kv, Overhead: overhead}
}

// Total is the whole estimate in bytes.
func (m Memory) Total() uint64 { return m.Weights + m.KV + m.Overhead }

// Split divides the estimate between host and GPU memory when gpuLayers of
// layers are offloaded: those layers' share of the weights and KV cache,
// and the compute buffers, go to the GPU.
func (m Memory) Split(gpuLayers, layers int) (host, gpu uint64) {
	if gpuLayers <= 0 || layers <= 0 {
		return m.Total(), 0
	}
	on := uint64(min(gpuLayers, layers))
	gpu = (m.Weights+m.KV)*on/uint64(layers) + m.Overhead
	return m.Total() - gpu, gpu
}

// SeqStater is an optional interface of a Backend that can copy one
// sequence's KV state out and put such a copy back, into any sequence of a
// backend with the same model file and StateID (another process's too), so
// that a session's cached prefix outlives its slot and its replica. Like
// Decode, its methods are for the loop's goroutine only.
type SeqStater interface {
	// StateID names what a saved state depends on besides the model's
	// weights: the state format's version and the context settings that
	// shape the KV cache (cells per sequence, KV types, flash attention,
	// streams). States are restored only where it is equal.
	StateID() string
	// SaveSeq returns the KV state of all of seq's positions.
	SaveSeq(seq SeqID) ([]byte, error)
	// RestoreSeq replaces seq's KV with a state that SaveSeq returned. On
	// an error (a state of other settings, a truncated one, no room) seq
	// is left empty.
	RestoreSeq(seq SeqID, state []byte) error
}

// CommonPrefix is how many leading tokens a and b share: the prefix a
// cached sequence (or a saved session state) lends a new prompt.
func CommonPrefix(a, b []Token) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
