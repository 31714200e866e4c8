// Package chatclient streams an answer of the ASI1 (and OpenAI)
// chat-completions API as events, for `asi1d chat`: reasoning fragments
// (the ASI1 top-level "thought", or OpenAI-style delta.reasoning_content),
// answer text, tool calls, the finish reason and usage. The wire format
// and the HTTP client are server/api's.
package chatclient

import (
	"context"
	"errors"
	"io"

	"github.com/asi1d/asi1d/server/api"
)

// Event is one streamed piece of an answer; exactly one field is set.
type Event struct {
	Thought     string // a reasoning fragment
	ToolThought string // reasoning about a tool call (ASI1 tool_thought)
	Content     string // answer text
	ToolCall    *api.ToolCallDelta
	Finish      string // finish_reason
	Usage       *api.Usage
}

// Client talks to one server.
type Client struct {
	api.Client
}

// New returns a client of the server at baseURL (with or without /v1).
func New(baseURL, apiKey string) *Client {
	return &Client{api.Client{BaseURL: baseURL, APIKey: apiKey}}
}

// Models lists the ids of GET /v1/models: loaded models first (asi1d's
// catalog: no wait for a load), then the others; models the server marks
// unusable are left out.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	l, err := c.Client.Models(ctx)
	if err != nil {
		return nil, err
	}
	var loaded, rest []string
	for _, m := range l.Data {
		switch {
		case m.Status == api.ModelUnusable:
		case m.Loaded:
			loaded = append(loaded, m.ID)
		default:
			rest = append(rest, m.ID)
		}
	}
	return append(loaded, rest...), nil
}

// ErrIncomplete is returned when a stream ends without data: [DONE].
var ErrIncomplete = api.ErrIncomplete

// Stream sends r with stream: true and include_usage, and calls on for
// each event until the stream ends. Cancel ctx to stop the answer: the
// connection is closed and the server frees the sequence. It returns an
// *api.Error for an error the server answered, before or inside the
// stream.
func (c *Client) Stream(ctx context.Context, r *api.ChatCompletionRequest, on func(Event)) error {
	req := *r
	req.StreamOptions = &api.StreamOptions{IncludeUsage: true}
	s, err := c.ChatStream(ctx, &req)
	if err != nil {
		return err
	}
	defer s.Close()
	for {
		ch, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if t := ch.ToolThoughtText(); t != "" {
			on(Event{ToolThought: t})
		}
		if len(ch.Choices) > 0 {
			if t := ch.ThoughtText(); t != "" {
				on(Event{Thought: t})
			}
			d := &ch.Choices[0].Delta
			if t := d.Text(); t != "" {
				on(Event{Content: t})
			}
			for i := range d.ToolCalls {
				on(Event{ToolCall: &d.ToolCalls[i]})
			}
			if f := ch.Choices[0].FinishReason; f != nil && *f != "" {
				on(Event{Finish: *f})
			}
		}
		u, err := ch.UsageStats()
		if err != nil {
			return err
		}
		if u != nil {
			on(Event{Usage: u})
		}
	}
}
