package server_test

// A walk through shared/ASI1-API.md, section by section, against the real
// server (routes, middleware, handlers, scheduler) over HTTP, with the
// deterministic fake backend of engine/enginetest underneath. The fake has
// no chat template, so prompts follow the plain rule: contents joined with
// "\n", BOS prepended, one token per byte. The validator's own table tests
// live in request_test.go; here only a representative handful goes through
// HTTP. Streaming, generation rules and limits are in
// contract_stream_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

// ---------------------------------------------------------------------------
// Harness

// ctConfig configures one server under test; zero values take defaults.
type ctConfig struct {
	parallel, ctx, nbatch int
	maxQueue              int
	stepDelay             time.Duration
	next                  func([]engine.Token) engine.Token
	failDecode            func([]engine.BatchEntry) error
	opts                  server.Options
	aliases               []string
	noModel               bool
	// think makes the model report <think>/</think> as special tokens, so
	// the server splits reasoning from the answer.
	think bool
	// setup, when set, prepares the fake before the model loads (SetSpecial).
	setup func(*enginetest.Fake)
}

type ctEnv struct {
	t     *testing.T
	srv   *server.Server
	stk   *stack.Stack
	fake  *enginetest.Fake
	sched *scheduler.Scheduler
	reg   *prometheus.Registry
	url   string
}

var ctQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// ctThinkTok is the fake with <think> tags among its special tokens.
type ctThinkTok struct{ *enginetest.Fake }

func (f ctThinkTok) Info() engine.Info {
	info := f.Fake.Info()
	sp := map[string]engine.Token{"<think>": 2, "</think>": 3}
	for k, v := range info.SpecialTokens {
		sp[k] = v
	}
	info.SpecialTokens = sp
	return info
}

func ctStart(t *testing.T, cfg ctConfig) *ctEnv {
	t.Helper()
	if cfg.parallel == 0 {
		cfg.parallel = 2
	}
	if cfg.ctx == 0 {
		cfg.ctx = 256
	}
	if cfg.nbatch == 0 {
		cfg.nbatch = 64
	}
	fake := enginetest.New(cfg.parallel, cfg.ctx, cfg.nbatch)
	fake.StepDelay = cfg.stepDelay
	fake.Next = cfg.next
	fake.FailDecode = cfg.failDecode
	if cfg.setup != nil {
		cfg.setup(fake)
	}
	reg := prometheus.NewRegistry()
	o := cfg.opts
	o.Registry = reg
	if o.Logger == nil {
		o.Logger = ctQuiet
	}
	so := stack.Options{
		Server:    o,
		Scheduler: scheduler.Options{MaxQueue: cfg.maxQueue, Logger: ctQuiet},
		Open:      func() (engine.Backend, error) { return fake, nil },
		Aliases:   cfg.aliases,
	}
	if cfg.think {
		so.Tokenizer = func(engine.Backend) server.Tokenizer { return ctThinkTok{fake} }
	}
	stk := stack.New(so)
	if !cfg.noModel {
		if err := stk.Load(); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(stk.Server.Handler())
	t.Cleanup(func() {
		hs.CloseClientConnections()
		stk.Unload()
		hs.Close()
	})
	return &ctEnv{t: t, srv: stk.Server, stk: stk, fake: fake, sched: stk.Sched, reg: reg, url: hs.URL}
}

type ctResp struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. hdr holds header name/value pairs; a POST gets
// Content-Type application/json unless hdr sets it ("" removes it).
func (e *ctEnv) do(method, path, body string, hdr ...string) ctResp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return ctResp{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *ctEnv) chat(body any, hdr ...string) ctResp {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(http.MethodPost, "/v1/chat/completions", string(b), hdr...)
}

// ctBody is a greedy chat request for one user message, with extra fields
// merged in (a nil value deletes the field).
func ctBody(prompt string, extra map[string]any) map[string]any {
	b := map[string]any{
		"model": "asi1-mini", "temperature": 0,
		"messages": []any{map[string]any{"role": "user", "content": prompt}},
	}
	for k, v := range extra {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

// ctObj decodes a JSON object keeping numbers as json.Number.
func ctObj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}

// ctInt returns v as an int, failing unless it is a JSON integer.
func ctInt(t *testing.T, what string, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(n.String(), ".eE") {
		t.Fatalf("%s = %#v, want a JSON integer", what, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return i
}

// ctCompletion is a non-streamed answer as the tests read it.
type ctCompletion struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Thought []string
	Choices []struct {
		Message struct {
			Role             string  `json:"role"`
			Content          *string `json:"content"`
			ReasoningContent string  `json:"reasoning_content"`
		} `json:"message"`
		Logprobs *struct {
			Content []ctLogprob `json:"content"`
		} `json:"logprobs"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type ctLogprob struct {
	Token       string  `json:"token"`
	Logprob     float64 `json:"logprob"`
	Bytes       []int   `json:"bytes"`
	TopLogprobs []struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
		Bytes   []int   `json:"bytes"`
	} `json:"top_logprobs"`
}

func (c ctCompletion) content() string {
	if len(c.Choices) == 0 || c.Choices[0].Message.Content == nil {
		return ""
	}
	return *c.Choices[0].Message.Content
}

// complete posts body and decodes a 200 answer.
func (e *ctEnv) complete(body any, hdr ...string) ctCompletion {
	e.t.Helper()
	r := e.chat(body, hdr...)
	if r.status != http.StatusOK {
		e.t.Fatalf("status %d: %s", r.status, r.body)
	}
	var c ctCompletion
	if err := json.Unmarshal(r.body, &c); err != nil {
		e.t.Fatalf("%v: %s", err, r.body)
	}
	if len(c.Choices) != 1 {
		e.t.Fatalf("choices: %s", r.body)
	}
	return c
}

// ctAnyParam tells ctError not to check param.
const ctAnyParam = "\x00any"

// ctError checks the contract's error answer (section 9): the status, JSON
// content type, x-request-id, exactly {"error":{message,type,param,code}}
// with a non-empty message, type and code as given, and param as given (nil
// for null, ctAnyParam for either).
func ctError(t *testing.T, r ctResp, status int, typ, code string, param any) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("error content-type %q", r.header.Get("Content-Type"))
	}
	if r.header.Get("x-request-id") == "" {
		t.Errorf("error without x-request-id")
	}
	top := ctObj(t, r.body)
	if len(top) != 1 {
		t.Fatalf("error body has keys %v, want only \"error\": %s", slices.Sorted(maps.Keys(top)), r.body)
	}
	e, ok := top["error"].(map[string]any)
	if !ok {
		t.Fatalf("error is not an object: %s", r.body)
	}
	if len(e) != 4 {
		t.Errorf("error has %d keys %v, want message, type, param, code", len(e), slices.Sorted(maps.Keys(e)))
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Errorf("error lacks %q: %s", k, r.body)
		}
	}
	if m, ok := e["message"].(string); !ok || m == "" {
		t.Errorf("message %#v", e["message"])
	}
	if e["type"] != typ {
		t.Errorf("type %#v, want %q: %s", e["type"], typ, r.body)
	}
	if e["code"] != code {
		t.Errorf("code %#v, want %q: %s", e["code"], code, r.body)
	}
	if param == ctAnyParam {
		if _, ok := e["param"].(string); !ok && e["param"] != nil {
			t.Errorf("param %#v, want a string or null", e["param"])
		}
	} else if param == nil {
		if e["param"] != nil {
			t.Errorf("param %#v, want null", e["param"])
		}
	} else if e["param"] != param {
		t.Errorf("param %#v, want %q", e["param"], param)
	}
	return e
}

// ctScript makes the fake answer prompt (a single user message, plain
// rule) with out, byte by byte, then EOS; other prompts get the default rule.
func ctScript(prompt, out string) func([]engine.Token) engine.Token {
	p := []engine.Token{enginetest.BOS}
	for i := 0; i < len(prompt); i++ {
		p = append(p, engine.Token(enginetest.ByteBase+int(prompt[i])))
	}
	return func(h []engine.Token) engine.Token {
		if len(h) < len(p) || !slices.Equal(h[:len(p)], p) {
			return enginetest.DefaultNext(h)
		}
		i := len(h) - len(p)
		if i >= len(out) {
			return enginetest.EOS
		}
		return engine.Token(enginetest.ByteBase + int(out[i]))
	}
}

// ctWait polls cond until it holds or a deadline passes.
func ctWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var ctIDRe = regexp.MustCompile(`^id_[A-Za-z0-9]{17}$`)

// ---------------------------------------------------------------------------
// Section 1: endpoints

func TestContract1Endpoints(t *testing.T) {
	e := ctStart(t, ctConfig{})
	t.Run("unknown path is 404 unknown_url", func(t *testing.T) {
		for _, p := range []string{"/", "/nope", "/v1", "/v1/chat", "/v1/completion", "/v2/models"} {
			ctError(t, e.do(http.MethodGet, p, ""), 404, "invalid_request_error", "unknown_url", nil)
		}
		ctError(t, e.do(http.MethodPost, "/v1/audio/speech", `{}`), 404, "invalid_request_error", "unknown_url", nil) // /v1/embeddings is served (embeddings.go)
	})
	t.Run("wrong method is 405 with Allow", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodGet, "/v1/chat/completions", "POST"},
			{http.MethodPut, "/v1/chat/completions", "POST"},
			{http.MethodGet, "/v1/completions", "POST"},
			{http.MethodPost, "/v1/models", "GET"},
			{http.MethodDelete, "/v1/models/asi1-mini", "GET"},
			{http.MethodPost, "/health", "GET"},
			{http.MethodPost, "/ready", "GET"},
			{http.MethodPost, "/metrics", "GET"},
		} {
			r := e.do(c.method, c.path, "")
			ctError(t, r, 405, "invalid_request_error", "method_not_allowed", nil)
			if !strings.Contains(r.header.Get("Allow"), c.allow) {
				t.Errorf("%s %s: Allow %q, want it to list %s", c.method, c.path, r.header.Get("Allow"), c.allow)
			}
		}
	})
	t.Run("every response has x-request-id", func(t *testing.T) {
		seen := map[string]bool{}
		for _, r := range []ctResp{
			e.do(http.MethodGet, "/health", ""),
			e.do(http.MethodGet, "/ready", ""),
			e.do(http.MethodGet, "/metrics", ""),
			e.do(http.MethodGet, "/v1/models", ""),
			e.do(http.MethodGet, "/v1/models/asi1-mini", ""),
			e.do(http.MethodGet, "/v1/models/none", ""),
			e.do(http.MethodGet, "/nope", ""),
			e.do(http.MethodGet, "/v1/chat/completions", ""),
			e.do(http.MethodPost, "/v1/chat/completions", "{", "Content-Type", "application/json"),
			e.chat(ctBody("hi", map[string]any{"max_tokens": 2})),
		} {
			id := r.header.Get("x-request-id")
			if id == "" || seen[id] {
				t.Errorf("status %d: x-request-id %q (empty or repeated)", r.status, id)
			}
			seen[id] = true
		}
	})
	t.Run("chat completion x-request-id equals the completion id", func(t *testing.T) {
		r := e.chat(ctBody("hi", map[string]any{"max_tokens": 3}))
		var c ctCompletion
		if err := json.Unmarshal(r.body, &c); err != nil {
			t.Fatal(err)
		}
		if c.ID == "" || r.header.Get("x-request-id") != c.ID {
			t.Fatalf("x-request-id %q, id %q", r.header.Get("x-request-id"), c.ID)
		}
		// Streamed: the header equals the id of every chunk.
		r = e.chat(ctBody("hi", map[string]any{"max_tokens": 3, "stream": true}))
		evs := ctParseSSE(t, r.body)
		for _, ev := range evs.chunks {
			if ev["id"] != r.header.Get("x-request-id") {
				t.Fatalf("chunk id %v, x-request-id %q", ev["id"], r.header.Get("x-request-id"))
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Section 2: authentication and request headers

func TestContract2Auth(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{"sk-one", "sk-two"}}})
	body, _ := json.Marshal(ctBody("hi", map[string]any{"max_tokens": 2}))
	chat := func(hdr ...string) ctResp {
		return e.do(http.MethodPost, "/v1/chat/completions", string(body), hdr...)
	}
	unauthorized := func(t *testing.T, r ctResp) {
		t.Helper()
		ctError(t, r, 401, "authentication_error", "invalid_api_key", nil)
		if r.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
	}
	t.Run("v1 needs a valid bearer key", func(t *testing.T) {
		for _, h := range []string{"", "Bearer", "Bearer ", "Bearer sk-three", "Basic sk-one", "sk-one", "Bearer sk-one extra", "Bearer sk-on"} {
			unauthorized(t, chat("Authorization", h))
			unauthorized(t, e.do(http.MethodGet, "/v1/models", "", "Authorization", h))
			unauthorized(t, e.do(http.MethodGet, "/v1/models/asi1-mini", "", "Authorization", h))
		}
	})
	t.Run("scheme is case-insensitive and every key works", func(t *testing.T) {
		for _, h := range []string{"Bearer sk-one", "bearer sk-two", "BEARER sk-one", "bEaReR  sk-two"} {
			if r := chat("Authorization", h); r.status != 200 {
				t.Errorf("%q: status %d %s", h, r.status, r.body)
			}
			if r := e.do(http.MethodGet, "/v1/models", "", "Authorization", h); r.status != 200 {
				t.Errorf("%q: models status %d", h, r.status)
			}
		}
	})
	t.Run("health, ready and metrics are open", func(t *testing.T) {
		for _, p := range []string{"/health", "/ready", "/metrics"} {
			if r := e.do(http.MethodGet, p, ""); r.status != 200 {
				t.Errorf("%s: status %d", p, r.status)
			}
		}
	})
	t.Run("auth is checked before the body", func(t *testing.T) {
		// A bad key wins over a bad content type, a bad body and an
		// oversized declared length.
		unauthorized(t, e.do(http.MethodPost, "/v1/chat/completions", "not json", "Content-Type", "text/plain", "Authorization", "Bearer nope"))
		unauthorized(t, e.do(http.MethodPost, "/v1/chat/completions", "{", "Authorization", "Bearer nope"))
		// The body reader is never touched.
		rd := &ctTouchReader{r: strings.NewReader(string(body))}
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", rd)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = 1 << 40
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, req)
		if w.Code != 401 || rd.touched {
			t.Fatalf("status %d, body read: %v", w.Code, rd.touched)
		}
	})
	t.Run("no keys: Authorization is ignored", func(t *testing.T) {
		open := ctStart(t, ctConfig{})
		for _, h := range []string{"", "Bearer whatever", "Basic abc", "garbage"} {
			if r := open.chat(ctBody("hi", map[string]any{"max_tokens": 2}), "Authorization", h); r.status != 200 {
				t.Errorf("%q: status %d %s", h, r.status, r.body)
			}
		}
	})
}

type ctTouchReader struct {
	r       io.Reader
	touched bool
}

func (c *ctTouchReader) Read(p []byte) (int, error) { c.touched = true; return c.r.Read(p) }

func TestContract2Headers(t *testing.T) {
	e := ctStart(t, ctConfig{})
	body, _ := json.Marshal(ctBody("hi", map[string]any{"max_tokens": 2}))
	post := func(hdr ...string) ctResp {
		return e.do(http.MethodPost, "/v1/chat/completions", string(body), hdr...)
	}
	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "APPLICATION/JSON;charset=UTF-8"} {
			if r := post("Content-Type", ct); r.status != 200 {
				t.Errorf("%q: status %d %s", ct, r.status, r.body)
			}
		}
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "text/json", "multipart/form-data"} {
			ctError(t, post("Content-Type", ct), 400, "invalid_request_error", "invalid_content_type", nil)
		}
	})
	t.Run("x-session-id is echoed and bounded", func(t *testing.T) {
		sid := strings.Repeat("s", 256)
		r := post("x-session-id", sid)
		if r.status != 200 || r.header.Get("x-session-id") != sid {
			t.Fatalf("status %d, echoed %q", r.status, r.header.Get("x-session-id"))
		}
		if r := e.do(http.MethodGet, "/v1/models", "", "x-session-id", "abc"); r.header.Get("x-session-id") != "abc" {
			t.Errorf("models: echoed %q", r.header.Get("x-session-id"))
		}
		ctError(t, post("x-session-id", sid+"s"), 400, "invalid_request_error", "invalid_value", nil)
		// The session never changes the text.
		a := e.complete(ctBody("Once", map[string]any{"max_tokens": 20}), "x-session-id", "alpha")
		b := e.complete(ctBody("Once", map[string]any{"max_tokens": 20}), "x-session-id", "beta")
		c := e.complete(ctBody("Once", map[string]any{"max_tokens": 20}))
		if a.content() != b.content() || a.content() != c.content() {
			t.Errorf("x-session-id changed the output: %q %q %q", a.content(), b.content(), c.content())
		}
	})
	t.Run("unknown headers are ignored", func(t *testing.T) {
		r := post("X-Stainless-Lang", "go", "X-Stainless-Retry-Count", "0", "OpenAI-Organization", "org", "x-request-id", "client-chosen")
		if r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		if r.header.Get("x-request-id") == "client-chosen" {
			t.Errorf("a client x-request-id replaced the completion id")
		}
	})
}

// ---------------------------------------------------------------------------
// Section 3: request bodies through HTTP (the validator's tables are in
// request_test.go)

func TestContract3Request(t *testing.T) {
	e := ctStart(t, ctConfig{aliases: []string{"mini"}})
	raw := func(body string) ctResp { return e.do(http.MethodPost, "/v1/chat/completions", body) }
	bad := func(t *testing.T, body any, code string, param any) {
		t.Helper()
		var r ctResp
		if s, ok := body.(string); ok {
			r = raw(s)
		} else {
			r = e.chat(body)
		}
		ctError(t, r, 400, "invalid_request_error", code, param)
	}
	t.Run("invalid json", func(t *testing.T) {
		for _, b := range []string{"", "{", "[]", `"x"`, "42", "null", strings.Repeat("[", 200) + strings.Repeat("]", 200)} {
			if b == "" {
				ctError(t, e.do(http.MethodPost, "/v1/chat/completions", "", "Content-Type", "application/json"), 400, "invalid_request_error", "invalid_json", nil)
				continue
			}
			bad(t, b, "invalid_json", nil)
		}
	})
	t.Run("types, ranges, required fields", func(t *testing.T) {
		bad(t, ctBody("hi", map[string]any{"temperature": 2.5}), "invalid_value", "temperature")
		bad(t, ctBody("hi", map[string]any{"temperature": "0"}), "invalid_type", "temperature")
		bad(t, ctBody("hi", map[string]any{"stream": "true"}), "invalid_type", "stream")
		bad(t, ctBody("hi", map[string]any{"max_tokens": 0}), "invalid_value", "max_tokens")
		bad(t, ctBody("hi", map[string]any{"max_tokens": 1.5}), "invalid_type", "max_tokens")
		bad(t, ctBody("hi", map[string]any{"n": 2}), "unsupported_value", "n")
		bad(t, ctBody("hi", map[string]any{"model": nil}), "missing_required_parameter", "model")
		bad(t, ctBody("hi", map[string]any{"model": ""}), "invalid_value", "model")
		bad(t, ctBody("hi", map[string]any{"messages": []any{}}), "invalid_value", "messages")
		bad(t, ctBody("hi", map[string]any{"messages": []any{map[string]any{"content": "x"}}}), "missing_required_parameter", "messages[0].role")
		bad(t, ctBody("hi", map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "image_url", "image_url": map[string]any{"url": "http://x"}}}}}}), "unsupported_value", "messages[0].content[0].type")
		bad(t, ctBody("hi", map[string]any{"stop": []any{"a", "b", "c", "d", "e"}}), "invalid_value", "stop")
	})
	t.Run("a bad streaming request gets plain JSON, not SSE", func(t *testing.T) {
		for _, b := range []map[string]any{
			ctBody("hi", map[string]any{"stream": true, "temperature": 3}),
			ctBody("hi", map[string]any{"stream": true, "max_tokens": -1}),
		} {
			r := e.chat(b)
			ctError(t, r, 400, "invalid_request_error", "invalid_value", ctAnyParam)
		}
		r := e.chat(ctBody("hi", map[string]any{"stream": true, "model": "gpt-4"}))
		ctError(t, r, 404, "invalid_request_error", "model_not_found", "model")
		if strings.Contains(string(r.body), "data:") {
			t.Errorf("SSE framing in an error: %s", r.body)
		}
	})
	t.Run("unknown model is 404 model_not_found", func(t *testing.T) {
		r := e.chat(ctBody("hi", map[string]any{"model": "gpt-4"}))
		em := ctError(t, r, 404, "invalid_request_error", "model_not_found", "model")
		if !strings.Contains(em["message"].(string), "gpt-4") {
			t.Errorf("message %q does not name the model", em["message"])
		}
	})
	t.Run("aliases are accepted and echoed", func(t *testing.T) {
		c := e.complete(ctBody("hi", map[string]any{"model": "mini", "max_tokens": 2}))
		if c.Model != "mini" {
			t.Errorf("model %q, want the request's string", c.Model)
		}
	})
	t.Run("logit_bias beyond the vocabulary is 400", func(t *testing.T) {
		em := ctError(t, e.chat(ctBody("hi", map[string]any{"logit_bias": map[string]any{"260": 5}})), 400, "invalid_request_error", "invalid_value", "logit_bias")
		if !strings.Contains(em["message"].(string), "260") {
			t.Errorf("message %q does not name the token", em["message"])
		}
		bad(t, ctBody("hi", map[string]any{"logit_bias": map[string]any{"99999999": 1}}), "invalid_value", "logit_bias")
		// The last token of the vocabulary is fine, and the bias is applied:
		// +100 on 'z' makes every greedy token 'z'.
		c := e.complete(ctBody("hi", map[string]any{"max_tokens": 5, "logit_bias": map[string]any{fmt.Sprint(enginetest.ByteBase + 'z'): 100}}))
		if c.content() != "zzzzz" {
			t.Errorf("logit_bias not applied: %q", c.content())
		}
	})
	t.Run("accepted extras", func(t *testing.T) {
		for _, extra := range []map[string]any{
			{"fun_mode": true, "unknown": map[string]any{"x": 1}},
			{"temperature": nil, "top_p": nil, "max_tokens": nil, "stop": nil, "seed": nil},
			{"web_search": true, "agent_address": "agent1q..."},
			{"user": "u-1", "parallel_tool_calls": false, "presence_penalty": 0.5, "frequency_penalty": -0.5, "top_p": 0.9},
			{"messages": []any{
				map[string]any{"role": "developer", "content": "be brief"},
				map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "a"}, map[string]any{"type": "text", "text": "b"}}, "name": "bob"},
			}},
			{"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "get_weather", "parameters": map[string]any{"type": "object"}}}}},
			{"stream_options": map[string]any{"include_usage": true}}, // ignored without stream
		} {
			if _, ok := extra["max_tokens"]; !ok {
				extra["max_tokens"] = 3
			}
			if r := e.chat(ctBody("hi", extra)); r.status != 200 {
				t.Errorf("%v: status %d %s", extra, r.status, r.body)
			}
		}
	})
	t.Run("response_format json is enforced or refused", func(t *testing.T) {
		for _, rf := range []map[string]any{
			{"type": "json_object"},
			{"type": "json_schema", "json_schema": map[string]any{"name": "x", "schema": map[string]any{"type": "object"}}},
		} {
			r := e.chat(ctBody("hi", map[string]any{"max_tokens": 16, "response_format": rf}))
			if r.status == 200 {
				var c ctCompletion
				_ = json.Unmarshal(r.body, &c)
				if !json.Valid([]byte(c.content())) {
					t.Errorf("%v: answered 200 with non-JSON content %q (contract 3.2: enforce, else 400 unsupported_value)", rf, c.content())
				}
				continue
			}
			ctError(t, r, 400, "invalid_request_error", "unsupported_value", "response_format")
		}
	})
}

// ---------------------------------------------------------------------------
// Section 4: prompt and token accounting

func TestContract4Accounting(t *testing.T) {
	const C = 64
	e := ctStart(t, ctConfig{ctx: C})
	t.Run("prompt_tokens counts BOS and the plain rule", func(t *testing.T) {
		c := e.complete(ctBody("hello", map[string]any{"max_tokens": 3}))
		if c.Usage.PromptTokens != 1+len("hello") {
			t.Errorf("prompt_tokens %d, want %d", c.Usage.PromptTokens, 1+len("hello"))
		}
		c = e.complete(ctBody("", map[string]any{"max_tokens": 3, "messages": []any{
			map[string]any{"role": "system", "content": "ab"},
			map[string]any{"role": "user", "content": "cde"},
		}}))
		if want := 1 + len("ab\ncde"); c.Usage.PromptTokens != want {
			t.Errorf("two messages: prompt_tokens %d, want %d (\"ab\\ncde\" plus BOS)", c.Usage.PromptTokens, want)
		}
	})
	t.Run("total = prompt + completion, completion <= max_tokens", func(t *testing.T) {
		for _, n := range []int{1, 2, 7, 20} {
			c := e.complete(ctBody("hello", map[string]any{"max_tokens": n}))
			u := c.Usage
			if u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.CompletionTokens > n || u.CompletionTokens != n {
				t.Errorf("max_tokens %d: usage %+v", n, u)
			}
			if c.Choices[0].FinishReason != "length" {
				t.Errorf("finish %q", c.Choices[0].FinishReason)
			}
			// max_completion_tokens is the same rule and wins.
			c = e.complete(ctBody("hello", map[string]any{"max_tokens": 50, "max_completion_tokens": n}))
			if c.Usage.CompletionTokens != n {
				t.Errorf("max_completion_tokens %d: usage %+v", n, c.Usage)
			}
		}
	})
	t.Run("max_tokens above the room is clamped", func(t *testing.T) {
		for _, mt := range []any{C, 1024, int64(1) << 62, nil} {
			c := e.complete(ctBody("hello", map[string]any{"max_tokens": mt}))
			u := c.Usage
			if u.PromptTokens != 6 || u.CompletionTokens != C-6 || u.TotalTokens != C || c.Choices[0].FinishReason != "length" {
				t.Errorf("max_tokens %v: usage %+v finish %s", mt, u, c.Choices[0].FinishReason)
			}
		}
	})
	t.Run("context_length_exceeded names both numbers", func(t *testing.T) {
		for _, n := range []int{C - 1, C + 40} { // prompt_tokens = n+1 >= C
			t0 := time.Now()
			r := e.chat(ctBody(strings.Repeat("a", n), map[string]any{"max_tokens": 5, "stream": n%2 == 0}))
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("context_length_exceeded took %v", d)
			}
			em := ctError(t, r, 400, "invalid_request_error", "context_length_exceeded", "messages")
			msg := em["message"].(string)
			if !strings.Contains(msg, fmt.Sprint(C)) || !strings.Contains(msg, fmt.Sprint(n+1)) || !strings.Contains(msg, "--ctx") {
				t.Errorf("message %q should name %d and %d, and --ctx", msg, C, n+1)
			}
		}
		// One token of room is enough.
		c := e.complete(ctBody(strings.Repeat("a", C-2), map[string]any{"max_tokens": 5}))
		if c.Usage.PromptTokens != C-1 || c.Usage.CompletionTokens != 1 || c.Choices[0].FinishReason != "length" {
			t.Errorf("last cell: usage %+v finish %s", c.Usage, c.Choices[0].FinishReason)
		}
	})
}

// ---------------------------------------------------------------------------
// Section 5: the non-streaming response

func TestContract5Response(t *testing.T) {
	e := ctStart(t, ctConfig{next: ctScript("greet", "Hello!")})
	before := time.Now().Unix()
	r := e.chat(ctBody("greet", map[string]any{"max_tokens": 32}))
	after := time.Now().Unix()
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("content-type %q", r.header.Get("Content-Type"))
	}
	m := ctObj(t, r.body)
	id, _ := m["id"].(string)
	if !ctIDRe.MatchString(id) {
		t.Errorf("id %q does not match %s", id, ctIDRe)
	}
	if m["object"] != "chat.completion" {
		t.Errorf("object %#v", m["object"])
	}
	if c := ctInt(t, "created", m["created"]); c < before || c > after {
		t.Errorf("created %d not in [%d, %d]", c, before, after)
	}
	if m["model"] != "asi1-mini" {
		t.Errorf("model %#v", m["model"])
	}
	if fp, ok := m["system_fingerprint"].(string); !ok || !strings.HasPrefix(fp, "fp_") {
		t.Errorf("system_fingerprint %#v", m["system_fingerprint"])
	}
	for _, k := range []string{"executable_data", "thought", "tool_thought"} {
		if a, ok := m[k].([]any); !ok || len(a) != 0 {
			t.Errorf("%s = %#v, want []", k, m[k])
		}
	}
	if v, ok := m["conversation_id"]; !ok || v != nil {
		t.Errorf("conversation_id = %#v (present %v), want null", v, ok)
	}
	if v, ok := m["intermediate_steps"]; ok {
		if a, ok := v.([]any); !ok || len(a) != 0 {
			t.Errorf("intermediate_steps %#v, want [] when present", v)
		}
	}
	choices, _ := m["choices"].([]any)
	if len(choices) != 1 {
		t.Fatalf("choices %#v", m["choices"])
	}
	ch := choices[0].(map[string]any)
	if ctInt(t, "index", ch["index"]) != 0 {
		t.Errorf("index %v", ch["index"])
	}
	msg, _ := ch["message"].(map[string]any)
	if msg["role"] != "assistant" || msg["content"] != "Hello!" {
		t.Errorf("message %#v", msg)
	}
	if _, ok := msg["reasoning_content"]; ok {
		t.Errorf("reasoning_content present without thought: %#v", msg)
	}
	if v, ok := ch["logprobs"]; !ok || v != nil {
		t.Errorf("logprobs %#v (present %v), want null", v, ok)
	}
	if ch["finish_reason"] != "stop" {
		t.Errorf("finish_reason %#v", ch["finish_reason"])
	}
	u, _ := m["usage"].(map[string]any)
	pt, ct, tt := ctInt(t, "prompt_tokens", u["prompt_tokens"]), ctInt(t, "completion_tokens", u["completion_tokens"]), ctInt(t, "total_tokens", u["total_tokens"])
	// "Hello!" is 6 sampled tokens, then the sampled EOS.
	if pt != 1+int64(len("greet")) || ct != int64(len("Hello!"))+1 || tt != pt+ct {
		t.Errorf("usage %v", u)
	}
	t.Run("finish_reason length", func(t *testing.T) {
		c := e.complete(ctBody("greet", map[string]any{"max_tokens": 3}))
		if c.content() != "Hel" || c.Choices[0].FinishReason != "length" {
			t.Errorf("content %q finish %q", c.content(), c.Choices[0].FinishReason)
		}
	})
	t.Run("ids are unique per request", func(t *testing.T) {
		seen := map[string]bool{}
		for range 20 {
			c := e.complete(ctBody("x", map[string]any{"max_tokens": 1}))
			if seen[c.ID] || !ctIDRe.MatchString(c.ID) {
				t.Fatalf("id %q repeated or malformed", c.ID)
			}
			seen[c.ID] = true
		}
	})
}

func TestContract5CompletionIDs(t *testing.T) {
	seen := make(map[string]bool, 10000)
	chars := map[rune]bool{}
	for range 10000 {
		id := server.NewCompletionID()
		if !ctIDRe.MatchString(id) {
			t.Fatalf("id %q does not match %s", id, ctIDRe)
		}
		if seen[id] {
			t.Fatalf("id %q drawn twice", id)
		}
		seen[id] = true
		for _, r := range id[3:] {
			chars[r] = true
		}
	}
	if len(chars) != 62 {
		t.Errorf("10000 ids used %d of the 62 characters", len(chars))
	}
}

// Section 5.1: reasoning splits into thought and reasoning_content.
func TestContract5Reasoning(t *testing.T) {
	e := ctStart(t, ctConfig{think: true, next: ctScript("q", "<think> plan A </think>The answer.<think>check</think> Done")})
	c := e.complete(ctBody("q", map[string]any{"max_tokens": 100}))
	r := e.chat(ctBody("q", map[string]any{"max_tokens": 100}))
	m := ctObj(t, r.body)
	th, _ := m["thought"].([]any)
	if len(th) != 2 || th[0] != "plan A" || th[1] != "check" {
		t.Errorf("thought %#v, want [plan A, check]", m["thought"])
	}
	if got := c.Choices[0].Message.ReasoningContent; got != "plan A\n\ncheck" {
		t.Errorf("reasoning_content %q", got)
	}
	if got := c.content(); strings.Contains(got, "think>") || !strings.Contains(got, "The answer.") || !strings.Contains(got, "Done") {
		t.Errorf("content %q", got)
	}
	// Streamed: reasoning chunks carry "thought" (a string) and
	// delta.reasoning_content; their concatenation is reasoning_content and
	// the content is the same.
	s := ctParseSSE(t, e.chat(ctBody("q", map[string]any{"max_tokens": 100, "stream": true})).body)
	if s.reasoning != c.Choices[0].Message.ReasoningContent || s.content != c.content() {
		t.Errorf("streamed reasoning %q content %q; non-streamed %q %q", s.reasoning, s.content, c.Choices[0].Message.ReasoningContent, c.content())
	}
}

// ---------------------------------------------------------------------------
// Section 8: models, health, metrics

func TestContract8Models(t *testing.T) {
	e := ctStart(t, ctConfig{ctx: 200, aliases: []string{"mini"}})
	r := e.do(http.MethodGet, "/v1/models", "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	m := ctObj(t, r.body)
	data, _ := m["data"].([]any)
	if m["object"] != "list" || len(data) != 1 {
		t.Fatalf("list %s (aliases must not be listed)", r.body)
	}
	check := func(o map[string]any) {
		t.Helper()
		if o["id"] != "asi1-mini" || o["object"] != "model" {
			t.Errorf("model object %v", o)
		}
		if c := ctInt(t, "created", o["created"]); c <= 0 {
			t.Errorf("created %d", c)
		}
		if s, ok := o["owned_by"].(string); !ok || s == "" {
			t.Errorf("owned_by %#v", o["owned_by"])
		}
		if n := ctInt(t, "context_length", o["context_length"]); n != 200 {
			t.Errorf("context_length %d, want the effective context 200", n)
		}
	}
	check(data[0].(map[string]any))
	r = e.do(http.MethodGet, "/v1/models/asi1-mini", "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	check(ctObj(t, r.body))
	ctError(t, e.do(http.MethodGet, "/v1/models/gpt-4", ""), 404, "invalid_request_error", "model_not_found", "model")
}

func TestContract8HealthReady(t *testing.T) {
	e := ctStart(t, ctConfig{noModel: true})
	status := func(path string) (int, string) {
		r := e.do(http.MethodGet, path, "")
		var b struct{ Status string }
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatalf("%s: %v: %s", path, err, r.body)
		}
		return r.status, b.Status
	}
	for _, p := range []string{"/health", "/ready"} {
		if s, b := status(p); s != 503 || b != "loading" {
			t.Errorf("%s before SetModel: %d %q", p, s, b)
		}
	}
	r := e.chat(ctBody("hi", nil))
	ctError(t, r, 503, "server_error", "model_loading", nil)
	if r.header.Get("Retry-After") == "" {
		t.Error("model_loading without Retry-After")
	}
	if err := e.stk.Load(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/health", "/ready"} {
		if s, b := status(p); s != 200 || b != "ok" {
			t.Errorf("%s after SetModel: %d %q", p, s, b)
		}
	}
	e.srv.SetDraining()
	if s, b := status("/ready"); s != 503 || b != "draining" {
		t.Errorf("/ready while draining: %d %q", s, b)
	}
	if s, b := status("/health"); s != 200 || b != "ok" {
		t.Errorf("/health while draining: %d %q", s, b)
	}
	r = e.chat(ctBody("hi", nil))
	ctError(t, r, 503, "server_error", "server_overloaded", nil)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 while draining without Retry-After")
	}
}

func TestContract8ReadyOverloaded(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 1, stepDelay: 5 * time.Millisecond, opts: server.Options{ReadyQueue: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(ctBody("hi", map[string]any{"max_tokens": 200}))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/chat/completions", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	ctWait(t, "one running, one waiting", func() bool { st := e.sched.Stats(); return st.Running == 1 && st.Waiting == 1 })
	r := e.do(http.MethodGet, "/ready", "")
	if r.status != 503 || !strings.Contains(string(r.body), `"overloaded"`) {
		t.Errorf("/ready with a queue at the threshold: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/health", ""); r.status != 200 {
		t.Errorf("/health while overloaded: %d", r.status)
	}
	cancel()
}

func TestContract8Metrics(t *testing.T) {
	e := ctStart(t, ctConfig{aliases: []string{"mini"}})
	e.complete(ctBody("hi", map[string]any{"max_tokens": 4}))
	// An alias counts under the catalog id.
	ctParseSSE(t, e.chat(ctBody("hi", map[string]any{"max_tokens": 4, "stream": true, "model": "mini"})).body)
	e.chat(ctBody("hi", map[string]any{"temperature": 9}))
	// Models the catalog lacks count under model="": the label stays bounded.
	for _, m := range []string{"nope-1", "nope-2"} {
		ctError(t, e.chat(ctBody("hi", map[string]any{"model": m})), 404, "invalid_request_error", "model_not_found", ctAnyParam)
	}
	e.do(http.MethodGet, "/v1/models", "")

	r := e.do(http.MethodGet, "/metrics", "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "text/plain" || params["version"] != "0.0.4" {
		t.Errorf("content-type %q, want text/plain; version=0.0.4", r.header.Get("Content-Type"))
	}
	text := string(r.body)
	for _, fam := range []string{"asi1_requests_total", "asi1_request_duration_seconds", "asi1_prompt_tokens_total",
		"asi1_completion_tokens_total", "asi1_requests_in_flight", "asi1_time_to_first_token_seconds"} {
		if !strings.Contains(text, "\n# TYPE "+fam+" ") {
			t.Errorf("/metrics lacks family %s", fam)
		}
	}
	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	fams := ctGather(t, e.reg)
	types := map[string]dto.MetricType{
		"asi1_requests_total": dto.MetricType_COUNTER, "asi1_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"asi1_prompt_tokens_total": dto.MetricType_COUNTER, "asi1_completion_tokens_total": dto.MetricType_COUNTER,
		"asi1_requests_in_flight": dto.MetricType_GAUGE, "asi1_time_to_first_token_seconds": dto.MetricType_HISTOGRAM,
		"asi1_inter_token_latency_seconds": dto.MetricType_HISTOGRAM, "asi1_e2e_request_latency_seconds": dto.MetricType_HISTOGRAM,
		"asi1_queue_time_seconds": dto.MetricType_HISTOGRAM,
	}
	labels := map[string][]string{
		"asi1_requests_total": {"endpoint", "model", "status"}, "asi1_request_duration_seconds": {"endpoint", "model"},
		"asi1_prompt_tokens_total": {"model"}, "asi1_completion_tokens_total": {"model"},
		"asi1_requests_in_flight": nil, "asi1_time_to_first_token_seconds": {"model"},
		"asi1_inter_token_latency_seconds": {"model"}, "asi1_e2e_request_latency_seconds": {"model"},
		"asi1_queue_time_seconds": {"model"},
	}
	for name, typ := range types {
		f := fams[name]
		if f == nil {
			t.Errorf("family %s missing", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is %v, want %v", name, f.GetType(), typ)
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
			}
			if !slices.Equal(got, labels[name]) {
				t.Errorf("%s labels %v, want %v", name, got, labels[name])
			}
		}
	}
	want := map[string]float64{
		`asi1_requests_total{endpoint="/v1/chat/completions",model="asi1-mini",status="200"}`: 2,
		`asi1_requests_total{endpoint="/v1/chat/completions",model="",status="400"}`:          1,
		`asi1_requests_total{endpoint="/v1/chat/completions",model="",status="404"}`:          2,
		`asi1_requests_total{endpoint="/v1/models",model="",status="200"}`:                    1,
		`asi1_request_duration_seconds{endpoint="/v1/chat/completions",model="asi1-mini"}`:    2,
		`asi1_request_duration_seconds{endpoint="/v1/chat/completions",model=""}`:             3,
		`asi1_prompt_tokens_total{model="asi1-mini"}`:                                         6,
		`asi1_completion_tokens_total{model="asi1-mini"}`:                                     8,
		`asi1_requests_in_flight`:                             0,
		`asi1_e2e_request_latency_seconds{model="asi1-mini"}`: 2,
		`asi1_queue_time_seconds{model="asi1-mini"}`:          2,
		`asi1_inter_token_latency_seconds{model="asi1-mini"}`: 6, // 3 gaps each
	}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "model" && l.GetValue() != "" && l.GetValue() != "asi1-mini" {
					t.Errorf("%s has model=%q: not a catalog id", name, l.GetValue())
				}
			}
		}
	}
	for k, v := range want {
		if got := ctValue(fams, k); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if n := ctValue(fams, `asi1_time_to_first_token_seconds{model="asi1-mini"}`); n != 2 {
		t.Errorf("time to first token observations %v, want 2", n)
	}
}

// ctGather gathers reg by family name.
func ctGather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	fs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

// ctValue returns the value of a series written as name{l="v",...}: a
// counter's or gauge's value, a histogram's sample count; -1 when absent.
func ctValue(fams map[string]*dto.MetricFamily, series string) float64 {
	name, sel, _ := strings.Cut(series, "{")
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		if strings.Join(parts, ",")+"}" != sel && !(sel == "" && len(parts) == 0) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// ---------------------------------------------------------------------------
// Section 9: errors

func TestContract9Errors(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{"k"}, BodyLimit: 1024}})
	auth := []string{"Authorization", "Bearer k"}
	post := func(body string, hdr ...string) ctResp {
		return e.do(http.MethodPost, "/v1/chat/completions", body, append(slices.Clone(auth), hdr...)...)
	}
	big, _ := json.Marshal(ctBody(strings.Repeat("a", 2000), nil))
	cases := []struct {
		name   string
		r      ctResp
		status int
		typ    string
		code   string
		param  any
	}{
		{"invalid json", post("{"), 400, "invalid_request_error", "invalid_json", nil},
		{"content type", post(`{}`, "Content-Type", "text/plain"), 400, "invalid_request_error", "invalid_content_type", nil},
		{"type", post(`{"model":"asi1-mini","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`), 400, "invalid_request_error", "invalid_type", "temperature"},
		{"value", post(`{"model":"asi1-mini","messages":[{"role":"user","content":"x"}],"top_p":2}`), 400, "invalid_request_error", "invalid_value", "top_p"},
		{"missing", post(`{"model":"asi1-mini"}`), 400, "invalid_request_error", "missing_required_parameter", "messages"},
		{"unsupported", post(`{"model":"asi1-mini","messages":[{"role":"user","content":"x"}],"n":3}`), 400, "invalid_request_error", "unsupported_value", "n"},
		{"context", post(string(ctMust(json.Marshal(ctBody(strings.Repeat("a", 300), nil))))), 400, "invalid_request_error", "context_length_exceeded", "messages"},
		{"auth", e.do(http.MethodGet, "/v1/models", ""), 401, "authentication_error", "invalid_api_key", nil},
		{"model", e.do(http.MethodGet, "/v1/models/nope", "", auth...), 404, "invalid_request_error", "model_not_found", "model"},
		{"url", e.do(http.MethodGet, "/v1/nope", ""), 404, "invalid_request_error", "unknown_url", nil},
		{"method", e.do(http.MethodDelete, "/v1/chat/completions", ""), 405, "invalid_request_error", "method_not_allowed", nil},
		{"too large", post(string(big)), 413, "invalid_request_error", "request_too_large", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { ctError(t, c.r, c.status, c.typ, c.code, c.param) })
	}
	t.Run("chunked body over the limit", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions", io.MultiReader(bytes.NewReader(big)))
		req.ContentLength = -1 // chunked
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ctError(t, ctResp{resp.StatusCode, resp.Header, b}, 413, "invalid_request_error", "request_too_large", nil)
	})
}

func ctMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
