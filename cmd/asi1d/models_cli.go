package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/asi1d/asi1d/cmd/asi1d/cliflag"
	"github.com/asi1d/asi1d/models/catalog"
)

// EnvModelsDir is the environment variable of --models-dir (serve reads
// the same one).
const EnvModelsDir = "ASI1D_MODELS_DIR"

const cliUsage = `Usage: asi1d models <command> [flags] [args]

Commands:
  ls                       list the models of the catalog
  import FILE              copy (or --link) a GGUF file into the catalog
  pull REF                 download a model: hf.co/OWNER/REPO:QUANT,
                           hf.co/OWNER/REPO/FILE.gguf, a huggingface.co link,
                           or the URL of a .gguf file on a site's mirror
  rm ID                    delete a model's file and manifest entry

Every command takes --models-dir DIR (env ` + EnvModelsDir + `). pull fetches hub
names from ` + catalog.EnvHubEndpoint + ` (default ` + catalog.DefaultHubEndpoint + `) and sends ` + catalog.EnvHubToken + `
to the hub, if set.
Run 'asi1d models <command> -h' for its flags.
`

// runModelsCLI is asi1d models: args are what follows "models". Progress goes
// to stderr (a bar when it is a terminal). It returns the exit code: 0
// done, 1 failed, 2 bad usage.
func runModelsCLI(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, cliUsage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, cliUsage)
		return 0
	case "ls", "list":
		return cliLs(args, stdout, stderr, getenv)
	case "import":
		return cliImport(args, stdout, stderr, getenv)
	case "pull":
		return cliPull(ctx, args, stdout, stderr, getenv)
	case "rm", "remove":
		return cliRm(args, stdout, stderr, getenv)
	}
	fmt.Fprintf(stderr, "asi1d models: unknown command %q\n%s", cmd, cliUsage)
	return 2
}

// cliFlags is one command's flag set with --models-dir.
type cliFlags struct {
	*flag.FlagSet
	dir    *string
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func newCLIFlags(cmd string, stdout, stderr io.Writer, getenv func(string) string) *cliFlags {
	fs := flag.NewFlagSet("asi1d models "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &cliFlags{FlagSet: fs, stdout: stdout, stderr: stderr, getenv: getenv,
		dir: fs.String("models-dir", "", "models directory (env "+EnvModelsDir+")")}
}

// parse parses flags and positional arguments in any order and checks
// that there are exactly nargs positional ones. It returns the exit code
// when parsing ends the command (help: 0, usage: 2), else -1.
func (f *cliFlags) parse(args []string, nargs int, argNames string) ([]string, int) {
	var pos []string
	for {
		if err := cliflag.Parse(f.FlagSet, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(f.stdout, "Usage: %s [flags] %s\n\nFlags:\n", f.Name(), argNames)
				f.SetOutput(f.stdout)
				f.PrintDefaults()
				return nil, 0
			}
			fmt.Fprintf(f.stderr, "%s: %v\n", f.Name(), err)
			return nil, 2
		}
		if f.NArg() == 0 {
			break
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
	if len(pos) != nargs {
		fmt.Fprintf(f.stderr, "%s: want %s, got %d arguments\n", f.Name(), argOrNothing(argNames), len(pos))
		return nil, 2
	}
	if *f.dir == "" {
		*f.dir = f.getenv(EnvModelsDir)
	}
	if *f.dir == "" {
		fmt.Fprintf(f.stderr, "%s: no models directory: give --models-dir or set %s\n", f.Name(), EnvModelsDir)
		return nil, 2
	}
	return pos, -1
}

func argOrNothing(s string) string {
	if s == "" {
		return "no arguments"
	}
	return s
}

func cliLs(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	f := newCLIFlags("ls", stdout, stderr, getenv)
	if _, code := f.parse(args, 0, ""); code >= 0 {
		return code
	}
	c, err := catalog.Scan(*f.dir)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d models ls: %v\n", err)
		return 1
	}
	writeTable(stdout, c)
	for _, w := range c.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return 0
}

// writeTable lists c as a table: id, aliases, quantization, size, context,
// the sha256's first 12 digits, and "ok" or what is wrong.
func writeTable(w io.Writer, c *catalog.Catalog) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tALIASES\tQUANT\tSIZE\tCTX\tSHA256\tSTATUS")
	for _, e := range c.Entries {
		aliases, quant, size, ctx, sha, status := "-", "-", "-", "-", "-", "ok"
		if len(e.Aliases) > 0 {
			aliases = strings.Join(e.Aliases, ",")
		}
		if e.Facts.FileType != "" {
			quant = e.Facts.FileType
		}
		if e.Size > 0 {
			size = catalog.HumanBytes(e.Size)
		}
		if n := e.ServedContext(); n > 0 {
			ctx = strconv.Itoa(n) // one request's, as serve gives it
		}
		if e.SHA256 != "" {
			sha = e.SHA256[:12]
		}
		if e.Err != nil {
			status = "error: " + strings.ReplaceAll(e.Err.Error(), "\n", " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, aliases, quant, size, ctx, sha, status)
	}
	tw.Flush()
}

func cliImport(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	f := newCLIFlags("import", stdout, stderr, getenv)
	var o catalog.ImportOptions
	f.StringVar(&o.Name, "name", "", "model id (default: the file's name without .gguf)")
	f.StringVar(&o.SHA256, "sha256", "", "expected sha256 of the file: a mismatch is refused")
	f.BoolVar(&o.Link, "link", false, "hard-link the file instead of copying it (copies across filesystems)")
	pos, code := f.parse(args, 1, "FILE")
	if code >= 0 {
		return code
	}
	o.Progress = stderr
	e, err := catalog.Import(*f.dir, pos[0], o)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d models import: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %s: %s, %s, %s, sha256 %s\n", e.ID, e.Path, e.Facts.FileType, catalog.HumanBytes(e.Size), e.SHA256)
	return 0
}

func cliPull(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	f := newCLIFlags("pull", stdout, stderr, getenv)
	var o catalog.PullOptions
	f.StringVar(&o.Name, "name", "", "model id (default: the file's name without .gguf and any -00001-of-0000N)")
	f.StringVar(&o.SHA256, "sha256", "", "expected sha256 (default: a URL's URL.sha256; the hub's own for hub files)")
	f.BoolVar(&o.NoChecksum, "no-checksum", false, "allow a plain-URL download that no checksum vouches for")
	pos, code := f.parse(args, 1, "REF")
	if code >= 0 {
		return code
	}
	o.HubEndpoint = getenv(catalog.EnvHubEndpoint)
	o.HubToken = getenv(catalog.EnvHubToken)
	o.Progress = stderr
	e, err := catalog.Pull(ctx, *f.dir, pos[0], o)
	if err != nil {
		fmt.Fprintf(stderr, "asi1d models pull: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "pulled %s: %s, %s, %s, sha256 %s\n", e.ID, e.Path, e.Facts.FileType, catalog.HumanBytes(e.Size), e.SHA256)
	return 0
}

func cliRm(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	f := newCLIFlags("rm", stdout, stderr, getenv)
	pos, code := f.parse(args, 1, "ID")
	if code >= 0 {
		return code
	}
	if err := catalog.Remove(*f.dir, pos[0]); err != nil {
		fmt.Fprintf(stderr, "asi1d models rm: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed %s\n", pos[0])
	return 0
}
