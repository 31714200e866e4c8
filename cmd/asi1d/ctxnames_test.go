package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/internal/testutil/testserver"
)

// TestServeDefaultContext serves stories260K (trained on 2,048 tokens)
// with the default flags: a request may use 2,048 tokens (1,024 before),
// the too-long error says how to raise the limit, the model is listed
// under its file name with the asi1-mini alias, and 16 short streams run
// at once.
func TestServeDefaultContext(t *testing.T) {
	t.Parallel()
	addr := fleettest.FreeAddr(t)
	base := "http://" + addr
	out := &syncBuffer{}
	p := startProc(t, out, "serve", "--model", testmodel.Path(t, testmodel.Stories260K), "--addr", addr, "--threads", "1")
	p.waitOK(t, base+"/health", 60*time.Second)
	defer func() {
		if err := p.stop(os.Interrupt, 30*time.Second); err != nil {
			t.Errorf("stop: %v\n%s", err, out)
		}
	}()
	rows := listModels(t, base)
	r, ok := rows["stories260K"]
	if !ok || len(rows) != 1 || strings.Join(r.Aliases, ",") != "asi1-mini" || r.ContextLength != 2048 {
		t.Fatalf("/v1/models: %+v", rows)
	}
	if !strings.Contains(out.String(), "ctx_per_request=2048") || !strings.Contains(out.String(), "pool_cells=4096") {
		t.Errorf("the start-up log does not say how the context was sized:\n%s", out)
	}
	// About 1,500 tokens of prompt: over the old limit of 1,024.
	long := strings.Repeat("Once upon a time there was a little girl. ", 150)
	code, body := postChatMsg(base, "asi1-mini", long, 4)
	var c struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &c) != nil || c.Usage.PromptTokens <= 1024 || c.Usage.PromptTokens >= 2048 {
		t.Fatalf("a prompt of about 1,500 tokens: %d %s", code, body)
	}
	code, body = postChatMsg(base, "stories260K", long+long, 4)
	if code != 400 || !strings.Contains(body, "context_length_exceeded") || !strings.Contains(body, "maximum context length is 2048") || !strings.Contains(body, "--ctx") {
		t.Fatalf("a prompt over 2,048 tokens: %d %s", code, body)
	}
	code, body = postChatMsg(base, "gpt-4", "hi", 4)
	if code != 404 || !strings.Contains(body, "stories260K (aliases: asi1-mini)") {
		t.Fatalf("unknown model: %d %s", code, body)
	}

	// 16 short streams at once: the scheduler runs them all (its gauge).
	ts := &testserver.Server{URL: base}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := fmt.Sprintf(`{"model":"asi1-mini","messages":[{"role":"user","content":"Tell story %d"}],"max_tokens":200,"logit_bias":{"2":-100}}`, i)
			resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(b))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Sprintf("stream %d: %d", i, resp.StatusCode)
			}
		}()
	}
	peak := 0.0
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		default:
			v, _ := ts.Metric(t, "asi1_requests_running")
			peak = max(peak, v)
			if peak >= 16 {
				<-done
				waiting = false
			}
		}
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if peak != 16 {
		t.Errorf("at most %v streams ran at once, want 16", peak)
	}
}

func postChatMsg(base, model, content string, maxTokens int) (int, string) {
	b, _ := json.Marshal(map[string]any{"model": model, "max_tokens": maxTokens,
		"messages": []map[string]string{{"role": "user", "content": content}}})
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(string(b)))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		sb.WriteString(sc.Text())
	}
	return resp.StatusCode, sb.String()
}

// TestServeModelsDirRescan: asi1-mini names the default model of a folder,
// and files added, replaced and removed while serving show up without a
// restart; a request running on a removed model completes.
func TestServeModelsDirRescan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(testmodel.Path(t, testmodel.Stories260K))
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string) {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil { // in place at once, as a copy should be
			t.Fatal(err)
		}
	}
	put("a.gguf")
	addr := fleettest.FreeAddr(t)
	base := "http://" + addr
	out := &syncBuffer{}
	p := startProc(t, out, "serve", "--models-dir", dir, "--addr", addr, "--threads", "1", "--rescan", "50ms")
	p.waitOK(t, base+"/health", 60*time.Second)
	defer func() {
		if err := p.stop(os.Interrupt, 30*time.Second); err != nil {
			t.Errorf("stop: %v\n%s", err, out)
		}
	}()
	if r := listModels(t, base)["a"]; strings.Join(r.Aliases, ",") != "asi1-mini" || r.ContextLength != 2048 {
		t.Fatalf("a: %+v", r)
	}
	if code, body := postChatMsg(base, "asi1-mini", "hi", 4); code != 200 {
		t.Fatalf("asi1-mini: %d %s", code, body)
	}
	waitList := func(what string, cond func(map[string]modelRow) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond(listModels(t, base)) {
			if time.Now().After(deadline) {
				t.Fatalf("the rescan did not %s:\n%s", what, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	put("b.gguf")
	waitList("add b", func(m map[string]modelRow) bool { _, ok := m["b"]; return ok })
	// A stream on b whose answer the client does not read yet: the handler
	// holds b while it waits to write, so b's removal must wait for it.
	body := `{"model":"b","stream":true,"max_tokens":1500,"logit_bias":{"2":-100},"messages":[{"role":"user","content":"Once"}]}`
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream on b: %v %v", err, resp)
	}
	defer resp.Body.Close()
	if err := os.Remove(filepath.Join(dir, "b.gguf")); err != nil {
		t.Fatal(err)
	}
	waitList("remove b", func(m map[string]modelRow) bool { _, ok := m["b"]; return !ok })
	if code, body := postChatMsg(base, "b", "hi", 4); code != 404 || !strings.Contains(body, "a (aliases: asi1-mini)") {
		t.Fatalf("removed b: %d %s", code, body)
	}
	sc := bufio.NewScanner(resp.Body)
	last, finish := "", ""
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			last = l
			if strings.Contains(l, `"finish_reason":"`) {
				finish = l
			}
		}
	}
	if last != "data: [DONE]" || !strings.Contains(finish, `"finish_reason":"length"`) {
		t.Fatalf("the stream on the removed b did not complete: last %q finish %q", last, finish)
	}
	// a is replaced (a new file under the same name): served again.
	put("a.gguf")
	later := time.Now().Add(time.Hour) // another version even where the clock is coarse
	if err := os.Chtimes(filepath.Join(dir, "a.gguf"), later, later); err != nil {
		t.Fatal(err)
	}
	waitList("replace a", func(m map[string]modelRow) bool { return m["a"].Status == "unloaded" })
	if code, body := postChatMsg(base, "asi1-mini", "hi", 4); code != 200 {
		t.Fatalf("asi1-mini after a's replacement: %d %s", code, body)
	}
	if !strings.Contains(out.String(), "models changed") {
		t.Errorf("no log of the changes:\n%s", out)
	}
}
