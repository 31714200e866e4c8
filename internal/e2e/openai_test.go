package e2e

// The official OpenAI Go SDK (github.com/openai/openai-go/v3) against the
// whole server on the real engine and the reference model: what a client
// written for OpenAI sees when pointed at asi1d (contract sections 5, 7, 8
// and 9).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

func sdkClient(url string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(url+"/v1/"),
		option.WithAPIKey("unused"), // auth is off in start
		option.WithMaxRetries(0),
		option.WithRequestTimeout(time.Minute),
	)
}

func referenceParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:       "asi1-mini",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(testmodel.ReferencePrompt)},
		Temperature: openai.Float(0),
		MaxTokens:   openai.Int(64),
	}
}

var sdkIDRe = regexp.MustCompile(`^id_[A-Za-z0-9]{17}$`)

// asi1Fields reads the ASI1 envelope, which the SDK does not model, from
// the raw JSON and checks it: executable_data [], conversation_id null,
// tool_thought [] and (when wantThought) thought [].
func asi1Fields(t *testing.T, raw string, wantThought bool) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("raw JSON: %v: %s", err, raw)
	}
	want := map[string]string{"executable_data": "[]", "conversation_id": "null", "tool_thought": "[]"}
	if wantThought {
		want["thought"] = "[]"
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok || string(got) != v {
			t.Errorf("%s = %s (present %v), want %s", k, got, ok, v)
		}
	}
}

func TestOpenAISDK(t *testing.T) {
	e := start(t, 2, 64)
	client := sdkClient(e.url)
	ctx := context.Background()

	t.Run("plain call", func(t *testing.T) {
		c, err := client.Chat.Completions.New(ctx, referenceParams())
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 1 {
			t.Fatalf("choices %d", len(c.Choices))
		}
		ch := c.Choices[0]
		if ch.Message.Content != testmodel.ReferenceText {
			t.Errorf("content:\n got %q\nwant %q", ch.Message.Content, testmodel.ReferenceText)
		}
		if ch.FinishReason != "length" || ch.Index != 0 || ch.Message.Role != "assistant" {
			t.Errorf("choice: finish %q index %d role %q", ch.FinishReason, ch.Index, ch.Message.Role)
		}
		if !sdkIDRe.MatchString(c.ID) || c.Object != "chat.completion" || c.Model != "asi1-mini" || c.Created <= 0 {
			t.Errorf("id %q object %q model %q created %d", c.ID, c.Object, c.Model, c.Created)
		}
		if !strings.HasPrefix(c.SystemFingerprint, "fp_") {
			t.Errorf("system_fingerprint %q", c.SystemFingerprint)
		}
		u := c.Usage
		if u.PromptTokens != int64(len(testmodel.ReferenceTokens)) || u.CompletionTokens != 64 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Errorf("usage %+v", u)
		}
		// logprobs is null unless asked for.
		if ch.JSON.Logprobs.Valid() && ch.Logprobs.JSON.Content.Valid() {
			t.Errorf("logprobs present without logprobs:true")
		}
		asi1Fields(t, c.RawJSON(), true)
	})

	t.Run("raw response headers", func(t *testing.T) {
		var resp *http.Response
		p := referenceParams()
		p.MaxTokens = openai.Int(4)
		c, err := client.Chat.Completions.New(ctx, p, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("x-request-id") != c.ID {
			t.Errorf("x-request-id %q, id %q", resp.Header.Get("x-request-id"), c.ID)
		}
	})

	t.Run("streamed call", func(t *testing.T) {
		p := referenceParams()
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := client.Chat.Completions.NewStreaming(ctx, p)
		defer stream.Close()
		var acc openai.ChatCompletionAccumulator
		var text strings.Builder
		var ids []string
		n := 0
		for stream.Next() {
			chunk := stream.Current()
			if !acc.AddChunk(chunk) {
				t.Fatalf("the accumulator refused chunk %d: %s", n, chunk.RawJSON())
			}
			if n == 0 {
				// The role chunk carries the ASI1 envelope.
				asi1Fields(t, chunk.RawJSON(), false)
				if len(chunk.Choices) != 1 || chunk.Choices[0].Delta.Role != "assistant" {
					t.Errorf("first chunk: %s", chunk.RawJSON())
				}
			}
			if len(chunk.Choices) > 0 {
				text.WriteString(chunk.Choices[0].Delta.Content)
			}
			ids = append(ids, chunk.ID)
			n++
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != testmodel.ReferenceText {
			t.Errorf("streamed text:\n got %q\nwant %q", text.String(), testmodel.ReferenceText)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != testmodel.ReferenceText || acc.Choices[0].FinishReason != "length" {
			t.Errorf("accumulated: %+v", acc.Choices)
		}
		if acc.Usage.PromptTokens != 5 || acc.Usage.CompletionTokens != 64 || acc.Usage.TotalTokens != 69 {
			t.Errorf("accumulated usage %+v", acc.Usage)
		}
		for _, id := range ids {
			if id != ids[0] || !sdkIDRe.MatchString(id) {
				t.Fatalf("chunk ids %v", ids)
			}
		}
	})

	t.Run("logprobs", func(t *testing.T) {
		p := referenceParams()
		p.MaxTokens = openai.Int(8)
		p.Logprobs = openai.Bool(true)
		p.TopLogprobs = openai.Int(3)
		c, err := client.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		lp := c.Choices[0].Logprobs.Content
		if len(lp) != 8 {
			t.Fatalf("%d logprob entries", len(lp))
		}
		var text strings.Builder
		for _, x := range lp {
			text.WriteString(x.Token)
			if x.Logprob > 0 || len(x.TopLogprobs) != 3 || string(int64sToBytes(x.Bytes)) != x.Token {
				t.Errorf("entry %+v", x)
			}
		}
		if text.String() != c.Choices[0].Message.Content {
			t.Errorf("tokens %q, content %q", text.String(), c.Choices[0].Message.Content)
		}
	})

	t.Run("errors are typed", func(t *testing.T) {
		cases := []struct {
			name   string
			mutate func(*openai.ChatCompletionNewParams)
			status int
			code   string
			param  string
		}{
			{"temperature", func(p *openai.ChatCompletionNewParams) { p.Temperature = openai.Float(5) }, 400, "invalid_value", "temperature"},
			{"max_tokens", func(p *openai.ChatCompletionNewParams) { p.MaxTokens = openai.Int(-3) }, 400, "invalid_value", "max_tokens"},
			{"model", func(p *openai.ChatCompletionNewParams) { p.Model = "gpt-4o" }, 404, "model_not_found", "model"},
			{"context", func(p *openai.ChatCompletionNewParams) {
				p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("Once upon a time ", 200))}
			}, 400, "context_length_exceeded", "messages"},
		}
		for _, c := range cases {
			p := referenceParams()
			c.mutate(&p)
			_, err := client.Chat.Completions.New(ctx, p)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("%s: error %T %v, want *openai.Error", c.name, err, err)
			}
			if apiErr.StatusCode != c.status || apiErr.Code != c.code || apiErr.Param != c.param || apiErr.Message == "" {
				t.Errorf("%s: status %d code %q param %q type %q message %q", c.name, apiErr.StatusCode, apiErr.Code, apiErr.Param, apiErr.Type, apiErr.Message)
			}
			wantType := "invalid_request_error"
			if apiErr.Type != wantType {
				t.Errorf("%s: type %q", c.name, apiErr.Type)
			}
			// The error also surfaces from a streaming call, before any chunk.
			stream := client.Chat.Completions.NewStreaming(ctx, p)
			if stream.Next() {
				t.Errorf("%s: streaming call produced a chunk", c.name)
			}
			if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != c.status || apiErr.Code != c.code {
				t.Errorf("%s: streaming error %v", c.name, stream.Err())
			}
			stream.Close()
		}
	})

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != "asi1-mini" || page.Data[0].Object != "model" || page.Data[0].OwnedBy == "" || page.Data[0].Created <= 0 {
			t.Fatalf("models %+v", page.Data)
		}
		var ctxLen struct {
			ContextLength int `json:"context_length"`
		}
		if err := json.Unmarshal([]byte(page.Data[0].RawJSON()), &ctxLen); err != nil || ctxLen.ContextLength != 512 {
			t.Errorf("context_length %d (%v)", ctxLen.ContextLength, err)
		}
		m, err := client.Models.Get(ctx, "asi1-mini")
		if err != nil || m.ID != "asi1-mini" {
			t.Fatalf("get: %+v %v", m, err)
		}
		_, err = client.Models.Get(ctx, "nope")
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Errorf("get unknown: %v", err)
		}
	})
}

func int64sToBytes(xs []int64) []byte {
	out := make([]byte, len(xs))
	for i, x := range xs {
		out[i] = byte(x)
	}
	return out
}
