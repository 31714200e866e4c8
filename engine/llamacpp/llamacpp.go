// Package llamacpp implements engine.Backend over llama.cpp. It is the only
// package of asi1d with cgo: it calls llama.h directly, over the llama.cpp and
// ggml sources that github.com/ollama/ollama/llama compiles, because that
// binding cannot set kv_unified, copies every logits row into a new slice and
// exposes no model metadata.
//
// Build: the cgo include paths come from scripts/env.sh (make build does it).
package llamacpp

/*
#include <stdlib.h>
#include <string.h>
#include "llama.h"
#include "ggml-cpu.h"

extern void goLlamaLog(int level, char *text, void *user);
static void asi1d_log_cb(enum ggml_log_level level, const char *text, void *user) {
	goLlamaLog((int)level, (char *)text, user);
}
static void asi1d_set_log(void) { llama_log_set(asi1d_log_cb, NULL); }

extern bool goLoadProgress(float progress, uintptr_t handle);
static bool asi1d_progress_cb(float p, void *ud) { return goLoadProgress(p, (uintptr_t)ud); }
static void asi1d_set_progress(struct llama_model_params *mp, uintptr_t h) {
	mp->progress_callback = asi1d_progress_cb;
	mp->progress_callback_user_data = (void *)h;
}

static int32_t asi1d_piece(const struct llama_vocab *v, llama_token t, char *buf, int32_t n) {
	return llama_token_to_piece(v, t, buf, n, 0, true);
}
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp/ggmlfa"
	"github.com/asi1d/asi1d/engine/threads"
)

// Options configure Open. Zero values take the Default* values.
type Options struct {
	// CtxSize is the total KV cells; 0: DefaultCtxSize. Without KVUnified
	// it is capped at the trained context times Parallel (no sequence
	// gets more than the trained context); with it, the pool is as asked
	// and one sequence may use up to the trained context of it.
	CtxSize   int
	Parallel  int  // sequences; 0: 1
	Batch     int  // most tokens per Decode; 0: DefaultBatch
	Threads   int  // 0: runtime.NumCPU()
	GPULayers int  // layers to offload to a GPU; 0 keeps everything on the CPU
	NoMmap    bool // read the weights into memory instead of mapping the file
	// KVUnified makes all sequences share one pool of CtxSize cells (partial
	// KV copies between sequences become possible), each using up to the
	// trained context of it (Info.NCtxSeq). Off: each sequence owns
	// CtxSize/Parallel cells. engine.PlanContext sizes both.
	KVUnified bool
	// FlashAttention: "auto" (default), "on" or "off". "auto" is on when no
	// layer is offloaded and asi1d's CPU kernels are in use with their
	// AVX-512 or AVX2 paths (ggmlfa: faster than without flash attention
	// for prompts and decode steps alike, docs/CPU.md); off on other CPUs
	// (arm64, x86-64-v2: their portable C path is not measured) and when
	// ASI1D_FA_KERNEL=ggml keeps ggml's kernel (slower than without for
	// decode steps); llama.cpp's own choice with GPU layers.
	FlashAttention string
	// SkipMemCheck skips the check that weights and KV cache fit in the
	// available memory (see MemoryError).
	SkipMemCheck bool
	// ThreadPoll < 0 lets ggml create and join its CPU threads on every
	// decode (its default without OpenMP). 0..100 keeps one thread pool for
	// the context's life, its workers polling for work at that level
	// between decodes (0: they sleep at once) before waiting on a condition.
	ThreadPoll int
	// FixedThreads keeps Threads workers on every decode. Off, a CPU-only
	// context runs fewer while its workers are starved of CPU time (see
	// package engine/threads).
	FixedThreads bool
	Logger       *slog.Logger
	// Progress, when set, is called as the weights load, with the share
	// loaded so far (0 to 1), from the loading goroutine.
	Progress func(fraction float64)
}

// Defaults for Options.
const (
	DefaultCtxSize = 4096
	DefaultBatch   = 512
)

var initOnce sync.Once // InitBackends (device.go)

// setLog routes llama.cpp's and ggml's log lines to goLlamaLog.
func setLog() { C.asi1d_set_log() }

// Backend is a loaded model with one llama.cpp context. Decode, Logits and
// the KV methods must be called from one goroutine (the scheduler loop).
// Info, Tokenize, Piece and IsEOG only read the immutable vocabulary and are
// safe for concurrent use.
type Backend struct {
	mu     sync.Mutex // guards closed against Close racing Tokenize
	closed bool

	model *C.struct_llama_model
	ctx   *C.struct_llama_context
	pool  C.ggml_threadpool_t // nil: ggml's per-decode threads
	gov   *threads.Governor   // nil: the worker count is fixed
	log   *slog.Logger
	vocab *C.struct_llama_vocab
	batch C.struct_llama_batch
	info  engine.Info
	flash C.enum_llama_flash_attn_type // as asked of llama_init_from_model (state.go)

	pieces  [][]byte
	eog     []bool
	control []bool

	// Loop-owned scratch for grammar masks (see grammar.go), C memory.
	cand  *C.llama_token_data
	ncand int

	emb *embedder // the embedding context, created at the first Embed (embed.go)
}

var (
	_ engine.Backend  = (*Backend)(nil)
	_ engine.Embedder = (*Backend)(nil)
)

// Open loads a GGUF model and creates a context for it. A missing file, a
// directory, a file that is not GGUF, a truncated GGUF or an unsupported
// architecture returns an *engine.ModelError.
func Open(path string, o Options) (*Backend, error) {
	if err := checkGGUF(path); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	logger.Store(log)
	InitBackends()
	logKernels(log)
	if err := CheckGPU(o.GPULayers); err != nil {
		return nil, err
	}

	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}

	mp := C.llama_model_default_params()
	mp.n_gpu_layers = C.int32_t(o.GPULayers)
	mp.use_mmap = C.bool(!o.NoMmap)
	if o.Progress != nil {
		h := cgo.NewHandle(o.Progress)
		defer h.Delete()
		C.asi1d_set_progress(&mp, C.uintptr_t(h))
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	defer quietLoad()()
	stop := startCapture()
	model := C.llama_model_load_from_file(cpath, mp)
	lines := stop()
	if model == nil {
		reason := "llama.cpp could not load it"
		if len(lines) > 0 {
			reason += ": " + strings.Join(lines, "; ")
		}
		return nil, &engine.ModelError{Path: path, Reason: reason}
	}
	for _, l := range lines { // warnings of a load that worked: chatter
		log.Debug(l, "src", "llama.cpp")
	}
	b := &Backend{model: model, vocab: C.llama_model_get_vocab(model)}

	nTrain := int(C.llama_model_n_ctx_train(model))
	nctx := o.CtxSize
	if nctx <= 0 {
		nctx = DefaultCtxSize
	}
	// Each sequence gets at most the trained context.
	if !o.KVUnified && nTrain > 0 && nctx > nTrain*o.Parallel {
		nctx = nTrain * o.Parallel
	}
	if o.Batch > nctx {
		o.Batch = nctx
	}
	if !o.SkipMemCheck && o.GPULayers == 0 {
		if err := checkMemory(path, model, nctx, o.Batch); err != nil {
			C.llama_model_free(model)
			return nil, err
		}
	}

	cp := C.llama_context_default_params()
	cp.n_ctx = C.uint32_t(nctx)
	cp.n_batch = C.uint32_t(o.Batch)
	cp.n_ubatch = C.uint32_t(o.Batch)
	cp.n_seq_max = C.uint32_t(o.Parallel)
	cp.n_threads = C.int32_t(o.Threads)
	cp.n_threads_batch = C.int32_t(o.Threads)
	cp.embeddings = false
	cp.no_perf = true
	cp.kv_unified = C.bool(o.KVUnified)
	switch o.FlashAttention {
	case "on":
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
	case "off":
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	default:
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
		switch {
		case o.GPULayers == 0 && ggmlfa.Enabled() && ggmlfa.ISA() != "portable":
			cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
		case o.GPULayers == 0:
			cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
		}
	}
	b.ctx, b.flash = C.llama_init_from_model(model, cp), cp.flash_attn_type
	if b.ctx == nil {
		C.llama_model_free(model)
		return nil, fmt.Errorf("create llama context (n_ctx %d, parallel %d): failed, see the log above", nctx, o.Parallel)
	}
	b.batch = C.llama_batch_init(C.int32_t(o.Batch), 0, 1)
	if o.ThreadPoll >= 0 && o.GPULayers == 0 {
		tp := C.ggml_threadpool_params_default(C.int(o.Threads))
		tp.poll = C.uint32_t(min(o.ThreadPoll, 100))
		b.pool = C.ggml_threadpool_new(&tp)
		if b.pool != nil {
			C.llama_attach_threadpool(b.ctx, b.pool, b.pool)
		}
	}

	if o.GPULayers == 0 && o.Threads > 1 && !o.FixedThreads {
		b.gov, b.log = threads.New(o.Threads), log
	}

	realCtx := int(C.llama_n_ctx(b.ctx))
	perSeq := realCtx
	if !o.KVUnified {
		perSeq = realCtx / o.Parallel
	} else if nTrain > 0 {
		perSeq = min(realCtx, nTrain) // positions past the trained length degrade the model
	}
	b.info = engine.Info{
		Path:          path,
		Arch:          b.meta("general.architecture"),
		Name:          b.meta("general.name"),
		Params:        uint64(C.llama_model_n_params(model)),
		SizeBytes:     uint64(C.llama_model_size(model)),
		NCtxTrain:     nTrain,
		NCtx:          realCtx,
		NCtxSeq:       perSeq,
		Parallel:      o.Parallel,
		NBatch:        int(C.llama_n_batch(b.ctx)),
		NVocab:        int(C.llama_vocab_n_tokens(b.vocab)),
		BOS:           engine.Token(C.llama_vocab_bos(b.vocab)),
		EOS:           engine.Token(C.llama_vocab_eos(b.vocab)),
		AddBOS:        bool(C.llama_vocab_get_add_bos(b.vocab)),
		FIMPre:        engine.Token(C.llama_vocab_fim_pre(b.vocab)),
		FIMSuf:        engine.Token(C.llama_vocab_fim_suf(b.vocab)),
		FIMMid:        engine.Token(C.llama_vocab_fim_mid(b.vocab)),
		Threads:       o.Threads,
		GPULayers:     o.GPULayers,
		KVUnified:     o.KVUnified,
		SpecialTokens: map[string]engine.Token{},
	}
	if t := C.llama_model_chat_template(model, nil); t != nil {
		b.info.ChatTemplate = C.GoString(t)
	}
	b.loadVocab()
	b.emb = b.newEmbedder(o.Threads)
	log.Debug("model loaded", "path", path, "arch", b.info.Arch, "params", b.info.Params,
		"n_ctx", b.info.NCtx, "n_ctx_seq", b.info.NCtxSeq, "parallel", b.info.Parallel,
		"batch", b.info.NBatch, "threads", b.info.Threads, "kv_unified", b.info.KVUnified,
		"vocab", b.info.NVocab, "chat_template", b.info.ChatTemplate != "")
	logPlacement(log, model, o.GPULayers)
	return b, nil
}

// loadVocab caches every token's piece, end-of-generation and control flags,
// so that Piece, IsEOG and IsControl never cross into C and are safe for
// concurrent use.
func (b *Backend) loadVocab() {
	n := b.info.NVocab
	b.pieces = make([][]byte, n)
	b.eog = make([]bool, n)
	b.control = make([]bool, n)
	buf := make([]byte, 256)
	for i := range n {
		t := C.llama_token(i)
		k := C.asi1d_piece(b.vocab, t, (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)))
		if k < 0 {
			buf = make([]byte, -k)
			k = C.asi1d_piece(b.vocab, t, (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)))
		}
		b.pieces[i] = bytes.Clone(buf[:max(k, 0)])
		if C.llama_vocab_is_eog(b.vocab, t) {
			b.eog[i] = true
			b.info.EOG = append(b.info.EOG, engine.Token(i))
		}
		attr := C.llama_vocab_get_attr(b.vocab, t)
		// What llama_token_to_piece hides unless asked for special tokens.
		b.control[i] = attr&(C.LLAMA_TOKEN_ATTR_CONTROL|C.LLAMA_TOKEN_ATTR_UNKNOWN) != 0
		if attr&(C.LLAMA_TOKEN_ATTR_CONTROL|C.LLAMA_TOKEN_ATTR_USER_DEFINED) != 0 {
			if txt := C.llama_vocab_get_text(b.vocab, t); txt != nil {
				b.info.SpecialTokens[C.GoString(txt)] = engine.Token(i)
			}
		}
	}
}

func (b *Backend) meta(key string) string {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	buf := make([]byte, 512)
	n := C.llama_model_meta_val_str(b.model, ck, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n < 0 {
		return ""
	}
	if int(n) >= len(buf) {
		buf = make([]byte, n+1)
		n = C.llama_model_meta_val_str(b.model, ck, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	}
	return string(buf[:n])
}

// MemoryError reports a model and context that do not fit in the memory
// available: the server refuses to start rather than swap or be killed.
type MemoryError struct {
	Path                  string
	Weights, KV, Overhead uint64
	Available             uint64
}

func (e *MemoryError) Error() string {
	mib := func(b uint64) uint64 { return b >> 20 }
	return fmt.Sprintf("model %s needs about %d MiB (weights %d MiB + KV cache %d MiB + buffers %d MiB) but only %d MiB of memory is available; lower --ctx (or leave it unset: the pool is then sized to the memory), use a smaller quantization, or pass --no-mem-check",
		e.Path, mib(e.Weights+e.KV+e.Overhead), mib(e.Weights), mib(e.KV), mib(e.Overhead), mib(e.Available))
}

// checkMemory compares weights + f16 KV cache + compute buffers with
// MemAvailable. The weights are mapped, but every page is touched on each
// token, so they must fit too.
func checkMemory(path string, model *C.struct_llama_model, nctx, nbatch int) error {
	avail, ok := memAvailable()
	if !ok {
		return nil
	}
	est := engine.EstimateMemory(engine.Shape{
		Layers: int(C.llama_model_n_layer(model)), Embd: int(C.llama_model_n_embd(model)),
		Heads: int(C.llama_model_n_head(model)), HeadsKV: int(C.llama_model_n_head_kv(model)),
		Vocab:       int(C.llama_vocab_n_tokens(C.llama_model_get_vocab(model))),
		WeightBytes: uint64(C.llama_model_size(model)),
	}, nctx, nbatch)
	e := &MemoryError{Path: path, Weights: est.Weights, KV: est.KV, Overhead: est.Overhead, Available: avail}
	if e.Weights+e.KV+e.Overhead > avail {
		return e
	}
	return nil
}

// memAvailable is a variable so that tests can shrink the machine.
var memAvailable = engine.MemAvailable

// checkGGUF rejects what llama.cpp would crash on or report obscurely.
func checkGGUF(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return &engine.ModelError{Path: path, Reason: "cannot open", Err: err}
	}
	if st.IsDir() {
		return &engine.ModelError{Path: path, Reason: "is a directory, not a GGUF file"}
	}
	f, err := os.Open(path)
	if err != nil {
		return &engine.ModelError{Path: path, Reason: "cannot open", Err: err}
	}
	defer f.Close()
	var hdr [24]byte // magic, version, n_tensors, n_kv
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return &engine.ModelError{Path: path, Reason: "too short to be a GGUF file"}
	}
	if string(hdr[:4]) != "GGUF" {
		return &engine.ModelError{Path: path, Reason: "not a GGUF file (bad magic)"}
	}
	return nil
}

// Info implements engine.Backend.
func (b *Backend) Info() engine.Info { return b.info }

// Tokenize implements engine.Backend. Safe for concurrent use.
func (b *Backend) Tokenize(text string, addSpecial, parseSpecial bool) ([]engine.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, engine.ErrClosed
	}
	if len(text) > 1<<30 {
		return nil, errors.New("tokenize: text too long")
	}
	var ctext *C.char
	if len(text) > 0 {
		ctext = (*C.char)(unsafe.Pointer(unsafe.StringData(text)))
	}
	out := make([]engine.Token, len(text)+2)
	n := C.llama_tokenize(b.vocab, ctext, C.int32_t(len(text)), (*C.llama_token)(unsafe.SliceData(out)), C.int32_t(len(out)), C.bool(addSpecial), C.bool(parseSpecial))
	if n < 0 {
		out = make([]engine.Token, -n)
		n = C.llama_tokenize(b.vocab, ctext, C.int32_t(len(text)), (*C.llama_token)(unsafe.SliceData(out)), C.int32_t(len(out)), C.bool(addSpecial), C.bool(parseSpecial))
		if n < 0 {
			return nil, fmt.Errorf("tokenize: llama_tokenize failed (%d)", n)
		}
	}
	return out[:n], nil
}

// Piece implements engine.Backend. The returned slice must not be modified.
func (b *Backend) Piece(t engine.Token) []byte {
	if t < 0 || int(t) >= len(b.pieces) {
		return nil
	}
	return b.pieces[t]
}

// IsEOG implements engine.Backend.
func (b *Backend) IsEOG(t engine.Token) bool {
	return t >= 0 && int(t) < len(b.eog) && b.eog[t]
}

// IsControl implements engine.Backend.
func (b *Backend) IsControl(t engine.Token) bool {
	return t >= 0 && int(t) < len(b.control) && b.control[t]
}

// Decode implements engine.Backend.
func (b *Backend) Decode(batch []engine.BatchEntry) error {
	if b.ctx == nil {
		return engine.ErrClosed
	}
	if len(batch) == 0 {
		return nil
	}
	if len(batch) > b.info.NBatch {
		return fmt.Errorf("decode: batch of %d tokens exceeds n_batch %d", len(batch), b.info.NBatch)
	}
	n := len(batch)
	tok := unsafe.Slice(b.batch.token, n)
	pos := unsafe.Slice(b.batch.pos, n)
	nseq := unsafe.Slice(b.batch.n_seq_id, n)
	seq := unsafe.Slice(b.batch.seq_id, n)
	lg := unsafe.Slice(b.batch.logits, n)
	for i, e := range batch {
		if e.Seq < 0 || int(e.Seq) >= b.info.Parallel {
			return fmt.Errorf("decode: sequence %d out of range", e.Seq)
		}
		tok[i] = C.llama_token(e.Token)
		pos[i] = C.llama_pos(e.Pos)
		nseq[i] = 1
		*seq[i] = C.llama_seq_id(e.Seq)
		if e.Logits {
			lg[i] = 1
		} else {
			lg[i] = 0
		}
	}
	b.batch.n_tokens = C.int32_t(n)
	var t0 time.Time
	var c0 time.Duration
	if b.gov != nil {
		t0, c0 = time.Now(), processCPU()
	}
	rc := C.llama_decode(b.ctx, b.batch)
	if b.gov != nil {
		b.adaptThreads(t0, c0)
	}
	switch {
	case rc == 1:
		return engine.ErrNoKVSpace
	case rc != 0:
		return fmt.Errorf("llama_decode: code %d", rc)
	}
	// On a GPU llama_decode only queues the pass (and the copy of the
	// output rows to the host); the first llama_get_logits_ith would wait
	// for it. Waiting here makes Decode last as long as the pass, which is
	// what the scheduler measures to size its steps, and leaves Logits a
	// lookup. On the CPU the pass is already done and this returns at once.
	C.llama_synchronize(b.ctx)
	return nil
}

// Logits implements engine.Backend. The row lives in llama.cpp's memory:
// nothing is copied here. llama.cpp copies to the host only the rows of
// the batch entries that asked for logits (one per generating sequence and
// one per finished prompt), during Decode, and this returns a view of one.
func (b *Backend) Logits(i int) []float32 {
	p := C.llama_get_logits_ith(b.ctx, C.int32_t(i))
	if p == nil {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), b.info.NVocab)
}

// RemoveKV implements engine.Backend.
func (b *Backend) RemoveKV(seq engine.SeqID, p0, p1 int32) error {
	if !C.llama_memory_seq_rm(C.llama_get_memory(b.ctx), C.llama_seq_id(seq), C.llama_pos(p0), C.llama_pos(p1)) {
		return fmt.Errorf("remove KV of sequence %d [%d,%d): refused", seq, p0, p1)
	}
	return nil
}

// CopySeq implements engine.Backend: a whole-sequence copy, the only kind
// the per-sequence KV streams allow.
func (b *Backend) CopySeq(src, dst engine.SeqID) error {
	mem := C.llama_get_memory(b.ctx)
	C.llama_memory_seq_rm(mem, C.llama_seq_id(dst), -1, -1)
	C.llama_memory_seq_cp(mem, C.llama_seq_id(src), C.llama_seq_id(dst), -1, -1)
	return nil
}

// ClearKV implements engine.Backend.
func (b *Backend) ClearKV() { C.llama_memory_clear(C.llama_get_memory(b.ctx), true) }

// Close implements engine.Backend: it frees the context, the batch and the
// model. Safe to call more than once; not concurrently with Decode.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	C.llama_batch_free(b.batch)
	if b.cand != nil {
		C.free(unsafe.Pointer(b.cand))
		b.cand = nil
	}
	b.emb.free()
	freeContext(b.ctx)
	if b.pool != nil {
		C.ggml_threadpool_free(b.pool)
		b.pool = nil
	}
	C.llama_model_free(b.model)
	b.ctx, b.model, b.vocab = nil, nil, nil
	return nil
}

// adaptThreads feeds the decode that began at t0 (process CPU time c0) to
// the governor and applies its decision.
func (b *Backend) adaptThreads(t0 time.Time, c0 time.Duration) {
	now := time.Now()
	d, ok := b.gov.Observe(now, now.Sub(t0), processCPU()-c0)
	if !ok || d.Threads == d.From {
		return
	}
	C.llama_set_n_threads(b.ctx, C.int32_t(d.Threads), C.int32_t(d.Threads))
	lvl := slog.LevelDebug
	if !d.Probe && !d.Reverted {
		lvl = slog.LevelInfo
	}
	b.log.Log(context.Background(), lvl, "CPU workers", "threads", d.Threads, "was", d.From,
		"cpu_share", fmt.Sprintf("%.2f", d.Share), "probe", d.Probe, "probe_failed", d.Reverted)
}

// processCPU is the CPU time the process has used, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
