package e2e

// POST /v1/completions on the real engine and the reference model
// (stories260K, no chat template), through the official OpenAI SDK.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/server/api"
)

func referenceTextParams() openai.CompletionNewParams {
	return openai.CompletionNewParams{
		Model:       "asi1-mini",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(testmodel.ReferencePrompt)},
		Temperature: openai.Float(0),
		MaxTokens:   openai.Int(64),
	}
}

func TestCompletionsReference(t *testing.T) {
	e := start(t, 2, 64)
	client := sdkClient(e.url)
	ctx := context.Background()

	t.Run("plain", func(t *testing.T) {
		c, err := client.Completions.New(ctx, referenceTextParams())
		if err != nil {
			t.Fatal(err)
		}
		ch := c.Choices[0]
		if ch.Text != testmodel.ReferenceText {
			t.Errorf("text:\n got %q\nwant %q", ch.Text, testmodel.ReferenceText)
		}
		// 64 tokens exactly: the reference is llama.cpp's 64-token
		// continuation, and the prompt is BOS and 4 tokens.
		if ch.FinishReason != "length" || c.Usage.CompletionTokens != 64 || c.Usage.PromptTokens != int64(len(testmodel.ReferenceTokens)) {
			t.Errorf("finish %s usage %+v", ch.FinishReason, c.Usage)
		}
		if c.Object != "text_completion" || !sdkIDRe.MatchString(c.ID) {
			t.Errorf("envelope: %s", c.RawJSON())
		}
	})

	t.Run("same as chat", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, referenceParams())
		if err != nil {
			t.Fatal(err)
		}
		tc, err := client.Completions.New(ctx, referenceTextParams())
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Message.Content != tc.Choices[0].Text {
			t.Errorf("chat %q\ncompletions %q", c.Choices[0].Message.Content, tc.Choices[0].Text)
		}
	})

	t.Run("token ids", func(t *testing.T) {
		p := referenceTextParams()
		ids := make([]int64, len(testmodel.ReferenceTokens))
		for i, id := range testmodel.ReferenceTokens {
			ids[i] = int64(id)
		}
		p.Prompt = openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: ids}
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Text != testmodel.ReferenceText {
			t.Errorf("text %q", c.Choices[0].Text)
		}
	})

	t.Run("streamed", func(t *testing.T) {
		p := referenceTextParams()
		p.StreamOptions.IncludeUsage = openai.Bool(true)
		st := client.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		var finish string
		completion := int64(0)
		for st.Next() {
			ev := st.Current()
			for _, ch := range ev.Choices {
				text.WriteString(ch.Text)
				if ch.FinishReason != "" {
					finish = string(ch.FinishReason)
				}
			}
			if len(ev.Choices) == 0 {
				completion = ev.Usage.CompletionTokens
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != testmodel.ReferenceText || finish != "length" || completion != 64 {
			t.Errorf("streamed %q finish %q completion tokens %d", text.String(), finish, completion)
		}
	})

	t.Run("suffix needs FIM tokens", func(t *testing.T) {
		p := referenceTextParams()
		p.Suffix = openai.String(" The end.")
		_, err := client.Completions.New(ctx, p)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Param != "suffix" {
			t.Fatalf("err %v", err)
		}
	})

	t.Run("too long", func(t *testing.T) {
		b, _ := json.Marshal(map[string]any{"model": "asi1-mini", "prompt": strings.Repeat("Once upon a time. ", 200)})
		resp, err := http.Post(e.url+"/v1/completions", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body api.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != 400 || body.Error.Code != "context_length_exceeded" || body.Error.Param != "prompt" {
			t.Fatalf("%d %+v", resp.StatusCode, body)
		}
	})
}

// A client that disconnects mid-stream frees its slot (the scheduler
// counts the sequence cancelled), and the next request gets the reference
// text. The loop is held after a few steps until the client has gone, so
// the answer cannot end before the disconnect.
func TestCompletionsDisconnect(t *testing.T) {
	var steps atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	e, _ := startWith(t, testmodel.Path(t, testmodel.Stories260K), 1, 512, scheduler.Options{StepTokens: 16,
		OnStep: func(time.Duration, int) {
			if steps.Add(1) > 8 {
				<-release
			}
		}})
	client := sdkClient(e.url)
	ctx, cancel := context.WithCancel(context.Background())
	p := referenceTextParams()
	p.MaxTokens = openai.Int(400)
	st := client.Completions.NewStreaming(ctx, p)
	if !st.Next() || st.Current().Choices[0].Text == "" {
		t.Fatalf("no text before the hold: %v", st.Err())
	}
	cancelled := e.sched.Stats().Finished[scheduler.FinishCancelled]
	cancel()
	_ = st.Close()
	open()
	deadline := time.Now().Add(10 * time.Second)
	for s := e.sched.Stats(); s.Running != 0 || s.Waiting != 0 || s.Finished[scheduler.FinishCancelled] == cancelled; s = e.sched.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := client.Completions.New(context.Background(), referenceTextParams())
	if err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Text != testmodel.ReferenceText {
		t.Errorf("after the disconnect: %q", c.Choices[0].Text)
	}
}
