// Package stack wires the serving stack: the HTTP server, and for each
// model it serves a backend and the scheduler that owns it, from one
// Options value. The binary (serve, bench) and the tests build their stacks
// here, so a new option is threaded in one place.
//
// A stack serves one model (Options.Open) or a catalog of several
// (Options.Models). A model is loaded on its first request, or at start
// when it is preloaded; it stays loaded while the budget allows (a count of
// models, host and GPU bytes from engine.EstimateMemory) and is unloaded,
// least recently used first, when another needs the room, or after
// KeepAlive without requests. A model in use is never unloaded. The Stack
// is the server's server.Models.
//
// The package is pure Go: backends come from Open functions, which the
// binary points at llamacpp.Open (cgo) and tests at the fake engine
// (engine/enginetest), so server and scheduler tests keep building with
// CGO_ENABLED=0.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
)

// ModelSpec is one model a stack may serve.
type ModelSpec struct {
	ID      string
	Aliases []string
	// Open loads the model (engine.ModelError: the file is bad, and the
	// model is marked unusable).
	Open func() (engine.Backend, error)
	// Check, when set, runs before any other model is unloaded to make
	// room for this one (a pinned checksum): an error marks the model
	// unusable. It runs without the stack's lock and may take a while.
	Check func() error
	// Err, when set, marks the model unusable from the start (a corrupt
	// file in the catalog): listed with the reason, never loaded.
	Err error
	// Preload loads the model when the stack starts (Load); the server
	// answers 503 loading until it is.
	Preload bool
	// Facts shown before the model is loaded.
	Created       int64
	ContextLength int
	Arch          string
	Quantization  string
	SizeBytes     int64
	SHA256        string
	// Memory is the estimate the budget counts, split between host and GPU.
	HostBytes, GPUBytes uint64
	// Served settings: a chat template replacing the file's, and sampling
	// defaults.
	ChatTemplate string
	Sampling     server.SamplingDefaults
	// Version names what the model is served from (its file and
	// settings): an Update that finds another version of an id replaces
	// the model.
	Version string
}

// Options configure a stack.
type Options struct {
	Server    server.Options // Models is set by New
	Scheduler scheduler.Options
	// Models are the models served, the first one the default of Load.
	Models []ModelSpec
	// Open, ID and Aliases are the short form of one model: Models is then
	// that one model, preloaded, with id ID (default server.DefaultModelID).
	Open    func() (engine.Backend, error)
	ID      string
	Aliases []string
	// Tokenizer, when set, is what the server tokenizes with instead of the
	// backend itself (tests wrap the fake's vocabulary).
	Tokenizer func(engine.Backend) server.Tokenizer
	// The budget of loaded models: at most MaxLoaded of them, HostBytes of
	// host memory and GPUBytes of GPU memory by their estimates (0: no
	// limit). KeepAlive unloads a model idle that long (0: never).
	MaxLoaded           int
	HostBytes, GPUBytes uint64
	KeepAlive           time.Duration
	// LoadWaiters is how many requests may wait for one model's load
	// (0: Scheduler.MaxQueue, or 64); beyond: 503 server_overloaded.
	LoadWaiters int
	// Rescan, when set with RescanEvery > 0, is called that often on a
	// goroutine of the stack (stopped by Close) for the models to serve
	// now, which Update applies; nil from Rescan keeps what is served (the
	// folder could not be read).
	Rescan      func() []ModelSpec
	RescanEvery time.Duration
	// Logger (nil: Server.Logger, or slog.Default()).
	Logger *slog.Logger
}

// Stack is one serving stack. Server exists from New on. Backend, Sched
// and Model are the first model's, set by Load (for the binary's log and
// for tests of one model).
type Stack struct {
	Server  *server.Server
	Backend engine.Backend
	Sched   *scheduler.Scheduler
	Model   *server.Model

	o   Options
	log *slog.Logger

	mu       sync.Mutex
	slots    []*slot
	byName   map[string]*slot // ids and aliases
	room     chan struct{}    // closed (and replaced) when a model is released or unloaded
	retired  scheduler.Stats  // counters of schedulers that have stopped
	draining bool
	closed   bool
	ready    bool // every preloaded model has loaded once

	loads   sync.WaitGroup // load goroutines
	janitor chan struct{}  // closed by Close to stop the keep-alive loop
	jdone   chan struct{}
	rescan  chan struct{} // closed by Close to stop the rescan loop
	rdone   chan struct{}
}

// slot is one model and, while loaded, its backend and scheduler. Fields
// below spec are guarded by Stack.mu.
type slot struct {
	spec ModelSpec

	state    string // server.State*
	backend  engine.Backend
	sched    *scheduler.Scheduler
	model    *server.Model
	stop     context.CancelFunc
	refs     int
	lastUsed time.Time
	loading  chan struct{} // closed when the load in progress ends
	unloaded chan struct{} // closed when the unload in progress ends
	gen      int           // loads started
	loadErr  error         // the last load's error (cleared by a success)
	unusable error         // permanent: listed, never loaded
	waiters  int
	keepOpen bool // Unload (not an eviction) keeps the backend for the next Load
	// retired: an Update removed or replaced the model. It is no longer
	// listed or named; it unloads once its running requests are done.
	retired bool

	loads       uint64
	unloads     map[string]uint64
	loadSeconds float64
	ctxLen      int
}

// New builds the server of the stack; nothing is loaded yet.
func New(o Options) *Stack {
	if o.Open != nil && len(o.Models) == 0 {
		id := o.ID
		if id == "" {
			id = server.DefaultModelID
		}
		o.Models = []ModelSpec{{ID: id, Aliases: o.Aliases, Open: o.Open, Preload: true, Created: time.Now().Unix()}}
	}
	if o.LoadWaiters <= 0 {
		o.LoadWaiters = o.Scheduler.MaxQueue
		if o.LoadWaiters <= 0 {
			o.LoadWaiters = 64
		}
	}
	log := o.Logger
	if log == nil {
		log = o.Server.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Stack{o: o, log: log, byName: map[string]*slot{}, room: make(chan struct{})}
	s.ready = true
	for _, sp := range o.Models {
		sl := &slot{spec: sp, state: server.StateUnloaded, unloads: map[string]uint64{}, ctxLen: sp.ContextLength}
		if sp.Err != nil {
			sl.unusable, sl.state = sp.Err, server.StateUnusable
		}
		if sp.Open == nil && sl.unusable == nil {
			sl.unusable, sl.state = errors.New("no way to open it"), server.StateUnusable
		}
		for _, name := range append([]string{sp.ID}, sp.Aliases...) {
			if _, dup := s.byName[name]; !dup {
				s.byName[name] = sl
			}
		}
		if sp.Preload {
			s.ready = false
		}
		s.slots = append(s.slots, sl)
	}
	so := o.Server
	so.Models = s
	s.Server = server.New(so)
	if o.KeepAlive > 0 {
		s.janitor, s.jdone = make(chan struct{}), make(chan struct{})
		go s.keepAlive()
	}
	if o.Rescan != nil && o.RescanEvery > 0 {
		s.rescan, s.rdone = make(chan struct{}), make(chan struct{})
		go s.rescanLoop()
	}
	return s
}

// Load loads the preloaded models (the one model of Options.Open) and
// waits for them; the first model's backend, scheduler and model are then
// Backend, Sched and Model. After Unload it starts a new scheduler on the
// first model's kept backend.
func (s *Stack) Load() error {
	var errs []error
	for _, sl := range s.slots {
		if !sl.spec.Preload {
			continue
		}
		if s.loaded(sl) {
			errs = append(errs, fmt.Errorf("stack: %s already loaded", sl.spec.ID))
			continue
		}
		if err := s.load(context.Background(), sl); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	if len(s.slots) > 0 && s.slots[0].state == server.StateLoaded {
		first := s.slots[0]
		s.Backend, s.Sched, s.Model = first.backend, first.sched, first.model
	}
	s.mu.Unlock()
	// Ready once the preloads have been tried: the models that failed are
	// listed with their error, the others serve.
	s.setReady()
	return errors.Join(errs...)
}

func (s *Stack) setReady() {
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
}

func (s *Stack) loaded(sl *slot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sl.state == server.StateLoaded
}

// load loads sl (or waits for the load in progress) and returns with it
// loaded or an error; the caller holds no reference.
func (s *Stack) load(ctx context.Context, sl *slot) error {
	_, release, err := s.acquire(ctx, sl)
	if err != nil {
		return err
	}
	release()
	return nil
}

// Acquire implements server.Models.
func (s *Stack) Acquire(ctx context.Context, id string) (*server.Model, func(), error) {
	for {
		s.mu.Lock()
		sl, ok := s.byName[id]
		var unknown error
		if !ok {
			unknown = s.unknown(id)
		}
		s.mu.Unlock()
		if !ok {
			return nil, nil, unknown
		}
		m, release, err := s.acquire(ctx, sl)
		if errors.Is(err, errRetired) {
			continue // replaced or removed meanwhile: look the name up again
		}
		return m, release, err
	}
}

func (s *Stack) acquire(ctx context.Context, sl *slot) (*server.Model, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	waitedGen := -1 // the load this request waited for
	checked := sl.spec.Check == nil
	for {
		switch {
		case s.closed || s.draining:
			return nil, nil, scheduler.ErrDraining
		case sl.retired:
			return nil, nil, errRetired
		case sl.unusable != nil:
			return nil, nil, &server.UnusableModelError{ID: sl.spec.ID, Reason: sl.unusable.Error()}
		case sl.state == server.StateLoaded:
			sl.refs++
			sl.lastUsed = time.Now()
			return sl.model, s.releaser(sl), nil
		case sl.state == server.StateLoading:
			if sl.waiters >= s.o.LoadWaiters {
				return nil, nil, scheduler.ErrQueueFull
			}
			waitedGen = sl.gen
			if err := s.wait(ctx, sl, sl.loading); err != nil {
				return nil, nil, err
			}
		case sl.state == server.StateUnloading:
			if err := s.wait(ctx, sl, sl.unloaded); err != nil {
				return nil, nil, err
			}
		case waitedGen == sl.gen && sl.loadErr != nil:
			// The load this request waited for failed: say so rather
			// than start another at once.
			return nil, nil, &server.ModelLoadError{ID: sl.spec.ID, Err: sl.loadErr}
		case !checked:
			s.mu.Unlock()
			err := sl.spec.Check()
			s.mu.Lock()
			checked = true
			if err != nil && sl.unusable == nil {
				sl.unusable, sl.state = err, server.StateUnusable
				s.log.Error("model check failed", "model", sl.spec.ID, "err", err)
			}
		default:
			ok, evicted, unloading, err := s.makeRoom(sl)
			if err != nil {
				return nil, nil, err
			}
			if evicted {
				continue // the lock was let go while a model unloaded: look again
			}
			if unloading != nil {
				// Room is being made already (another request's eviction,
				// an idle or operator unload): wait for it, then look again,
				// rather than evict one more model for the same load.
				if err := s.wait(ctx, sl, unloading); err != nil {
					return nil, nil, err
				}
				continue
			}
			if !ok {
				// Every loaded model is busy: wait for a release.
				if sl.waiters >= s.o.LoadWaiters {
					return nil, nil, server.ErrNoRoom
				}
				if err := s.wait(ctx, sl, s.room); err != nil {
					return nil, nil, err
				}
				continue
			}
			s.startLoad(sl)
			waitedGen = sl.gen
		}
	}
}

// wait waits, with s.mu released, for ch or ctx.
func (s *Stack) wait(ctx context.Context, sl *slot, ch chan struct{}) error {
	sl.waiters++
	s.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	sl.waiters--
	return err
}

func (s *Stack) releaser(sl *slot) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			sl.refs--
			sl.lastUsed = time.Now()
			s.signalRoom()
			if sl.retired {
				s.reapRetired() // the last request of a removed model unloads it
			}
			s.mu.Unlock()
		})
	}
}

// signalRoom wakes the requests waiting for room. s.mu is held.
func (s *Stack) signalRoom() {
	close(s.room)
	s.room = make(chan struct{})
}

// makeRoom tells whether sl fits the budget now; when it does not and a
// model is unloading already, it returns that unload's channel to wait on
// (two requests for one model must not each evict a model); otherwise it
// unloads the least recently used idle model (evicted: s.mu was let go
// meanwhile, so the caller looks at everything again). false: it does not
// fit while other models are busy; an error: it never fits. s.mu is held.
func (s *Stack) makeRoom(sl *slot) (ok, evicted bool, unloading chan struct{}, err error) {
	o := s.o
	if (o.HostBytes > 0 && sl.spec.HostBytes > o.HostBytes) || (o.GPUBytes > 0 && sl.spec.GPUBytes > o.GPUBytes) {
		return false, false, nil, &server.ModelLoadError{ID: sl.spec.ID, Err: fmt.Errorf("it needs about %d MiB of host and %d MiB of GPU memory, more than the budget of %d MiB and %d MiB",
			sl.spec.HostBytes>>20, sl.spec.GPUBytes>>20, o.HostBytes>>20, o.GPUBytes>>20)}
	}
	n, host, gpu := 0, uint64(0), uint64(0)
	for _, other := range s.slots {
		if other.state == server.StateLoaded || other.state == server.StateLoading || other.state == server.StateUnloading {
			n++
			host += other.spec.HostBytes
			gpu += other.spec.GPUBytes
		}
	}
	fits := (o.MaxLoaded <= 0 || n+1 <= o.MaxLoaded) &&
		(o.HostBytes == 0 || host+sl.spec.HostBytes <= o.HostBytes) &&
		(o.GPUBytes == 0 || gpu+sl.spec.GPUBytes <= o.GPUBytes)
	if fits {
		return true, false, nil, nil
	}
	for _, other := range s.slots {
		if other.state == server.StateUnloading {
			return false, false, other.unloaded, nil
		}
	}
	var lru *slot
	for _, other := range s.slots {
		if other != sl && other.state == server.StateLoaded && other.refs == 0 &&
			(lru == nil || other.lastUsed.Before(lru.lastUsed)) {
			lru = other
		}
	}
	if lru == nil {
		return false, false, nil, nil
	}
	s.log.Info("unloading model to make room", "model", lru.spec.ID, "for", sl.spec.ID)
	s.unload(lru, "lru", false)
	return false, true, nil, nil
}

// startLoad marks sl loading and loads it in a goroutine that the stack
// owns (Close waits for it): a request that stops waiting does not stop
// the load. s.mu is held.
func (s *Stack) startLoad(sl *slot) {
	sl.state = server.StateLoading
	sl.loading = make(chan struct{})
	sl.gen++
	s.loads.Add(1)
	go func() {
		defer s.loads.Done()
		t0 := time.Now()
		s.log.Info("loading model", "model", sl.spec.ID)
		be, sched, m, stop, err := s.open(sl)
		s.mu.Lock()
		defer s.mu.Unlock()
		close(sl.loading)
		if err == nil && s.closed {
			stop()
			<-sched.Done()
			err = be.Close()
			if err == nil {
				err = errors.New("the stack is closed")
			}
		}
		if err != nil {
			sl.state, sl.backend = server.StateUnloaded, nil // open closed a kept backend it failed on
			sl.loadErr = err
			var me *engine.ModelError
			if errors.As(err, &me) {
				sl.unusable, sl.state = err, server.StateUnusable
			}
			s.log.Error("model load failed", "model", sl.spec.ID, "err", err, "unusable", sl.unusable != nil)
			s.signalRoom()
			if sl.retired {
				s.reapRetired()
			}
			return
		}
		sl.state, sl.backend, sl.sched, sl.model, sl.stop = server.StateLoaded, be, sched, m, stop
		sl.loadErr, sl.lastUsed = nil, time.Now()
		sl.loads++
		sl.loadSeconds = time.Since(t0).Seconds()
		sl.ctxLen = be.Info().NCtxSeq
		s.log.Info("model loaded", "model", sl.spec.ID, "seconds", sl.loadSeconds)
		if sl.retired {
			s.reapRetired()
		}
	}()
}

// open opens the backend (or reuses the kept one), starts its scheduler
// loop and prepares the served model.
func (s *Stack) open(sl *slot) (engine.Backend, *scheduler.Scheduler, *server.Model, context.CancelFunc, error) {
	s.mu.Lock()
	be := sl.backend
	s.mu.Unlock()
	if be == nil {
		var err error
		if be, err = sl.spec.Open(); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	so := s.o.Scheduler
	if onStep := so.OnStep; onStep != nil {
		so.OnStep = func(d time.Duration, tokens int) {
			s.Server.OnStep(d, tokens)
			onStep(d, tokens)
		}
	} else {
		so.OnStep = s.Server.OnStep
	}
	if so.Logger == nil {
		so.Logger = s.log
	}
	sched := scheduler.New(be, so)
	ctx, stop := context.WithCancel(context.Background())
	go sched.Run(ctx)
	var tok server.Tokenizer = be
	if s.o.Tokenizer != nil {
		tok = s.o.Tokenizer(be)
	}
	m, err := server.NewModel(tok, sched, server.ModelOptions{Version: s.o.Server.Version, ChatTemplate: sl.spec.ChatTemplate, Sampling: sl.spec.Sampling})
	if err != nil {
		stop()
		<-sched.Done()
		if cerr := be.Close(); cerr != nil {
			s.log.Warn("close after a failed load", "model", sl.spec.ID, "err", cerr)
		}
		return nil, nil, nil, nil, &engine.ModelError{Path: sl.spec.ID, Reason: "prepare the model", Err: err}
	}
	return be, sched, m, stop, nil
}

// unload stops sl's scheduler and, unless keep, closes its backend. sl is
// loaded and unused; s.mu is held, and let go while the loop stops (it
// finishes its step and saves its sessions) and the backend closes: the
// model is "unloading" then, still counted in the budget, and the probes
// and /metrics never wait on a decode.
func (s *Stack) unload(sl *slot, reason string, keep bool) {
	sl.state = server.StateUnloading
	sl.unloaded = make(chan struct{})
	stop, sched, be := sl.stop, sl.sched, sl.backend
	s.mu.Unlock()
	stop()
	<-sched.Done()
	var cerr error
	if !keep {
		cerr = be.Close()
	}
	s.mu.Lock()
	s.addRetired(sched.Stats())
	if !keep {
		if cerr != nil {
			s.log.Warn("close model", "model", sl.spec.ID, "err", cerr)
		}
		sl.backend = nil
	}
	sl.state, sl.sched, sl.model, sl.stop = server.StateUnloaded, nil, nil, nil
	close(sl.unloaded)
	if reason != "" {
		sl.unloads[reason]++
		s.log.Info("model unloaded", "model", sl.spec.ID, "reason", reason)
	}
	s.signalRoom()
}

// keepAlive unloads models idle for KeepAlive, until Close.
func (s *Stack) keepAlive() {
	defer close(s.jdone)
	tick := time.NewTicker(max(s.o.KeepAlive/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.janitor:
			return
		case now := <-tick.C:
			s.mu.Lock()
			for _, sl := range s.slots {
				if sl.state == server.StateLoaded && sl.refs == 0 && !s.draining && now.Sub(sl.lastUsed) >= s.o.KeepAlive {
					s.unload(sl, "idle", false)
				}
			}
			s.mu.Unlock()
		}
	}
}

// LoadModel implements server.Models: the operator's load, which waits
// for the model to load.
func (s *Stack) LoadModel(ctx context.Context, id string) error {
	s.mu.Lock()
	sl, ok := s.byName[id]
	var unknown error
	if !ok {
		unknown = s.unknown(id)
	}
	s.mu.Unlock()
	if !ok {
		return unknown
	}
	return s.load(ctx, sl)
}

// UnloadModel implements server.Models: it unloads a model once its requests have finished (waiting at
// most until ctx ends); new requests load it again.
func (s *Stack) UnloadModel(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.byName[id]
	if !ok {
		return s.unknown(id)
	}
	for {
		switch {
		case sl.state == server.StateLoading:
			if err := s.wait(ctx, sl, sl.loading); err != nil {
				return err
			}
		case sl.state == server.StateUnloading:
			if err := s.wait(ctx, sl, sl.unloaded); err != nil {
				return err
			}
		case sl.state != server.StateLoaded:
			return nil
		case sl.refs > 0:
			if err := s.wait(ctx, sl, s.room); err != nil {
				return err
			}
		default:
			s.unload(sl, "operator", false)
			return nil
		}
	}
}

// Ready implements server.Models: every preloaded model has loaded.
func (s *Stack) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}
