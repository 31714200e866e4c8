package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestStream(body string) *ChatStream {
	return NewChatStream(&http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body))})
}

// seen is what a test server received.
type seen struct {
	method, path, auth, session, accept, ctype string
	body                                       []byte
}

func serve(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*Client, *seen) {
	got := &seen{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.auth = r.Method, r.URL.Path, r.Header.Get("Authorization")
		got.session, got.accept, got.ctype = r.Header.Get("X-Session-Id"), r.Header.Get("Accept"), r.Header.Get("Content-Type")
		got.body, _ = io.ReadAll(r.Body)
		h(w, r)
	}))
	t.Cleanup(hs.Close)
	return &Client{BaseURL: hs.URL + "/v1/", APIKey: "k1", Header: http.Header{"X-Session-Id": {"s1"}}}, got
}

func reply(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestClientURL(t *testing.T) {
	for _, base := range []string{"http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/", "http://h:1/v1/chat/completions"} {
		c := Client{BaseURL: base}
		if got := c.URL(ChatPath); got != "http://h:1/v1/chat/completions" {
			t.Errorf("%s: chat %s", base, got)
		}
		if got := c.URL(MetricsPath); got != "http://h:1/metrics" {
			t.Errorf("%s: metrics %s", base, got)
		}
	}
}

func TestClientChat(t *testing.T) {
	golden := readGolden(t, "testdata/completion_reasoning_blocks.json")
	c, got := serve(t, reply(200, string(golden)))
	req := &ChatCompletionRequest{Model: "m", Messages: []Message{NewMessage(RoleUser, "hi")}, Stream: true, StreamOptions: &StreamOptions{IncludeUsage: true}}
	ans, err := c.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Choices[0].Message.Text() != "Answer" || ans.Choices[0].Message.ReasoningContent != "think more\n\nagain" || ans.Usage.TotalTokens != 8 {
		t.Errorf("answer %+v", ans)
	}
	if got.method != "POST" || got.path != ChatPath || got.auth != "Bearer k1" || got.session != "s1" || got.ctype != "application/json" ||
		string(got.body) != `{"model":"m","messages":[{"role":"user","content":"hi"}]}` {
		t.Errorf("request %+v %s", got, got.body)
	}
	if !req.Stream {
		t.Error("Chat changed the caller's request")
	}
}

func TestClientChatStream(t *testing.T) {
	golden := readGolden(t, "testdata/stream_usage_chunk_and_length.sse")
	c, got := serve(t, reply(200, string(golden)+"\n"))
	s, err := c.ChatStream(context.Background(), &ChatCompletionRequest{Model: "m", Messages: []Message{NewMessage(RoleUser, "hi")},
		StreamOptions: &StreamOptions{IncludeUsage: true}})
	if err != nil {
		t.Fatal(err)
	}
	var content, finish string
	var usage *Usage
	n := 0
	for {
		ch, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if len(ch.Choices) > 0 {
			content += ch.Choices[0].Delta.Text()
			if f := ch.Choices[0].FinishReason; f != nil {
				finish = *f
			}
		}
		if u, err := ch.UsageStats(); err != nil || u != nil {
			usage = u
		}
	}
	if n != 4 || content != "a" || finish != FinishLength || usage == nil || usage.TotalTokens != 8 || usage.CachedTokens() != 0 {
		t.Errorf("chunks %d content %q finish %q usage %+v", n, content, finish, usage)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Errorf("Recv after the end: %v", err)
	}
	if got.accept != "text/event-stream" || !strings.Contains(string(got.body), `"stream":true,"stream_options":{"include_usage":true}`) {
		t.Errorf("request %+v %s", got, got.body)
	}
}

// Errors: the contract's body before the stream (with Retry-After), a body
// in another shape, an error event inside the stream, a stream cut short,
// a chunk that is not JSON.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	req := &ChatCompletionRequest{Model: "m", Messages: []Message{NewMessage(RoleUser, "hi")}}
	c, _ := serve(t, reply(503, `{"error":{"message":"The server is overloaded","type":"server_error","param":"model","code":"server_overloaded"}}`))
	_, err := c.Chat(ctx, req)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Detail.Code != CodeOverloaded || ae.RetryAfter != 3*time.Second ||
		err.Error() != "503 server_overloaded (model): The server is overloaded" {
		t.Errorf("503: %#v %v", err, err)
	}
	c, _ = serve(t, reply(502, "Bad Gateway from a proxy\n"))
	if _, err := c.ChatStream(ctx, req); err == nil || err.Error() != "502 Bad Gateway from a proxy" {
		t.Errorf("502: %v", err)
	}
	c, _ = serve(t, reply(404, ""))
	if _, err := c.Models(ctx); err == nil || err.Error() != "404 Not Found" {
		t.Errorf("404: %v", err)
	}
	streams := map[string]string{
		string(readGolden(t, "testdata/stream_failure_mid_stream.sse")) + "\n":  "internal_error: Generation failed: boom",
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n":             ErrIncomplete.Error(),
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"cho": ErrIncomplete.Error(),
		"data: not json\n\n": `bad chunk "not json": invalid character 'o' in literal null (expecting 'u')`,
	}
	for body, want := range streams {
		s := newTestStream(body)
		var last error
		for _, err := range s.All() {
			last = err
		}
		if last == nil || last.Error() != want {
			t.Errorf("%.40q: error %v, want %q", body, last, want)
		}
		var ae *Error
		if strings.Contains(want, "boom") && (!errors.As(last, &ae) || ae.Status != 0 || ae.Detail.Type != TypeServer) {
			t.Errorf("error event is not an *Error: %#v", last)
		}
	}
}

// Cancelling the context stops a stream the server holds open.
func TestClientStreamCancel(t *testing.T) {
	gone := make(chan struct{})
	c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		SetSSEHeaders(w.Header())
		sw := NewSSEWriter(w)
		_ = sw.Raw([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"))
		<-r.Context().Done()
		close(gone)
	})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.ChatStream(ctx, &ChatCompletionRequest{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Recv(); err != nil || ch.Choices[0].Delta.Text() != "a" {
		t.Fatalf("first chunk %v %v", ch, err)
	}
	cancel()
	if _, err := s.Recv(); err == nil || err == io.EOF {
		t.Errorf("after cancel: %v", err)
	}
	<-gone // the server saw the client leave
}

func TestClientModels(t *testing.T) {
	golden := readGolden(t, "testdata/models_catalog.json")
	c, got := serve(t, reply(200, string(golden)))
	l, err := c.Models(context.Background())
	if err != nil || len(l.Data) != 2 || l.Data[0].ID != "asi1-mini" || !l.Data[0].Loaded || l.Data[1].Status != ModelUnusable ||
		got.path != ModelsPath || got.method != "GET" || got.auth != "Bearer k1" {
		t.Errorf("models %+v %v %+v", l, err, got)
	}
	one, _ := json.Marshal(l.Data[1])
	c, got = serve(t, reply(200, string(one)))
	m, err := c.Model(context.Background(), "a/b")
	if err != nil || m.ID != "qwen" || *m.SHA256 != "ab12" || got.path != ModelsPath+"/a/b" {
		t.Errorf("model %+v %v %s", m, err, got.path)
	}
}

func TestRetryAfter(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for h, want := range map[string]time.Duration{"": 0, "5": 5 * time.Second, "0": 0, "soon": 0, "-3": 0,
		"Mon, 02 Jan 2006 15:04:05 GMT": 0} {
		if got := retryAfter(h); got != want {
			t.Errorf("%q: %v, want %v", h, got, want)
		}
	}
	if got := retryAfter(future); got < 80*time.Second || got > 91*time.Second {
		t.Errorf("HTTP date 90 s ahead: %v", got)
	}
}
