package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asi1d/asi1d/cmd/asi1d/cliflag"
	"github.com/asi1d/asi1d/models/synth"
)

// synthDir is where asi1d synth writes without --out: under .build, which
// git ignores.
const synthDir = ".build/synth"

const synthUsage = `Usage: asi1d synth [flags]

Writes a llama-architecture GGUF model with deterministic dummy weights at
real shapes (for benchmarks and tests; its output is gibberish) and prints
its path, parameter count and size.

Flags:
`

// runSynth is asi1d synth: it writes a synth model and prints its path,
// parameter count and size. Flag errors exit 2 with one line on stderr,
// write errors exit 1.
func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("asi1d synth", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		preset   = fs.String("preset", "tiny", "model shape: "+strings.Join(synth.PresetNames(), ", "))
		arch     = fs.String("arch", "llama", "architecture: llama (a chat model) or bert (an embedding model: WordPiece vocabulary, mean pooling)")
		typ      = fs.String("type", synth.DefaultType, "weight type: f16, q8_0 or q4_0")
		template = fs.String("template", "", "chat template and its special tokens: none, chatml-think or llama3")
		seed     = fs.Uint64("seed", 0, "weights seed (same flags, same bytes)")
		out      = fs.String("out", "", "output file (default "+synthDir+"/PRESET-TYPE[-ARCH][-TEMPLATE][-seedN].gguf)")
		name     = fs.String("name", "", "general.name (default synth-PRESET)")
		nctx     = fs.Int("ctx", 0, "trained context length to write (default: the preset's)")
		script   = fs.String("script", "", "space-separated token texts: a bigram model whose greedy output follows this chain (see models/synth)")
	)
	if err := cliflag.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, synthUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "asi1d synth: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "asi1d synth: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *template == "none" {
		*template = ""
	}
	if *arch != "llama" && *arch != synth.ArchBERT {
		fmt.Fprintf(stderr, "asi1d synth: --arch %q: want llama or %s\n", *arch, synth.ArchBERT)
		return 2
	}
	if *nctx < 0 {
		fmt.Fprintf(stderr, "asi1d synth: --ctx %d: must be positive\n", *nctx)
		return 2
	}
	o := synth.Options{Preset: *preset, Arch: *arch, Type: *typ, Template: *template, Seed: *seed, Name: *name, NCtx: *nctx,
		Script: strings.Fields(*script)}
	r, err := synth.Resolve(o)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d synth: %v\n", err)
		return 2
	}
	path := *out
	if path == "" {
		base := r.Preset + "-" + r.Type
		if r.Preset == "" {
			base = "custom-" + r.Type
		}
		if r.Arch != "" {
			base += "-" + r.Arch
		}
		if r.Template != "" {
			base += "-" + r.Template
		}
		if r.Seed != 0 {
			base += fmt.Sprintf("-seed%d", r.Seed)
		}
		if len(r.Script) > 0 {
			base += "-script"
		}
		path = filepath.Join(synthDir, base+".gguf")
	}
	t0 := time.Now()
	size, err := writeSynth(ctx, path, r)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d synth: %v\n", err)
		return 1
	}
	dur := time.Since(t0)
	params := r.Params()
	fmt.Fprintln(stdout, path)
	fmt.Fprintf(stdout, "params %d (%s), size %d bytes (%.1f MiB), type %s, n_ctx %d, written in %s\n",
		params, humanCount(params), size, float64(size)/(1<<20), r.Type, r.NCtx, dur.Round(time.Millisecond))
	return 0
}

// writeSynth writes the model to a temporary file beside path and renames
// it into place; cancelling ctx (the first signal) stops the write and
// removes the temporary file. It returns the file size.
func writeSynth(ctx context.Context, path string, o synth.Options) (size int64, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	cw := &ctxWriter{ctx: ctx, w: f}
	if err = synth.Write(cw, o); err != nil {
		return 0, err
	}
	if err = f.Chmod(0o644); err != nil {
		return 0, err
	}
	if err = f.Close(); err != nil {
		return 0, err
	}
	return cw.n, os.Rename(f.Name(), path)
}

// ctxWriter fails writes once ctx is done and counts bytes.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("interrupted: %w", err)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// humanCount writes n as 205.1K, 109.5M or 1.24B.
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
