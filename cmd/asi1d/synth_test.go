package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSynthWritesModel(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "tiny.gguf")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"synth", "--preset", "tiny", "--type", "q4_0", "--template", "chatml-think",
		"--seed", "3", "--out", out}, &stdout, &stderr, noenv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 || lines[0] != out || !strings.Contains(lines[1], "params 205120 (205.1K)") || !strings.Contains(lines[1], "type q4_0") {
		t.Fatalf("stdout %q", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:4]) != "GGUF" || !strings.Contains(lines[1], "size "+strconv.Itoa(len(b))+" bytes") {
		t.Fatalf("file of %d bytes starting %q; stdout %q", len(b), b[:4], lines[1])
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "sub", ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	// The same flags give the same bytes.
	again := filepath.Join(dir, "again.gguf")
	if code := runSynth(context.Background(), []string{"--preset=tiny", "--type=q4_0", "--template=chatml-think", "--seed=3", "--out=" + again},
		&stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if b2, _ := os.ReadFile(again); !bytes.Equal(b, b2) {
		t.Fatal("same flags, different files")
	}
}

// Without --out the file goes under .build/synth, named after the flags.
func TestSynthDefaultPath(t *testing.T) {
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	if code := runSynth(context.Background(), []string{"--template", "llama3"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := filepath.Join(".build", "synth", "tiny-q8_0-llama3.gguf")
	if first, _, _ := strings.Cut(stdout.String(), "\n"); first != want {
		t.Fatalf("path %q, want %q", first, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatal(err)
	}
}

// Bad flags: exit 2 and one line on stderr; nothing is written.
func TestSynthFlagErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.gguf")
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"unknown flag":  {[]string{"--nope"}, "unknown flag --nope (see asi1d synth -h)"},
		"bad seed":      {[]string{"--seed", "x"}, `--seed "x": want a whole number`},
		"preset":        {[]string{"--preset", "huge"}, `unknown preset "huge"`},
		"type":          {[]string{"--type", "q5_k"}, `unknown type "q5_k"`},
		"template":      {[]string{"--template", "chatml"}, `unknown template "chatml"`},
		"argument":      {[]string{"extra"}, `unexpected argument "extra"`},
		"ctx":           {[]string{"--ctx", "-1"}, "--ctx -1"},
		"arch":          {[]string{"--arch", "gpt"}, `--arch "gpt": want llama or bert`},
		"bert template": {[]string{"--arch", "bert", "--template", "llama3"}, "a bert model has no chat template"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runSynth(context.Background(), append(c.args, "--out", out), &stdout, &stderr)
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "asi1d synth: ") || !strings.Contains(lines[0], c.want) {
				t.Fatalf("exit %d, stderr %q (want one line with %q)", code, stderr.String(), c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a file was written")
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := runSynth(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "-preset") {
		t.Fatalf("-h: exit %d, stdout %q", code, stdout.String())
	}
}

// A cancelled context stops the write and leaves no file.
func TestSynthCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	if code := runSynth(ctx, []string{"--out", filepath.Join(dir, "x.gguf")}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}
