// Package sessions keeps the KV state of chat sessions on disk, so that a
// session's cached prefix outlives the slot that held it and the replica
// that computed it: a replica saves it when the slot is given to another
// session and when it drains, and the same replica after a restart, or
// another one sharing the directory, restores it when the session's next
// turn arrives instead of prefilling it again.
//
// One file per (model identity, session): a header that names the model
// (architecture, file size and the SHA-256 of its bytes), the backend's
// settings (engine.SeqStater.StateID) and the session, then the tokens and
// the state, each with a CRC-32C. A file that is truncated, corrupt, of
// another format, model, settings or session is a miss and is removed.
// Writes go to a temporary file renamed into place, so readers (other
// processes too) see a whole file or none. The directory's total size is
// bounded: after each write the least recently used files go.
//
// The model's checksum is the SHA-256 of the whole file, computed once in
// the background (a multi-GB file takes seconds to minutes) and remembered
// in the directory keyed by the file's path, size and modification time, so
// that restarts and replicas on the same host do not hash again; until it
// is known, nothing is saved or restored for that model.
//
// The package is pure Go and safe for concurrent use by several schedulers
// (one per model) of one process and by several processes on one directory.
package sessions

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asi1d/asi1d/engine"
)

// Model identifies the weights a state was computed with.
type Model struct {
	Arch   string `json:"arch"`
	Size   int64  `json:"size"`   // bytes of the model file
	SHA256 string `json:"sha256"` // of the model file's bytes, hex
}

// Key is everything a saved state depends on.
type Key struct {
	Model    Model  `json:"model"`
	Settings string `json:"settings"` // engine.SeqStater.StateID
}

// Entry is a loaded session state.
type Entry struct {
	Tokens []engine.Token // the tokens whose KV the state holds, in order
	State  []byte
	// Common is how many of Tokens the prompt given to Load starts with.
	Common int
}

// Options configure Open.
type Options struct {
	Dir string
	// MaxBytes bounds the directory's session files together; 0:
	// DefaultMaxBytes.
	MaxBytes int64
	// MinTokens: a session whose cached prefix is shorter is not saved,
	// and a saved one is restored only for a prompt that starts with at
	// least this many of its tokens. 0: DefaultMinTokens.
	MinTokens int
	Logger    *slog.Logger
}

// Defaults for Options.
const (
	DefaultMaxBytes = 10 << 30
	// DefaultMinTokens: on a CPU a restore wins from a few tokens on
	// (BenchmarkSessionRestore, load from the page cache + restore + the
	// first token, against prefill, medians on the shared 2-core machine:
	// small synth Q8_0 64 tokens 14 ms vs 157 ms, 256 tokens 19 ms vs
	// 511 ms, 2,000 tokens 59 ms vs 6.3 s; stories260K 256 tokens 0.5 ms
	// vs 36 ms), so the bound is what a state costs on disk and in writes
	// (36 KiB a token on small, 128 KiB on an 8B with grouped-query
	// attention): a few turns of small talk are not worth a file. On a GPU,
	// which prefills thousands of tokens a second, the break-even is itself
	// in the hundreds (an estimate: not measured here).
	DefaultMinTokens = 256
	// maxPending bounds the state bytes queued for the writer; saves
	// beyond it are dropped (a cache, not a store of record).
	maxPending = 1 << 30
)

// Store is a directory of session states.
type Store struct {
	dir       string
	maxBytes  int64
	minTokens int
	log       *slog.Logger

	ctx    context.Context // ends at Close: stops hashing
	cancel context.CancelFunc
	wg     sync.WaitGroup // the writer and the hashers

	mu       sync.Mutex
	closed   bool
	order    []string          // names of pending files, in the order saved, for the writer
	queued   map[string]bool   // the names in order
	pending  map[string]*write // not yet on disk, by file name
	pendingN int64             // their bytes
	work     *sync.Cond        // signalled when order grows or the store closes
	idle     *sync.Cond        // signalled when pending empties
	models   map[string]*fingerprint
}

type write struct {
	key     Key
	session string
	tokens  []engine.Token
	state   []byte
}

// Open makes dir if needed and starts the store's writer. Close stops it.
func Open(o Options) (*Store, error) {
	if o.Dir == "" {
		return nil, errors.New("sessions: no directory")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MinTokens <= 0 {
		o.MinTokens = DefaultMinTokens
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, modelsDir), 0o755); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		dir: o.Dir, maxBytes: o.MaxBytes, minTokens: o.MinTokens, log: o.Logger,
		ctx: ctx, cancel: cancel,
		queued: map[string]bool{}, pending: map[string]*write{}, models: map[string]*fingerprint{},
	}
	s.work, s.idle = sync.NewCond(&s.mu), sync.NewCond(&s.mu)
	s.removeStaleTemps()
	s.wg.Go(s.writer)
	return s, nil
}

// MinTokens is the shortest prefix worth saving and restoring.
func (s *Store) MinTokens() int { return s.minTokens }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close writes what is pending, stops the writer and any hashing, and
// waits for them. A nil store is closed already.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.work.Broadcast()
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Flush waits until every save queued so far is on disk (or failed).
func (s *Store) Flush() {
	s.mu.Lock()
	for len(s.pending) > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

// File layout: magic, version, header length (u32 LE), the header (JSON),
// its CRC-32C (u32 LE), the tokens (i32 LE each), the state.
const (
	magic     = "ASI1SESS"
	version   = 1
	suffix    = ".sess"
	modelsDir = "models"
	tmpPrefix = ".tmp-"
	maxHeader = 1 << 20
)

type header struct {
	Key       Key       `json:"key"`
	Session   string    `json:"session"`
	Tokens    int       `json:"tokens"`
	TokensCRC uint32    `json:"tokens_crc32c"`
	StateLen  int64     `json:"state_bytes"`
	StateCRC  uint32    `json:"state_crc32c"`
	Saved     time.Time `json:"saved"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// name is the file of a session under a key. The key and session are in
// the header, so a collision of names is a miss, not a mix-up.
func name(k Key, session string) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(k)
	h.Write([]byte{0})
	h.Write([]byte(session))
	return hex.EncodeToString(h.Sum(nil)[:20]) + suffix
}

// Save queues a session's tokens and state to be written; it returns at
// once. A prefix shorter than MinTokens is not saved. The store keeps
// tokens and state (the caller must not change them).
func (s *Store) Save(k Key, session string, tokens []engine.Token, state []byte) {
	if session == "" || len(tokens) < s.minTokens || len(state) == 0 {
		return
	}
	size := fileSize(k, session, len(tokens), len(state))
	if size > s.maxBytes {
		s.log.Warn("session state larger than --session-max-bytes: not saved", "session", session, "bytes", size)
		return
	}
	n := name(k, session)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	old := s.pending[n]
	if old == nil && s.pendingN+int64(len(state)) > maxPending {
		s.log.Warn("session saves pending beyond their bound: dropped one", "session", session)
		return
	}
	if old != nil {
		s.pendingN -= int64(len(old.state))
	}
	s.pending[n] = &write{key: k, session: session, tokens: tokens, state: state}
	s.pendingN += int64(len(state))
	if !s.queued[n] {
		s.order = append(s.order, n)
		s.queued[n] = true
		s.work.Signal()
	}
}

// writer writes pending saves in the order saved; after Close, it writes
// what is left and returns.
func (s *Store) writer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.order) == 0 && !s.closed {
			s.work.Wait()
		}
		if len(s.order) == 0 {
			return
		}
		n := s.order[0]
		s.order = s.order[1:]
		delete(s.queued, n)
		w := s.pending[n]
		if w == nil {
			continue // removed meanwhile
		}
		s.mu.Unlock()
		if err := s.writeFile(n, w); err != nil {
			s.log.Warn("session state not saved", "session", w.session, "err", err)
		} else {
			s.log.Debug("session state saved", "session", w.session, "tokens", len(w.tokens), "bytes", len(w.state))
		}
		s.enforceBound()
		s.mu.Lock()
		if s.pending[n] == w { // else saved again meanwhile, and queued again
			delete(s.pending, n)
			s.pendingN -= int64(len(w.state))
		}
		if len(s.pending) == 0 {
			s.idle.Broadcast()
		}
	}
}

func fileSize(k Key, session string, ntok, nstate int) int64 {
	hb, _ := json.Marshal(header{Key: k, Session: session})
	return int64(len(magic)+8+len(hb)+64+4) + 4*int64(ntok) + int64(nstate)
}

func (s *Store) writeFile(n string, w *write) error {
	tb := make([]byte, 4*len(w.tokens))
	for i, t := range w.tokens {
		binary.LittleEndian.PutUint32(tb[4*i:], uint32(t))
	}
	h := header{
		Key: w.key, Session: w.session, Tokens: len(w.tokens), TokensCRC: crc32.Checksum(tb, castagnoli),
		StateLen: int64(len(w.state)), StateCRC: crc32.Checksum(w.state, castagnoli), Saved: time.Now().UTC(),
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	var pre [16]byte
	copy(pre[:], magic)
	binary.LittleEndian.PutUint32(pre[8:], version)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(hb)))
	var crc [4]byte
	binary.LittleEndian.PutUint32(crc[:], crc32.Checksum(hb, castagnoli))
	for _, b := range [][]byte{pre[:], hb, crc[:], tb, w.state} {
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The kernel stamps files with a coarse clock (ticks of milliseconds):
	// states written in one tick would tie in the eviction order, so the
	// write's own time, to the nanosecond, is its last use.
	now := time.Now()
	_ = os.Chtimes(f.Name(), now, now)
	if err := os.Rename(f.Name(), filepath.Join(s.dir, n)); err != nil {
		return err
	}
	ok = true
	return nil
}

// Has reports whether a state is saved (or queued to be) for a session
// under k: a stat, so that a caller can tell whether a Load is worth
// starting. The state may still be a miss for a given prompt.
func (s *Store) Has(k Key, session string) bool {
	if session == "" {
		return false
	}
	n := name(k, session)
	s.mu.Lock()
	w := s.pending[n]
	s.mu.Unlock()
	if w != nil {
		return true
	}
	_, err := os.Stat(filepath.Join(s.dir, n))
	return err == nil
}

// Load returns the state saved for a session under k when prompt starts
// with at least MinTokens of its tokens (Entry.Common of them). A file that
// is not there, or whose prefix is too short for this prompt, is a miss; a
// file that is corrupt, truncated or not of k and session is a miss and is
// removed. Reading the state is skipped when the tokens make it a miss.
func (s *Store) Load(k Key, session string, prompt []engine.Token) (Entry, bool) {
	if session == "" || len(prompt) < s.minTokens {
		return Entry{}, false
	}
	n := name(k, session)
	s.mu.Lock()
	w := s.pending[n]
	s.mu.Unlock()
	if w != nil {
		c := engine.CommonPrefix(w.tokens, prompt)
		if c < s.minTokens {
			return Entry{}, false
		}
		return Entry{Tokens: w.tokens, State: w.state, Common: c}, true
	}
	path := filepath.Join(s.dir, n)
	e, err := s.read(path, k, session, prompt)
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, errShort):
		return Entry{}, false
	case err != nil:
		s.log.Warn("session state unusable: removed", "session", session, "file", path, "err", err)
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			s.log.Warn("session state not removed", "file", path, "err", rerr)
		}
		return Entry{}, false
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now) // recently used: evicted last
	return e, true
}

// errShort: the saved prefix shares too few tokens with the prompt.
var errShort = errors.New("sessions: prefix too short for the prompt")

func (s *Store) read(path string, k Key, session string, prompt []engine.Token) (Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return Entry{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Entry{}, err
	}
	r := bufio.NewReaderSize(f, 1<<16)
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Entry{}, fmt.Errorf("truncated: %w", err)
	}
	if string(pre[:8]) != magic {
		return Entry{}, errors.New("not a session state file")
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != version {
		return Entry{}, fmt.Errorf("format version %d, want %d", v, version)
	}
	hl := binary.LittleEndian.Uint32(pre[12:])
	if hl > maxHeader || int64(hl)+20 > st.Size() {
		return Entry{}, fmt.Errorf("header of %d bytes in a file of %d", hl, st.Size())
	}
	hb := make([]byte, hl+4)
	if _, err := io.ReadFull(r, hb); err != nil {
		return Entry{}, fmt.Errorf("truncated header: %w", err)
	}
	if crc32.Checksum(hb[:hl], castagnoli) != binary.LittleEndian.Uint32(hb[hl:]) {
		return Entry{}, errors.New("header checksum mismatch")
	}
	var h header
	dec := json.NewDecoder(bytes.NewReader(hb[:hl]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Entry{}, fmt.Errorf("header: %w", err)
	}
	if h.Key != k {
		return Entry{}, fmt.Errorf("saved for another model or settings (%+v)", h.Key)
	}
	if h.Session != session {
		return Entry{}, errors.New("saved for another session")
	}
	if h.Tokens < 0 || h.StateLen <= 0 || 16+int64(hl)+4+4*int64(h.Tokens)+h.StateLen != st.Size() {
		return Entry{}, fmt.Errorf("file of %d bytes, header says %d tokens and %d state bytes", st.Size(), h.Tokens, h.StateLen)
	}
	tb := make([]byte, 4*h.Tokens)
	if _, err := io.ReadFull(r, tb); err != nil {
		return Entry{}, fmt.Errorf("truncated tokens: %w", err)
	}
	if crc32.Checksum(tb, castagnoli) != h.TokensCRC {
		return Entry{}, errors.New("tokens checksum mismatch")
	}
	toks := make([]engine.Token, h.Tokens)
	for i := range toks {
		toks[i] = engine.Token(binary.LittleEndian.Uint32(tb[4*i:]))
	}
	c := engine.CommonPrefix(toks, prompt)
	if c < s.minTokens {
		return Entry{}, errShort
	}
	state := make([]byte, h.StateLen)
	if _, err := io.ReadFull(r, state); err != nil {
		return Entry{}, fmt.Errorf("truncated state: %w", err)
	}
	if crc32.Checksum(state, castagnoli) != h.StateCRC {
		return Entry{}, errors.New("state checksum mismatch")
	}
	return Entry{Tokens: toks, State: state, Common: c}, nil
}

// Remove forgets a session's state under k (a state the backend refused).
func (s *Store) Remove(k Key, session string) {
	n := name(k, session)
	s.mu.Lock()
	if w := s.pending[n]; w != nil {
		delete(s.pending, n) // the writer finds nothing to write
		s.pendingN -= int64(len(w.state))
		if len(s.pending) == 0 {
			s.idle.Broadcast()
		}
	}
	s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("session state not removed", "session", session, "err", err)
	}
}

// enforceBound removes the least recently used session files until the
// directory's files fit MaxBytes. Other processes may write and remove
// files at the same time: a file already gone is skipped.
func (s *Store) enforceBound() {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		s.log.Warn("session directory unreadable", "dir", s.dir, "err", err)
		return
	}
	type file struct {
		name string
		size int64
		used time.Time
	}
	var files []file
	var total int64
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), suffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{e.Name(), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	if total <= s.maxBytes {
		return
	}
	sort.Slice(files, func(i, j int) bool { return files[i].used.Before(files[j].used) })
	for _, f := range files {
		if total <= s.maxBytes {
			break
		}
		if err := os.Remove(filepath.Join(s.dir, f.name)); err == nil || errors.Is(err, os.ErrNotExist) {
			total -= f.size
			s.log.Debug("session state evicted", "file", f.name, "bytes", f.size)
		}
	}
}

// removeStaleTemps removes temporary files that a crashed writer left, when
// they are old enough not to be another process's write in progress.
func (s *Store) removeStaleTemps() {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix+"*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
