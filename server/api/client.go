package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// Client is a small client of an ASI1 or OpenAI-compatible server: chat
// completions (whole or streamed), the model list and the metrics.
type Client struct {
	// BaseURL is the server's address, with or without /v1
	// (http://127.0.0.1:8080, https://api.asi1.ai/v1); a URL ending with
	// /v1/chat/completions is accepted too.
	BaseURL string
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// HTTP is the client to use; nil: http.DefaultClient.
	HTTP *http.Client
	// Header is added to every request (x-session-id, for instance).
	Header http.Header
}

// URL returns the address of path (an absolute path: ChatPath, ModelsPath,
// MetricsPath) on the client's server.
func (c *Client) URL(path string) string {
	base := strings.TrimRight(c.BaseURL, "/")
	base = strings.TrimSuffix(base, ChatPath)
	base = strings.TrimSuffix(base, "/v1")
	return base + path
}

// Do sends a request to path with body (nil: none; otherwise JSON) and
// header (added to the client's), and returns the response of a 2xx
// answer, whose body the caller closes. Any other status is returned as an
// *Error, with the body read and closed.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	for _, h := range []http.Header{c.Header, header} {
		for k, v := range h {
			req.Header[k] = v
		}
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
		return nil, ReadError(resp)
	}
	return resp, nil
}

// getJSON decodes the answer of GET path into v.
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// postJSON posts v, encoded as JSON, to path and decodes the 2xx answer
// into out; what names the request in errors.
func (c *Client) postJSON(ctx context.Context, path, what string, v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode the %s request: %w", what, err)
	}
	resp, err := c.Do(ctx, http.MethodPost, path, b, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read the %s answer: %w", what, err)
	}
	return nil
}

// postStream posts v, encoded as JSON, to path asking for an event stream
// and returns the server's 2xx answer, whose body the caller reads.
func (c *Client) postStream(ctx context.Context, path, what string, v any) (*http.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode the %s request: %w", what, err)
	}
	return c.Do(ctx, http.MethodPost, path, b, http.Header{"Accept": {"text/event-stream"}})
}

// Chat sends a non-streamed chat request (req.Stream is ignored).
func (c *Client) Chat(ctx context.Context, req *ChatCompletionRequest) (*ChatCompletion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out ChatCompletion
	if err := c.postJSON(ctx, ChatPath, "chat", &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChatStream sends a streamed chat request (req.Stream is set; set
// StreamOptions.IncludeUsage for a usage chunk) and returns the stream
// once the server has answered 200. Cancel ctx or Close the stream to stop
// the answer: the connection is closed and the server frees the sequence.
func (c *Client) ChatStream(ctx context.Context, req *ChatCompletionRequest) (*ChatStream, error) {
	r := *req
	r.Stream = true
	resp, err := c.postStream(ctx, ChatPath, "chat", &r)
	if err != nil {
		return nil, err
	}
	return NewChatStream(resp), nil
}

// Models returns GET /v1/models.
func (c *Client) Models(ctx context.Context) (*ModelList, error) {
	var l ModelList
	if err := c.getJSON(ctx, ModelsPath, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Model returns GET /v1/models/{id}.
func (c *Client) Model(ctx context.Context, id string) (*Model, error) {
	var m Model
	if err := c.getJSON(ctx, ModelsPath+"/"+url.PathEscape(id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Metrics scrapes the server's Prometheus metrics.
func (c *Client) Metrics(ctx context.Context) (Metrics, error) {
	resp, err := c.Do(ctx, http.MethodGet, MetricsPath, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ParseMetrics(io.LimitReader(resp.Body, 64<<20))
}

// ErrIncomplete is returned when a chat stream ends without data: [DONE].
var ErrIncomplete = errors.New("the stream ended before [DONE]")

// ChatStream reads the chunks of a streamed chat answer.
type ChatStream struct {
	// Response is the server's answer (headers: x-request-id, ...).
	Response *http.Response
	r        *SSEReader
	err      error
}

// NewChatStream reads the chunks of resp, a 200 event stream.
func NewChatStream(resp *http.Response) *ChatStream {
	return &ChatStream{Response: resp, r: NewSSEReader(resp.Body)}
}

// chunkOrError is a chunk or an in-stream error event.
type chunkOrError struct {
	ChatCompletionChunk
	Error *ErrorDetail `json:"error"`
}

// DecodeChunk decodes the data of a chat stream's event: a chunk, or an
// error event, returned as an *Error with Status 0.
func DecodeChunk(data []byte) (*ChatCompletionChunk, error) {
	var c chunkOrError
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("bad chunk %.200q: %w", data, err)
	}
	if c.Error != nil {
		return nil, &Error{Detail: *c.Error}
	}
	return &c.ChatCompletionChunk, nil
}

// Recv returns the next chunk. After data: [DONE] it returns io.EOF; an
// error event is returned as an *Error (Status 0); a stream that ends
// early gives ErrIncomplete. Any error ends the stream.
func (s *ChatStream) Recv() (*ChatCompletionChunk, error) {
	return nextData(s.r, &s.err, s.Response.Body, DecodeChunk)
}

// nextData is Recv of a stream that ends with data: [DONE] (chat and text
// completions): decode turns an event's data into a T or an error. The
// first error is kept in *errp, closes the connection and is returned
// again by every later call.
func nextData[T any](r *SSEReader, errp *error, body io.Closer, decode func([]byte) (*T, error)) (*T, error) {
	if *errp != nil {
		return nil, *errp
	}
	ev, err := r.Next()
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		*errp = ErrIncomplete
	case err != nil:
		*errp = fmt.Errorf("read the stream: %w", err)
	case ev.IsDone():
		*errp = io.EOF
	default:
		v, err := decode(ev.Data)
		if err == nil {
			return v, nil
		}
		*errp = err
	}
	body.Close()
	return nil, *errp
}

// All iterates over the chunks; the iteration ends at data: [DONE] with no
// error, or with the error that ended the stream.
func (s *ChatStream) All() iter.Seq2[*ChatCompletionChunk, error] {
	return func(yield func(*ChatCompletionChunk, error) bool) {
		for {
			c, err := s.Recv()
			if err == io.EOF {
				return
			}
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

// Close closes the connection (stopping the answer if it is running).
func (s *ChatStream) Close() error { return s.Response.Body.Close() }
