package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// proc is asi1d as a real process: this test binary run with asAsi1d set
// (TestMain), so the tests that kill, drain or restart a server need no
// second build. Its output goes to out, which may outlive it (a replica
// restarted keeps one log).
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	start  time.Time
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startProc starts asi1d with args; the test's cleanup kills it if it
// still runs.
func startProc(t *testing.T, out *syncBuffer, args ...string) *proc {
	t.Helper()
	p := launch(t, out, args...)
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// launch starts asi1d with args and leaves stopping it to the caller (a
// replica restarted inside a subtest outlives that subtest).
func launch(t *testing.T, out *syncBuffer, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asAsi1d+"=1")
	cmd.Stdout, cmd.Stderr = out, out
	p := &proc{cmd: cmd, out: out, exited: make(chan struct{})}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start asi1d %v: %v", args, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p
}

// stop sends sig and waits at most within for the process to exit (then
// kills it); it returns the exit status.
func (p *proc) stop(sig os.Signal, within time.Duration) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("did not exit within %v of %v", within, sig)
	}
}

// waitOK polls url until it answers 200 and returns the time since the
// process started; it fails the test when the process exits first or
// limit passes.
func (p *proc) waitOK(t *testing.T, url string, limit time.Duration) time.Duration {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		select {
		case <-p.exited:
			t.Fatalf("asi1d exited before %s answered 200: %v\n%s", url, p.err, p.out)
		default:
		}
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.start)
			}
		}
		time.Sleep(5 * time.Millisecond) // polling an observable answer, not synchronising on time
	}
	t.Fatalf("%s did not answer 200 within %v\n%s", url, limit, p.out)
	return 0
}

// syncBuffer is a bytes.Buffer that a process's output and the test may
// use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
