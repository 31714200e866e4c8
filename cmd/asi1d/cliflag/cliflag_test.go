package cliflag

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	names := []string{"model", "models-dir", "ctx", "parallel", "log-level"}
	for typed, want := range map[string]string{"modle": "model", "Model": "model", "paralel": "parallel", "foo": "", "x": "", "log-levl": "log-level", "ctxx": "ctx"} {
		if got := Closest(typed, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", typed, got, want)
		}
	}
}

func TestSetParse(t *testing.T) {
	s := New("asi1d x")
	s.Env = func(n string) string { return "X_" + strings.ToUpper(n) }
	n := s.Int("count", 1, "how many")
	var lvl string
	s.Var(NewEnum(&lvl, "info", "debug", "info"), "level", "the level")
	s.Alias("n", "count")
	env := map[string]string{"X_COUNT": "5", "X_LEVEL": "DEBUG"}
	if err := s.Parse([]string{"-n", "3"}, func(k string) string { return env[k] }, nil); err != nil {
		t.Fatal(err)
	}
	if *n != 3 || lvl != "debug" {
		t.Fatalf("count %d level %q", *n, lvl)
	}
	var out bytes.Buffer
	s2 := New("asi1d x")
	s2.Int("count", 1, "how many")
	s2.Alias("n", "count")
	if err := s2.Parse([]string{"-h"}, nil, &out); err != ErrHelp || !strings.Contains(out.String(), "-n, --count N") {
		t.Fatalf("help: %v %q", err, out.String())
	}
	s3 := New("asi1d x")
	s3.Int("count", 1, "how many")
	s3.Alias("n", "count")
	if err := s3.Parse([]string{"-n", "many"}, nil, nil); err == nil || err.Error() != `-n "many": want an integer` {
		t.Fatalf("alias value error: %v", err)
	}
}

// Go's PrintDefaults, on a flag set Parse has wrapped, prints every flag and
// no "panic calling String method" (it makes a zero value of each flag's type
// to find out whether the default is zero).
func TestPrintDefaultsAfterParse(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("out", "", "output file")
	fs.Int("n", 3, "count")
	if err := Parse(fs, []string{"-n", "4"}); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	if out := b.String(); strings.Contains(out, "panic") || !strings.Contains(out, "-out") || !strings.Contains(out, "(default 3)") {
		t.Fatalf("PrintDefaults:\n%s", out)
	}
}
