package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one model of a catalog.
type Entry struct {
	ID      string
	Aliases []string
	// Path is the GGUF file, absolute.
	Path    string
	Size    int64
	ModTime time.Time
	// SHA256 is the checksum pinned in the manifest (import and pull
	// record it there), lowercase hex; "" when none is pinned.
	SHA256 string
	Facts  Facts
	// Config is the model's manifest entry (zero when it has none).
	Config ModelConfig
	// Err, when set, says why the model cannot be used: it is listed but
	// never loaded.
	Err error
}

// Names are the id and the aliases: every name a request may use.
func (e *Entry) Names() []string { return append([]string{e.ID}, e.Aliases...) }

// Catalog is the models of a directory.
type Catalog struct {
	Dir     string
	Entries []*Entry // sorted by ID
	// Warnings are problems that are not one model's (a subdirectory that
	// cannot be read).
	Warnings []string
}

// Scan makes the catalog of dir: every *.gguf file under it (recursively;
// hidden directories, hidden files and *.partial downloads are skipped)
// and every model of its manifest. A file's id is its base name without
// ".gguf" unless a manifest entry names the file under another id. A split
// model (NAME-00001-of-0000N.gguf ...) is one model: its first part, id
// NAME; the other parts are not listed, and one that is missing makes the
// model unusable. Its Size is the sum of its parts. A model
// that cannot be used (its file missing or not a valid GGUF, its manifest
// entry invalid, an id or alias that another model also claims) is listed
// with Err set; only a missing directory or an unreadable manifest fails
// the scan.
func Scan(dir string) (*Catalog, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("models directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("models directory %s is not a directory", abs)
	}
	m, err := ReadManifest(abs)
	if err != nil {
		return nil, err
	}
	claimed := map[string]bool{} // paths the manifest names
	c := &Catalog{Dir: abs}
	for id, cfg := range m.Models {
		e := newEntry(abs, id, cfg)
		claimed[e.Path] = true
		c.Entries = append(c.Entries, e)
	}
	err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == abs {
				return err
			}
			// An unreadable subdirectory hides its models: say so rather
			// than failing the scan.
			c.Warnings = append(c.Warnings, fmt.Sprintf("cannot read %s: %v", path, err))
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if path != abs && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".gguf") || claimed[path] {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				return nil // a link to a directory is not followed
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		id := strings.TrimSuffix(name, ".gguf")
		if prefix, no, _, ok := splitName(name); ok {
			if no > 1 {
				return nil // a later part of a split model: its first part is the model
			}
			id = prefix
		}
		c.Entries = append(c.Entries, newEntry(abs, id, &ModelConfig{File: path}))
		c.Entries[len(c.Entries)-1].Config = ModelConfig{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", abs, err)
	}
	c.sort()
	c.markCollisions()
	return c, nil
}

// Single is the catalog of one file (serve --model FILE): its Dir is the
// file's directory and no manifest is read.
func Single(path, id string, aliases []string) (*Catalog, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = strings.TrimSuffix(filepath.Base(abs), ".gguf")
	}
	e := newEntry(filepath.Dir(abs), id, &ModelConfig{File: abs, Aliases: aliases})
	if errors.Is(e.Err, os.ErrNotExist) {
		return nil, e.Err
	}
	c := &Catalog{Dir: filepath.Dir(abs), Entries: []*Entry{e}}
	c.markCollisions()
	return c, nil
}

// newEntry makes the entry of model id with manifest settings cfg in dir:
// it stats the file and reads its header; any problem goes to Err.
func newEntry(dir, id string, cfg *ModelConfig) *Entry {
	e := &Entry{ID: id, Config: *cfg, Aliases: append([]string(nil), cfg.Aliases...)}
	file := cfg.File
	if file == "" {
		file = id + ".gguf"
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	e.Path = filepath.Clean(file)
	if err := ValidID(id); err != nil {
		e.Err = err
		return e
	}
	if err := cfg.Validate(); err != nil {
		e.Err = fmt.Errorf("manifest entry %q: %w", id, err)
		return e
	}
	if cfg.SHA256 != "" {
		e.SHA256 = strings.ToLower(cfg.SHA256)
	}
	fi, err := os.Stat(e.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			e.Err = fmt.Errorf("model file %s does not exist: %w", e.Path, os.ErrNotExist)
		} else {
			e.Err = err
		}
		return e
	}
	if !fi.Mode().IsRegular() {
		e.Err = fmt.Errorf("model file %s is not a regular file", e.Path)
		return e
	}
	e.Size, e.ModTime = fi.Size(), fi.ModTime()
	rest, err := splitSize(e.Path)
	if err != nil {
		e.Err = err
		return e
	}
	e.Size += rest
	e.Facts, e.Err = ReadFacts(e.Path)
	return e
}

func (c *Catalog) sort() {
	sort.SliceStable(c.Entries, func(i, j int) bool {
		a, b := c.Entries[i], c.Entries[j]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Path < b.Path
	})
}

// markCollisions sets Err on every entry one of whose names (id or alias)
// another entry also claims: a request for that name would be ambiguous.
func (c *Catalog) markCollisions() {
	owners := map[string][]*Entry{}
	for _, e := range c.Entries {
		seen := map[string]bool{}
		for _, n := range e.Names() {
			if !seen[n] {
				seen[n] = true
				owners[n] = append(owners[n], e)
			}
		}
	}
	for _, e := range c.Entries {
		for _, n := range e.Names() {
			if len(owners[n]) < 2 || e.Err != nil {
				continue
			}
			var others []string
			for _, o := range owners[n] {
				if o != e {
					others = append(others, fmt.Sprintf("%q (%s)", o.ID, o.Path))
				}
			}
			e.Err = fmt.Errorf("name %q is claimed by more than one model: also %s", n, strings.Join(others, ", "))
		}
	}
}

// Lookup finds a model by id, else by alias.
func (c *Catalog) Lookup(idOrAlias string) (*Entry, bool) {
	for _, e := range c.Entries {
		if e.ID == idOrAlias {
			return e, true
		}
	}
	for _, e := range c.Entries {
		for _, a := range e.Aliases {
			if a == idOrAlias {
				return e, true
			}
		}
	}
	return nil, false
}

// ChecksumError is a file whose sha256 is not the one expected.
type ChecksumError struct {
	Path, Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: sha256 is %s, want %s (the file is not the one that was pinned)", e.Path, e.Got, e.Want)
}

// Verify checks the file against the pinned SHA256 (nothing to do when
// none is pinned); a mismatch is a *ChecksumError. A file verified once is
// not hashed again while its device, inode, size, mtime and ctime stay the
// same.
func (e *Entry) Verify() error {
	if e.SHA256 == "" {
		return nil
	}
	before, stampOK := stampOf(e.Path)
	if stampOK && verifiedCache.has(e.Path, e.SHA256, before) {
		return nil
	}
	started := time.Now()
	got, err := hashFile(e.Path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", e.ID, err)
	}
	if got != e.SHA256 {
		return &ChecksumError{Path: e.Path, Want: e.SHA256, Got: got}
	}
	// Remember the file only if it did not change while it was hashed
	// and its last change is older than the clock's granularity allows to
	// tell apart (as git's "racy clean" rule): a file changed again within
	// the same timestamp tick would otherwise keep a stale stamp.
	if after, ok := stampOf(e.Path); ok && stampOK && after == before && started.Sub(time.Unix(0, before.ctime)) > racyWindow {
		verifiedCache.put(e.Path, e.SHA256, before)
	}
	return nil
}

// racyWindow is how old a file's last change must be before its stamp is
// trusted (filesystem timestamps tick coarsely); tests set it to zero.
var racyWindow = 2 * time.Second

// hashes counts the files hashed by Verify (for tests).
var hashes atomic.Int64

func hashFile(path string) (string, error) {
	hashes.Add(1)
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    int64 // ns
	ctime    int64 // ns
}

// verifiedCache remembers files that matched their pinned sha256.
var verifiedCache = &stampCache{m: map[string]stampEntry{}}

type stampEntry struct {
	sha   string
	stamp fileStamp
}

type stampCache struct {
	mu sync.Mutex
	m  map[string]stampEntry
}

func (c *stampCache) has(path, sha string, s fileStamp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[path]
	return ok && v.sha == sha && v.stamp == s
}

func (c *stampCache) put(path, sha string, s fileStamp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[path] = stampEntry{sha: sha, stamp: s}
}
