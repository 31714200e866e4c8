package sessions_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/sessions"
)

var keyA = sessions.Key{
	Model:    sessions.Model{Arch: "llama", Size: 1234, SHA256: strings.Repeat("a", 64)},
	Settings: "n_ctx_seq=1024",
}

func open(t *testing.T, dir string, o sessions.Options) *sessions.Store {
	t.Helper()
	o.Dir = dir
	if o.MinTokens == 0 {
		o.MinTokens = 4
	}
	s, err := sessions.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// toks returns n tokens that start with a session's seed; state is bytes
// derived from them, so a mismatch of the two shows.
func toks(seed, n int) []engine.Token {
	out := make([]engine.Token, n)
	for i := range out {
		out[i] = engine.Token(seed*1000 + i)
	}
	return out
}

func state(tk []engine.Token, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(int(tk[len(tk)-1]) + i)
	}
	return b
}

// files lists the session files of dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sess"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, sessions.Options{})
	tk := toks(1, 10)
	st := state(tk, 5000)
	s.Save(keyA, "s1", tk, st)
	s.Flush()
	if n := len(files(t, dir)); n != 1 {
		t.Fatalf("%d files, want 1", n)
	}
	// A fresh store (a restarted replica) finds it.
	s2 := open(t, dir, sessions.Options{})
	prompt := append(slices.Clone(tk), 7, 8, 9)
	e, ok := s2.Load(keyA, "s1", prompt)
	if !ok {
		t.Fatal("miss")
	}
	if !slices.Equal(e.Tokens, tk) || !bytes.Equal(e.State, st) || e.Common != len(tk) {
		t.Fatalf("loaded %d tokens, %d state bytes, common %d", len(e.Tokens), len(e.State), e.Common)
	}
	// A prompt that diverges inside the prefix: the common part.
	div := slices.Clone(tk)
	div[6] = 99
	if e, ok := s2.Load(keyA, "s1", div); !ok || e.Common != 6 {
		t.Fatalf("diverging prompt: ok %v common %d, want 6", ok, e.Common)
	}
	// Too little in common, another session, another key: misses that
	// leave the file alone.
	div[2] = 99
	if _, ok := s2.Load(keyA, "s1", div); ok {
		t.Error("a prompt sharing 2 tokens restored")
	}
	if _, ok := s2.Load(keyA, "s2", prompt); ok {
		t.Error("another session's state loaded")
	}
	keyB := keyA
	keyB.Settings = "n_ctx_seq=2048"
	if _, ok := s2.Load(keyB, "s1", prompt); ok {
		t.Error("a state of other settings loaded")
	}
	if n := len(files(t, dir)); n != 1 {
		t.Fatalf("%d files after misses, want 1", n)
	}
	// Short prefixes are not saved.
	s.Save(keyA, "short", toks(2, 3), state(toks(2, 3), 10))
	s.Flush()
	if n := len(files(t, dir)); n != 1 {
		t.Fatalf("a 3-token prefix was saved (min 4)")
	}
	// Remove forgets.
	s.Remove(keyA, "s1")
	if _, ok := s2.Load(keyA, "s1", prompt); ok {
		t.Error("removed state loaded")
	}
}

// Every way a file can be bad is a miss that removes the file.
func TestBadFilesAreMisses(t *testing.T) {
	tk := toks(3, 20)
	prompt := append(slices.Clone(tk), 1)
	cases := map[string]func(b []byte) []byte{
		"truncated state":   func(b []byte) []byte { return b[:len(b)-1] },
		"truncated header":  func(b []byte) []byte { return b[:30] },
		"empty":             func(b []byte) []byte { return nil },
		"state bit flipped": func(b []byte) []byte { b[len(b)-10] ^= 1; return b },
		"token bit flipped": func(b []byte) []byte {
			i := bytes.Index(b, []byte{0xb8, 0x0b, 0, 0}) // token 3000, LE
			b[i] ^= 1
			return b
		},
		"header bit flipped": func(b []byte) []byte { b[20] ^= 1; return b },
		"other format":       func(b []byte) []byte { return []byte("GGUF not a session file at all") },
		"longer":             func(b []byte) []byte { return append(b, 0) },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, sessions.Options{})
			s.Save(keyA, "s", tk, state(tk, 3000))
			s.Flush()
			f := files(t, dir)[0]
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, spoil(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, ok := s.Load(keyA, "s", prompt); ok {
				t.Fatal("a spoiled file loaded")
			}
			if n := len(files(t, dir)); n != 0 {
				t.Fatal("the spoiled file is still there")
			}
		})
	}
	// A file of another model under this key's name (a foreign file that
	// a name collision or a copy put there).
	t.Run("foreign", func(t *testing.T) {
		dirA, dirB := t.TempDir(), t.TempDir()
		keyB := keyA
		keyB.Model.SHA256 = strings.Repeat("b", 64)
		a, b := open(t, dirA, sessions.Options{}), open(t, dirB, sessions.Options{})
		a.Save(keyA, "s", tk, state(tk, 100))
		b.Save(keyB, "s", tk, state(tk, 100))
		a.Flush()
		b.Flush()
		fa, fb := files(t, dirA)[0], files(t, dirB)[0]
		if err := os.Rename(fb, fa); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Load(keyA, "s", prompt); ok {
			t.Fatal("another model's state loaded")
		}
		if n := len(files(t, dirA)); n != 0 {
			t.Fatal("the foreign file is still there")
		}
	})
}

func TestDiskBound(t *testing.T) {
	dir := t.TempDir()
	const per = 10_000
	s := open(t, dir, sessions.Options{MaxBytes: 3*per + 3*2000})
	for i := range 6 {
		tk := toks(i, 100)
		s.Save(keyA, fmt.Sprint("s", i), tk, state(tk, per))
		s.Flush()
	}
	var total int64
	for _, f := range files(t, dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if total > 3*per+3*2000 || len(files(t, dir)) != 3 {
		t.Fatalf("%d files of %d bytes, want 3 within the bound", len(files(t, dir)), total)
	}
	// The newest survive, the oldest went.
	if _, ok := s.Load(keyA, "s5", toks(5, 100)); !ok {
		t.Error("the newest state was evicted")
	}
	if _, ok := s.Load(keyA, "s0", toks(0, 100)); ok {
		t.Error("the oldest state survived")
	}
	// One state larger than the whole bound is not saved.
	big := toks(9, 100)
	s.Save(keyA, "big", big, state(big, 100_000))
	s.Flush()
	if _, ok := s.Load(keyA, "big", big); ok {
		t.Error("a state larger than the bound was saved")
	}
}

// Two stores on one directory (two replicas), each saving and loading
// from several goroutines: every load is whole and consistent.
func TestConcurrentStores(t *testing.T) {
	dir := t.TempDir()
	stores := []*sessions.Store{open(t, dir, sessions.Options{MaxBytes: 200_000}), open(t, dir, sessions.Options{MaxBytes: 200_000})}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			s := stores[g%2]
			for i := range 40 {
				sess := fmt.Sprint("s", i%5)
				tk := toks(i%5, 50+i%7)
				if i%2 == 0 {
					s.Save(keyA, sess, tk, state(tk, 8000+i))
					continue
				}
				e, ok := s.Load(keyA, sess, toks(i%5, 60))
				if !ok {
					continue
				}
				if !bytes.Equal(e.State[:100], state(e.Tokens, 100)) {
					errs <- fmt.Errorf("session %s: state of other tokens", sess)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range stores {
		s.Flush()
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestIdentify(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(t.TempDir(), "m.gguf")
	content := bytes.Repeat([]byte("weights"), 1<<20)
	if err := os.WriteFile(model, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	s := open(t, dir, sessions.Options{})
	m, err := s.WaitIdentify(context.Background(), model, "llama")
	if err != nil {
		t.Fatal(err)
	}
	want := sessions.Model{Arch: "llama", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	if m != want {
		t.Fatalf("identity %+v, want %+v", m, want)
	}
	if got, ok := s.Identify(model, "llama"); !ok || got != want {
		t.Fatalf("Identify after the hash: %+v %v", got, ok)
	}
	// Another store on the directory knows it at once, from the memo.
	s2 := open(t, dir, sessions.Options{})
	if got, ok := s2.Identify(model, "llama"); !ok || got != want {
		t.Fatalf("a second store did not find the remembered checksum: %+v %v", got, ok)
	}
	// A rewritten file is hashed again.
	content[0] = 'W'
	if err := os.WriteFile(model, content, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second) // a coarse clock could give the same time
	if err := os.Chtimes(model, later, later); err != nil {
		t.Fatal(err)
	}
	s3 := open(t, dir, sessions.Options{})
	m3, err := s3.WaitIdentify(context.Background(), model, "llama")
	if err != nil {
		t.Fatal(err)
	}
	if m3.SHA256 == want.SHA256 {
		t.Fatal("a rewritten model kept its old checksum")
	}
	// The store that knew the old file also sees the new one (a model
	// replaced between two loads of a catalog).
	if m1, err := s.WaitIdentify(context.Background(), model, "llama"); err != nil || m1 != m3 {
		t.Fatalf("the first store identifies the rewritten model as %+v (%v), want %+v", m1, err, m3)
	}
	// A missing file is never known.
	if _, err := s3.WaitIdentify(context.Background(), filepath.Join(dir, "none.gguf"), "llama"); err == nil {
		t.Fatal("a missing model was identified")
	}
}

// Has tells a saved session (queued or on disk, under its key) from one
// that is not, without reading the file.
func TestHas(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, sessions.Options{})
	tk := toks(1, 10)
	if s.Has(keyA, "s") || s.Has(keyA, "") {
		t.Fatal("Has before any save")
	}
	s.Save(keyA, "s", tk, state(tk, 64))
	if !s.Has(keyA, "s") {
		t.Fatal("a queued save is not there")
	}
	s.Flush()
	keyB := keyA
	keyB.Settings = "n_ctx_seq=2048"
	if !s.Has(keyA, "s") || s.Has(keyB, "s") || s.Has(keyA, "t") {
		t.Fatal("Has after the file was written: wrong key or session")
	}
	// Another store on the same directory (a restarted replica) sees it.
	if !open(t, dir, sessions.Options{}).Has(keyA, "s") {
		t.Fatal("another store does not see the file")
	}
	s.Remove(keyA, "s")
	if s.Has(keyA, "s") {
		t.Fatal("Has after Remove")
	}
}
