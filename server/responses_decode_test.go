package server

import (
	"strings"
	"testing"
)

// responsesParamRoots are the top-level names a Responses error param may
// start with.
var responsesParamRoots = []string{
	"model", "input", "instructions", "previous_response_id", "temperature", "top_p", "stream",
	"parallel_tool_calls", "store", "max_output_tokens", "user", "tools", "tool_choice", "text", "metadata",
	"background", "conversation", "prompt",
}

// FuzzDecodeResponsesRequest feeds arbitrary bodies to the Responses
// decoder: it never panics, every refusal is a 400 whose param names a
// Responses member (never a chat one), and every accepted body has input.
func FuzzDecodeResponsesRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `[]`, `{"model":"m","input":"hi"}`, `{"model":"m","input":""}`, `{"model":"m","input":[]}`,
		`{"model":"m","input":[{"role":"developer","content":[{"type":"input_text","text":"a"}]},{"role":"user","content":"b"}],"instructions":"i"}`,
		`{"model":"m","input":[{"type":"reasoning","summary":[{"type":"summary_text","text":"r"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"o"}]}]}`,
		`{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":true}],"tool_choice":{"type":"function","name":"f"}}`,
		`{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`,
		`{"model":"m","input":"x","tools":[{"type":"file_search"}]}`,
		`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"s","schema":5}}}`,
		`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"},"strict":true}}}`,
		`{"model":"m","input":"x","metadata":{"a":1}}`,
		`{"model":"m","input":"x","max_output_tokens":0,"temperature":3}`,
		`{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":5}]}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"u"}]}]}`,
		`{"model":"m","input":"x","background":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, aerr := decodeResponsesRequest(body)
		if aerr != nil {
			if aerr.Status != 400 || aerr.Message == "" || !validCodes[aerr.Code] {
				t.Fatalf("error %+v", aerr)
			}
			if aerr.Param == "" {
				if aerr.Code != CodeInvalidJSON {
					t.Fatalf("no param: %+v", aerr)
				}
				return
			}
			for _, root := range responsesParamRoots {
				if aerr.Param == root || strings.HasPrefix(aerr.Param, root+".") || strings.HasPrefix(aerr.Param, root+"[") {
					return
				}
			}
			t.Fatalf("param %q is not a Responses member: %+v", aerr.Param, aerr)
		}
		if len(r.input) == 0 || len(r.input) != len(r.inputParam) || r.chat.Model == "" {
			t.Fatalf("accepted without input or model: %+v", r)
		}
	})
}
