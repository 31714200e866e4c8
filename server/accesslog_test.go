package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/server"
)

// lockedBuf is a log sink the handlers write to while the test reads.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) lines(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const accessKey = "sk-access-log-secret-4711"

// One access-log line per request, with the method, path, status,
// latency, model, token counts, request id, the key's fingerprint (never
// the key) and the client address; probes only at debug.
func TestAccessLogText(t *testing.T) {
	var buf lockedBuf
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{accessKey},
		Logger: slog.New(slog.NewTextHandler(&buf, nil))}})
	r := e.chat(ctBody("hello", nil), "Authorization", "Bearer "+accessKey)
	if r.status != http.StatusOK {
		t.Fatalf("chat: %d %s", r.status, r.body)
	}
	var c ctCompletion
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatal(err)
	}
	if h := e.do("GET", "/health", ""); h.status != http.StatusOK {
		t.Fatalf("health %d", h.status)
	}
	e.do("GET", "/v1/models", "") // no key: 401
	ctWait(t, "two access-log lines", func() bool { return len(buf.lines("msg=request")) >= 2 })
	lines := buf.lines("msg=request")
	if len(lines) != 2 {
		t.Fatalf("want 2 request lines (chat, 401; /health is debug), got:\n%s", buf.String())
	}
	chat := lines[0]
	for _, want := range []string{"level=INFO", "method=POST", "path=/v1/chat/completions", "status=200", " ms=",
		"model=" + c.Model, "prompt_tokens=" + strconv.Itoa(c.Usage.PromptTokens),
		"completion_tokens=" + strconv.Itoa(c.Usage.CompletionTokens),
		"request_id=" + c.ID, "key=" + server.KeyID(accessKey), "client=127.0.0.1"} {
		if !strings.Contains(chat, want) {
			t.Errorf("chat line without %q: %s", want, chat)
		}
	}
	if !strings.Contains(lines[1], "status=401") || !strings.Contains(lines[1], "path=/v1/models") || strings.Contains(lines[1], "key=") {
		t.Errorf("401 line: %s", lines[1])
	}
	if strings.Contains(buf.String(), accessKey) || strings.Contains(buf.String(), "4711") {
		t.Fatalf("the key is in the log:\n%s", buf.String())
	}
}

func TestAccessLogJSON(t *testing.T) {
	var buf lockedBuf
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{accessKey},
		Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	r := e.chat(ctBody("hello", map[string]any{"stream": true}), "Authorization", "Bearer "+accessKey)
	if r.status != http.StatusOK {
		t.Fatalf("chat: %d %s", r.status, r.body)
	}
	e.do("GET", "/ready", "")
	ctWait(t, "two access-log lines", func() bool { return len(buf.lines(`"msg":"request"`)) >= 2 })
	lines := buf.lines(`"msg":"request"`)
	if len(lines) != 2 {
		t.Fatalf("want 2 request lines, got:\n%s", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"method", "path", "status", "ms", "model", "prompt_tokens", "completion_tokens", "request_id", "key", "client"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("no %q in %s", k, lines[0])
		}
	}
	if rec["key"] != server.KeyID(accessKey) || rec["status"] != float64(200) || rec["completion_tokens"].(float64) < 1 {
		t.Errorf("record %v", rec)
	}
	if !strings.Contains(lines[1], `"level":"DEBUG"`) || !strings.Contains(lines[1], `"path":"/ready"`) {
		t.Errorf("probe line: %s", lines[1])
	}
	if strings.Contains(buf.String(), accessKey) {
		t.Fatal("the key is in the log")
	}
}

// Every GET route answers HEAD with the same status and headers and no
// body.
func TestHeadEveryGetRoute(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{Playground: true}})
	eng, ok := e.srv.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("handler %T", e.srv.Handler())
	}
	heads := map[string]bool{}
	var gets []string
	for _, r := range eng.Routes() {
		switch r.Method {
		case http.MethodHead:
			heads[r.Path] = true
		case http.MethodGet:
			gets = append(gets, r.Path)
		}
	}
	if len(gets) < 7 {
		t.Fatalf("GET routes: %v", gets)
	}
	model := e.complete(ctBody("x", nil)).Model
	for _, p := range gets {
		if !heads[p] {
			t.Errorf("GET %s has no HEAD", p)
			continue
		}
		path := strings.NewReplacer(":id", model, ":file", "app.js").Replace(p)
		get := e.do("GET", path, "")
		head := e.do("HEAD", path, "")
		if get.status != head.status || head.status == http.StatusNotFound || head.status == http.StatusMethodNotAllowed {
			t.Errorf("%s: GET %d, HEAD %d", path, get.status, head.status)
		}
		if len(head.body) != 0 {
			t.Errorf("HEAD %s has a body: %q", path, head.body)
		}
		for _, h := range []string{"Content-Type", "X-Request-Id", "Cache-Control", "Content-Security-Policy"} {
			if (get.header.Get(h) == "") != (head.header.Get(h) == "") || h == "Content-Type" && get.header.Get(h) != head.header.Get(h) {
				t.Errorf("%s %s: GET %q, HEAD %q", path, h, get.header.Get(h), head.header.Get(h))
			}
		}
		if p != "/metrics" && head.header.Get("Content-Length") != strconv.Itoa(len(get.body)) {
			t.Errorf("%s: HEAD Content-Length %q, GET body %d bytes", path, head.header.Get("Content-Length"), len(get.body))
		}
	}
}
