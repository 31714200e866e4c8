package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/models/synth"
)

// tinyQ8 is the synth "tiny" preset in Q8_0.
var tinyQ8 = synth.Options{Preset: "tiny", Type: "q8_0"}

// narrowQ4 is a second synth shape: narrower, one layer, Q4_0.
var narrowQ4 = synth.Options{NEmbd: 32, NLayer: 1, NHead: 2, NFF: 64, NVocab: 512, Type: "q4_0", Name: "narrow"}

func writeSynth(t testing.TB, path string, o synth.Options) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
}

func synthBytes(t testing.TB, o synth.Options) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.gguf")
	writeSynth(t, p, o)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func stories(t testing.TB) string { return testmodel.Path(t, "stories260K.gguf") }

const storiesSHA = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func shaOfFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return shaOf(b)
}

// corruptBytes is a GGUF magic followed by random bytes.
func corruptBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "GGUF")
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// listDir is every file under dir, relative, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func ids(c *Catalog) []string {
	var out []string
	for _, e := range c.Entries {
		out = append(out, e.ID)
	}
	return out
}

// synthTinyF16Small is a very small synth model (a fuzz seed).
var synthTinyF16Small = synth.Options{NEmbd: 32, NLayer: 1, NHead: 1, NFF: 32, NVocab: 300, Type: "f16"}
