package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/models/synth"
)

// catalogDir builds the scan fixture: the reference model under a manifest
// rename, two synth shapes (one in a subdirectory), a corrupt and a
// truncated file, and things that are not models.
func catalogDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, stories(t), filepath.Join(dir, "stories.gguf"))
	writeSynth(t, filepath.Join(dir, "tiny-q8.gguf"), tinyQ8)
	writeSynth(t, filepath.Join(dir, "sub", "narrow-q4.gguf"), narrowQ4)
	writeFile(t, filepath.Join(dir, "corrupt.gguf"), corruptBytes(4096, 1))
	full := synthBytes(t, tinyQ8)
	writeFile(t, filepath.Join(dir, "truncated.gguf"), full[:len(full)/2])
	writeSynth(t, filepath.Join(dir, ".hidden", "secret.gguf"), tinyQ8)
	writeFile(t, filepath.Join(dir, "half.gguf.partial"), full[:100])
	writeFile(t, filepath.Join(dir, "README.txt"), []byte("not a model"))
	writeFile(t, filepath.Join(dir, ManifestFile), []byte(`{
  "models": {
    "mini": {"file": "stories.gguf", "aliases": ["asi1-mini"], "ctx": 1024, "sampling": {"temperature": 0.5}},
    "tiny-q8": {"aliases": ["fast"], "preload": true},
    "ghost": {"aliases": ["boo"]}
  }
}`))
	return dir
}

func TestScan(t *testing.T) {
	dir := catalogDir(t)
	c, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"corrupt", "ghost", "mini", "narrow-q4", "tiny-q8", "truncated"}
	if got := ids(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	for _, e := range c.Entries {
		if !filepath.IsAbs(e.Path) {
			t.Errorf("%s: path %s is not absolute", e.ID, e.Path)
		}
	}
	get := func(id string) *Entry {
		e, ok := c.Lookup(id)
		if !ok {
			t.Fatalf("Lookup(%q) found nothing", id)
		}
		return e
	}

	mini := get("asi1-mini")
	if mini.ID != "mini" || mini.Err != nil || mini.Path != filepath.Join(dir, "stories.gguf") {
		t.Fatalf("asi1-mini = %s %s %v", mini.ID, mini.Path, mini.Err)
	}
	wantFacts := Facts{Arch: "llama", Name: "llama", FileType: "F32", CtxTrain: 2048, Layers: 5, Embd: 64, Heads: 8, HeadsKV: 4, Vocab: 512, Params: 292800}
	if mini.Facts != wantFacts {
		t.Errorf("stories facts %+v, want %+v", mini.Facts, wantFacts)
	}
	if mini.Config.Ctx != 1024 || mini.Config.Sampling == nil || *mini.Config.Sampling.Temperature != 0.5 {
		t.Errorf("mini config %+v", mini.Config)
	}
	if mini.Size != 1185376 || mini.ModTime.IsZero() {
		t.Errorf("mini size %d mtime %v", mini.Size, mini.ModTime)
	}

	tiny := get("fast")
	if tiny.ID != "tiny-q8" || tiny.Err != nil || tiny.Facts.FileType != "Q8_0" || tiny.Facts.Layers != 2 || tiny.Facts.Vocab != 1024 || !tiny.Config.Preload {
		t.Errorf("tiny-q8 = %+v", tiny)
	}
	narrow := get("narrow-q4")
	if narrow.Err != nil || narrow.Facts.FileType != "Q4_0" || narrow.Facts.Embd != 32 || narrow.Facts.Layers != 1 || narrow.Facts.Name != "narrow" ||
		narrow.Path != filepath.Join(dir, "sub", "narrow-q4.gguf") {
		t.Errorf("narrow-q4 = %+v", narrow)
	}

	if e := get("ghost"); !errors.Is(e.Err, os.ErrNotExist) || !strings.Contains(e.Err.Error(), "ghost.gguf does not exist") {
		t.Errorf("ghost: Err = %v, want a missing file", e.Err)
	}
	if e := get("corrupt"); e.Err == nil {
		t.Error("corrupt file has no Err")
	}
	if e := get("truncated"); e.Err == nil || !strings.Contains(e.Err.Error(), "truncated") {
		t.Errorf("truncated: Err = %v, want it to say truncated", e.Err)
	}
	for _, name := range []string{"stories", "secret", "half", "README"} {
		if _, ok := c.Lookup(name); ok {
			t.Errorf("%s is listed", name)
		}
	}
}

func TestScanWithoutManifest(t *testing.T) {
	dir := t.TempDir()
	writeSynth(t, filepath.Join(dir, "m.gguf"), tinyQ8)
	c, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 1 || c.Entries[0].ID != "m" || c.Entries[0].Err != nil || c.Entries[0].SHA256 != "" {
		t.Fatalf("entries %+v", c.Entries)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Scan wrote a manifest: %v", err)
	}
}

func TestScanErrors(t *testing.T) {
	if _, err := Scan(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("scan of a missing dir: no error")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ManifestFile), []byte(`{"models": {"a": {"aliasses": []}}}`))
	if _, err := Scan(dir); err == nil || !strings.Contains(err.Error(), "aliasses") {
		t.Errorf("scan with a bad manifest: %v", err)
	}
}

func TestScanCollisions(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.gguf", "b.gguf", "c.gguf", "sub/c.gguf", "d.gguf", "e.gguf", "ok.gguf"} {
		writeSynth(t, filepath.Join(dir, p), tinyQ8)
	}
	writeFile(t, filepath.Join(dir, ManifestFile), []byte(`{"models": {
		"a": {"aliases": ["x"]},
		"b": {"aliases": ["x"]},
		"d": {"aliases": ["e"]},
		"ok": {"aliases": ["fine", "fine"]},
		"bad id": {}
	}}`))
	c, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]int{}
	for _, e := range c.Entries {
		if e.Err != nil {
			errs[e.ID]++
			t.Logf("%s: %v", e.ID, e.Err)
		}
	}
	want := map[string]int{"a": 1, "b": 1, "c": 2, "d": 1, "e": 1, "bad id": 1}
	if !reflect.DeepEqual(errs, want) {
		t.Fatalf("entries with Err %v, want %v", errs, want)
	}
	if e, _ := c.Lookup("a"); !strings.Contains(e.Err.Error(), `"x"`) || !strings.Contains(e.Err.Error(), `"b"`) {
		t.Errorf("a's error %q does not name the alias and the other model", e.Err)
	}
}

func TestSingle(t *testing.T) {
	p := stories(t)
	c, err := Single(p, "asi1-mini", []string{"gpt-4o"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 1 || c.Dir != filepath.Dir(p) {
		t.Fatalf("catalog %+v", c)
	}
	e, ok := c.Lookup("gpt-4o")
	if !ok || e.ID != "asi1-mini" || e.Err != nil || e.Facts.Layers != 5 {
		t.Fatalf("entry %+v", e)
	}
	if _, err := Single(filepath.Join(t.TempDir(), "none.gguf"), "", nil); err == nil {
		t.Error("Single of a missing file: no error")
	}
}

func TestVerify(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	writeSynth(t, path, tinyQ8)
	sum := shaOfFile(t, path)
	writeFile(t, filepath.Join(dir, ManifestFile), []byte(`{"models": {"m": {"sha256": "`+strings.ToUpper(sum)+`"}}}`))
	scan := func() *Entry {
		c, err := Scan(dir)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := c.Lookup("m")
		if e.SHA256 != sum {
			t.Fatalf("pinned sha %q, want %q", e.SHA256, sum)
		}
		return e
	}
	counted := func(f func() error) (int64, error) {
		before := hashes.Load()
		err := f()
		return hashes.Load() - before, err
	}

	// A file changed moments ago is hashed every time (its stamp could
	// repeat within one timestamp tick).
	racyWindow = time.Hour
	for i := range 2 {
		if n, err := counted(scan().Verify); err != nil || n != 1 {
			t.Fatalf("fresh file, verify %d: %d hashes, %v", i, n, err)
		}
	}

	racyWindow = 0
	if n, err := counted(scan().Verify); err != nil || n != 1 {
		t.Fatalf("first verify: %d hashes, %v", n, err)
	}
	if n, err := counted(scan().Verify); err != nil || n != 0 {
		t.Fatalf("verify of an unchanged file: %d hashes, %v; want the cache", n, err)
	}

	// Same size, one byte changed in place, mtime moved: caught.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt([]byte{0xff}, fi.Size()-1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(path, time.Time{}, fi.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var ce *ChecksumError
	if err := scan().Verify(); !errors.As(err, &ce) || ce.Want != sum || ce.Got == sum || ce.Path != path {
		t.Fatalf("changed file: %v, want a ChecksumError", err)
	}
	if !strings.Contains(ce.Error(), sum) || !strings.Contains(ce.Error(), ce.Got) || !strings.Contains(ce.Error(), "mismatch") {
		t.Errorf("ChecksumError says %q", ce)
	}

	// Put the right bytes back: verifies again.
	writeSynth(t, path, tinyQ8)
	if err := scan().Verify(); err != nil {
		t.Fatal(err)
	}
	// A different file of the same size renamed over it (a new inode),
	// with the same mtime: caught.
	other := filepath.Join(dir, ".other")
	writeSynth(t, other, synth.Options{Preset: "tiny", Type: "q8_0", Seed: 7})
	st, _ := os.Stat(path)
	os.Chtimes(other, time.Time{}, st.ModTime())
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	if err := scan().Verify(); !errors.As(err, &ce) {
		t.Fatalf("replaced file: %v, want a ChecksumError", err)
	}

	// Nothing pinned: nothing to check.
	e := scan()
	e.SHA256 = ""
	if n, err := counted(e.Verify); err != nil || n != 0 {
		t.Fatalf("unpinned: %d hashes, %v", n, err)
	}
}
