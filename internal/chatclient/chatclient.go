// Package chatclient is a small streaming client of the ASI1 (and OpenAI)
// chat-completions API, for `asi1d chat`. It sends a conversation and
// hands each streamed event to a callback: reasoning fragments (the ASI1
// top-level "thought", or OpenAI-style delta.reasoning_content), answer
// text, tool calls, the finish reason and usage.
package chatclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is what Stream sends. Nil pointers are left out (server defaults).
type Request struct {
	Model       string    `json:"model,omitempty"`
	Messages    []Message `json:"messages"`
	Temperature *float64  `json:"temperature,omitempty"`
	MaxTokens   *int      `json:"max_tokens,omitempty"`
}

// Usage is the token count of an answer.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ToolCall is a (possibly partial) streamed tool call.
type ToolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// Event is one streamed piece of an answer; exactly one field is set.
type Event struct {
	Thought     string // a reasoning fragment
	ToolThought string // reasoning about a tool call (ASI1 tool_thought)
	Content     string // answer text
	ToolCall    *ToolCall
	Finish      string // finish_reason
	Usage       *Usage
}

// APIError is an error answered by the server in the contract's shape,
// before or inside the stream.
type APIError struct {
	Status  int    // HTTP status; 0 for an error inside a stream
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	if e.Code != "" {
		b.WriteString(e.Code + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Client talks to one server.
type Client struct {
	// BaseURL is the server's address, with or without /v1
	// (http://127.0.0.1:8080, https://api.example.com/v1).
	BaseURL string
	APIKey  string
	HTTP    *http.Client // nil: http.DefaultClient
}

// endpoint joins the base URL and a path under /v1.
func (c *Client) endpoint(p string) string {
	base := strings.TrimRight(c.BaseURL, "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	return base + p
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// readError turns a non-2xx answer into an *APIError, using the contract's
// message when the body has one.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error *APIError `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Message != "" {
		body.Error.Status = resp.StatusCode
		return body.Error
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{Status: resp.StatusCode, Message: msg}
}

// Models lists the ids of GET /v1/models.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/models"), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID     string `json:"id"`
			Loaded *bool  `json:"loaded"`
			Status string `json:"status"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	// Loaded models first (asi1d's catalog: no wait for a load), then the
	// others; models the server marks unusable are left out.
	var loaded, rest []string
	for _, m := range list.Data {
		switch {
		case m.Status == "unusable":
		case m.Loaded != nil && *m.Loaded:
			loaded = append(loaded, m.ID)
		default:
			rest = append(rest, m.ID)
		}
	}
	return append(loaded, rest...), nil
}

// chunk is the part of a chat.completion.chunk the client reads.
type chunk struct {
	Error       *APIError       `json:"error"`
	Thought     json.RawMessage `json:"thought"`
	ToolThought json.RawMessage `json:"tool_thought"`
	Choices     []struct {
		Delta struct {
			Content          *string    `json:"content"`
			ReasoningContent string     `json:"reasoning_content"`
			Reasoning        string     `json:"reasoning"`
			ToolCalls        []ToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *Usage `json:"usage"`
}

// texts reads a thought field: a string (a streamed fragment) or an array
// of strings; anything else is ignored.
func texts(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var a []string
	if json.Unmarshal(raw, &a) == nil {
		return strings.Join(a, "\n\n")
	}
	return ""
}

// ErrIncomplete is returned when a stream ends without data: [DONE].
var ErrIncomplete = errors.New("the stream ended before [DONE]")

// Stream sends r with stream: true and calls on for each event until the
// stream ends. Cancel ctx to stop the answer: the connection is closed and
// the server frees the sequence. It returns an *APIError for an error the
// server answered, before or inside the stream.
func (c *Client) Stream(ctx context.Context, r Request, on func(Event)) error {
	body := struct {
		Request
		Stream        bool            `json:"stream"`
		StreamOptions map[string]bool `json:"stream_options"`
	}{r, true, map[string]bool{"include_usage": true}}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint("/chat/completions"), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue // blank lines, ": keep-alive" comments, other fields
		}
		data = strings.TrimSpace(data)
		if data == "[DONE]" {
			return nil
		}
		var ch chunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return fmt.Errorf("bad chunk %.200q: %w", data, err)
		}
		if ch.Error != nil {
			return ch.Error
		}
		if t := texts(ch.ToolThought); t != "" {
			on(Event{ToolThought: t})
		}
		thought := texts(ch.Thought)
		if len(ch.Choices) > 0 {
			d := ch.Choices[0].Delta
			if thought == "" { // OpenAI-compatible servers without the ASI1 field
				thought = d.ReasoningContent + d.Reasoning
			}
			if thought != "" {
				on(Event{Thought: thought})
			}
			if d.Content != nil && *d.Content != "" {
				on(Event{Content: *d.Content})
			}
			for i := range d.ToolCalls {
				on(Event{ToolCall: &d.ToolCalls[i]})
			}
			if f := ch.Choices[0].FinishReason; f != nil && *f != "" {
				on(Event{Finish: *f})
			}
		}
		if ch.Usage != nil {
			on(Event{Usage: ch.Usage})
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the stream: %w", err)
	}
	return ErrIncomplete
}
