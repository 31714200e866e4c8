package server_test

// POST /v1/responses through the official OpenAI SDK for Go, against the
// whole server on the fake engine (plain rule, one token per byte).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/server/api"
)

func rsClient(url string) openai.Client {
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("unused"),
		option.WithMaxRetries(0), option.WithRequestTimeout(time.Minute))
}

func rsParams(input string) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:       "asi1-mini",
		Input:       responses.ResponseNewParamsInputUnion{OfString: openai.String(input)},
		Temperature: openai.Float(0),
	}
}

// rsTurns makes the fake answer by the end of its prompt: after the last
// of the markers (plain-rule prompt text) that occurs in the history, it
// writes that marker's tokens, then EOS.
func rsTurns(turns map[string][]ctTokens) func([]engine.Token) engine.Token {
	type turn struct{ marker, out []engine.Token }
	var ts []turn
	for m, out := range turns {
		var t turn
		for i := 0; i < len(m); i++ {
			t.marker = append(t.marker, engine.Token(enginetest.ByteBase+int(m[i])))
		}
		for _, o := range out {
			if o.tok >= 0 {
				t.out = append(t.out, o.tok)
				continue
			}
			for i := 0; i < len(o.text); i++ {
				t.out = append(t.out, engine.Token(enginetest.ByteBase+int(o.text[i])))
			}
		}
		ts = append(ts, t)
	}
	return func(h []engine.Token) engine.Token {
		best, end := -1, -1
		for i, t := range ts {
			for at := len(h) - len(t.marker); at >= 0; at-- {
				if slices.Equal(h[at:at+len(t.marker)], t.marker) {
					if at+len(t.marker) > end {
						best, end = i, at+len(t.marker)
					}
					break
				}
			}
		}
		if best < 0 {
			return enginetest.DefaultNext(h)
		}
		if n := len(h) - end; n < len(ts[best].out) {
			return ts[best].out[n]
		}
		return enginetest.EOS
	}
}

func TestResponsesPlainAndSameAsChat(t *testing.T) {
	e := ctStart(t, ctConfig{next: ctScript("Say hi", "Hello world")})
	client := rsClient(e.url)
	ctx := context.Background()
	r, err := client.Responses.New(ctx, rsParams("Say hi"))
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "Hello world" || r.Status != "completed" || !strings.HasPrefix(r.ID, "resp_") || r.Object != "response" {
		t.Fatalf("text %q status %q id %q object %q", r.OutputText(), r.Status, r.ID, r.Object)
	}
	if len(r.Output) != 1 || r.Output[0].Type != "message" || r.Output[0].Role != "assistant" || r.Output[0].Status != "completed" {
		t.Fatalf("output %s", r.RawJSON())
	}
	u := r.Usage
	if u.InputTokens != int64(1+len("Say hi")) || u.OutputTokens != int64(len("Hello world")+1) || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("usage %+v", u)
	}
	chat := e.complete(ctBody("Say hi", nil))
	if chat.content() != r.OutputText() {
		t.Errorf("chat %q, responses %q", chat.content(), r.OutputText())
	}
	// instructions are a system message before the input: the plain rule
	// joins them with a newline, as chat's system message.
	e2 := ctStart(t, ctConfig{next: ctScript("Be brief.\nSay hi", "Hi")})
	p := rsParams("Say hi")
	p.Instructions = openai.String("Be brief.")
	c2 := rsClient(e2.url)
	r2, err := c2.Responses.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r2.OutputText() != "Hi" || r2.Instructions.OfString != "Be brief." {
		t.Errorf("with instructions: %q, instructions %+v", r2.OutputText(), r2.Instructions)
	}
}

func TestResponsesIncomplete(t *testing.T) {
	e := ctStart(t, ctConfig{next: ctScript("Say hi", "Hello world")})
	p := rsParams("Say hi")
	p.MaxOutputTokens = openai.Int(4)
	client := rsClient(e.url)
	r, err := client.Responses.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "incomplete" || r.IncompleteDetails.Reason != "max_output_tokens" || r.OutputText() != "Hell" || r.Usage.OutputTokens != 4 {
		t.Fatalf("status %q reason %q text %q usage %+v", r.Status, r.IncompleteDetails.Reason, r.OutputText(), r.Usage)
	}
	if r.Output[0].Status != "incomplete" || r.MaxOutputTokens != 4 {
		t.Errorf("item status %q, max_output_tokens %d", r.Output[0].Status, r.MaxOutputTokens)
	}
}

// The stream's events come in OpenAI's order, numbered from 0, each with
// its event: line, and end with the same response a plain request gets.
func TestResponsesStream(t *testing.T) {
	e := ctStart(t, ctConfig{think: true, next: rsTurns(map[string][]ctTokens{
		"Think": {ctText("<think>hmm</think>Yes.")},
	})})
	client := rsClient(e.url)
	ctx := context.Background()
	st := client.Responses.NewStreaming(ctx, rsParams("Think"))
	var types []string
	var text, reasoning string
	var final responses.Response
	for i := int64(0); st.Next(); i++ {
		ev := st.Current()
		if ev.SequenceNumber != i {
			t.Errorf("event %d (%s) has sequence_number %d", i, ev.Type, ev.SequenceNumber)
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text += ev.Delta
		case "response.reasoning_text.delta":
			reasoning += ev.Delta
		case "response.completed":
			final = ev.AsResponseCompleted().Response
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
		"response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	got := slices.Compact(slices.Clone(types))
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	if text != "Yes." || reasoning != "hmm" || final.OutputText() != "Yes." {
		t.Errorf("text %q reasoning %q final %q", text, reasoning, final.OutputText())
	}
	rs := final.Output[0].AsReasoning()
	if final.Output[0].Type != "reasoning" || len(rs.Content) != 1 || rs.Content[0].Text != "hmm" || rs.Content[0].Type != "reasoning_text" {
		t.Errorf("reasoning item %s", final.Output[0].RawJSON())
	}
	if final.Usage.OutputTokensDetails.ReasoningTokens != 3 {
		t.Errorf("reasoning tokens %d, want 3", final.Usage.OutputTokensDetails.ReasoningTokens)
	}
	plain, err := client.Responses.New(ctx, rsParams("Think"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.OutputText() != final.OutputText() || len(plain.Output) != len(final.Output) || plain.Output[0].AsReasoning().Content[0].Text != "hmm" {
		t.Errorf("plain %s\nstreamed %s", plain.RawJSON(), final.RawJSON())
	}

	// Each event on the wire has an event: line naming its type.
	b, _ := json.Marshal(map[string]any{"model": "asi1-mini", "input": "Think", "stream": true})
	resp, err := http.Post(e.url+"/v1/responses", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var name string
	var wire []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var ev struct{ Type string }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil || ev.Type != name {
				t.Fatalf("event: %q, data type %q (%v)", name, ev.Type, err)
			}
			name = ""
			wire = append(wire, ev.Type)
		}
	}
	// How many deltas a stream carries depends on how fast its reader
	// takes them (pending text is coalesced), so the two streams are
	// compared by their runs of event types, not by count.
	if got := slices.Compact(wire); !slices.Equal(got, want) {
		t.Errorf("events on the wire\n got %v\nwant %v", got, want)
	}
}

// A function call goes out as a function_call item, and its output comes
// back both through previous_response_id and in the full input list.
func TestResponsesToolRoundTrip(t *testing.T) {
	next := rsTurns(map[string][]ctTokens{
		"Weather in Paris?": {ctText("Let me look. "), ctTok(enginetest.Special2), ctText(`{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>`)},
		"SUNNY-22C":         {ctText("Nice weather.")},
	})
	e := ctStart(t, ctConfig{next: next, setup: func(f *enginetest.Fake) { f.SetSpecial(enginetest.Special2, "<tool_call>", false) }})
	client := rsClient(e.url)
	ctx := context.Background()
	p := rsParams("Weather in Paris?")
	p.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather",
		map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}, true)}
	for _, stream := range []bool{false, true} {
		var r1 *responses.Response
		if stream {
			st := client.Responses.NewStreaming(ctx, p)
			var args string
			var types []string
			for st.Next() {
				ev := st.Current()
				types = append(types, ev.Type)
				switch ev.Type {
				case "response.function_call_arguments.delta":
					args += ev.Delta
				case "response.completed":
					c := ev.AsResponseCompleted().Response
					r1 = &c
				}
			}
			if err := st.Err(); err != nil || r1 == nil {
				t.Fatalf("stream: %v (completed %v)", err, r1 != nil)
			}
			if args != `{"city": "Paris"}` && args != `{"city":"Paris"}` {
				t.Errorf("streamed arguments %q", args)
			}
			want := []string{"response.created", "response.in_progress",
				"response.output_item.added", "response.content_part.added", "response.output_text.delta",
				"response.output_text.done", "response.content_part.done", "response.output_item.done",
				"response.output_item.added", "response.function_call_arguments.delta",
				"response.function_call_arguments.done", "response.output_item.done", "response.completed"}
			if got := slices.Compact(types); !slices.Equal(got, want) {
				t.Errorf("events\n got %v\nwant %v", got, want)
			}
		} else {
			var err error
			if r1, err = client.Responses.New(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if len(r1.Output) != 2 || r1.Output[0].Type != "message" || r1.Output[1].Type != "function_call" {
			t.Fatalf("stream %v: output %s", stream, r1.RawJSON())
		}
		call := r1.Output[1].AsFunctionCall()
		if call.Name != "get_weather" || !strings.HasPrefix(call.CallID, "call_") || !strings.HasPrefix(call.ID, "fc_") {
			t.Fatalf("call %+v", call)
		}
		var args map[string]string
		if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || args["city"] != "Paris" {
			t.Fatalf("arguments %q: %v", call.Arguments, err)
		}
		if r1.OutputText() != "Let me look. " {
			t.Errorf("text %q", r1.OutputText())
		}
		out := responses.ResponseInputItemParamOfFunctionCallOutput("SUNNY-22C")
		out.OfFunctionCallOutput.CallID = openai.String(call.CallID)

		p2 := rsParams("")
		p2.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{out}}
		p2.PreviousResponseID = openai.String(r1.ID)
		r2, err := client.Responses.New(ctx, p2)
		if err != nil {
			t.Fatal(err)
		}
		if r2.OutputText() != "Nice weather." || r2.PreviousResponseID != r1.ID {
			t.Errorf("with previous_response_id: %q (previous %q)", r2.OutputText(), r2.PreviousResponseID)
		}

		p3 := rsParams("")
		p3.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
			out,
		}}
		r3, err := client.Responses.New(ctx, p3)
		if err != nil {
			t.Fatal(err)
		}
		if r3.OutputText() != "Nice weather." {
			t.Errorf("with the full input: %q", r3.OutputText())
		}
	}
	// The output without its call is refused, in the error shape.
	r := e.do(http.MethodPost, "/v1/responses", `{"model":"asi1-mini","input":[{"type":"function_call_output","call_id":"call_x","output":"1"}]}`)
	ctError(t, r, 400, "invalid_request_error", "invalid_value", "input[0].call_id")
}

// store:false keeps nothing; an unknown id is a 400 naming the field.
func TestResponsesStoreFalse(t *testing.T) {
	e := ctStart(t, ctConfig{next: ctScript("Say hi", "Hello world")})
	client := rsClient(e.url)
	p := rsParams("Say hi")
	p.Store = openai.Bool(false)
	r, err := client.Responses.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.RawJSON(), `"store":false`) {
		t.Errorf("store not echoed false: %s", r.RawJSON())
	}
	body := `{"model":"asi1-mini","input":"more","previous_response_id":"` + r.ID + `"}`
	ctError(t, e.do(http.MethodPost, "/v1/responses", body), 400, "invalid_request_error", "invalid_value", "previous_response_id")
}

// Errors the chat path answers name the Responses field.
func TestResponsesErrorParams(t *testing.T) {
	e := ctStart(t, ctConfig{})
	for _, c := range []struct{ body, code, param string }{
		{`{"model":"asi1-mini","input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"}}}}`, "unsupported_value", "text.format"},
		{`{"model":"asi1-mini","input":"hi","text":{"format":{"type":"json_object"}}}`, "unsupported_value", "text.format"},
		{`{"model":"asi1-mini","input":"` + strings.Repeat("a", 400) + `"}`, "context_length_exceeded", "input"},
		{`{"model":"asi1-mini","input":"hi","tools":[{"type":"function","name":"a b"}]}`, "invalid_value", "tools[0].name"},
		{`{"model":"asi1-mini","input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`, "invalid_value", "tool_choice.name"},
		{`{"model":"asi1-mini","input":"hi","text":{"format":{"type":"json_schema","name":"x"}}}`, "missing_required_parameter", "text.format.schema"},
	} {
		ctError(t, e.do(http.MethodPost, "/v1/responses", c.body), 400, "invalid_request_error", c.code, c.param)
	}
	if st := e.sched.Stats(); st.Running != 0 || st.Waiting != 0 {
		t.Fatalf("work left in the scheduler: %+v", st)
	}
}

// An error after the first event is an error event, then response.failed;
// server/api's client reads them.
func TestResponsesErrorAfterStart(t *testing.T) {
	var decodes atomic.Int64
	firstRead := make(chan struct{})
	e := ctStart(t, ctConfig{parallel: 1, failDecode: func([]engine.BatchEntry) error {
		if n := decodes.Add(1); n >= 5 {
			if n == 5 { // fail only once the client holds the first event
				select {
				case <-firstRead:
				case <-time.After(5 * time.Second):
				}
			}
			return errors.New("fake: device lost")
		}
		return nil
	}})
	c := &api.Client{BaseURL: e.url}
	st, err := c.ResponsesStream(context.Background(), &api.ResponseRequest{Model: "asi1-mini", Input: "hi", MaxOutputTokens: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var evs []*api.ResponseEvent
	for {
		ev, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			close(firstRead)
		}
		if ev.SequenceNumber != int64(len(evs)) {
			t.Errorf("sequence_number %d at %d", ev.SequenceNumber, len(evs))
		}
		evs = append(evs, ev)
	}
	n := len(evs)
	if n < 4 || evs[0].Type != api.EventResponseCreated || evs[n-2].Type != api.EventError || evs[n-1].Type != api.EventResponseFailed {
		t.Fatalf("events %v", evs)
	}
	if evs[n-2].Code != "internal_error" || evs[n-2].Message == "" {
		t.Errorf("error event %+v", evs[n-2])
	}
	if r := evs[n-1].Response; r.Status != api.ResponseFailed || r.Error == nil || r.Error.Code != "internal_error" {
		t.Errorf("failed response %+v", r)
	}
	// Before any event, the failure is a plain JSON error.
	_, err = c.Responses(context.Background(), &api.ResponseRequest{Model: "asi1-mini", Input: "hi"})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Detail.Code != "internal_error" {
		t.Errorf("plain request: %v", err)
	}
}
