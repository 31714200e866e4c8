package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// fuzzSeeds are valid and invalid bodies covering every field.
var fuzzSeeds = []string{
	``,
	`{}`,
	`[]`,
	`null`,
	`"x"`,
	`{"model":"asi1-mini","messages":[{"role":"user","content":"Hello, how are you?"}],"temperature":0.7,"stream":false,"max_tokens":1024}`,
	`{"model":"asi1-mini","messages":[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":"hi","name":"u"}],"stream":true,"stream_options":{"include_usage":true}}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"call_1","content":"r"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":0.5,"stop":["a","b"],"seed":-1,"presence_penalty":1,"frequency_penalty":-1,"n":1,"logprobs":true,"top_logprobs":5,"logit_bias":{"50256":-100},"user":"u","web_search":true,"agent_address":"agent1q"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"max_completion_tokens":1e3}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.5e400}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-9223372036854775809}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"true","stop":""}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}`,
	`{"model":"m","messages":[{"content":"x"}]}`,
	`{"model":"m","messages":[{"role":"tool","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"bad name"}}],"tool_choice":"required"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"01":1,"x":2}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"n":2,"top_logprobs":3}`,
	`{"model":"m","messages":[{"role":"user","content":"x\ud800\u0000"}],"x":[[[[[[[[[[]]]]]]]]]]}`,
	"{\"model\":\"m\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}",
	`{"model":"m","messages":[{"role":"user","content":"x"}]} trailing`,
	`{"model":"m","messages":[{"role":"user","content":"x"`,
}

// validParamRoots are the top-level names an error param may start with.
var validParamRoots = []string{
	"model", "messages", "temperature", "top_p", "stream", "stream_options", "max_tokens",
	"max_completion_tokens", "stop", "seed", "presence_penalty", "frequency_penalty", "n",
	"logit_bias", "logprobs", "top_logprobs", "response_format", "tools", "tool_choice",
	"parallel_tool_calls", "user", "web_search", "agent_address",
}

var validCodes = map[string]bool{
	CodeInvalidJSON: true, CodeInvalidType: true, CodeInvalidValue: true,
	CodeMissingRequired: true, CodeUnsupportedValue: true,
}

func paramRootOK(p string) bool {
	for _, r := range validParamRoots {
		if p == r || strings.HasPrefix(p, r+".") || strings.HasPrefix(p, r+"[") {
			return true
		}
	}
	return false
}

// FuzzDecodeChatRequest feeds arbitrary bodies to DecodeChatRequest: it must
// never panic and must return a sane request or a well-formed 400.
func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := DecodeChatRequest(body)
		if (req == nil) == (aerr == nil) {
			t.Fatalf("want exactly one of request/error, got %v / %v", req, aerr)
		}
		if aerr != nil {
			if aerr.Status != 400 || aerr.Type != TypeInvalidRequest || !validCodes[aerr.Code] || aerr.Message == "" {
				t.Fatalf("bad error %#v", aerr)
			}
			if aerr.Code == CodeInvalidJSON {
				if aerr.Param != "" {
					t.Fatalf("invalid_json with param %q", aerr.Param)
				}
			} else {
				if !paramRootOK(aerr.Param) {
					t.Fatalf("param %q for %s", aerr.Param, aerr.Code)
				}
				if !json.Valid(body) {
					t.Fatalf("invalid JSON answered %s", aerr.Code)
				}
			}
			b, err := json.Marshal(aerr.Body())
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]map[string]any
			if err := json.Unmarshal(b, &m); err != nil || len(m["error"]) != 4 {
				t.Fatalf("wire shape %s", b)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON")
		}
		checkInvariants(t, req)
	})
}

// checkInvariants asserts what callers may rely on for an accepted request.
func checkInvariants(t *testing.T, req *ChatRequest) {
	t.Helper()
	if req.Model == "" || len(req.Messages) == 0 {
		t.Fatalf("model/messages: %+v", req)
	}
	for i, m := range req.Messages {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant, RoleTool:
		default:
			t.Fatalf("messages[%d].role %q", i, m.Role)
		}
		if !m.HasContent && (m.Role != RoleAssistant || len(m.ToolCalls) == 0) {
			t.Fatalf("messages[%d] without content: %+v", i, m)
		}
		if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
			t.Fatalf("messages[%d] tool calls on %s", i, m.Role)
		}
	}
	if req.Temperature < 0 || req.Temperature > 2 || req.TopP < 0 || req.TopP > 1 ||
		req.PresencePenalty < -2 || req.PresencePenalty > 2 || req.FrequencyPenalty < -2 || req.FrequencyPenalty > 2 {
		t.Fatalf("sampling out of range: %+v", req)
	}
	if req.MaxTokens < 0 || req.IncludeUsage && !req.Stream {
		t.Fatalf("max_tokens/include_usage: %+v", req)
	}
	if len(req.Stop) > 4 {
		t.Fatalf("stop %q", req.Stop)
	}
	for _, s := range req.Stop {
		if s == "" {
			t.Fatal("empty stop")
		}
	}
	if req.HasTopLogprobs && (!req.Logprobs || req.TopLogprobs < 0 || req.TopLogprobs > 20) {
		t.Fatalf("top_logprobs: %+v", req)
	}
	for id, v := range req.LogitBias {
		if id < 0 || v < -100 || v > 100 {
			t.Fatalf("logit_bias %d:%v", id, v)
		}
	}
	names := map[string]bool{}
	for _, tl := range req.Tools {
		if !validToolName(tl.Name) || names[tl.Name] || len(tl.Raw) == 0 || !json.Valid(tl.Raw) {
			t.Fatalf("tool %+v", tl)
		}
		if tl.Parameters != nil && kindOf(tl.Parameters) != kindObject {
			t.Fatalf("parameters %s", tl.Parameters)
		}
		names[tl.Name] = true
	}
	switch req.ToolChoice.Mode {
	case "none":
	case "auto", "required":
		if len(req.Tools) == 0 {
			t.Fatalf("tool_choice %s without tools", req.ToolChoice.Mode)
		}
	case "function":
		if !names[req.ToolChoice.Name] {
			t.Fatalf("tool_choice names undeclared %q", req.ToolChoice.Name)
		}
	default:
		t.Fatalf("tool_choice mode %q", req.ToolChoice.Mode)
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
		case "json_schema":
			if kindOf(rf.Schema) != kindObject {
				t.Fatalf("schema %s", rf.Schema)
			}
		default:
			t.Fatalf("response_format %+v", rf)
		}
	}
}

// FuzzDecodeChatRequestField fuzzes one top-level member of an otherwise
// valid body, which reaches the per-field validators far more often than
// byte mutations of whole bodies do.
func FuzzDecodeChatRequestField(f *testing.F) {
	seeds := map[string][]string{
		"messages":        {`[{"role":"user","content":[{"type":"text","text":"a"}]}]`, `[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":{}}}]}]`, `[{"role":"tool","tool_call_id":"c","content":""}]`},
		"max_tokens":      {`1`, `1.0`, `1e3`, `-0.0e-0`, `9223372036854775807`, `123456789012345678901234567890e-11`},
		"temperature":     {`0`, `2`, `2.0000000000000001`, `-0`},
		"stop":            {`"a"`, `["a","b","c","d"]`},
		"logit_bias":      {`{"0":1,"2147483647":-100}`},
		"tools":           {`[{"type":"function","function":{"name":"f","parameters":{}}}]`},
		"tool_choice":     {`"auto"`, `{"type":"function","function":{"name":"f"}}`},
		"response_format": {`{"type":"json_schema","json_schema":{"schema":{}}}`},
		"top_logprobs":    {`20`},
		"n":               {`1`, `1e0`},
		"stream_options":  {`{"include_usage":true}`},
	}
	for k, vs := range seeds {
		for _, v := range vs {
			f.Add(k, []byte(v))
		}
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		k, _ := json.Marshal(key)
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,` + string(k) + `:` + string(value) + `}`)
		req, aerr := DecodeChatRequest(body)
		if (req == nil) == (aerr == nil) {
			t.Fatalf("want exactly one of request/error")
		}
		if aerr != nil {
			if aerr.Status != 400 || aerr.Type != TypeInvalidRequest || !validCodes[aerr.Code] || aerr.Message == "" {
				t.Fatalf("bad error %#v", aerr)
			}
			if aerr.Code == CodeInvalidJSON && aerr.Param != "" || aerr.Code != CodeInvalidJSON && !paramRootOK(aerr.Param) {
				t.Fatalf("param %q for %s", aerr.Param, aerr.Code)
			}
			return
		}
		checkInvariants(t, req)
	})
}
