package chatclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/server/api"
)

func serve(t *testing.T, status int, body string) (*Client, *http.Request) {
	var got http.Request
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = *r
		got.Body = io.NopCloser(strings.NewReader(string(b)))
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(hs.Close)
	return New(hs.URL+"/", "k1"), &got
}

func collect(t *testing.T, c *Client) ([]Event, error) {
	var evs []Event
	temp := 0.5
	req := &api.ChatCompletionRequest{Model: "m", Messages: []api.Message{api.NewMessage(api.RoleUser, "hi")}, Temperature: &temp}
	err := c.Stream(context.Background(), req, func(e Event) { evs = append(evs, e) })
	return evs, err
}

// A stream of the ASI1 shape and of the OpenAI-compatible shape: thought
// fragments, content, tool calls, finish and usage, in order.
func TestStreamEvents(t *testing.T) {
	stream := strings.Join([]string{
		`data: {"tool_thought":[],"choices":[{"delta":{"role":"assistant","content":""}}]}`,
		`: keep-alive`,
		`data: {"thought":"let me ","choices":[{"delta":{"reasoning_content":"let me "}}]}`,
		`data: {"choices":[{"delta":{"reasoning_content":"think"}}]}`,
		`data: {"choices":[{"delta":{"content":"Hi"}}]}`,
		`data: {"tool_thought":["call it"],"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{}"}}]}}]}`,
		`data: {"choices":[{"delta":{},"finish_reason":"tool_calls"}]}`,
		`data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`,
		`data: [DONE]`, ``}, "\n\n")
	c, req := serve(t, 200, stream)
	evs, err := collect(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		switch {
		case e.Thought != "":
			got = append(got, "thought:"+e.Thought)
		case e.ToolThought != "":
			got = append(got, "tool_thought:"+e.ToolThought)
		case e.Content != "":
			got = append(got, "content:"+e.Content)
		case e.ToolCall != nil:
			got = append(got, "call:"+e.ToolCall.ID+":"+e.ToolCall.Function.Name+e.ToolCall.Function.Arguments)
		case e.Finish != "":
			got = append(got, "finish:"+e.Finish)
		case e.Usage != nil:
			got = append(got, fmt.Sprintf("usage:%d/%d/%d", e.Usage.PromptTokens, e.Usage.CompletionTokens, e.Usage.TotalTokens))
		}
	}
	want := []string{"thought:let me ", "thought:think", "content:Hi", "tool_thought:call it", "call:c1:f{}", "finish:tool_calls",
		"usage:3/4/7"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events\n%q\nwant\n%q", got, want)
	}
	body, _ := io.ReadAll(req.Body)
	if req.URL.Path != "/v1/chat/completions" || req.Header.Get("Authorization") != "Bearer k1" ||
		string(body) != `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stream":true,"stream_options":{"include_usage":true}}` {
		t.Errorf("request %s %q %s", req.URL.Path, req.Header.Get("Authorization"), body)
	}
}

// Errors: the contract's message before the stream and inside it, a body
// that is not JSON, and a stream cut before [DONE].
func TestStreamErrors(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   string
	}{
		{401, `{"error":{"message":"Invalid or missing API key","type":"authentication_error","param":null,"code":"invalid_api_key"}}`, "401 invalid_api_key: Invalid or missing API key"},
		{502, `Bad Gateway from a proxy`, "502 Bad Gateway from a proxy"},
		{200, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":\"internal_error\"}}\n\ndata: [DONE]\n\n", "internal_error: boom"},
		{200, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", ErrIncomplete.Error()},
	}
	for _, c := range cases {
		cl, _ := serve(t, c.status, c.body)
		_, err := collect(t, cl)
		if err == nil || err.Error() != c.want {
			t.Errorf("status %d: error %v, want %q", c.status, err, c.want)
		}
		var ae *api.Error
		if c.status == 401 && (!errors.As(err, &ae) || ae.Status != 401) {
			t.Errorf("401 is not an *api.Error: %#v", err)
		}
	}
}

func TestModels(t *testing.T) {
	c, req := serve(t, 200, `{"object":"list","data":[{"id":"a"},{"id":"b"}]}`)
	c.BaseURL += "v1"
	ids, err := c.Models(context.Background())
	if err != nil || strings.Join(ids, ",") != "a,b" || req.URL.Path != "/v1/models" {
		t.Errorf("ids %v err %v path %s", ids, err, req.URL.Path)
	}
	// asi1d's catalog: loaded first, unusable left out.
	c, _ = serve(t, 200, `{"object":"list","data":[{"id":"a","loaded":false,"status":"unloaded"},{"id":"b","loaded":false,"status":"unusable"},{"id":"c","loaded":true,"status":"loaded"}]}`)
	ids, err = c.Models(context.Background())
	if err != nil || strings.Join(ids, ",") != "c,a" {
		t.Errorf("catalog: ids %v err %v", ids, err)
	}
}
