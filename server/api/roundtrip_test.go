package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// Every type, filled, encodes with encoding/json and decodes back to
// itself (the raw fields compacted as the encoder writes them).
func TestRoundTrip(t *testing.T) {
	schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	values := []any{
		&ChatCompletionRequest{
			Model: "asi1-mini", Messages: []Message{
				NewMessage(RoleSystem, "Be brief."), NewMessage(RoleUser, "Weather in <Paris> & Rome?"),
				{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "call_1", Type: "function", Function: FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
				{Role: RoleTool, Content: ptr("sunny"), ToolCallID: "call_1"},
			},
			Temperature: ptr(0.0), TopP: ptr(0.9), MaxTokens: 64, MaxCompletionTokens: 32,
			Stream: true, StreamOptions: &StreamOptions{IncludeUsage: true},
			Stop: []string{"\n\n"}, Seed: ptr(int64(42)), PresencePenalty: ptr(0.5), FrequencyPenalty: ptr(-0.5), N: ptr(1),
			LogitBias: map[string]float64{"2": -100}, Logprobs: true, TopLogprobs: ptr(3),
			ResponseFormat: &ResponseFormat{Type: "json_schema", JSONSchema: &JSONSchema{Name: "answer", Schema: schema, Strict: true}},
			Tools:          []Tool{NewFunctionTool("get_weather", "Weather of a city", schema)},
			ToolChoice:     &ToolChoice{Function: "get_weather"}, ParallelToolCalls: ptr(false),
			User: "u1", WebSearch: true, AgentAddress: "agent1q",
		},
		&ChatCompletionRequest{Model: "m", Messages: []Message{NewMessage(RoleUser, "")}, ToolChoice: &ToolChoice{Mode: "required"},
			ResponseFormat: &ResponseFormat{Type: "json_object"}},
		&ChatCompletion{
			ID: "id_kKg27rnGyfH4NknTL", Object: ObjectChatCompletion, Created: 1767225600, Model: "asi1-mini", SystemFingerprint: "fp_1",
			ExecutableData: []any{}, Thought: []string{"User greets me."}, ToolThought: []string{},
			Choices: []Choice{{Message: Message{Role: RoleAssistant, Content: ptr("Hello!"), ReasoningContent: "User greets me."},
				Logprobs: &Logprobs{Content: []TokenLogprob{{Token: "He", Logprob: -0.25, Bytes: []int{72, 101},
					TopLogprobs: []TopLogprob{{Token: "He", Logprob: -0.25, Bytes: []int{72, 101}}}}}}, FinishReason: FinishStop}},
			Usage: Usage{PromptTokens: 39, CompletionTokens: 18, TotalTokens: 57, PromptTokensDetails: &PromptTokensDetails{CachedTokens: 32},
				CompletionTokensDetails: &CompletionTokensDetails{ReasoningTokens: 5}},
		},
		&ChatCompletionChunk{
			ID: "id_x", Object: ObjectChatChunk, Created: 1, Model: "m", SystemFingerprint: "fp",
			ExecutableData: RawEmptyArray, ConversationID: RawNull, ToolThought: json.RawMessage(`["t"]`), Thought: RawString("a \"b\""),
			Choices: []ChunkChoice{{Delta: Delta{Role: RoleAssistant, Content: ptr(""), ReasoningContent: "r",
				ToolCalls: []ToolCallDelta{{Index: 1, ID: "call_2", Type: "function", Function: FunctionDelta{Name: "f", Arguments: "{"}}}},
				FinishReason: ptr(FinishToolCalls)}},
			Usage: json.RawMessage(`{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`),
		},
		&ModelList{Object: "list", Data: []Model{{ID: "a", Object: "model", Created: 1, OwnedBy: "asi1-local", ContextLength: 512,
			Aliases: []string{"b"}, Arch: "llama", Quantization: "F32", SizeBytes: 10, SHA256: ptr("00ff"), Loaded: true, Status: ModelLoaded}}},
		&ErrorBody{Error: ErrorDetail{Message: "bad", Type: TypeInvalidRequest, Param: "messages[0].role", Code: CodeInvalidValue}},
		&ErrorBody{Error: ErrorDetail{Message: "boom", Type: TypeServer}},
	}
	for _, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatalf("%T: %v\n%s", v, err, b)
		}
		if !reflect.DeepEqual(back, v) {
			t.Errorf("%T does not round-trip:\n got %+v\nwant %+v\njson %s", v, back, v, b)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(b) {
			t.Errorf("%T: second encoding differs:\n%s\n%s", v, again, b)
		}
	}
}

// The field names a client sends, as the contract spells them.
func TestRequestFieldNames(t *testing.T) {
	r := ChatCompletionRequest{Model: "m", Messages: []Message{NewMessage(RoleUser, "hi")}, Temperature: ptr(0.0),
		Stream: true, StreamOptions: &StreamOptions{IncludeUsage: true}, ToolChoice: &ToolChoice{Mode: "auto"},
		Tools: []Tool{NewFunctionTool("f", "", nil)}, ResponseFormat: &ResponseFormat{Type: "json_object"}}
	b, _ := json.Marshal(r)
	want := `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0,"stream":true,` +
		`"stream_options":{"include_usage":true},"response_format":{"type":"json_object"},` +
		`"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(ToolChoice{Function: "f"})
	if string(b) != `{"type":"function","function":{"name":"f"}}` {
		t.Errorf("named tool choice %s", b)
	}
}

// Null param and code are written as null and read as "".
func TestErrorDetailNulls(t *testing.T) {
	b, _ := json.Marshal(ErrorBody{Error: ErrorDetail{Message: "m", Type: "t"}})
	if string(b) != `{"error":{"message":"m","type":"t","param":null,"code":null}}` {
		t.Errorf("got %s", b)
	}
	d, ok := ParseErrorBody([]byte(`{"error":{"message":"m","type":"t","param":"x","code":null}}`))
	if !ok || d != (ErrorDetail{Message: "m", Type: "t", Param: "x"}) {
		t.Errorf("got %+v %v", d, ok)
	}
	for _, bad := range []string{`{"error":{}}`, `{"choices":[]}`, `not json`, `{"error":"text"}`} {
		if _, ok := ParseErrorBody([]byte(bad)); ok {
			t.Errorf("%s parsed as an error body", bad)
		}
	}
}

// The hand-written encodings of ErrorDetail and ErrorBody write what encoding/json
// writes of its four-key wire struct, for any text.
func TestErrorDetailMatchesMarshal(t *testing.T) {
	texts := []string{"", "plain", " <b>&amp;</b> ", "quote\" back\\slash", "tab\tnl\n\x00\x1f\u2028", "\xff\xfebad \xe2\x82", "日本語 🚀"}
	for _, msg := range texts {
		for _, param := range texts {
			for _, code := range []string{"", CodeInvalidValue, "<&>"} {
				d := ErrorDetail{Message: msg, Type: TypeInvalidRequest, Param: param, Code: code}
				w := errorDetailWire{Message: d.Message, Type: d.Type}
				if param != "" {
					w.Param = &param
				}
				if code != "" {
					w.Code = &code
				}
				want, _ := json.Marshal(w)
				got, err := json.Marshal(d)
				if err != nil || string(got) != string(want) {
					t.Errorf("%+v:\n got %s %v\nwant %s", d, got, err, want)
				}
				want = []byte(`{"error":` + string(want) + `}`)
				if got := (ErrorBody{Error: d}).AppendJSON(nil); string(got) != string(want) {
					t.Errorf("AppendJSON %+v:\n got %s\nwant %s", d, got, want)
				}
				wantEvent, _ := AppendJSONEvent(nil, "", struct {
					Error errorDetailWire `json:"error"`
				}{w})
				if got := AppendErrorEvent(nil, ErrorBody{Error: d}); string(got) != string(wantEvent) {
					t.Errorf("AppendErrorEvent %+v:\n got %s\nwant %s", d, got, wantEvent)
				}
			}
		}
	}
}

// The chunk's readers: thought as a string or an array, the OpenAI-style
// reasoning deltas, usage absent, null or set.
func TestChunkReaders(t *testing.T) {
	cases := []struct{ data, thought, toolThought, usage string }{
		{`{"thought":"a","choices":[{"delta":{"reasoning_content":"a"}}]}`, "a", "", "<nil>"},
		{`{"thought":["a","b"],"choices":[]}`, "a\n\nb", "", "<nil>"},
		{`{"choices":[{"delta":{"reasoning":"r"}}],"usage":null}`, "r", "", "<nil>"},
		{`{"tool_thought":["x"],"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":1}}}`, "", "x", "3 cached 1"},
		{`{"tool_thought":{"odd":1},"choices":[]}`, "", "", "<nil>"},
	}
	for _, c := range cases {
		var ch ChatCompletionChunk
		if err := json.Unmarshal([]byte(c.data), &ch); err != nil {
			t.Fatal(err)
		}
		u, err := ch.UsageStats()
		us := "<nil>"
		if u != nil {
			us = strings.Join([]string{itoa(u.TotalTokens), "cached", itoa(u.CachedTokens())}, " ")
		}
		if ch.ThoughtText() != c.thought || ch.ToolThoughtText() != c.toolThought || us != c.usage || err != nil {
			t.Errorf("%s: thought %q tool %q usage %s %v", c.data, ch.ThoughtText(), ch.ToolThoughtText(), us, err)
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

var quoteCases = []string{"", "hello", " <b>&amp;</b> ", "quote\" back\\slash", "tab\tnl\ncr\r\x00\x1f\b\f\x7f",
	"\u2028\u2029", "\xff\xfebad utf8 \xe2\x82", "日本語 🚀", "\xed\xa0\x80 surrogate", strings.Repeat("a", 300)}

// AppendQuoted writes what encoding/json writes.
func TestAppendQuoted(t *testing.T) {
	for _, s := range quoteCases {
		want, _ := json.Marshal(s)
		if got := AppendQuoted([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("%q: got %s want %s", s, got[1:], want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	for _, s := range quoteCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendQuoted(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	})
}

// AppendText writes what encoding/json writes of the same chunk, with and
// without "usage": null, for content and reasoning.
func TestAppendTextMatchesMarshal(t *testing.T) {
	for _, usage := range []bool{false, true} {
		base := ChatCompletionChunk{ID: "id_abc", Object: ObjectChatChunk, Created: 1767225600, Model: "asi1-mini\"<x>", SystemFingerprint: "fp_1"}
		if usage {
			base.Usage = RawNull
		}
		enc := NewChunkEncoder(base)
		for _, text := range quoteCases {
			for _, thought := range []bool{false, true} {
				if thought && text == "" {
					continue
				}
				ch := base
				tx := text
				if thought {
					ch.Thought = RawString(tx)
					ch.Choices = []ChunkChoice{{Delta: Delta{ReasoningContent: tx}}}
				} else {
					ch.Choices = []ChunkChoice{{Delta: Delta{Content: &tx}}}
				}
				want, err := AppendJSONEvent(nil, "", ch)
				if err != nil {
					t.Fatal(err)
				}
				if got := enc.AppendText(nil, text, thought); string(got) != string(want) {
					t.Errorf("usage %v thought %v text %q:\n got %s\nwant %s", usage, thought, text, got, want)
				}
			}
		}
	}
}
