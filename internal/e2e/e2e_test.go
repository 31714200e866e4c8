// Package e2e tests the whole server on the real engine and the reference
// model: HTTP in, llama.cpp underneath.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/api"
	"github.com/asi1d/asi1d/server/stack"
)

type env struct {
	url   string
	sched *scheduler.Scheduler
	model *server.Model
}

func start(t *testing.T, parallel int, stepTokens int) *env {
	t.Helper()
	e, _ := startOn(t, testmodel.Path(t, testmodel.Stories260K), parallel, stepTokens)
	return e
}

// startOn serves a model file through the real engine, scheduler and
// server. One engine thread: on a busy machine llama.cpp's spinning thread
// barrier makes two threads tens of times slower on models this small.
func startOn(t *testing.T, path string, parallel, stepTokens int) (*env, *llamacpp.Backend) {
	t.Helper()
	return startOnCtx(t, path, parallel, stepTokens, 512)
}

// startOnCtx is startOn with ctxPerSeq KV cells per sequence.
func startOnCtx(t *testing.T, path string, parallel, stepTokens, ctxPerSeq int) (*env, *llamacpp.Backend) {
	t.Helper()
	return startWith(t, path, parallel, ctxPerSeq, scheduler.Options{StepTokens: stepTokens})
}

// startWith is startOnCtx with any scheduler options (stack chains OnStep after the server's).
func startWith(t *testing.T, path string, parallel, ctxPerSeq int, so scheduler.Options) (*env, *llamacpp.Backend) {
	t.Helper()
	stk := stack.New(stack.Options{
		Server:    server.Options{Version: "test"},
		Scheduler: so,
		Open: func() (engine.Backend, error) {
			return llamacpp.Open(path, llamacpp.Options{CtxSize: ctxPerSeq * parallel, Parallel: parallel, Threads: 1})
		},
	})
	if err := stk.Load(); err != nil {
		_ = stk.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(stk.Server.Handler())
	t.Cleanup(func() {
		hs.Close()
		_ = stk.Close()
	})
	return &env{url: hs.URL, sched: stk.Sched, model: stk.Model}, stk.Backend.(*llamacpp.Backend)
}

func post(t *testing.T, url string, body any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func chatBody(prompt string, maxTokens int, stream bool) map[string]any {
	return map[string]any{
		"model": "asi1-mini", "temperature": 0, "max_tokens": maxTokens, "stream": stream,
		"messages": []map[string]any{{"role": "user", "content": prompt}},
	}
}

func complete(t *testing.T, url, prompt string, n int) *api.ChatCompletion {
	t.Helper()
	resp := post(t, url, chatBody(prompt, n, false))
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var c api.ChatCompletion
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// streamText reads an SSE response and returns the concatenated content and
// the finish reason.
func streamText(t *testing.T, url, prompt string, n int) (string, string) {
	t.Helper()
	resp := post(t, url, chatBody(prompt, n, true))
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var text, finish string
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("bad SSE line %q", line)
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var ch api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		if len(ch.Choices) > 0 {
			if c := ch.Choices[0].Delta.Content; c != nil {
				text += *c
			}
			if f := ch.Choices[0].FinishReason; f != nil {
				finish = *f
			}
		}
	}
	if !done {
		t.Fatal("stream ended without [DONE]")
	}
	return text, finish
}

// The reference continuation through HTTP, streamed and not.
func TestGoldenOverHTTP(t *testing.T) {
	e := start(t, 2, 64)
	c := complete(t, e.url, testmodel.ReferencePrompt, 64)
	if got := c.Choices[0].Message.Text(); got != testmodel.ReferenceText {
		t.Fatalf("non-streamed:\n got %q\nwant %q", got, testmodel.ReferenceText)
	}
	if c.Usage.PromptTokens != 5 || c.Usage.CompletionTokens != 64 || c.Usage.TotalTokens != 69 || c.Choices[0].FinishReason != "length" {
		t.Fatalf("usage %+v finish %s", c.Usage, c.Choices[0].FinishReason)
	}
	text, finish := streamText(t, e.url, testmodel.ReferencePrompt, 64)
	if text != testmodel.ReferenceText || finish != "length" {
		t.Fatalf("streamed (%s):\n got %q\nwant %q", finish, text, testmodel.ReferenceText)
	}
}

// The reference continuation comes out identical alone, inside a batch of
// 16 different concurrent requests, and with a warm prefix cache.
func TestDeterminismInBatchAndWarmCache(t *testing.T) {
	e := start(t, 4, 64)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	prompts := []string{"Lily and Ben", "The dog", "Once upon a time there was", "A big red ball"}
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%4 == 0 {
				text, _ := streamText(t, e.url, testmodel.ReferencePrompt, 64)
				if text != testmodel.ReferenceText {
					errs <- fmt.Errorf("request %d in a batch: %q", i, text)
				}
				return
			}
			complete(t, e.url, prompts[i%4], 40+i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Warm cache: the same prompt again reuses its prefix and still matches.
	before := e.sched.Stats().PrefixHitTokens
	c := complete(t, e.url, testmodel.ReferencePrompt, 64)
	if c.Choices[0].Message.Text() != testmodel.ReferenceText {
		t.Fatalf("warm cache: %q", c.Choices[0].Message.Text())
	}
	if e.sched.Stats().PrefixHitTokens-before != 4 {
		t.Fatalf("prefix hit tokens grew by %d, want 4", e.sched.Stats().PrefixHitTokens-before)
	}
}

func TestContextLengthExceeded(t *testing.T) {
	e := start(t, 1, 64)
	resp := post(t, e.url, chatBody(strings.Repeat("Once upon a time ", 200), 10, true))
	defer resp.Body.Close()
	var body api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 400 || body.Error.Code != "context_length_exceeded" || body.Error.Param != "messages" {
		t.Fatalf("status %d body %+v", resp.StatusCode, body)
	}
}
