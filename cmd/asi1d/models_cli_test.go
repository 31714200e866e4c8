package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/internal/testutil/hubtest"
	"github.com/asi1d/asi1d/models/catalog"
	"github.com/asi1d/asi1d/models/synth"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runModelsCLI(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "models")
	src := filepath.Join(t.TempDir(), "tiny-q8.gguf")
	writeSynthFile(t, src, synth.Options{Preset: "tiny", Type: "q8_0"})
	sum := sha256Hex(readFile(t, src))
	env := map[string]string{EnvModelsDir: dir}

	// Flags after the positional argument work too.
	code, out, errs := runCLI(t, env, "import", src, "--name", "tiny", "--sha256", sum)
	if code != 0 || !strings.Contains(out, "imported tiny") || !strings.Contains(out, sum) {
		t.Fatalf("import: %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "import tiny: done") {
		t.Errorf("import progress on stderr: %q", errs)
	}
	writeCorruptGGUF(t, filepath.Join(dir, "broken.gguf"), 1000)

	code, out, errs = runCLI(t, nil, "ls", "--models-dir", dir)
	if code != 0 {
		t.Fatalf("ls: %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("ls printed %d lines:\n%s", len(lines), out)
	}
	for _, w := range []string{"ID", "ALIASES", "QUANT", "SIZE", "CTX", "SHA256", "STATUS"} {
		if !strings.Contains(lines[0], w) {
			t.Errorf("header %q lacks %s", lines[0], w)
		}
	}
	if f := strings.Fields(lines[1]); f[0] != "broken" || !strings.Contains(lines[1], "error:") {
		t.Errorf("broken line %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "tiny" || f[2] != "Q8_0" || f[5] != "2048" || f[6] != sum[:12] || f[7] != "ok" {
		t.Errorf("tiny line %q (fields %q)", lines[2], f)
	}

	if code, _, errs := runCLI(t, env, "import", src, "--name", "other", "--sha256", strings.Repeat("0", 64)); code != 1 || !strings.Contains(errs, "checksum mismatch") {
		t.Errorf("import with a wrong sha: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, env, "rm", "tiny"); code != 0 || !strings.Contains(out, "removed tiny") {
		t.Fatalf("rm: %d %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "tiny.gguf")); !os.IsNotExist(err) {
		t.Fatalf("rm left the file: %v", err)
	}
	if code, _, errs := runCLI(t, env, "rm", "tiny"); code != 1 || !strings.Contains(errs, "no model") {
		t.Errorf("rm of a missing model: %d %s", code, errs)
	}
}

func TestCLIUsage(t *testing.T) {
	env := map[string]string{EnvModelsDir: t.TempDir()}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{nil, env, 2, "Usage: asi1d models"},
		{[]string{"frob"}, env, 2, `unknown command "frob"`},
		{[]string{"ls"}, nil, 2, "no models directory"},
		{[]string{"ls", "extra"}, env, 2, "want no arguments"},
		{[]string{"import"}, env, 2, "want FILE"},
		{[]string{"pull", "--bogus", "x"}, env, 2, "unknown flag --bogus (see asi1d models pull -h)"},
		{[]string{"ls", "--models-dir", "/nonexistent/models"}, nil, 1, "models directory"},
		{[]string{"pull", "ftp://x/m.gguf"}, env, 1, "only http and https"},
	} {
		code, out, errs := runCLI(t, tc.env, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.want) {
			t.Errorf("%q: %d %q %q, want %d and %q", tc.args, code, out, errs, tc.code, tc.want)
		}
	}
	if code, out, _ := runCLI(t, nil, "pull", "-h"); code != 0 || !strings.Contains(out, "-no-checksum") {
		t.Errorf("pull -h: %d %q", code, out)
	}
}

func TestCLIPullHub(t *testing.T) {
	f := newCLIHub(t)
	f.hub.RequireToken("hf_cli")
	dir := t.TempDir()
	env := map[string]string{EnvModelsDir: dir, catalog.EnvHubEndpoint: f.hub.URL}
	code, out, errs := runCLI(t, env, "pull", "hf.co/acme/Tiny-GGUF:Q8_0")
	if code != 1 || !strings.Contains(errs, "HF_TOKEN") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("gated without HF_TOKEN: %d %q %q, want one line naming HF_TOKEN", code, out, errs)
	}
	env[catalog.EnvHubToken] = "hf_cli"
	code, out, errs = runCLI(t, env, "pull", "hf.co/acme/Tiny-GGUF:Q8_0", "--name", "tiny")
	if code != 0 || !strings.Contains(out, "pulled tiny") || !strings.Contains(out, sha256Hex(f.q8)) {
		t.Fatalf("pull: %d %q %q", code, out, errs)
	}
	if !strings.Contains(errs, "pull tiny: done") {
		t.Errorf("progress on stderr: %q", errs)
	}
	code, out, errs = runCLI(t, env, "pull", "hf.co/acme/Tiny-GGUF:Q3_K_S")
	if code != 1 || !strings.Contains(errs, "Q8_0, Q4_0") {
		t.Fatalf("missing quant: %d %q %q", code, out, errs)
	}
}

// cliHub is a stand-in hub with one repository of two quantizations.
type cliHub struct {
	hub    *hubtest.Hub
	q8, q4 []byte
}

func newCLIHub(t *testing.T) *cliHub {
	q8 := filepath.Join(t.TempDir(), "q8.gguf")
	writeSynthFile(t, q8, synth.Options{Preset: "tiny", Type: "q8_0"})
	q4 := filepath.Join(t.TempDir(), "q4.gguf")
	writeSynthFile(t, q4, synth.Options{NEmbd: 32, NLayer: 1, NHead: 2, NFF: 64, NVocab: 512, Type: "q4_0", Name: "narrow"})
	f := &cliHub{hub: hubtest.New(t), q8: readFile(t, q8), q4: readFile(t, q4)}
	f.hub.Add("acme/Tiny-GGUF", "Tiny-Q8_0.gguf", f.q8)
	f.hub.Add("acme/Tiny-GGUF", "q4/Tiny-Q4_0.gguf", f.q4)
	return f
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeCorruptGGUF writes n bytes that start like a GGUF file and are
// noise after the magic.
func writeCorruptGGUF(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(5, 5))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "GGUF")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
