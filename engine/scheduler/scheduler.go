// Package scheduler batches many requests onto one engine.Backend. One
// goroutine (Run) owns the backend and makes every call into it; requests
// arrive through Submit and leave through their Stream. Each step admits
// waiting requests into free sequences (choosing the one whose cached tokens
// share the longest prefix with the prompt, or one next to the running
// sequences), decodes a token for every generating sequence and prompt chunks
// up to a token and time budget, samples each sequence with its own sampler,
// and emits text. Batches are built for llama.cpp's split into parts
// (engine.Ubatches), each of which reads all the weights.
//
// Rows are sampled, and turned into text and events, on a pool of
// GOMAXPROCS goroutines (the loop and helpers that Run owns) when a step has
// many wide rows; each row touches only its own request's state, and the
// results are applied in batch order, so output does not depend on it. The
// step's token budget is sized from the measured cost of a pass (a fixed
// part and a part per token, see sizeBudget) unless Options.StepTokens fixes
// it: DefaultStepTokens on a CPU, hundreds of tokens on a GPU, where a pass
// of many prompt tokens costs little more than a decode step.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/sessions"
	"github.com/asi1d/asi1d/sampler"
	"github.com/asi1d/asi1d/tokenizer"
)

// LevelTrace is the log level of a line per scheduler step: below debug,
// so that debug logs stay readable under load (asi1d serve --log-level
// trace turns it on).
const LevelTrace = slog.LevelDebug - 4

// Options configure New. Zero values take the Default* values.
type Options struct {
	// StepTokens is the most tokens one step carries (decode tokens first,
	// prompt chunks after). It bounds how long a long prompt can stall the
	// running streams. 0 sizes it from the measured cost of a pass (see
	// sizeBudget): DefaultStepTokens while the cost grows with the tokens
	// (a CPU) or is not known yet, up to the backend's NBatch where a pass
	// costs little more for many tokens than for a few (a GPU).
	StepTokens int
	// MaxQueue is the capacity of the waiting queue.
	MaxQueue int
	// StepLatency bounds a step that carries prompt tokens next to running
	// streams to this many times a decode-only step (measured as it runs),
	// so that a long prompt never stalls them for more; StepTokens still
	// caps the step. 0: DefaultStepLatency; < 0 turns the bound off.
	StepLatency float64
	// SampleWorkers is how many goroutines sample the rows of a step when
	// there are many (the loop is one of them); 1: the loop alone. 0:
	// GOMAXPROCS when the backend runs on a GPU (Info().GPULayers > 0),
	// where the host's time per step is the limit, else 1: on a CPU the
	// decode dwarfs sampling, and on a machine shared beyond its cores the
	// helpers wait for the OS to run them (measured there: 2-3x the
	// loop's wall time per step). Output does not depend on it.
	SampleWorkers int
	// OnStep, when set, is called by the loop after each decode.
	OnStep func(d time.Duration, tokens int)
	// Sessions, when set and the backend is an engine.SeqStater, keeps the
	// KV state of sessions (Request.SessionID) beyond their slot: see
	// sessions.go. Several schedulers (one per model) may share it.
	Sessions *sessions.Store
	Logger   *slog.Logger
}

// Defaults for Options.
const (
	DefaultStepTokens = 64
	DefaultMaxQueue   = 64
	// DefaultStepLatency keeps a step with prompt work under 1.75 decode
	// steps: issue #3 asks running streams for an inter-token p99 of at
	// most 3x their idle p50, and on a shared 2-core machine a step's time
	// alone spreads by half again at p99. While a 2,000-token prompt
	// prefilled, the streams' gap p99 measured 3.3x their idle p50 at 2,
	// and 2.7-2.95x at 1.75 (asi1d bench scenario prefill).
	DefaultStepLatency = 1.75
	// grammarTopK is how many of the most likely tokens a grammar checks
	// before it masks the whole vocabulary (see sampler.ConstrainTop): a
	// full mask of a 32k vocabulary costs milliseconds.
	grammarTopK = 256
	// minPrefill is the least number of prompt tokens a step carries when
	// prompts are waiting, so that many decoders cannot starve prefill.
	minPrefill = 8
	// DefaultReserve is the completion cells a shared KV pool sets aside
	// for a request without Request.Reserve (no max_tokens): enough for a
	// short answer, small enough that 16 short streams of a small pool run
	// together. A request generates past it while the pool has room.
	DefaultReserve = 128
)

// Scheduler admits, batches and cancels requests on one backend. Submit,
// Stats and Drain are safe for concurrent use; Run is called once.
type Scheduler struct {
	be   engine.Backend
	info engine.Info
	opts Options
	log  *slog.Logger

	incoming chan *job
	subMu    sync.RWMutex // Submit holds it shared; shutdown exclusively
	closed   bool         // guarded by subMu
	waiting  atomic.Int64 // admitted to the queue, not yet to a slot (Submit's bound)
	draining atomic.Bool
	drainCh  chan time.Duration
	done     chan struct{}

	// now is the clock of the step costs (the cost model learns from what
	// it measures) and of the requests' timings (queue, first token, gaps)
	// and the cache's last use: time.Now, a test's clock in tests. Drain's
	// deadline stays on the wall clock. Set before Run, read-only after.
	now func() time.Time

	// Loop-owned state.
	queue    []*job
	slots    []*slot
	admits   uint64
	batch    []engine.BatchEntry
	owners   []*slot // owners[i] is the slot of batch[i]
	runs     []promptRun
	rows     []rowJob
	pool     *rowPool
	sampleFn func(*rowJob) // s.sampleRow, made once
	// deferWake (the model runs on a device): the events of a step's rows
	// reach their streams as the rows are sampled, but their readers are
	// woken just before the next decode (wakeReaders), which leaves the
	// host's cores free. Woken as each row is sampled, 64 SSE writers took
	// the cores from the helpers sampling the rest of the step, the loop's
	// critical path (BenchmarkServerGPUShape). On a CPU the decode needs
	// the cores itself, and readers are woken at once. woken holds the
	// streams to wake.
	deferWake bool
	woken     []*Stream
	deadln    time.Time
	running   int
	// pooled: the sequences share one KV pool (Info().KVUnified); then
	// committed is the cells the running requests hold (see kvpool.go).
	pooled    bool
	committed int
	// decodeCost is the recent time of a decode-only step, promptCost of
	// one prompt token on top of it (see promptLimit).
	decodeCost, promptCost time.Duration
	// The recent decode-only steps and prompt-only passes, rings by
	// decodeAt and passAt: the cost of a pass against its tokens (see
	// sizeBudget).
	decodes, passes  [16]stepCost
	decodeAt, passAt int
	// budget is the step's token budget; auto: sized by sizeBudget. fill
	// is how many prompt tokens a pass takes for at most its fixed cost
	// again (0 until known; large on a GPU, about 1 on a CPU).
	budget int
	auto   bool
	fill   int
	// Session states (sessions.go): nil unless Options.Sessions is set
	// and the backend can save a sequence.
	stater  engine.SeqStater
	sessKey sessions.Key
	keyOK   bool
	// States are read off the loop, one at a time (see readState):
	// reading is the job whose state is being read, states its result,
	// loadState the read (the store's Load; tests slow it down).
	reading   *job
	states    chan stateResult
	loadState func(sessions.Key, string, []engine.Token) (sessions.Entry, bool)
	readers   sync.WaitGroup
	stopRead  chan struct{} // closed when Run returns
	// Embeddings (embed.go): the queue's channel, the loop's queue, and
	// the backend's Embedder (nil, and embErr set, when it has none).
	embedIn   chan *embedJob
	embedQ    []*embedJob
	emb       engine.Embedder
	embLimits engine.EmbedLimits
	embErr    error

	// Counters read by Stats.
	st struct {
		running, kvUsed, reserved        atomic.Int64
		prompt, generated, queried, hit  atomic.Uint64
		steps, stepTokens                atomic.Uint64
		budget                           atomic.Int64
		stop, length, cancelled, errored atomic.Uint64
		saved, restored, restoredTok     atomic.Uint64
		embedWaiting                     atomic.Int64
		embedInputs, embedTokens         atomic.Uint64
		embedPasses                      atomic.Uint64
	}
}

type job struct {
	ctx       context.Context
	req       Request
	stream    *Stream
	submitted time.Time
	// Its session's saved state, read off the loop before it takes a slot
	// (see readState): stateRead says the read is done, state what it
	// found (nil: nothing worth restoring).
	stateRead bool
	state     *sessions.Entry
}

// end delivers a job's final event after freeing what the job owns.
func (j *job) end(ev Event) {
	if g := j.req.Grammar; g != nil {
		g.Close()
	}
	j.stream.push(ev)
}

// slot is one sequence of the backend. Owned by the loop.
type slot struct {
	id       engine.SeqID
	cached   []engine.Token // tokens whose KV is in the sequence, in order
	lastUsed time.Time
	session  string
	savedN   int // len(cached) when it was last saved for session; -1: never

	// The running request, nil when idle.
	job      *job
	admitSeq uint64
	hold     int // pooled: KV cells of the pool this request holds
	prompt   []engine.Token
	nPast    int // prompt tokens in the KV so far
	cachedN  int // prompt tokens reused from the cache
	pending  engine.Token
	hasTok   bool // pending holds a sampled token not yet decoded
	ngen     int
	admitted time.Time
	firstTok time.Time
	lastTok  time.Time
	gaps     []time.Duration // between consecutive generated tokens
	smp      *sampler.Sampler
	// constrained: the request's grammar applies (from the start, or since
	// one of its trigger tokens was drawn).
	constrained bool
	detok       tokenizer.Detokenizer
	stop        *tokenizer.StopMatcher
	rowCopy     []float32
}

// New makes a scheduler for be. It does not start the loop: call Run.
func New(be engine.Backend, o Options) *Scheduler {
	auto := o.StepTokens <= 0
	if auto {
		o.StepTokens = DefaultStepTokens
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = DefaultMaxQueue
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StepLatency == 0 {
		o.StepLatency = DefaultStepLatency
	}
	info := be.Info()
	if o.StepTokens > info.NBatch {
		o.StepTokens = info.NBatch
	}
	s := &Scheduler{
		be: be, info: info, opts: o, log: o.Logger,
		incoming: make(chan *job, o.MaxQueue),
		drainCh:  make(chan time.Duration, 1),
		done:     make(chan struct{}),
		budget:   o.StepTokens, auto: auto,
		now: time.Now,
	}
	s.st.budget.Store(int64(o.StepTokens))
	for i := range info.Parallel {
		s.slots = append(s.slots, &slot{id: engine.SeqID(i)})
	}
	s.sampleFn = s.sampleRow
	s.deferWake = info.GPULayers > 0
	s.pooled = info.KVUnified
	s.states, s.stopRead = make(chan stateResult, 1), make(chan struct{})
	s.initSessions()
	s.initEmbed()
	workers := o.SampleWorkers
	if workers <= 0 && info.GPULayers <= 0 {
		workers = 1
	}
	s.pool = newRowPool(workers, max(1, minParallelLogits/max(info.NVocab, 1)))
	return s
}

// CtxPerSeq is the context one request may use: prompt plus generated tokens.
func (s *Scheduler) CtxPerSeq() int { return s.info.NCtxSeq }

// Submit queues a request. It never blocks: a full queue returns
// ErrQueueFull, a draining scheduler ErrDraining. The request leaves the
// queue or its sequence when ctx ends.
func (s *Scheduler) Submit(ctx context.Context, r Request) (*Stream, error) {
	if len(r.Prompt) == 0 {
		return nil, errors.New("scheduler: empty prompt")
	}
	if len(r.Prompt) >= s.info.NCtxSeq {
		return nil, fmt.Errorf("scheduler: prompt of %d tokens does not fit the context of %d", len(r.Prompt), s.info.NCtxSeq)
	}
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.draining.Load() {
		return nil, ErrDraining
	}
	for {
		// The queue holds MaxQueue requests beyond the free slots, so that
		// a burst at an idle server is not refused before the loop has
		// moved its first requests into slots.
		n := s.waiting.Load()
		free := max(int64(len(s.slots))-s.st.running.Load(), 0)
		if n >= int64(s.opts.MaxQueue)+free {
			return nil, ErrQueueFull
		}
		if s.waiting.CompareAndSwap(n, n+1) {
			break
		}
	}
	j := &job{ctx: ctx, req: r, stream: newStream(), submitted: s.now()}
	s.incoming <- j // capacity MaxQueue and waiting <= MaxQueue: never blocks
	return j.stream, nil
}

// Drain stops admitting new requests; running ones may finish within
// timeout, after which they end with ErrShutdown. Waiting ones still run if
// they get a slot in time. Safe to call more than once; the first wins.
func (s *Scheduler) Drain(timeout time.Duration) {
	if s.draining.CompareAndSwap(false, true) {
		s.drainCh <- timeout
	}
}

// Done is closed when Run has returned.
func (s *Scheduler) Done() <-chan struct{} { return s.done }

// Stats returns a snapshot of the counters without touching the loop.
func (s *Scheduler) Stats() Stats {
	return Stats{
		Running:             int(s.st.running.Load()),
		Waiting:             int(s.waiting.Load()),
		Slots:               len(s.slots),
		KVCells:             s.info.NCtx,
		KVUsed:              int(s.st.kvUsed.Load()),
		KVReserved:          int(s.st.reserved.Load()),
		PromptTokens:        s.st.prompt.Load(),
		GeneratedTokens:     s.st.generated.Load(),
		PrefixQueriedTokens: s.st.queried.Load(),
		PrefixHitTokens:     s.st.hit.Load(),
		Steps:               s.st.steps.Load(),
		StepTokens:          s.st.stepTokens.Load(),
		Finished: map[FinishReason]uint64{
			FinishStop: s.st.stop.Load(), FinishLength: s.st.length.Load(),
			FinishCancelled: s.st.cancelled.Load(), FinishError: s.st.errored.Load(),
		},
		SessionsSaved:         s.st.saved.Load(),
		SessionsRestored:      s.st.restored.Load(),
		SessionRestoredTokens: s.st.restoredTok.Load(),
		EmbedWaiting:          int(s.st.embedWaiting.Load()),
		EmbedInputs:           s.st.embedInputs.Load(),
		EmbedTokens:           s.st.embedTokens.Load(),
		EmbedPasses:           s.st.embedPasses.Load(),
		Draining:              s.draining.Load(),
		CtxPerSeq:             s.info.NCtxSeq,
		StepLimit:             int(s.st.budget.Load()),
	}
}

// Run is the loop. It returns when ctx ends (every request still queued or
// running ends with ErrShutdown) or when a drain has finished. The backend
// is not closed: its owner closes it after Run returns.
func (s *Scheduler) Run(ctx context.Context) {
	defer close(s.done)
	defer s.stopReads()
	s.pool.start()
	defer s.pool.stop()
	defer s.shutdown()
	defer s.wakeReaders()
	for {
		s.wakeReaders() // any left by a step that did not decode
		s.receive()
		if !s.deadln.IsZero() && time.Now().After(s.deadln) {
			s.endAll(ErrShutdown)
		}
		if s.draining.Load() && s.running == 0 && len(s.queue) == 0 && len(s.embedQ) == 0 {
			return
		}
		s.reap()
		s.admit()
		if s.running == 0 && len(s.embedQ) == 0 {
			// Idle: wait for work without spinning.
			select {
			case j := <-s.incoming:
				s.queue = append(s.queue, j)
			case j := <-s.embedIn:
				s.embedQ = append(s.embedQ, j)
			case t := <-s.drainCh:
				s.startDrain(t)
			case r := <-s.states:
				s.gotState(r)
			case <-ctx.Done():
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		default:
		}
		if s.running > 0 {
			s.step()
		}
		s.embedStep() // at most one pass: embeddings and chat steps alternate
	}
}

func (s *Scheduler) startDrain(timeout time.Duration) {
	s.deadln = time.Now().Add(timeout)
	s.log.Info("draining", "running", s.running, "waiting", len(s.queue), "timeout", timeout)
}

// receive moves submitted jobs into the queue without blocking.
func (s *Scheduler) receive() {
	for {
		select {
		case j := <-s.incoming:
			s.queue = append(s.queue, j)
		case j := <-s.embedIn:
			s.embedQ = append(s.embedQ, j)
		case t := <-s.drainCh:
			s.startDrain(t)
		case r := <-s.states:
			s.gotState(r)
		default:
			return
		}
	}
}

// reap ends cancelled requests: queued ones leave the queue, running ones
// free their slot (their KV stays as a cache entry).
func (s *Scheduler) reap() {
	q := s.queue[:0]
	for _, j := range s.queue {
		if j.ctx.Err() != nil {
			s.waiting.Add(-1)
			s.st.cancelled.Add(1)
			j.end(Event{Done: true, Finish: FinishCancelled, Err: j.ctx.Err(), Usage: Usage{PromptTokens: len(j.req.Prompt)}})
			continue
		}
		q = append(q, j)
	}
	clear(s.queue[len(q):])
	s.queue = q
	for _, sl := range s.slots {
		if sl.job != nil && sl.job.ctx.Err() != nil {
			s.finish(sl, FinishCancelled, sl.job.ctx.Err())
		}
	}
}

func (s *Scheduler) addKV(d int) { s.st.kvUsed.Add(int64(d)) }

// step builds one batch, decodes it, samples and emits. When streams are
// generating and prompts wait, and Options.StepLatency is on, the prompt
// chunks go into a second, prompt-only decode right after the streams'
// decode-only one: in llama.cpp every token of a batch attends over the
// longest sequence's cells in it, so a deep prompt chunk in the streams'
// batch makes all of their tokens pay its depth. Split, the streams' batch
// costs what it costs alone and the prompt chunk is sized so that both
// together last at most StepLatency decode-only steps.
func (s *Scheduler) step() {
	built := s.now()
	if s.pooled {
		s.growHolds()
	}
	s.batch, s.owners = s.batch[:0], s.owners[:0]
	// 1. One token for every generating sequence.
	for _, sl := range s.slots {
		if sl.job == nil || !sl.hasTok {
			continue
		}
		s.batch = append(s.batch, engine.BatchEntry{Token: sl.pending, Seq: sl.id, Pos: int32(len(sl.cached)), Logits: true})
		s.owners = append(s.owners, sl)
	}
	ndec := len(s.batch)
	inBatch := ndec // decode tokens in the batch that the prompt chunks join
	if ndec > 0 && s.opts.StepLatency > 0 && s.prompting() {
		s.run(ndec, built)
		built = s.now()
		s.batch, s.owners = s.batch[:0], s.owners[:0]
		inBatch = 0
	}
	// 2. Prompt chunks.
	s.addPrompts(ndec)
	if len(s.batch) > 0 {
		s.run(inBatch, built)
	}
}

// run decodes the batch (ndec decode tokens, the rest prompt tokens),
// records the KV, samples and emits.
func (s *Scheduler) run(ndec int, built time.Time) {
	s.wakeReaders()
	if s.pooled {
		s.makeRoom(len(s.batch))
	}
	t0 := s.now()
	build := t0.Sub(built)
	err := s.be.Decode(s.batch)
	d := s.now().Sub(t0)
	s.st.steps.Add(1)
	s.st.stepTokens.Add(uint64(len(s.batch)))
	if err == nil {
		s.learnCost(d, ndec, len(s.batch)-ndec)
	}
	if s.opts.OnStep != nil {
		s.opts.OnStep(d, len(s.batch))
	}
	debug := s.log.Enabled(context.Background(), LevelTrace)
	if err != nil {
		if debug {
			s.log.Log(context.Background(), LevelTrace, "step", "decode", ndec, "prompt", len(s.batch)-ndec, "ms", ms(d), "err", err)
		}
		s.failBatch(err)
		return
	}

	// The batch is in the KV now.
	for i, e := range s.batch {
		sl := s.owners[i]
		sl.cached = append(sl.cached, e.Token)
		if int(e.Pos) < len(sl.prompt) {
			sl.nPast++
		} else {
			sl.hasTok = false // the sampled token is in the KV now
		}
	}
	s.addKV(len(s.batch))

	// Fetch the rows on the loop (the backend's Logits is loop-only), sample
	// them, on the workers when they are many, and apply the results in
	// batch order.
	t2 := s.now()
	rows := s.rows[:0]
	for i, e := range s.batch {
		if e.Logits && s.owners[i].job != nil {
			rows = append(rows, rowJob{sl: s.owners[i], row: s.be.Logits(i)})
		}
	}
	t3 := s.now()
	s.pool.do(rows, s.sampleFn)
	t4 := s.now()
	for i := range rows {
		s.applyRow(&rows[i], t2)
		rows[i] = rowJob{}
	}
	s.rows = rows
	if debug {
		// ms is the decode; build_ms building its batch (prompt chunks
		// included), fetch_ms getting the rows, sample_ms sampling them
		// with everything per request (grammar, logprobs, text, stop
		// strings, the events of requests that go on; on the workers),
		// emit_ms the rest on the loop (counters, final events).
		t5 := s.now()
		parts, _ := engine.Ubatches(s.batch)
		s.log.Log(context.Background(), LevelTrace, "step", "decode", ndec, "prompt", len(s.batch)-ndec, "parts", parts, "rows", len(rows),
			"ms", ms(d), "build_ms", ms(build), "fetch_ms", ms(t3.Sub(t2)), "sample_ms", ms(t4.Sub(t3)), "emit_ms", ms(t5.Sub(t4)),
			"decode_cost_ms", ms(s.decodeCost), "prompt_cost_ms", ms(s.promptCost), "step_tokens", s.budget)
	}
}

// failBatch ends every sequence of a batch that could not be decoded. The
// batch's KV may be partly written, so their caches are dropped.
func (s *Scheduler) failBatch(err error) {
	s.log.Error("decode failed", "tokens", len(s.batch), "err", err)
	for _, sl := range s.owners {
		if sl.job == nil {
			continue
		}
		e := err
		if errors.Is(err, engine.ErrNoKVSpace) {
			e = fmt.Errorf("the KV cache is full: %w", err)
		}
		s.finish(sl, FinishError, e)
		_ = s.be.RemoveKV(sl.id, -1, -1)
		s.addKV(-len(sl.cached))
		sl.cached, sl.savedN = sl.cached[:0], -1
	}
}

// finish ends the running request of a slot and frees the slot; the KV stays
// as a cache entry.
func (s *Scheduler) finish(sl *slot, reason FinishReason, err error) {
	j := sl.job
	ev := Event{Done: true, Finish: reason, Err: err}
	ev.Usage = Usage{PromptTokens: len(sl.prompt), CompletionTokens: sl.ngen, CachedTokens: sl.cachedN}
	ev.Queued = sl.admitted.Sub(j.submitted)
	if !sl.firstTok.IsZero() {
		ev.FirstTok = sl.firstTok.Sub(j.submitted)
		ev.Generated = sl.lastTok.Sub(sl.firstTok)
	}
	ev.Gaps, sl.gaps = sl.gaps, nil
	switch reason {
	case FinishStop:
		s.st.stop.Add(1)
	case FinishLength:
		s.st.length.Add(1)
	case FinishCancelled:
		s.st.cancelled.Add(1)
	default:
		s.st.errored.Add(1)
	}
	sl.job, sl.smp, sl.stop, sl.hasTok = nil, nil, nil, false
	s.commit(-sl.hold)
	sl.hold = 0
	sl.detok = tokenizer.Detokenizer{}
	sl.lastUsed = s.now()
	s.running--
	s.st.running.Add(-1)
	j.end(ev) // last, so a reader that sees Done sees the slot free
}

// endAll ends every running and queued request with err.
func (s *Scheduler) endAll(err error) {
	for _, sl := range s.slots {
		if sl.job != nil {
			s.finish(sl, FinishError, err)
		}
	}
	for _, j := range s.queue {
		s.waiting.Add(-1)
		s.st.errored.Add(1)
		j.end(Event{Done: true, Finish: FinishError, Err: err, Usage: Usage{PromptTokens: len(j.req.Prompt)}})
	}
	s.queue = s.queue[:0]
	s.endEmbeds(err)
}

// shutdown ends whatever is left when the loop stops, including jobs still
// in the incoming channel, and refuses new ones.
func (s *Scheduler) shutdown() {
	s.draining.Store(true)
	s.subMu.Lock()
	s.closed = true
	s.subMu.Unlock()
	s.receive() // no Submit can add to incoming any more
	s.endAll(ErrShutdown)
	// Whether the loop stopped after a drain or because its owner ended
	// ctx (a model unloaded to make room), the sessions in the slots are
	// worth their files.
	s.saveSessions()
}
