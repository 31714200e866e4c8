// Package enginetest provides a scripted fake engine.Backend for tests of
// the scheduler and the server. It checks that its caller keeps the KV
// bookkeeping straight (positions contiguous per sequence, batch sizes within
// NBatch) and returns an error otherwise, so that scheduler bugs fail tests.
package enginetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asi1d/asi1d/engine"
)

// Vocabulary of the fake: 0 BOS, 1 EOS, 2 and 3 unused (SetSpecial gives
// them a text), then the 256 bytes. BOS and EOS are control tokens.
const (
	BOS       engine.Token = 0
	EOS       engine.Token = 1
	Special2  engine.Token = 2
	Special3  engine.Token = 3
	ByteBase               = 4
	VocabSize              = ByteBase + 256
)

// Fake is a deterministic backend: the next token depends only on the
// sequence's tokens so far (by default a hash of the last three tokens and
// the length, mapped to a lowercase letter or a space), so results do not
// depend on batching or cache reuse. Safe for the scheduler's use pattern
// (the vocabulary methods concurrently with Decode, as engine.Backend asks);
// the counters are safe to read concurrently.
type Fake struct {
	// Next picks the token that follows history. Nil: the default rule.
	Next func(history []engine.Token) engine.Token
	// StepDelay is slept in every Decode; PerToken is added per batch entry.
	StepDelay, PerToken time.Duration
	// DecodeTime, when set, is how long every Decode lasts from its start,
	// the fake's own work included (see NewWide).
	DecodeTime time.Duration
	// FailDecode, when set, is consulted before each Decode.
	FailDecode func(batch []engine.BatchEntry) error
	// FailEmbed, when set, is consulted before each Embed.
	FailEmbed func(inputs [][]engine.Token) error
	// StateSettings is part of StateID (see state.go): set it to stand
	// for a backend of other settings.
	StateSettings string

	info engine.Info
	wide *wideRows // nil: rows of VocabSize, built per Decode
	// special[t-Special2] is the text of Special2 and Special3 (SetSpecial),
	// control whether it is a control token.
	special [2]string
	control [2]bool
	mu      sync.Mutex
	kv      [][]engine.Token
	rows    [][]float32
	closed  bool
	stats   Counters
}

// Counters record what the fake was asked to do.
type Counters struct {
	Decodes       int
	Tokens        int
	MaxBatch      int
	BatchSizes    []int
	RemovedCells  int
	PromptEntries int // entries without logits
	// Ubatches counts the parts llama.cpp would split the batches into
	// (engine.Ubatches; the fake's KV is not unified).
	Ubatches int
	// DecodeTime is the time spent inside Decode, all calls together.
	DecodeTime time.Duration
	// Saves and Restores count SaveSeq and successful RestoreSeq calls.
	Saves, Restores int
	// Embeds counts Embed passes, EmbedInputs their inputs. Passes is
	// the order of the passes: 'D' for a Decode, 'E' for an Embed.
	Embeds, EmbedInputs int
	Passes              []byte
}

// New makes a fake with parallel sequences of ctxPerSeq cells each.
func New(parallel, ctxPerSeq, nbatch int) *Fake {
	f := &Fake{
		info: engine.Info{
			Path: "fake.gguf", Arch: "fake", NCtxTrain: ctxPerSeq, NCtx: ctxPerSeq * parallel, NCtxSeq: ctxPerSeq,
			Parallel: parallel, NBatch: nbatch, NVocab: VocabSize, BOS: BOS, EOS: EOS, AddBOS: true,
			FIMPre: -1, FIMSuf: -1, FIMMid: -1,
			EOG: []engine.Token{EOS}, SpecialTokens: map[string]engine.Token{"<s>": BOS, "</s>": EOS},
		},
		kv: make([][]engine.Token, parallel),
	}
	return f
}

// NewPooled makes a fake whose parallel sequences share one pool of pool
// cells (Info().KVUnified, as serve runs llama.cpp by default), each using
// at most perSeq of it. A Decode that would fill more than the pool fails
// with engine.ErrNoKVSpace and changes nothing, so that a scheduler that
// lets its requests outgrow the pool fails tests.
func NewPooled(parallel, pool, perSeq, nbatch int) *Fake {
	f := New(parallel, perSeq, nbatch)
	f.info.NCtx, f.info.KVUnified = pool, true
	return f
}

// Used is the cells holding tokens, all sequences together.
func (f *Fake) Used() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used()
}

func (f *Fake) used() int {
	n := 0
	for _, kv := range f.kv {
		n += len(kv)
	}
	return n
}

// Info implements engine.Backend.
func (f *Fake) Info() engine.Info { return f.info }

// SetPath sets Info().Path, the model file (a real file where session
// states identify the model by its bytes). Call it before using the fake.
func (f *Fake) SetPath(path string) { f.info.Path = path }

// SetSpecial gives the free token t (Special2 or Special3) a text and makes
// it one of Info().SpecialTokens, a control token or (control false) a
// user-defined one, as a model's "[TOOL_CALLS]" or Qwen's "<tool_call>".
// Tokenize with parseSpecial then turns that text into t. Call it before
// using the fake.
func (f *Fake) SetSpecial(t engine.Token, text string, control bool) {
	if t != Special2 && t != Special3 || text == "" {
		panic(fmt.Sprintf("enginetest: SetSpecial(%d, %q): only tokens 2 and 3, with a text", t, text))
	}
	f.special[t-Special2], f.control[t-Special2] = text, control
	sp := make(map[string]engine.Token, len(f.info.SpecialTokens)+1)
	for k, v := range f.info.SpecialTokens {
		sp[k] = v
	}
	sp[text] = t
	f.info.SpecialTokens = sp
}

// SetFIM makes the vocabulary's fill-in-the-middle tokens (Info().FIMPre,
// FIMSuf, FIMMid) these three tokens, as a code model's. Call it before
// using the fake.
func (f *Fake) SetFIM(pre, suf, mid engine.Token) {
	f.info.FIMPre, f.info.FIMSuf, f.info.FIMMid = pre, suf, mid
}

// Tokenize maps every byte to its token; addSpecial prepends BOS, and with
// parseSpecial the texts of SetSpecial become their tokens.
func (f *Fake) Tokenize(text string, addSpecial, parseSpecial bool) ([]engine.Token, error) {
	var out []engine.Token
	if addSpecial {
		out = append(out, BOS)
	}
next:
	for i := 0; i < len(text); i++ {
		if parseSpecial {
			for k, sp := range f.special {
				if sp != "" && strings.HasPrefix(text[i:], sp) {
					out = append(out, Special2+engine.Token(k))
					i += len(sp) - 1
					continue next
				}
			}
		}
		out = append(out, engine.Token(ByteBase+int(text[i])))
	}
	return out, nil
}

// Piece implements engine.Backend.
func (f *Fake) Piece(t engine.Token) []byte {
	switch {
	case f.wide != nil && t >= VocabSize && int(t) < len(f.wide.pieces):
		return f.wide.pieces[t]
	case t == BOS:
		return []byte("<s>")
	case t == EOS:
		return []byte("</s>")
	case t == Special2 || t == Special3:
		return []byte(f.special[t-Special2])
	case t >= ByteBase && t < VocabSize:
		return []byte{byte(t - ByteBase)}
	}
	return nil
}

// IsEOG implements engine.Backend.
func (f *Fake) IsEOG(t engine.Token) bool { return t == EOS }

// IsControl implements engine.Backend: BOS, EOS, and the SetSpecial tokens
// made control tokens.
func (f *Fake) IsControl(t engine.Token) bool {
	return t == BOS || t == EOS || (t == Special2 || t == Special3) && f.control[t-Special2]
}

// DefaultNext is the default next-token rule.
func DefaultNext(h []engine.Token) engine.Token {
	x := uint32(len(h)) * 2654435761
	for i := max(0, len(h)-3); i < len(h); i++ {
		x = (x ^ uint32(h[i])) * 16777619
	}
	x ^= x >> 13
	if x%7 == 0 {
		return ByteBase + ' '
	}
	return engine.Token(ByteBase + 'a' + int(x%26))
}

// Decode implements engine.Backend.
func (f *Fake) Decode(batch []engine.BatchEntry) error {
	t0 := time.Now()
	defer func() {
		f.mu.Lock()
		f.stats.DecodeTime += time.Since(t0)
		f.mu.Unlock()
	}()
	if f.DecodeTime > 0 {
		defer waitUntil(t0.Add(f.DecodeTime))
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return engine.ErrClosed
	}
	if len(batch) > f.info.NBatch {
		f.mu.Unlock()
		return fmt.Errorf("fake: batch of %d exceeds n_batch %d", len(batch), f.info.NBatch)
	}
	if f.FailDecode != nil {
		if err := f.FailDecode(batch); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	// Validate first, then apply, so a bad batch leaves no trace.
	next := map[engine.SeqID]int{}
	for _, e := range batch {
		if e.Seq < 0 || int(e.Seq) >= len(f.kv) {
			f.mu.Unlock()
			return fmt.Errorf("fake: sequence %d out of range", e.Seq)
		}
		want, ok := next[e.Seq]
		if !ok {
			want = len(f.kv[e.Seq])
		}
		if int(e.Pos) != want {
			f.mu.Unlock()
			return fmt.Errorf("fake: sequence %d: position %d, want %d", e.Seq, e.Pos, want)
		}
		if want >= f.info.NCtxSeq {
			f.mu.Unlock()
			return engine.ErrNoKVSpace
		}
		next[e.Seq] = want + 1
	}
	if f.info.KVUnified && f.used()+len(batch) > f.info.NCtx {
		f.mu.Unlock()
		return engine.ErrNoKVSpace
	}
	// The read-only guard reads the whole shared buffer. A simulated device
	// decode (DecodeTime) stands for a host thread that waits on the GPU
	// and leaves the CPU to the rest: there it checks every 32nd decode, so
	// that its own cost does not take CPU from the server being measured.
	if f.wide != nil && (f.DecodeTime == 0 || f.stats.Decodes%32 == 0) && !f.wide.intact() {
		f.mu.Unlock()
		return fmt.Errorf("fake: a wide logits row was modified (NewWide rows are read-only)")
	}
	f.rows = f.rows[:0]
	for _, e := range batch {
		f.kv[e.Seq] = append(f.kv[e.Seq], e.Token)
		var row []float32
		if e.Logits {
			nx := f.Next
			if nx == nil {
				nx = DefaultNext
			}
			tok := nx(f.kv[e.Seq])
			if f.wide != nil {
				f.rows = append(f.rows, f.wide.row(tok))
				continue
			}
			row = make([]float32, VocabSize)
			for i := range row {
				row[i] = float32(i%5) * 0.1
			}
			row[tok] = 20
		} else {
			f.stats.PromptEntries++
		}
		f.rows = append(f.rows, row)
	}
	f.stats.Decodes++
	f.stats.Passes = append(f.stats.Passes, 'D')
	f.stats.Tokens += len(batch)
	parts, _ := engine.Ubatches(batch)
	f.stats.Ubatches += parts
	f.stats.MaxBatch = max(f.stats.MaxBatch, len(batch))
	f.stats.BatchSizes = append(f.stats.BatchSizes, len(batch))
	d := f.StepDelay + time.Duration(len(batch))*f.PerToken
	f.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	return nil
}

// Logits implements engine.Backend.
func (f *Fake) Logits(i int) []float32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < 0 || i >= len(f.rows) {
		return nil
	}
	return f.rows[i]
}

// RemoveKV implements engine.Backend.
func (f *Fake) RemoveKV(seq engine.SeqID, p0, p1 int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv := f.kv[seq]
	if p0 < 0 {
		p0 = 0
	}
	if p1 >= 0 && int(p1) < len(kv) {
		return fmt.Errorf("fake: removing a middle range [%d,%d) of sequence %d is not supported", p0, p1, seq)
	}
	if int(p0) < len(kv) {
		f.stats.RemovedCells += len(kv) - int(p0)
		f.kv[seq] = kv[:p0]
	}
	return nil
}

// CopySeq implements engine.Backend.
func (f *Fake) CopySeq(src, dst engine.SeqID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kv[dst] = append([]engine.Token(nil), f.kv[src]...)
	return nil
}

// ClearKV implements engine.Backend.
func (f *Fake) ClearKV() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.kv {
		f.kv[i] = nil
	}
}

// Close implements engine.Backend.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// KV returns a copy of a sequence's tokens in the KV cache.
func (f *Fake) KV(seq engine.SeqID) []engine.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Token(nil), f.kv[seq]...)
}

// Counters returns a copy of the counters.
func (f *Fake) Counters() Counters {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.stats
	c.BatchSizes = append([]int(nil), c.BatchSizes...)
	c.Passes = append([]byte(nil), c.Passes...)
	return c
}

var _ engine.Backend = (*Fake)(nil)

// NewWide makes a fake whose logits rows are vocab wide (128256 for a Llama
// 3 vocabulary), to measure the scheduler at the shape of a real model. The
// next token is still chosen by Next among the byte tokens; tokens from
// VocabSize up are words of a few letters (see Piece), drawn only by
// sampling.
//
// Info().GPULayers is 1, as for a model on a GPU. A row costs nothing to
// make: every row is a view of one precomputed row
// of twice the vocabulary, shifted so that the chosen token holds the
// maximum. It looks like a model's output (a normal background and a dozen
// peaks below the chosen token, which a temperature of 0.8 draws about
// four times in five), and the special tokens 0..3 are far below the
// rest. Because the rows share memory they are read-only, unlike a real
// backend's: a caller that modifies one (logit_bias, penalties, grammars)
// gets an error from the next Decode.
func NewWide(parallel, ctxPerSeq, nbatch, vocab int) *Fake {
	if vocab < 2*VocabSize+600 {
		panic(fmt.Sprintf("enginetest: a wide vocabulary needs at least %d tokens", 2*VocabSize+600))
	}
	f := New(parallel, ctxPerSeq, nbatch)
	f.info.NVocab = vocab
	f.info.GPULayers = 1 // it stands for a model on a GPU
	f.wide = newWideRows(vocab)
	return f
}

// wideRows is NewWide's shared row: row(t)[i] = base[(peak - t + i) mod n].
type wideRows struct {
	n, peak int
	buf     []float32 // base twice over
	sum     float64   // of buf, to detect writes
	pieces  [][]byte
}

func newWideRows(n int) *wideRows {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	w := &wideRows{n: n, peak: n / 2, buf: make([]float32, 2*n), pieces: make([][]byte, n)}
	base := w.buf[:n]
	for i := range base {
		base[i] = float32(r.NormFloat64() * 2.5)
	}
	// Rows of byte tokens t (ids 4..259) put tokens 0..3 at base[peak-t+i]:
	// keep that stretch far down so that sampling never draws them.
	for i := w.peak - VocabSize; i < w.peak; i++ {
		base[i] = -30
	}
	// Alternatives a few nats below the chosen token, away from that stretch.
	for range 12 {
		base[(w.peak+300+r.IntN(n-600))%n] = 8 + float32(r.Float64()*10)
	}
	base[w.peak] = 20
	copy(w.buf[n:], base)
	w.sum = w.checksum()
	const letters = "etaoinshrdlucmfwypvbgkjqxz"
	for t := VocabSize; t < n; t++ {
		k := 2 + t%5
		p := make([]byte, 0, k+1)
		p = append(p, ' ')
		for j := range k {
			p = append(p, letters[(t*7+j*13)%len(letters)])
		}
		w.pieces[t] = p
	}
	return w
}

func (w *wideRows) row(t engine.Token) []float32 {
	off := ((w.peak-int(t))%w.n + w.n) % w.n
	return w.buf[off : off+w.n : off+w.n]
}

func (w *wideRows) checksum() float64 {
	var s [4]float64
	b := w.buf
	for i := 0; i+4 <= len(b); i += 4 {
		s[0] += float64(b[i])
		s[1] += float64(b[i+1])
		s[2] += float64(b[i+2])
		s[3] += float64(b[i+3])
	}
	return s[0] + s[1] + s[2] + s[3]
}

func (w *wideRows) intact() bool {
	c := w.checksum()
	return c == w.sum || (math.IsNaN(c) && math.IsNaN(w.sum))
}

// waitUntil returns at t, blocking its thread in the kernel the way a GPU
// decode (a cgo call waiting on the device) does: the Go scheduler hands
// the thread's P to other goroutines while it waits, and the loop gets one
// back when the wait ends. (A goroutine sleep and a Gosched spin instead
// queued the loop behind every runnable goroutine at the end of each
// decode: 0.29 ms late on average under 64 SSE streams on 2 cores.)
func waitUntil(t time.Time) {
	const slack = 100 * time.Microsecond // the kernel's timer slack is 50 µs
	for {
		d := time.Until(t) - slack
		if d <= 0 {
			break
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
	for time.Now().Before(t) {
	}
}

// SetGPULayers sets Info().GPULayers: above 0 the fake stands for a model on
// a device (the scheduler then samples on workers and wakes readers just
// before each decode). Call it before using the fake.
func (f *Fake) SetGPULayers(n int) { f.info.GPULayers = n }
