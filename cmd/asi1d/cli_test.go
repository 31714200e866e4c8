package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// runOut runs asi1d with args and env; it returns the exit code, stdout
// and stderr.
func runOut(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// oneLine fails unless s is exactly one line.
func oneLine(t *testing.T, what, s string) string {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("%s: want one line, got %q", what, s)
	}
	return strings.TrimSuffix(s, "\n")
}

func TestVersionAndHelp(t *testing.T) {
	for _, a := range []string{"version", "--version", "-version", "-v"} {
		code, out, _ := runOut(t, nil, a)
		if code != 0 || !strings.HasPrefix(out, "asi1d "+version+" (") {
			t.Errorf("%s: code %d, %q", a, code, out)
		}
	}
	for _, a := range []string{"-h", "--help", "help"} {
		code, out, _ := runOut(t, nil, a)
		if code != 0 || !strings.Contains(out, "Commands:") || !strings.Contains(out, "serve") {
			t.Errorf("%s: code %d, %q", a, code, out)
		}
	}
	code, _, errb := runOut(t, nil, "serv")
	if line := oneLine(t, "serv", errb); code != 2 || line != `asi1d: unknown command "serv": did you mean serve? (see asi1d -h)` {
		t.Errorf("serv: code %d, %q", code, line)
	}
}

// An unknown flag is one line with the hint, and the closest flag when
// one is close; in every command that has flags.
func TestUnknownFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--foo"}, "asi1d serve: unknown flag --foo (see asi1d serve -h)"},
		{[]string{"serve", "--modle", "x"}, "asi1d serve: unknown flag --modle: did you mean --model? (see asi1d serve -h)"},
		{[]string{"serve", "-log-levle", "info"}, "asi1d serve: unknown flag --log-levle: did you mean --log-level? (see asi1d serve -h)"},
		{[]string{"serve", "--ctx"}, "asi1d serve: --ctx needs a value (see asi1d serve -h)"},
		{[]string{"chat", "--tempreature", "1"}, "asi1d chat: unknown flag --tempreature: did you mean --temperature? (see asi1d chat -h)"},
		{[]string{"bench", "--url", "http://x", "--concurency", "2"}, "asi1d bench: unknown flag --concurency: did you mean --concurrency? (see asi1d bench -h)"},
		{[]string{"bench", "compare", "--runz", "2"}, "asi1d bench compare: unknown flag --runz: did you mean --runs? (see asi1d bench compare -h)"},
		{[]string{"synth", "--prest", "tiny"}, "asi1d synth: unknown flag --prest: did you mean --preset? (see asi1d synth -h)"},
		{[]string{"models", "ls", "--foo"}, "asi1d models ls: unknown flag --foo (see asi1d models ls -h)"},
	}
	for _, c := range cases {
		code, _, errb := runOut(t, nil, c.args...)
		if line := oneLine(t, strings.Join(c.args, " "), errb); code != 2 || line != c.want {
			t.Errorf("%v: code %d\n got %q\nwant %q", c.args, code, line, c.want)
		}
	}
}

// A bad value, from a flag or its variable, is refused in one line with
// the name, the value and what is accepted.
func TestBadValues(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--ctx", "abc"}, nil, `asi1d serve: --ctx "abc": want an integer`},
		{[]string{"-np", "x"}, nil, `asi1d serve: -np "x": want an integer`},
		{[]string{"--log-level", "verbose"}, nil, `asi1d serve: --log-level "verbose": want one of trace, debug, info, warn, error`},
		{[]string{"--log-format", "xml"}, nil, `asi1d serve: --log-format "xml": want one of text, json`},
		{[]string{"--flash-attn", "maybe"}, nil, `asi1d serve: --flash-attn "maybe": want one of auto, on, off`},
		{[]string{"--playground=perhaps"}, nil, `asi1d serve: --playground "perhaps": want true or false`},
		{[]string{"--drain-timeout", "soon"}, nil, `asi1d serve: --drain-timeout "soon": want a duration such as 500ms, 30s, 5m or 1h30m`},
		{[]string{"--step-latency", "fast"}, nil, `asi1d serve: --step-latency "fast": want a number`},
		{[]string{"--session-max-bytes", "lots"}, nil, `asi1d serve: --session-max-bytes "lots": want a size such as 512MiB or 8GiB`},
		{nil, map[string]string{"ASI1D_CTX": "abc"}, `asi1d serve: ASI1D_CTX="abc": want an integer`},
		{nil, map[string]string{"ASI1D_LOG_LEVEL": "verbose"}, `asi1d serve: ASI1D_LOG_LEVEL="verbose": want one of trace, debug, info, warn, error`},
		{nil, map[string]string{"ASI1D_KEEP_ALIVE": "1 hour"}, `asi1d serve: ASI1D_KEEP_ALIVE="1 hour": want a duration such as 500ms, 30s, 5m or 1h30m`},
		{[]string{"--parallel", "-1"}, nil, `asi1d serve: --parallel must be 1..256, or 0 for the default, got -1`},
	}
	for _, c := range cases {
		code, _, errb := runOut(t, c.env, append([]string{"serve"}, c.args...)...)
		if line := oneLine(t, strings.Join(c.args, " "), errb); code != 2 || line != c.want {
			t.Errorf("%v %v: code %d\n got %q\nwant %q", c.args, c.env, code, line, c.want)
		}
	}
	code, _, errb := runOut(t, map[string]string{"ASI1D_CHAT_TEMPERATURE": "warm"}, "chat", "hi")
	if line := oneLine(t, "chat", errb); code != 2 || line != `asi1d chat: ASI1D_CHAT_TEMPERATURE="warm": want a number` {
		t.Errorf("chat: code %d, %q", code, line)
	}
	code, _, errb = runOut(t, nil, "bench", "compare", "--log-level", "loud")
	if line := oneLine(t, "bench", errb); code != 2 || !strings.Contains(line, `--log-level "loud": want one of trace, debug`) {
		t.Errorf("bench compare: code %d, %q", code, line)
	}
}

// The short aliases set the same fields as the long names; one dash or two
// both work; an alias given on the command line beats the variable.
func TestShortAliases(t *testing.T) {
	env := map[string]string{"ASI1D_CTX": "999", "ASI1D_THREADS": "7"}
	c, err := parseServe([]string{"-m", "x.gguf", "-a", "127.0.0.1:9", "-c", "2048", "-np", "2", "-t", "3", "-ngl", "5", "-b", "64", "--log-level=TRACE"},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "x.gguf" || c.Addr != "127.0.0.1:9" || c.Ctx != 2048 || c.Parallel != 2 || c.Threads != 3 || c.GPULayers != 5 || c.Batch != 64 || c.LogLevel != "trace" {
		t.Fatalf("aliases: %+v", c)
	}
	c, err = parseServe([]string{"-model", "y.gguf", "--parallel", "8", "-ctx=1024"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "y.gguf" || c.Parallel != 8 || c.Ctx != 1024 || c.Threads != 7 {
		t.Fatalf("dashes: %+v", c)
	}
	cc, err := parseChat([]string{"-u", "http://h:1", "-m", "mid", "-s", "be brief", "q"}, noenv, &bytes.Buffer{})
	if err != nil || cc.URL != "http://h:1" || cc.Model != "mid" || cc.System != "be brief" || cc.Question != "q" {
		t.Fatalf("chat aliases: %+v %v", cc, err)
	}
}

// serve -h is grouped, one line a flag, within 100 columns and 70 lines;
// --help-all lists the same flags with their whole text.
func TestServeHelp(t *testing.T) {
	code, out, _ := runOut(t, nil, "serve", "-h")
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > 70 {
		t.Errorf("serve -h has %d lines", len(lines))
	}
	flags := 0
	for _, l := range lines {
		if len(l) > 100 {
			t.Errorf("line over 100 columns: %q", l)
		}
		if strings.HasPrefix(l, "  -") {
			flags++
		}
	}
	for _, g := range []string{"Model:", "Serving:", "Limits:", "Network, auth and TLS:", "Logging:", "Sessions:"} {
		if !strings.Contains(out, "\n"+g+"\n") {
			t.Errorf("no group %q", g)
		}
	}
	for _, f := range []string{"-m, --model FILE", "-np, --parallel N", "-c, --ctx N", "-a, --addr HOST:PORT", "-t, --threads N", "--log-level LEVEL"} {
		if !strings.Contains(out, "  "+f+" ") {
			t.Errorf("no %q", f)
		}
	}
	if strings.Contains(out, "Other:") {
		t.Errorf("a serve flag is in no group:\n%s", out[strings.Index(out, "Other:"):])
	}
	code, all, _ := runOut(t, nil, "serve", "--help-all")
	allFlags := 0
	for _, l := range strings.Split(all, "\n") {
		if strings.HasPrefix(l, "  -") {
			allFlags++
		}
	}
	if code != 0 || allFlags != flags || flags < 40 || !strings.Contains(all, "env ASI1D_STEP_TOKENS") {
		t.Errorf("--help-all: code %d, %d flags, -h %d", code, allFlags, flags)
	}
}

func TestServeURLs(t *testing.T) {
	cases := []struct {
		addr, ln        string
		tls, playground bool
		api, page       string
		all             bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", false, true, "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/", false},
		{"127.0.0.1:0", "127.0.0.1:41234", true, false, "https://127.0.0.1:41234/v1", "", false},
		{"0.0.0.0:8080", "[::]:8080", false, true, "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/", true},
		{":8080", "[::]:8080", false, false, "http://127.0.0.1:8080/v1", "", true},
		{"[::]:9", "[::]:9", true, true, "https://[::1]:9/v1", "https://[::1]:9/", true},
		{"myhost:8080", "10.0.0.1:8080", false, false, "http://myhost:8080/v1", "", false},
	}
	for _, c := range cases {
		api, page, all := serveURLs(c.addr, c.ln, c.tls, c.playground)
		if api != c.api || page != c.page || all != c.all {
			t.Errorf("%s (%s): %q %q %v, want %q %q %v", c.addr, c.ln, api, page, all, c.api, c.page, c.all)
		}
	}
}

// syncBuf is a writer serve logs to while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts with one info line that has the URLs, the model, the
// context per request and the parallel sequences; llama.cpp's load
// chatter and the load's progress stay at debug.
func TestStartLine(t *testing.T) {
	model := testmodel.Path(t, testmodel.Stories260K)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb syncBuf
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-m", model, "-a", "127.0.0.1:0", "-c", "512", "-np", "2"}, &bytes.Buffer{}, &errb, noenv)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "msg=\"serving ") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line:\n%s", errb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, errb.String())
	}
	var serving []string
	for _, l := range strings.Split(errb.String(), "\n") {
		if strings.Contains(l, "msg=\"serving ") {
			serving = append(serving, l)
		}
		if strings.Contains(l, "src=llama.cpp") || strings.Contains(l, "progress=") || strings.Contains(l, "msg=system") {
			t.Errorf("load chatter at info: %s", l)
		}
	}
	if len(serving) != 1 {
		t.Fatalf("serving lines: %q", serving)
	}
	for _, want := range []string{`msg="serving http://127.0.0.1:`, "/v1, playground http://127.0.0.1:", " api=http://127.0.0.1:",
		" model=stories260K ", " ctx_per_request=512 ", " parallel=2 ", " auth=off"} {
		if !strings.Contains(serving[0], want) {
			t.Errorf("serving line without %q: %s", want, serving[0])
		}
	}
}
