package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/internal/testutil/testserver"
)

// TestMain lets the tests run this binary as asi1d itself (as a child
// process, on a pseudo-terminal or a pipe): with ASI1D_TEST_AS_ASI1D=1 it
// is main.
// asi1d is a command that runs this test binary as asi1d with args.
func asi1d(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), asAsi1d+"=1")
	return cmd
}

// recorder forwards to the real server and keeps every chat request body.
type recorder struct {
	mu     sync.Mutex
	bodies []chatBodyRec
}

type chatBodyRec struct {
	Model       string              `json:"model"`
	Messages    []map[string]string `json:"messages"`
	Temperature *float64            `json:"temperature"`
	MaxTokens   *int                `json:"max_tokens"`
	Stream      bool                `json:"stream"`
	Options     map[string]any      `json:"stream_options"`
}

func (r *recorder) last(t *testing.T) chatBodyRec {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		t.Fatal("no chat request recorded")
	}
	return r.bodies[len(r.bodies)-1]
}

func proxy(t *testing.T, target string) (string, *recorder) {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rec := &recorder{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" {
			b, _ := io.ReadAll(r.Body)
			var body chatBodyRec
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("request body %s: %v", b, err)
			}
			rec.mu.Lock()
			rec.bodies = append(rec.bodies, body)
			rec.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, rec
}

// terminal is a child process on a pseudo-terminal and what it printed.
type terminal struct {
	t    *testing.T
	pty  *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	more chan struct{} // signalled when output arrives
	mark int           // expect looks at the output after this offset
	done chan struct{} // closed when the reader ends
}

func startTerminal(t *testing.T, ctx context.Context, args ...string) *terminal {
	cmd := asi1d(ctx, args...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, pty: f, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() { // owned by the test: ends when the pty closes
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			select {
			case term.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f.Close()
		<-term.done
	})
	return term
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// expect waits until the output after the mark, without ANSI styles and
// carriage returns, contains s; the mark then moves past it.
func (term *terminal) expect(s string) {
	term.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		term.mu.Lock()
		plain := strings.ReplaceAll(ansi.ReplaceAllString(term.out.String(), ""), "\r", "")
		term.mu.Unlock()
		if i := strings.Index(plain[term.mark:], s); i >= 0 {
			term.mark += i + len(s)
			return
		}
		select {
		case <-term.more:
		case <-term.done:
			term.mu.Lock()
			ended := !strings.Contains(strings.ReplaceAll(ansi.ReplaceAllString(term.out.String(), ""), "\r", "")[term.mark:], s)
			term.mu.Unlock()
			if ended {
				term.t.Fatalf("the program ended before printing %q; it printed:\n%s", s, plain)
			}
		case <-timeout:
			term.t.Fatalf("waiting for %q; the terminal shows:\n%s", s, plain[term.mark:])
		}
	}
}

func (term *terminal) typeText(s string) {
	term.t.Helper()
	if _, err := term.pty.WriteString(s); err != nil {
		term.t.Fatal(err)
	}
}

// wait waits for the program to exit and returns its exit code.
func (term *terminal) wait() int {
	term.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- term.cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			term.t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		term.t.Fatalf("the program did not exit; it printed:\n%s", term.out.String())
		return -1
	}
}

// asi1d chat as a person uses it, on a terminal, against the real server:
// typed messages and streamed answers, multi-line input, commands, the
// conversation kept between turns, Ctrl-C in the middle of an answer (the
// answer stops, the server cancels it, the program goes on) and Ctrl-D.
func TestChatTerminal(t *testing.T) {
	srv := testserver.Start(t, testmodel.Path(t, testmodel.Stories260K), testserver.Options{NoPlayground: true})
	base, rec := proxy(t, srv.URL)
	const prompt = "Once upon a time"
	want6 := strings.TrimSpace(testserver.Greedy(t, srv.URL, prompt, 6))
	want20 := strings.TrimSpace(testserver.Greedy(t, srv.URL, prompt, 20))
	if want6 == "" || !strings.HasPrefix(want20, want6) {
		t.Fatalf("greedy answers %q, %q", want6, want20)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	term := startTerminal(t, ctx, "chat", "--url", base, "--max-tokens", "20")
	term.expect("model asi1-mini")
	term.expect("> ")

	// A streamed answer, with /temperature and /system applied.
	term.typeText("/temperature 0\n")
	term.expect("(temperature 0)")
	term.typeText(prompt + "\n")
	term.expect(want20)
	term.expect("[20 tokens")
	term.expect("finish length]")
	term.expect("> ")
	b := rec.last(t)
	if b.Model != "asi1-mini" || b.Temperature == nil || *b.Temperature != 0 || b.MaxTokens == nil || *b.MaxTokens != 20 || !b.Stream || len(b.Messages) != 1 {
		t.Errorf("first request %+v", b)
	}

	// The conversation is kept: the next request carries the first turn.
	term.typeText("Tell me more\n")
	term.expect("[20 tokens")
	if b := rec.last(t); len(b.Messages) != 3 || b.Messages[1]["role"] != "assistant" || strings.TrimSpace(b.Messages[1]["content"]) != want20 || b.Messages[2]["content"] != "Tell me more" {
		t.Errorf("the second request does not carry the first turn: %+v", b.Messages)
	}

	// Ctrl-C in the middle of an answer: hold the server's loop after 6
	// tokens, see them, press Ctrl-C.
	term.typeText("/clear\n")
	term.expect("(conversation cleared)")
	srv.Gate.Hold(6)
	term.typeText(prompt + "\n")
	term.expect(want6)
	term.typeText("\x03")
	term.expect("[stopped]")
	term.expect("> ")
	srv.WaitMetric(t, `asi1_requests_total{endpoint="/v1/chat/completions",model="asi1-mini",status="499"}`, 1)
	srv.Gate.Open()
	srv.WaitMetric(t, `asi1_requests_finished_total{finish_reason="cancelled"}`, 1)

	// Still running: a multi-line message (trailing backslash, then a
	// """ block) with a system prompt, after /clear.
	term.typeText("/clear\n")
	term.expect("(conversation cleared)")
	term.typeText("/system Be brief.\n")
	term.expect("(system prompt set)")
	term.typeText("first \\\nsecond\n")
	term.expect("[20 tokens")
	term.typeText("\"\"\"\nthird\n\nfourth\n\"\"\"\n")
	term.expect("[20 tokens")
	b = rec.last(t)
	got := []string{}
	for _, m := range b.Messages {
		got = append(got, m["role"]+":"+m["content"])
	}
	if len(got) != 4 || got[0] != "system:Be brief." || got[1] != "user:first \nsecond" || !strings.HasPrefix(got[2], "assistant:") || got[3] != "user:third\n\nfourth" {
		t.Errorf("messages after /clear and multi-line input: %q", got)
	}

	// Ctrl-D leaves.
	term.expect("> ")
	term.typeText("\x04")
	if code := term.wait(); code != 0 {
		t.Errorf("exit code %d after Ctrl-D", code)
	}
}

// Two Ctrl-C at an empty prompt leave; one does not.
func TestChatTerminalCtrlCTwice(t *testing.T) {
	srv := testserver.Start(t, testmodel.Path(t, testmodel.Stories260K), testserver.Options{NoPlayground: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	term := startTerminal(t, ctx, "chat", "--url", srv.URL)
	term.expect("> ")
	term.typeText("\x03")
	term.expect("Ctrl-C again or Ctrl-D to leave")
	term.expect("> ")
	term.typeText("\x03")
	if code := term.wait(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// The one-shot mode in a pipe prints only the answer, plainly, for a
// question in the arguments or on standard input.
func TestChatOneShot(t *testing.T) {
	srv := testserver.Start(t, testmodel.Path(t, testmodel.Stories260K), testserver.Options{NoPlayground: true})
	const prompt = "Once upon a time"
	want := testserver.Greedy(t, srv.URL, prompt, 12)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, how := range []string{"args", "stdin"} {
		t.Run(how, func(t *testing.T) {
			args := []string{"chat", "--url", srv.URL + "/v1", "--temperature", "0", "--max-tokens", "12"}
			cmd := asi1d(ctx)
			if how == "args" {
				cmd.Args = append(cmd.Args, append(args, prompt)...)
			} else {
				cmd.Args = append(cmd.Args, args...)
				cmd.Stdin = strings.NewReader(prompt + "\n")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			if string(out) != want+"\n" {
				t.Errorf("printed %q, want %q", out, want+"\n")
			}
		})
	}

	// An error is the server's message on stderr and exit code 1.
	cmd := asi1d(ctx, "chat", "--url", srv.URL, "--model", "nope", "hi")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "404 model_not_found (model): The model 'nope' does not exist") || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("err %v, stdout %q, stderr %q", err, out, stderr.String())
	}
}

// Flags and ASI1D_CHAT_* variables: a flag wins, a bad value is an error
// that names the variable.
func TestParseChat(t *testing.T) {
	env := map[string]string{"ASI1D_CHAT_URL": "http://env:1", "ASI1D_CHAT_MODEL": "m-env", "ASI1D_CHAT_API_KEY": "k", "ASI1D_MODEL": "file.gguf"}
	c, err := parseChat([]string{"--model", "m-flag", "what", "is", "it"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.URL != "http://env:1" || c.Model != "m-flag" || c.APIKey != "k" || c.Question != "what is it" || c.Temperature != -1 || c.MaxTokens != 0 {
		t.Errorf("config %+v, %v", c, err)
	}
	_, err = parseChat(nil, func(k string) string { return map[string]string{"ASI1D_CHAT_MAX_TOKENS": "many"}[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ASI1D_CHAT_MAX_TOKENS") {
		t.Errorf("bad variable: %v", err)
	}
	for _, args := range [][]string{{"--temperature", "3"}, {"--max-tokens", "-1"}, {"--url", ""}} {
		if _, err := parseChat(args, noenv, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"chat", "-h"}, &out, &errb, noenv); code != 0 || !strings.Contains(out.String(), `"""`) || !strings.Contains(out.String(), "-u, --url URL") {
		t.Errorf("chat -h: code %d, %s", code, out.String())
	}
}
