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
	"slices"
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
	j := &job{ctx: ctx, req: r, stream: newStream(), submitted: time.Now()}
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

// admit moves queued requests into idle slots, FIFO, except that a
// request whose session state is worth reading first waits in its place
// while the state is read off the loop (readState), and the ones behind it
// go on.
func (s *Scheduler) admit() {
	for i := 0; i < len(s.queue); {
		j := s.queue[i]
		if j == s.reading {
			i++
			continue
		}
		sl, lcp := s.pickSlot(j.req)
		if sl == nil {
			return
		}
		if s.needState(sl, j, lcp) {
			if s.reading == nil {
				s.readState(j)
			}
			i++
			continue
		}
		if s.pooled && s.committed+s.holdFor(j.req) > s.info.NCtx {
			return // the pool is full: the queue waits, in order, for room
		}
		s.queue = slices.Delete(s.queue, i, i+1)
		s.waiting.Add(-1)
		s.start(sl, j, lcp)
	}
}

// pickSlot chooses the idle slot whose cache shares the longest prefix with
// the prompt; when that is at most half the prompt (the slot holds another
// conversation), less a quarter of the cached tokens it would throw away
// (evictCost: another conversation's prefix is worth keeping, so a request
// that shares only a BOS or a short system prompt with it takes a free slot
// instead, while a prompt asked again keeps its slot); ties go to the slot of the same session, then to the least
// recently used. Without a unified KV cache, each busy neighbour of a slot
// counts as adjacentWorth cached tokens (see layoutBonus).
func (s *Scheduler) pickSlot(r Request) (*slot, int) {
	var best *slot
	bestN, bestScore := -1, 0
	same := func(sl *slot) bool { return r.SessionID != "" && sl.session == r.SessionID }
	for _, sl := range s.slots {
		if sl.job != nil {
			continue
		}
		n := engine.CommonPrefix(sl.cached, r.Prompt)
		score := n + s.layoutBonus(sl)
		if 2*n <= len(r.Prompt) {
			// Not this request's conversation: what it would evict counts.
			score -= (len(sl.cached) - n) / evictCost
		}
		better := best == nil || score > bestScore
		if !better && score == bestScore {
			if same(sl) != same(best) {
				better = same(sl)
			} else {
				better = sl.lastUsed.Before(best.lastUsed)
			}
		}
		if better {
			best, bestN, bestScore = sl, n, score
		}
	}
	return best, bestN
}

// adjacentWorth is what a busy neighbour of a slot is worth, in cached
// prompt tokens, when a request picks its slot.
const adjacentWorth = 32

// evictCost: a cached token thrown away costs 1/evictCost of a token
// reused. Not 1: the other conversation may never come back, and a slot
// is reused by the next request of its own session before any other.
const evictCost = 4

// layoutBonus favours slots next to busy ones when the KV cache is not
// unified. llama.cpp then splits a batch at every gap in the sequence ids
// (engine.Ubatches), so a request placed apart from the running ones costs
// every decode step of its life one more pass over the weights (2.1x the
// step for 8 strided sequences, BenchmarkSeqLayout), while a cached prefix
// saves its tokens once. Least-recently-used ties would otherwise spread
// requests over all the slots.
func (s *Scheduler) layoutBonus(sl *slot) int {
	if s.info.KVUnified {
		return 0
	}
	n := 0
	for _, id := range [2]int{int(sl.id) - 1, int(sl.id) + 1} {
		if id >= 0 && id < len(s.slots) && s.slots[id].job != nil {
			n++
		}
	}
	return n * adjacentWorth
}

// start places a job in a slot, keeping the cached prefix.
func (s *Scheduler) start(sl *slot, j *job, lcp int) {
	lcp = s.swapSession(sl, j, lcp)
	// At least one prompt token is always evaluated, to get logits.
	keep := min(lcp, len(j.req.Prompt)-1)
	if keep < len(sl.cached) {
		if err := s.be.RemoveKV(sl.id, int32(keep), -1); err != nil {
			// Cannot trim: start from scratch.
			s.log.Warn("KV trim refused; clearing the sequence", "slot", sl.id, "err", err)
			_ = s.be.RemoveKV(sl.id, -1, -1)
			keep = 0
		}
		s.addKV(keep - len(sl.cached))
		sl.cached = sl.cached[:keep]
		if keep < sl.savedN {
			sl.savedN = -1 // no longer what was saved
		}
	}
	now := time.Now()
	s.admits++
	*sl = slot{
		id: sl.id, cached: sl.cached, lastUsed: now, session: j.req.SessionID, savedN: sl.savedN,
		job: j, admitSeq: s.admits, prompt: j.req.Prompt, nPast: keep, cachedN: keep, hold: s.hold(keep, j.req),
		admitted: now, smp: sampler.New(j.req.Sampling), stop: tokenizer.NewStopMatcher(j.req.Stop),
		rowCopy: sl.rowCopy, constrained: len(j.req.GrammarTriggers) == 0,
	}
	s.running++
	s.st.running.Add(1)
	s.commit(sl.hold)
	s.st.queried.Add(uint64(len(j.req.Prompt)))
	s.st.hit.Add(uint64(keep))
	s.st.prompt.Add(uint64(len(j.req.Prompt)))
	j.stream.push(Event{Started: true})
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
	built := time.Now()
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
		built = time.Now()
		s.batch, s.owners = s.batch[:0], s.owners[:0]
		inBatch = 0
	}
	// 2. Prompt chunks.
	s.addPrompts(ndec)
	if len(s.batch) > 0 {
		s.run(inBatch, built)
	}
}

// prompting reports whether a running request still has prompt tokens to
// process.
func (s *Scheduler) prompting() bool {
	for _, sl := range s.slots {
		if sl.job != nil && sl.nPast < len(sl.prompt) {
			return true
		}
	}
	return false
}

// addPrompts appends prompt chunks to the batch: the shortest remaining
// prompt first (a short request is not held behind a long one), then in
// admission order, within the step budget. ndec streams are generating
// this step (in this batch or the one before it).
func (s *Scheduler) addPrompts(ndec int) {
	var pre []*slot
	for _, sl := range s.slots {
		if sl.job != nil && sl.nPast < len(sl.prompt) {
			pre = append(pre, sl)
		}
	}
	if len(pre) == 0 {
		return
	}
	used := len(s.batch)
	room := max(s.budget-used, min(minPrefill, s.info.NBatch-used))
	// The streams' gaps are protected while they are at least as many as
	// the requests still waiting for a first token; in a burst of new
	// requests, getting them all started matters more. A pass whose fixed
	// cost alone exceeds the bound (a GPU) takes what costs it little more.
	if lim := s.promptLimit(ndec); lim >= 0 && ndec >= len(pre) {
		room = min(room, max(lim, minPrefill, s.fill))
	}
	room = min(room, s.info.NBatch-used)
	if len(pre) > 1 {
		slices.SortFunc(pre, func(a, b *slot) int {
			if ra, rb := len(a.prompt)-a.nPast, len(b.prompt)-b.nPast; ra != rb {
				return ra - rb
			}
			return int(a.admitSeq - b.admitSeq)
		})
	}
	if !s.info.KVUnified {
		s.addPromptRuns(pre, room)
		return
	}
	for _, sl := range pre {
		if room <= 0 {
			break
		}
		k := min(room, len(sl.prompt)-sl.nPast)
		s.addChunk(sl, k)
		room -= k
	}
}

// promptRun is k prompt tokens from each of the sequences lo..hi.
type promptRun struct {
	lo, hi engine.SeqID
	k      int
}

// addPromptRuns adds the prompt chunks of a step when the KV cache is not
// unified, so that each becomes one part of llama.cpp's split
// (engine.Ubatches) instead of being cut up and padded to the depth of
// another sequence: in the order of pre, each prompt not yet taken starts a
// run that takes equal chunks from prompts in the sequences next to it, and
// the runs go into the batch in descending order, where none can continue
// into the next. (Decode tokens ahead of them, in the mixed batches that a
// negative StepLatency allows, may still join a run.)
func (s *Scheduler) addPromptRuns(pre []*slot, room int) {
	runs := s.runs[:0]
	taken := func(id engine.SeqID) bool {
		for _, r := range runs {
			if id >= r.lo && id <= r.hi {
				return true
			}
		}
		return false
	}
	for _, first := range pre {
		if room <= 0 {
			break
		}
		if taken(first.id) {
			continue
		}
		k := min(room, len(first.prompt)-first.nPast)
		joins := func(id engine.SeqID) bool {
			if id < 0 || int(id) >= len(s.slots) || taken(id) {
				return false
			}
			sl := s.slots[id]
			// Depths within one KV padding block (256 cells) cost alike.
			return sl.job != nil && len(sl.prompt)-sl.nPast >= k && abs(sl.nPast-first.nPast) < 256
		}
		r := promptRun{lo: first.id, hi: first.id, k: k}
		for n := 1; (n+1)*k <= room; n++ {
			if joins(r.hi + 1) {
				r.hi++
			} else if joins(r.lo - 1) {
				r.lo--
			} else {
				break
			}
		}
		runs = append(runs, r)
		room -= int(r.hi-r.lo+1) * k
	}
	slices.SortFunc(runs, func(a, b promptRun) int { return int(b.lo - a.lo) })
	for _, r := range runs {
		for id := r.lo; id <= r.hi; id++ {
			s.addChunk(s.slots[id], r.k)
		}
	}
	s.runs = runs
}

// addChunk appends the next k tokens of sl's prompt to the batch; the
// prompt's last token asks for logits.
func (s *Scheduler) addChunk(sl *slot, k int) {
	for i := range k {
		p := sl.nPast + i
		last := p == len(sl.prompt)-1
		s.batch = append(s.batch, engine.BatchEntry{Token: sl.prompt[p], Seq: sl.id, Pos: int32(p), Logits: last})
		s.owners = append(s.owners, sl)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// run decodes the batch (ndec decode tokens, the rest prompt tokens),
// records the KV, samples and emits.
func (s *Scheduler) run(ndec int, built time.Time) {
	s.wakeReaders()
	if s.pooled {
		s.makeRoom(len(s.batch))
	}
	t0 := time.Now()
	build := t0.Sub(built)
	err := s.be.Decode(s.batch)
	d := time.Since(t0)
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
	t2 := time.Now()
	rows := s.rows[:0]
	for i, e := range s.batch {
		if e.Logits && s.owners[i].job != nil {
			rows = append(rows, rowJob{sl: s.owners[i], row: s.be.Logits(i)})
		}
	}
	t3 := time.Now()
	s.pool.do(rows, s.sampleFn)
	t4 := time.Now()
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
		t5 := time.Now()
		parts, _ := engine.Ubatches(s.batch)
		s.log.Log(context.Background(), LevelTrace, "step", "decode", ndec, "prompt", len(s.batch)-ndec, "parts", parts, "rows", len(rows),
			"ms", ms(d), "build_ms", ms(build), "fetch_ms", ms(t3.Sub(t2)), "sample_ms", ms(t4.Sub(t3)), "emit_ms", ms(t5.Sub(t4)),
			"decode_cost_ms", ms(s.decodeCost), "prompt_cost_ms", ms(s.promptCost), "step_tokens", s.budget)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// promptLimit is how many prompt tokens may follow a decode-only step of
// ndec streams so that the two last at most Options.StepLatency times the
// decode-only step, from the costs measured so far; -1 means no limit (no
// streams to protect, or nothing learned yet). On a CPU a step's time grows
// with every token in it, and a prompt token costs more the deeper it sits,
// so a fixed token budget either stalls the running streams or starves the
// prompt; a time budget does neither.
func (s *Scheduler) promptLimit(ndec int) int {
	if ndec == 0 || s.opts.StepLatency <= 0 || s.decodeCost <= 0 || s.promptCost <= 0 {
		return -1
	}
	return int((s.opts.StepLatency - 1) * float64(s.decodeCost) / float64(s.promptCost))
}

// learnCost updates the decode-only step time and the marginal time of a
// prompt token (moving averages) from a step of ndec decode and npr prompt
// tokens that took d.
func (s *Scheduler) learnCost(d time.Duration, ndec, npr int) {
	const w = 0.25 // weight of the newest step
	ewma := func(old, x time.Duration) time.Duration {
		if old <= 0 {
			return x
		}
		return time.Duration(w*float64(x) + (1-w)*float64(old))
	}
	switch {
	case npr == 0 && ndec > 0:
		s.decodeCost = ewma(s.decodeCost, d)
		s.decodes[s.decodeAt%len(s.decodes)] = stepCost{n: ndec, d: d}
		s.decodeAt++
	case npr > 0 && ndec == 0:
		s.promptCost = ewma(s.promptCost, d/time.Duration(npr))
		s.passes[s.passAt%len(s.passes)] = stepCost{n: npr, d: d}
		s.passAt++
		s.sizeBudget()
	case npr > 0 && s.decodeCost > 0:
		if extra := d - s.decodeCost; extra > 0 {
			s.promptCost = ewma(s.promptCost, extra/time.Duration(npr))
		}
	}
}

// stepCost is the time d of a pass of n tokens.
type stepCost struct {
	n int
	d time.Duration
}

// Sizing of a step from the cost of a pass.
const (
	// budgetRatio: an automatic step budget carries prompt tokens until
	// they cost this many times a pass's fixed part.
	budgetRatio = 2
	// fillRatio: with streams to protect, a prompt pass whose fixed part
	// alone breaks Options.StepLatency takes prompt tokens until they cost
	// this many times that fixed part.
	fillRatio = 1
)

// sizeBudget fits the cost of a pass as a fixed part a and a part b per
// token, a + b*n, through the recent decode-only steps and prompt-only
// passes, and sizes from it the prompt tokens that a pass takes cheaply:
// fill = fillRatio*a/b, and the automatic step budget budgetRatio*a/b
// between DefaultStepTokens and NBatch, growing at most twice per pass so
// that each larger pass checks the fit. On a CPU a prompt token costs about
// what a whole decode step of one sequence does (a/b about 1), so the
// budget stays at DefaultStepTokens; on a GPU a pass of hundreds of tokens
// costs little more than one of a few (a/b in the hundreds).
func (s *Scheduler) sizeBudget() {
	// A step's time only ever grows by noise (the loop's thread waits for
	// a core, a timer oversleeps): the quickest recent decode step is the
	// best estimate of what a pass of its size costs, and an inflated one
	// would pass for a large fixed part.
	// For the same reason the cost per token is the least that the recent
	// prompt passes, larger than that decode step, imply.
	var dec stepCost
	for _, c := range s.decodes {
		if c.n > 0 && (dec.n == 0 || c.d < dec.d) {
			dec = c
		}
	}
	b, ok := 0.0, false
	for _, c := range s.passes {
		if dec.n == 0 || c.n < dec.n+minPrefill {
			continue // too close to tell a from b
		}
		if bi := float64(c.d-dec.d) / float64(c.n-dec.n); !ok || bi < b {
			b, ok = bi, true
		}
	}
	if !ok {
		return
	}
	a := float64(dec.d) - b*float64(dec.n)
	var cheap float64 // tokens that cost a pass's fixed part
	switch {
	case a <= 0:
		cheap = 0
	case b <= 0:
		cheap = float64(s.info.NBatch)
	default:
		cheap = min(a/b, float64(s.info.NBatch))
	}
	s.fill = int(fillRatio * cheap)
	if !s.auto {
		return
	}
	n := int(min(budgetRatio*cheap, float64(s.info.NBatch)))
	n = max(min(n, 2*s.budget, s.info.NBatch), min(DefaultStepTokens, s.info.NBatch))
	s.budget = n
	s.st.budget.Store(int64(n))
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

// rowJob is one logits row to sample after a decode. sampleRow fills in
// the result, possibly on a worker goroutine; applyRow applies it on the
// loop, in batch order.
type rowJob struct {
	sl  *slot
	row []float32
	// Results.
	gen bool         // a token was generated (it counts, even if it ends the request)
	ev  Event        // text and logprobs to deliver before the request ends
	end FinishReason // "" when the request goes on
	err error
	// wake: ev went to the stream without waking its reader (deferWake).
	wake bool
}

// sampleRow picks the next token of a sequence and turns it into text. It
// touches only the state of w.sl's request (sampler, grammar, detokenizer,
// stop matcher, splitter) and the backend's concurrency-safe Piece and
// IsEOG, so different rows may run on different goroutines; whatever is
// shared (counters, the slot table, ending the request) is left to applyRow.
// A request that goes on gets its event here, off the loop.
func (s *Scheduler) sampleRow(w *rowJob) {
	sl, row := w.sl, w.row
	r := &sl.job.req
	// Log-probabilities are of the model's own row: keep a copy only when
	// sampling will change it (a vocabulary's worth of floats).
	raw := row
	if r.Logprobs && (r.Grammar != nil || changesRow(r.Sampling)) {
		sl.rowCopy = append(sl.rowCopy[:0], row...)
		raw = sl.rowCopy
	}
	var tok engine.Token
	if g := r.Grammar; g == nil || !sl.constrained {
		tok = engine.Token(sl.smp.Sample(row))
		if g != nil && slices.Contains(r.GrammarTriggers, tok) {
			// A lazy grammar starts at its trigger, which it accepts.
			if err := g.Accept(tok); err != nil {
				w.end, w.err = FinishError, err
				return
			}
			sl.constrained = true
		}
	} else {
		// Draw first; when the grammar refuses the draw, constrain the
		// most likely tokens, and the whole row only if none of them fits.
		sl.smp.Prepare(row)
		tok = engine.Token(sl.smp.Pick(row))
		if !g.Allows(tok) {
			if !sl.smp.ConstrainTop(row, grammarTopK, g.AllowsEach) {
				g.Mask(row)
			}
			tok = engine.Token(sl.smp.Pick(row))
			if !g.Allows(tok) {
				w.end, w.err = FinishError, ErrGrammarDeadEnd
				return
			}
		}
		if !s.be.IsEOG(tok) {
			if err := g.Accept(tok); err != nil {
				w.end, w.err = FinishError, err
				return
			}
		}
	}
	sl.smp.Accept(tok)
	ev := &w.ev
	if r.Logprobs {
		l, top := sampler.Logprobs(raw, tok, r.TopLogprobs)
		lp := TokenLogprob{Token: tok, Text: s.be.Piece(tok), Logprob: l}
		for _, a := range top {
			lp.Top = append(lp.Top, Alternative{Token: a.Token, Text: s.be.Piece(a.Token), Logprob: a.Logprob})
		}
		ev.Logprobs = []TokenLogprob{lp}
	}
	sl.ngen++
	w.gen = true

	if s.be.IsEOG(tok) {
		s.emitText(sl, ev, sl.detok.Flush(), true)
		w.end = FinishStop
		return
	}
	piece := s.be.Piece(tok)
	if s.be.IsControl(tok) && !slices.Contains(r.Markers, tok) {
		piece = nil // vocabulary markup, not text
	}
	if s.emitText(sl, ev, sl.detok.Add(piece), false) {
		w.end = FinishStop
		return
	}
	sl.pending, sl.hasTok = tok, true
	// Room: the pending token needs a cell, and the next one another.
	if (r.MaxTokens > 0 && sl.ngen >= r.MaxTokens) || len(sl.cached)+1 >= s.info.NCtxSeq {
		s.emitText(sl, ev, sl.detok.Flush(), true)
		w.end = FinishLength
		return
	}
	if len(ev.Fragments) > 0 || len(ev.Logprobs) > 0 {
		if s.deferWake {
			sl.job.stream.merge(*ev)
			w.wake = true
		} else {
			sl.job.stream.push(*ev)
		}
	}
}

// wakeReaders wakes the readers of the events that deferWake held back.
func (s *Scheduler) wakeReaders() {
	for i, st := range s.woken {
		st.wake()
		s.woken[i] = nil
	}
	s.woken = s.woken[:0]
}

// changesRow reports whether a sampler with p modifies the rows it samples:
// the sampler adds the logit bias and applies the penalties in place, and
// does nothing else to them (see sampler.Sampler.Sample).
func changesRow(p sampler.Params) bool {
	return len(p.LogitBias) > 0 || (p.RepeatPenalty > 0 && p.RepeatPenalty != 1) ||
		p.PresencePenalty != 0 || p.FrequencyPenalty != 0
}

// applyRow records a sampled row on the loop: counters, timings, and the
// end of the request when it ended.
func (s *Scheduler) applyRow(w *rowJob, now time.Time) {
	sl := w.sl
	if w.wake {
		s.woken = append(s.woken, sl.job.stream)
	}
	if w.gen {
		s.st.generated.Add(1)
		if sl.firstTok.IsZero() {
			sl.firstTok = now
		} else {
			sl.gaps = append(sl.gaps, now.Sub(sl.lastTok))
		}
		sl.lastTok = now
	}
	switch w.end {
	case "":
	case FinishError:
		s.finish(sl, w.end, w.err)
	default:
		sl.job.stream.push(w.ev)
		s.finish(sl, w.end, nil)
	}
}

// emitText runs text through the splitter and the stop matcher into ev. With
// final, everything held back is released. It reports a stop-string match.
func (s *Scheduler) emitText(sl *slot, ev *Event, text string, final bool) (stopped bool) {
	var frags []Fragment
	if sp := sl.job.req.Splitter; sp != nil {
		if text != "" {
			frags = sp.Push(text)
		}
		if final {
			frags = append(frags, sp.Flush()...)
		}
	} else if text != "" {
		frags = []Fragment{{Text: text}}
	}
	for _, f := range frags {
		if f.Thought {
			ev.Fragments = append(ev.Fragments, f)
			continue
		}
		out, stop := sl.stop.Push(f.Text)
		if out != "" {
			ev.Fragments = append(ev.Fragments, Fragment{Text: out})
		}
		if stop {
			return true
		}
	}
	if final {
		if out := sl.stop.Flush(); out != "" {
			ev.Fragments = append(ev.Fragments, Fragment{Text: out})
		}
	}
	return false
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
	sl.lastUsed = time.Now()
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
