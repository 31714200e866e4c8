package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// streamResult is what one streaming client saw.
type streamResult struct {
	chunks int
	done   bool // [DONE] arrived
	err    error
	ended  time.Time
}

// kill -9 under streaming load, then a restart on the same address: every
// client ends (error or truncated stream) before its timeout, never hangs;
// requests sent while the server is down or loading are answered (refused
// connection, 503) before theirs; the restarted server is healthy in about
// the time a cold start takes and serves again.
func TestKill9UnderLoadThenRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	model := testmodel.Path(t, testmodel.Stories260K)
	addr := fleettest.FreeAddr(t)
	url := "http://" + addr
	args := []string{"serve", "--model", model, "--addr", addr, "--parallel", "4", "--ctx", "2048", "--threads", "1", "--log-level", "warn"}

	first := startProc(t, &syncBuffer{}, args...)
	cold := first.waitOK(t, url+"/health", 2*time.Minute)

	// Streaming load: 8 clients (4 running, 4 queued), long answers (EOS
	// banned), each with its own timeout.
	const clients, timeout = 8, 20 * time.Second
	results := make([]streamResult, clients)
	started := make(chan struct{}, clients)
	var wg sync.WaitGroup
	body := `{"model":"asi1-mini","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":400,"stream":true,"logit_bias":{"2":-100}}`
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			r := &results[i]
			var once sync.Once
			notify := func() { once.Do(func() { started <- struct{}{} }) }
			defer func() { r.ended = time.Now(); notify() }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				r.err = err
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				if !strings.HasPrefix(line, "data:") {
					continue
				}
				if strings.TrimSpace(strings.TrimPrefix(line, "data:")) == "[DONE]" {
					r.done = true
					return
				}
				r.chunks++
				notify()
			}
			r.err = sc.Err()
		}()
	}
	// Kill once the four running streams have sent tokens.
	for range 4 {
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Fatalf("streams did not start\n%s", first.out)
		}
	}
	killed := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited

	// While down: a request is refused at once, not left waiting.
	probe := func(what string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Errorf("%s: a request waited past its 5 s timeout", what)
		case err == nil:
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%s: HTTP %d", what, resp.StatusCode)
			}
		}
	}
	probe("server down")

	wg.Wait()
	var lastEnd time.Duration
	for i, r := range results {
		if r.done {
			t.Errorf("client %d got a complete stream from a killed server (%d chunks)", i, r.chunks)
		}
		if errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("client %d waited until its timeout: %v", i, r.err)
		}
		lastEnd = max(lastEnd, r.ended.Sub(killed))
		t.Logf("client %d: %d chunks, then %v", i, r.chunks, r.err)
	}

	second := startProc(t, &syncBuffer{}, args...)
	probe("server restarting")
	restart := second.waitOK(t, url+"/health", 2*time.Minute)
	t.Logf("cold start to /health 200: %v; restart after kill -9: %v (target: cold + 1 s); last client ended %v after the kill",
		cold.Round(time.Millisecond), restart.Round(time.Millisecond), lastEnd.Round(time.Millisecond))

	// Serving again.
	resp, err := http.Post(url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"asi1-mini","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"finish_reason"`)) {
		t.Fatalf("after restart: HTTP %d %s", resp.StatusCode, b)
	}
	// A clean stop after the restart.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.exited:
		if second.err != nil {
			t.Errorf("restarted server: exit %v\n%s", second.err, second.out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("restarted server did not stop on SIGTERM\n%s", second.out)
	}
}
