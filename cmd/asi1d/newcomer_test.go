//go:build integration

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil"
	"github.com/asi1d/asi1d/internal/testutil/fleettest"
	"github.com/asi1d/asi1d/server/api"
)

// readmeQuickstart returns the commands of the README's first shell block
// (its quickstart): a newcomer types them first.
func readmeQuickstart(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```(?:sh|bash|shell)\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no shell block")
	}
	var cmds []string
	for _, l := range strings.Split(string(m[1]), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// TestFreshClone does what a newcomer does: clone the repository into an
// empty folder (no ../shared beside it), run the README's first command
// (`make run`) and ask the server a question with the model name ASI1 clients
// send. Twice: the first run builds (cold for the clone's own packages), the
// second finds the build done (warm). It reports both times from the command
// to the first answer.
func TestFreshClone(t *testing.T) {
	if !testutil.InCI() && os.Getenv("ASI1D_TEST_FRESH_CLONE") == "" {
		t.Skip("builds asi1d in a fresh clone (minutes); set ASI1D_TEST_FRESH_CLONE=1 to run it (CI does)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed to clone the repository")
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("not in a git checkout: %v", err)
	}
	root := strings.TrimSpace(string(top))
	cmds := readmeQuickstart(t, root)
	if len(cmds) == 0 || cmds[len(cmds)-1] != "make run" {
		t.Fatalf("the README's quickstart block %q does not end with make run", cmds)
	}
	clone := filepath.Join(t.TempDir(), "empty", "asi1d")
	if out, err := exec.Command("git", "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	for _, run := range []string{"cold", "warm"} {
		took, answer := makeRunAndAsk(t, clone)
		t.Logf("fresh clone, %s: make run to the first answer in %v; the answer: %q", run, took.Round(100*time.Millisecond), answer)
	}
}

// makeRunAndAsk starts `make run` in dir, waits for the server's start-up
// line, asks one question and stops the server. It returns the time from the
// command to the answer.
func makeRunAndAsk(t *testing.T, dir string) (time.Duration, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "run")
	cmd.Dir = dir
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ASI1D_") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "ASI1D_ADDR="+fleettest.FreeAddr(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// make, the build and the server share a process group; stop them all.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	var log syncBuffer
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		re := regexp.MustCompile(`serving (https?://\S+?)/v1[ ,"]`)
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var base string
	select {
	case base = <-urlc:
	case err := <-done:
		t.Fatalf("make run ended before serving: %v; its output ended:\n%s", err, tail(log.String(), 40))
	case <-ctx.Done():
		t.Fatalf("make run did not print its URL within 25 minutes; its output ended:\n%s", tail(log.String(), 40))
	}
	body := `{"model":"asi1-mini","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":24}`
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans api.ChatCompletion
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, &ans) != nil || len(ans.Choices) != 1 || strings.TrimSpace(ans.Choices[0].Message.Text()) == "" {
		t.Fatalf("the first question: HTTP %d %s", resp.StatusCode, raw)
	}
	return time.Since(start), ans.Choices[0].Message.Text()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
