package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestImportCopy(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tiny-q8.gguf")
	writeSynth(t, src, tinyQ8)
	sum := shaOfFile(t, src)
	dir := filepath.Join(t.TempDir(), "models")
	var progress strings.Builder
	e, err := Import(dir, src, ImportOptions{Name: "tiny", SHA256: strings.ToUpper(sum), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "tiny.gguf")
	if e.ID != "tiny" || e.Path != dst || e.SHA256 != sum || e.Err != nil || e.Facts.FileType != "Q8_0" {
		t.Fatalf("entry %+v", e)
	}
	if shaOfFile(t, dst) != sum {
		t.Fatal("copy differs from the source")
	}
	if same(t, src, dst) {
		t.Fatal("a copy shares the source's inode")
	}
	m, err := ReadManifest(dir)
	if err != nil || m.Models["tiny"] == nil || m.Models["tiny"].SHA256 != sum {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	if !strings.Contains(progress.String(), "import tiny: done") {
		t.Errorf("progress %q", progress.String())
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{ManifestFile, "tiny.gguf"}) {
		t.Fatalf("dir holds %v", got)
	}

	// Again, same content: a no-op.
	if _, err := Import(dir, src, ImportOptions{Name: "tiny"}); err != nil {
		t.Fatalf("importing the same file again: %v", err)
	}
	// Another file under the same id: refused, the old one kept.
	other := filepath.Join(t.TempDir(), "other.gguf")
	writeSynth(t, other, narrowQ4)
	if _, err := Import(dir, other, ImportOptions{Name: "tiny"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("import over an existing id: %v", err)
	}
	if shaOfFile(t, dst) != sum {
		t.Fatal("the existing model was overwritten")
	}
	// The default name is the file's.
	if e, err := Import(dir, other, ImportOptions{}); err != nil || e.ID != "other" {
		t.Fatalf("default name: %+v, %v", e, err)
	}
}

func same(t *testing.T, a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func TestImportLink(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src", "m.gguf")
	writeSynth(t, src, tinyQ8)
	dir := filepath.Join(base, "models")
	e, err := Import(dir, src, ImportOptions{Link: true})
	if err != nil {
		t.Fatal(err)
	}
	if !same(t, src, e.Path) {
		t.Fatal("--link made a copy on the same filesystem")
	}
	if e.SHA256 != shaOfFile(t, src) {
		t.Fatalf("sha %s", e.SHA256)
	}
}

func TestImportRefusesAndLeavesNothing(t *testing.T) {
	src := filepath.Join(t.TempDir(), "m.gguf")
	writeSynth(t, src, tinyQ8)
	junk := filepath.Join(t.TempDir(), "junk.gguf")
	writeFile(t, junk, corruptBytes(8192, 3))
	for _, link := range []bool{false, true} {
		dir := t.TempDir()
		wrong := strings.Repeat("0", 64)
		_, err := Import(dir, src, ImportOptions{SHA256: wrong, Link: link})
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Want != wrong || ce.Got != shaOfFile(t, src) {
			t.Fatalf("link=%v: mismatch: %v", link, err)
		}
		if _, err := Import(dir, junk, ImportOptions{Link: link}); err == nil {
			t.Fatalf("link=%v: a corrupt file was imported", link)
		}
		if _, err := Import(dir, src, ImportOptions{SHA256: "xyz"}); err == nil {
			t.Fatal("a malformed sha256 was accepted")
		}
		if _, err := Import(dir, src, ImportOptions{Name: "a/b"}); err == nil {
			t.Fatal("a bad name was accepted")
		}
		if got := listDir(t, dir); len(got) != 0 {
			t.Fatalf("link=%v: refused imports left %v", link, got)
		}
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "m.gguf")
	writeSynth(t, src, tinyQ8)
	if _, err := Import(dir, src, ImportOptions{Name: "m"}); err != nil {
		t.Fatal(err)
	}
	m, _ := ReadManifest(dir)
	m.Models["m"].Aliases = []string{"alias-m"}
	m.Models["keep"] = &ModelConfig{File: src} // outside dir: never deleted
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "alias-m"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "keep"); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); !reflect.DeepEqual(got, []string{ManifestFile}) {
		t.Fatalf("dir holds %v", got)
	}
	if m, _ := ReadManifest(dir); len(m.Models) != 0 {
		t.Fatalf("manifest keeps %v", m.Models)
	}
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("a file outside the models dir was deleted: %v", err)
	}
	if err := Remove(dir, "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing a missing model: %v", err)
	}
}

// Imports into one folder at once keep every manifest entry (the manifest
// is locked for its read-modify-write).
func TestConcurrentImportsKeepEveryEntry(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tiny.gguf")
	writeSynth(t, src, tinyQ8)
	dir := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := Import(dir, src, ImportOptions{Name: fmt.Sprintf("m%d", i)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Models) != n {
		t.Fatalf("manifest has %d entries after %d imports", len(m.Models), n)
	}
	c, err := Scan(dir)
	if err != nil || len(c.Entries) != n {
		t.Fatalf("scan: %v, %d entries", err, len(c.Entries))
	}
}
