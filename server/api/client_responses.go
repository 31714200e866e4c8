package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Responses sends a non-streamed Responses request (req.Stream is ignored).
func (c *Client) Responses(ctx context.Context, req *ResponseRequest) (*Response, error) {
	r := *req
	r.Stream = false
	var out Response
	if err := c.postJSON(ctx, ResponsesPath, "responses", &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResponsesStream sends a streamed Responses request and returns its
// events once the server has answered 200. Cancel ctx or Close the stream
// to stop the answer.
func (c *Client) ResponsesStream(ctx context.Context, req *ResponseRequest) (*ResponseStream, error) {
	r := *req
	r.Stream = true
	resp, err := c.postStream(ctx, ResponsesPath, "responses", &r)
	if err != nil {
		return nil, err
	}
	return &ResponseStream{Response: resp, r: NewSSEReader(resp.Body)}, nil
}

// ResponseStream reads the events of a streamed response.
type ResponseStream struct {
	// Response is the server's answer (headers: x-request-id, ...).
	Response *http.Response
	r        *SSEReader
	err      error
	ended    bool
}

// ErrNoFinalEvent is returned when a response stream ends before its
// response.completed, response.incomplete or response.failed event.
var ErrNoFinalEvent = errors.New("the response stream ended before its final event")

// Recv returns the next event. After the final event (response.completed,
// response.incomplete, response.failed) it returns io.EOF; an error event
// is returned as an event (Type "error"), and the failed response after
// it. Any error ends the stream.
func (s *ResponseStream) Recv() (*ResponseEvent, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.ended {
		s.err = io.EOF
		return nil, s.err
	}
	ev, err := s.r.Next()
	if err == io.EOF {
		err = ErrNoFinalEvent
	}
	if err != nil {
		s.err = err
		return nil, err
	}
	var out ResponseEvent
	if err := json.Unmarshal(ev.Data, &out); err != nil {
		s.err = fmt.Errorf("bad event %.200q: %w", ev.Data, err)
		return nil, s.err
	}
	switch out.Type {
	case EventResponseCompleted, EventResponseIncomplete, EventResponseFailed:
		s.ended = true
	}
	return &out, nil
}

// Close stops reading and closes the connection.
func (s *ResponseStream) Close() error { return s.Response.Body.Close() }
