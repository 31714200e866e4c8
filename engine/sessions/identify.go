package sessions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A model's identity for session states: the sha256 of its file, computed
// once per path, size and modification time.

type fingerprint struct {
	done  bool
	m     Model
	err   error
	ready chan struct{} // closed when done
}

// Identify returns the identity of the model file at path, whose
// general.architecture is arch. The first call for a file (a path, size and
// modification time: a file replaced at the same path is another one)
// starts hashing it in the background, or reads the checksum remembered
// for it, and returns false until it is known. A file that cannot be read
// stays unknown (logged once).
func (s *Store) Identify(path, arch string) (Model, bool) {
	fp := s.identify(path, arch)
	s.mu.Lock()
	defer s.mu.Unlock()
	return fp.m, fp.done && fp.err == nil
}

// WaitIdentify is Identify that waits until the model's identity is known
// or ctx ends.
func (s *Store) WaitIdentify(ctx context.Context, path, arch string) (Model, error) {
	fp := s.identify(path, arch)
	select {
	case <-fp.ready:
	case <-ctx.Done():
		return Model{}, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fp.m, fp.err
}

func (s *Store) identify(path, arch string) *fingerprint {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	st, statErr := os.Stat(abs)
	key := "unreadable\x00" + abs
	if statErr == nil {
		key = s.memoPath(abs, st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fp := s.models[key]; fp != nil {
		return fp
	}
	fp := &fingerprint{ready: make(chan struct{})}
	s.models[key] = fp
	switch {
	case s.closed:
		fp.done, fp.err = true, errors.New("sessions: store closed")
	case statErr != nil:
		fp.done, fp.err = true, statErr
		s.log.Warn("session states off for this model: cannot stat it", "model", abs, "err", statErr)
	}
	if fp.done {
		close(fp.ready)
		return fp
	}
	if b, err := os.ReadFile(key); err == nil {
		if sum := strings.TrimSpace(string(b)); len(sum) == 64 {
			fp.done, fp.m = true, Model{Arch: arch, Size: st.Size(), SHA256: sum}
			close(fp.ready)
			return fp
		}
	}
	s.wg.Go(func() {
		t0 := time.Now()
		sum, err := hashFile(s.ctx, abs)
		s.mu.Lock()
		defer s.mu.Unlock()
		defer close(fp.ready)
		fp.done, fp.err = true, err
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("session states off for this model: cannot hash it", "model", abs, "err", err)
			}
			return
		}
		fp.m = Model{Arch: arch, Size: st.Size(), SHA256: sum}
		s.log.Info("model checksum for session states", "model", abs, "sha256", sum, "seconds", time.Since(t0).Seconds())
		if err := writeAtomic(key, []byte(sum+"\n")); err != nil {
			s.log.Warn("model checksum not remembered", "file", key, "err", err)
		}
	})
	return fp
}

// memoPath is where the checksum of a model file is remembered: keyed by
// its path, size and modification time (a file rewritten in place gets a
// new one).
func (s *Store) memoPath(abs string, st os.FileInfo) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano()))
	return filepath.Join(s.dir, modelsDir, hex.EncodeToString(h[:16])+".sha256")
}

func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}
