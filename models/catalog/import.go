package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNotFound is returned (wrapped) for a model id or alias the catalog
// does not have.
var ErrNotFound = errors.New("model not found")

// ImportOptions are Import's options.
type ImportOptions struct {
	// Name is the model id (default: the file's base name without .gguf).
	Name string
	// SHA256, when set, must be the file's checksum.
	SHA256 string
	// Link hard-links the file instead of copying it (a copy is made when
	// the catalog is on another filesystem or linking is not allowed).
	Link bool
	// Progress, when set, receives a progress bar or lines (NewProgress).
	Progress io.Writer
}

// Import brings the GGUF file src into the catalog in dir as
// <name>.gguf: it copies (or links) it through a temporary file, checks
// its header (ReadFacts) and its sha256 against o.SHA256, renames it into
// place and records the sha256 in the manifest. A mismatch or a bad file
// leaves nothing behind. An id that exists already is refused unless its
// file is identical (same sha256), which makes importing twice a no-op.
func Import(dir, src string, o ImportOptions) (*Entry, error) {
	name := o.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(src), ".gguf")
	}
	if err := ValidID(name); err != nil {
		return nil, err
	}
	want := ""
	if o.SHA256 != "" {
		var err error
		if want, err = normalizeSHA256(o.SHA256); err != nil {
			return nil, err
		}
	}
	sfi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if !sfi.Mode().IsRegular() {
		return nil, fmt.Errorf("import: %s is not a regular file", src)
	}
	if _, err := ReadFacts(src); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	existing, err := existingModel(dir, name)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if existing != nil {
		sum, err := hashFile(src)
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if want != "" && sum != want {
			return nil, fmt.Errorf("import: %w", &ChecksumError{Path: src, Want: want, Got: sum})
		}
		return sameOrRefuse(dir, existing, sum)
	}

	tmp, sum, err := stage(dir, name, src, o)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if want != "" && sum != want {
		os.Remove(tmp)
		return nil, fmt.Errorf("import: %w", &ChecksumError{Path: src, Want: want, Got: sum})
	}
	e, err := install(dir, name, tmp, sum, nil)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return e, nil
}

// stage puts src's bytes into a temporary file in dir (a hard link when
// o.Link and the filesystem allow, else a copy) and returns its path and
// sha256.
func stage(dir, name, src string, o ImportOptions) (tmp, sum string, err error) {
	f, err := os.CreateTemp(dir, "."+name+".gguf.*.tmp")
	if err != nil {
		return "", "", err
	}
	tmp = f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	size := int64(0)
	if fi, err := os.Stat(src); err == nil {
		size = fi.Size()
	}
	if o.Link {
		f.Close()
		os.Remove(tmp)
		err = os.Link(src, tmp)
		if err == nil {
			sum, err = hashWithProgress(tmp, o.Progress, "import "+name+" (linked)", size)
			return tmp, sum, err
		}
		if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EMLINK) {
			return "", "", fmt.Errorf("link %s: %w", src, err)
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "cannot link %s into %s (%v): copying\n", src, dir, errors.Unwrap(err))
		}
		if f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return "", "", err
		}
	}
	defer f.Close()
	in, err := os.Open(src)
	if err != nil {
		return "", "", err
	}
	defer in.Close()
	h := sha256.New()
	p := NewProgress(o.Progress, "import "+name, size)
	if _, err = io.Copy(io.MultiWriter(f, h, progressWriter{p}), in); err != nil {
		return "", "", fmt.Errorf("copy %s: %w", src, err)
	}
	p.Finish()
	if err = f.Chmod(0o644); err != nil {
		return "", "", err
	}
	if err = f.Sync(); err != nil {
		return "", "", err
	}
	if err = f.Close(); err != nil {
		return "", "", err
	}
	return tmp, hex.EncodeToString(h.Sum(nil)), nil
}

func hashWithProgress(path string, w io.Writer, desc string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	p := NewProgress(w, desc, size)
	if _, err := io.Copy(io.MultiWriter(h, progressWriter{p}), f); err != nil {
		return "", err
	}
	p.Finish()
	return hex.EncodeToString(h.Sum(nil)), nil
}

// existingModel is the model that already answers to name in dir's
// catalog, or nil; a name that is another model's alias is an error.
func existingModel(dir, name string) (*Entry, error) {
	c, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	e, ok := c.Lookup(name)
	if !ok {
		return nil, nil
	}
	if e.ID != name {
		return nil, fmt.Errorf("%q is an alias of model %q: choose another --name", name, e.ID)
	}
	return e, nil
}

// sameOrRefuse answers bringing in a file with checksum sum under an id
// that exists: identical content records the sha256 and returns the
// entry; anything else is refused.
func sameOrRefuse(dir string, e *Entry, sum string) (*Entry, error) {
	if e.Err == nil || errors.Is(e.Err, os.ErrNotExist) {
		have, err := hashFile(e.Path)
		if err == nil && have == sum {
			return install(dir, e.ID, "", sum, e)
		}
	}
	return nil, fmt.Errorf("model %q already exists (%s) with different content: remove it first (asi1d models rm %s) or choose another --name",
		e.ID, e.Path, e.ID)
}

// install renames tmp (when set) to the model's file after checking its
// header, and pins sum in the manifest (for the file of existing, when
// set, instead). Any failure removes tmp.
func install(dir, name, tmp, sum string, existing *Entry) (e *Entry, err error) {
	unlock, err := lockManifest(dir)
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		return nil, err
	}
	defer unlock()
	m, err := ReadManifest(dir)
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		return nil, err
	}
	cfg := m.Models[name]
	if cfg == nil {
		cfg = &ModelConfig{}
		m.Models[name] = cfg
	}
	if existing != nil && cfg.File == "" {
		// A model found in a subdirectory: name its file.
		if abs, err := filepath.Abs(dir); err == nil && existing.Path != filepath.Join(abs, name+".gguf") {
			if rel, err := filepath.Rel(abs, existing.Path); err == nil {
				cfg.File = rel
			}
		}
	}
	dst := cfg.File
	if dst == "" {
		dst = name + ".gguf"
	}
	if !filepath.IsAbs(dst) {
		dst = filepath.Join(dir, dst)
	}
	if tmp != "" {
		if _, err := ReadFacts(tmp); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		defer func() {
			if err != nil {
				os.Remove(dst)
			}
		}()
	}
	cfg.SHA256 = sum
	if err := WriteManifest(dir, m); err != nil {
		return nil, fmt.Errorf("record sha256 in the manifest: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	e = newEntry(abs, name, cfg)
	return e, e.Err
}

// Remove takes model idOrAlias out of the catalog in dir: it deletes its
// file (when the file lies inside dir and no other model uses it), its
// manifest entry, and any unfinished download of it.
func Remove(dir, idOrAlias string) error {
	c, err := Scan(dir)
	if err != nil {
		return err
	}
	e, ok := c.Lookup(idOrAlias)
	if !ok {
		return fmt.Errorf("no model %q in %s: %w", idOrAlias, c.Dir, ErrNotFound)
	}
	shared := false
	for _, o := range c.Entries {
		if o != e && o.Path == e.Path {
			shared = true
		}
	}
	rel, err := filepath.Rel(c.Dir, e.Path)
	inside := err == nil && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != ".."
	parts := splitParts(e.Path) // the file, or every part of a split model
	if inside && !shared {
		for _, p := range parts {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", e.ID, err)
			}
		}
	}
	unlock, err := lockManifest(c.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := ReadManifest(c.Dir)
	if err != nil {
		return err
	}
	if _, ok := m.Models[e.ID]; ok {
		delete(m.Models, e.ID)
		if err := WriteManifest(c.Dir, m); err != nil {
			return fmt.Errorf("remove %s from the manifest: %w", e.ID, err)
		}
	}
	for _, p := range append(parts, filepath.Join(c.Dir, e.ID+".gguf")) {
		os.Remove(p + partialSuffix)
		os.Remove(p + partialSuffix + metaSuffix)
	}
	return nil
}
