package api

import (
	"context"
	"encoding/json"
	"fmt"
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
	return nextData(s.r, &s.err, s.Response.Body, decodeCompletion)
}

// decodeCompletion decodes the data of a text completion stream's event: a
// completion, or an error event, returned as an *Error with Status 0.
func decodeCompletion(data []byte) (*Completion, error) {
	var c struct {
		Completion
		Error *ErrorDetail `json:"error"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("bad event %.200q: %w", data, err)
	}
	if c.Error != nil {
		return nil, &Error{Detail: *c.Error}
	}
	return &c.Completion, nil
}

// Close closes the connection (stopping the answer if it is running).
func (s *CompletionStream) Close() error { return s.Response.Body.Close() }
