package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Completion sends a non-streamed text completion request (req.Stream is
// ignored).
func (c *Client) Completion(ctx context.Context, req *CompletionRequest) (*Completion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out Completion
	if err := c.postJSON(ctx, CompletionsPath, "completion", &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CompletionStream sends a streamed text completion request and returns
// the stream once the server has answered 200. Close it (or cancel ctx) to
// stop the answer.
func (c *Client) CompletionStream(ctx context.Context, req *CompletionRequest) (*CompletionStream, error) {
	r := *req
	r.Stream = true
	resp, err := c.postStream(ctx, CompletionsPath, "completion", &r)
	if err != nil {
		return nil, err
	}
	return &CompletionStream{Response: resp, r: NewSSEReader(resp.Body)}, nil
}

// CompletionStream reads the events of a streamed text completion.
type CompletionStream struct {
	// Response is the server's answer.
	Response *http.Response
	r        *SSEReader
	err      error
}

// Recv returns the next event. After data: [DONE] it returns io.EOF; an
// error event is returned as an *Error (Status 0); a stream that ends
// early gives ErrIncomplete. Any error ends the stream.
func (s *CompletionStream) Recv() (*Completion, error) {
	if s.err != nil {
		return nil, s.err
	}
	ev, err := s.r.Next()
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		s.err = ErrIncomplete
	case err != nil:
		s.err = fmt.Errorf("read the stream: %w", err)
	case ev.IsDone():
		s.err = io.EOF
	default:
		var c struct {
			Completion
			Error *ErrorDetail `json:"error"`
		}
		switch err := json.Unmarshal(ev.Data, &c); {
		case err != nil:
			s.err = fmt.Errorf("bad event %.200q: %w", ev.Data, err)
		case c.Error != nil:
			s.err = &Error{Detail: *c.Error}
		default:
			return &c.Completion, nil
		}
	}
	s.Close()
	return nil, s.err
}

// Close closes the connection (stopping the answer if it is running).
func (s *CompletionStream) Close() error { return s.Response.Body.Close() }
