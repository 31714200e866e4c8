package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// withBase returns a valid minimal body with extra top-level members
// appended (a later duplicate key wins, as in encoding/json).
func withBase(extra string) string {
	b := `{"model":"asi1-mini","messages":[{"role":"user","content":"hi"}]`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// withMessages returns a valid body whose messages array is msgs.
func withMessages(msgs string) string {
	return `{"model":"asi1-mini","messages":` + msgs + `}`
}

type badCase struct {
	name  string
	body  string
	code  string
	param string // "" means null
}

func runBad(t *testing.T, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, aerr := DecodeChatRequest([]byte(tc.body))
			if aerr == nil {
				t.Fatalf("expected error, got request %+v", req)
			}
			if req != nil {
				t.Errorf("request must be nil on error")
			}
			if aerr.Status != 400 || aerr.Type != TypeInvalidRequest {
				t.Errorf("status/type = %d/%s, want 400/%s", aerr.Status, aerr.Type, TypeInvalidRequest)
			}
			if aerr.Code != tc.code || aerr.Param != tc.param {
				t.Errorf("code/param = %q/%q, want %q/%q (message %q)", aerr.Code, aerr.Param, tc.code, tc.param, aerr.Message)
			}
			if aerr.Message == "" {
				t.Errorf("empty message")
			}
			checkWireShape(t, aerr)
		})
	}
}

// checkWireShape asserts the error marshals to exactly the four keys.
func checkWireShape(t *testing.T, aerr *APIError) {
	t.Helper()
	b, err := json.Marshal(aerr.Body())
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	if len(top) != 1 || len(top["error"]) != 4 {
		t.Fatalf("wire shape %s", b)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := top["error"][k]; !ok {
			t.Fatalf("missing key %s in %s", k, b)
		}
	}
}

func decodeOK(t *testing.T, body string) *ChatRequest {
	t.Helper()
	req, aerr := DecodeChatRequest([]byte(body))
	if aerr != nil {
		t.Fatalf("unexpected error: %v", aerr)
	}
	return req
}

// Section 3: the body as a whole.
func TestDecodeBody(t *testing.T) {
	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	deepField := withBase(`"x":` + deep)
	runBad(t, []badCase{
		{"empty", ``, CodeInvalidJSON, ""},
		{"whitespace only", " \n\t\r ", CodeInvalidJSON, ""},
		{"array", `[{"model":"m"}]`, CodeInvalidJSON, ""},
		{"string", `"hello"`, CodeInvalidJSON, ""},
		{"number", `42`, CodeInvalidJSON, ""},
		{"null", `null`, CodeInvalidJSON, ""},
		{"true", `true`, CodeInvalidJSON, ""},
		{"truncated", `{"model":"m","messages":[`, CodeInvalidJSON, ""},
		{"garbage", `{model:1}`, CodeInvalidJSON, ""},
		{"trailing data", withBase("") + `{}`, CodeInvalidJSON, ""},
		{"two objects", `{} {}`, CodeInvalidJSON, ""},
		{"trailing comma", `{"model":"m",}`, CodeInvalidJSON, ""},
		{"single quotes", `{'model':'m'}`, CodeInvalidJSON, ""},
		{"NaN", withBase(`"temperature":NaN`), CodeInvalidJSON, ""},
		{"BOM", "\xef\xbb\xbf" + withBase(""), CodeInvalidJSON, ""},
		{"nbsp before object", "\u00a0" + withBase(""), CodeInvalidJSON, ""},
		{"too deep unknown field", deepField, CodeInvalidJSON, ""},
		{"too deep array body", deep, CodeInvalidJSON, ""},
		{"deeper than stdlib", strings.Repeat("[", 20000), CodeInvalidJSON, ""},
	})
	t.Run("depth limit is 128", func(t *testing.T) {
		ok := withBase(`"x":` + strings.Repeat("[", 127) + strings.Repeat("]", 127))
		decodeOK(t, ok)
		bad := withBase(`"x":` + strings.Repeat("[", 128) + strings.Repeat("]", 128))
		if _, aerr := DecodeChatRequest([]byte(bad)); aerr == nil || aerr.Code != CodeInvalidJSON {
			t.Fatalf("129 levels: %v", aerr)
		}
	})
	t.Run("brackets inside strings do not count", func(t *testing.T) {
		decodeOK(t, withBase(`"x":"`+strings.Repeat("[{", 500)+`\"]"`))
	})
	t.Run("unknown fields ignored", func(t *testing.T) {
		decodeOK(t, withBase(`"fun_mode":true,"store":{"a":[1,2]},"Temperature":"x","metadata":null`))
	})
	t.Run("surrounding whitespace ok", func(t *testing.T) {
		decodeOK(t, "\n\t "+withBase("")+" \r\n")
	})
	t.Run("invalid utf-8 replaced", func(t *testing.T) {
		req := decodeOK(t, withMessages("[{\"role\":\"user\",\"content\":\"a\xffb\"}]"))
		if req.Messages[0].Content != "a\uFFFDb" {
			t.Fatalf("content %q", req.Messages[0].Content)
		}
	})
	t.Run("duplicate key last wins", func(t *testing.T) {
		req := decodeOK(t, withBase(`"temperature":0.5,"temperature":0.25`))
		if req.Temperature != 0.25 {
			t.Fatalf("temperature %v", req.Temperature)
		}
	})
}

// Section 3.1: model, messages (presence/type), temperature, stream, max_tokens.
func TestDecodeSeedFields(t *testing.T) {
	runBad(t, []badCase{
		{"model missing", `{"messages":[{"role":"user","content":"hi"}]}`, CodeMissingRequired, "model"},
		{"model null", withBase(`"model":null`), CodeMissingRequired, "model"},
		{"model empty", withBase(`"model":""`), CodeInvalidValue, "model"},
		{"model number", withBase(`"model":1`), CodeInvalidType, "model"},
		{"model array", withBase(`"model":["a"]`), CodeInvalidType, "model"},

		{"messages missing", `{"model":"m"}`, CodeMissingRequired, "messages"},
		{"messages null", `{"model":"m","messages":null}`, CodeMissingRequired, "messages"},
		{"messages object", `{"model":"m","messages":{"role":"user"}}`, CodeInvalidType, "messages"},
		{"messages string", `{"model":"m","messages":"hi"}`, CodeInvalidType, "messages"},
		{"messages empty", `{"model":"m","messages":[]}`, CodeInvalidValue, "messages"},

		{"temperature above", withBase(`"temperature":2.5`), CodeInvalidValue, "temperature"},
		{"temperature negative", withBase(`"temperature":-0.1`), CodeInvalidValue, "temperature"},
		{"temperature huge", withBase(`"temperature":1e400`), CodeInvalidValue, "temperature"},
		{"temperature string", withBase(`"temperature":"0.5"`), CodeInvalidType, "temperature"},
		{"temperature bool", withBase(`"temperature":true`), CodeInvalidType, "temperature"},
		{"temperature object", withBase(`"temperature":{}`), CodeInvalidType, "temperature"},

		{"stream string true", withBase(`"stream":"true"`), CodeInvalidType, "stream"},
		{"stream number", withBase(`"stream":1`), CodeInvalidType, "stream"},
		{"stream object", withBase(`"stream":{}`), CodeInvalidType, "stream"},

		{"max_tokens zero", withBase(`"max_tokens":0`), CodeInvalidValue, "max_tokens"},
		{"max_tokens negative", withBase(`"max_tokens":-5`), CodeInvalidValue, "max_tokens"},
		{"max_tokens fractional", withBase(`"max_tokens":1.5`), CodeInvalidType, "max_tokens"},
		{"max_tokens small exponent", withBase(`"max_tokens":15e-1`), CodeInvalidType, "max_tokens"},
		{"max_tokens 1e400", withBase(`"max_tokens":1e400`), CodeInvalidValue, "max_tokens"},
		{"max_tokens int64+1", withBase(`"max_tokens":9223372036854775808`), CodeInvalidValue, "max_tokens"},
		{"max_tokens 20 digits", withBase(`"max_tokens":12345678901234567890`), CodeInvalidValue, "max_tokens"},
		{"max_tokens huge exponent", withBase(`"max_tokens":1e99999999999999999999`), CodeInvalidValue, "max_tokens"},
		{"max_tokens tiny exponent", withBase(`"max_tokens":1e-99999999999999999999`), CodeInvalidType, "max_tokens"},
		{"max_tokens min int64", withBase(`"max_tokens":-9223372036854775808`), CodeInvalidValue, "max_tokens"},
		{"max_tokens string", withBase(`"max_tokens":"100"`), CodeInvalidType, "max_tokens"},
		{"max_tokens bool", withBase(`"max_tokens":true`), CodeInvalidType, "max_tokens"},
	})
	t.Run("temperature message", func(t *testing.T) {
		_, aerr := DecodeChatRequest([]byte(withBase(`"temperature":2.5`)))
		if aerr == nil || aerr.Message != "temperature must be between 0 and 2, got 2.5" {
			t.Fatalf("got %v", aerr)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		req := decodeOK(t, withBase(""))
		want := &ChatRequest{
			Model:             "asi1-mini",
			Messages:          []ChatMessage{{Role: "user", Content: "hi", HasContent: true}},
			Temperature:       1,
			TopP:              1,
			ToolChoice:        ToolChoice{Mode: "none"},
			ParallelToolCalls: true,
		}
		if !reflect.DeepEqual(req, want) {
			t.Fatalf("got %+v\nwant %+v", req, want)
		}
	})
	t.Run("nulls are absent", func(t *testing.T) {
		req := decodeOK(t, withBase(`"temperature":null,"top_p":null,"stream":null,"max_tokens":null,
			"max_completion_tokens":null,"stop":null,"seed":null,"presence_penalty":null,"frequency_penalty":null,
			"n":null,"stream_options":null,"response_format":null,"tools":null,"tool_choice":null,
			"parallel_tool_calls":null,"logprobs":null,"top_logprobs":null,"logit_bias":null,"user":null,
			"web_search":null,"agent_address":null`))
		want := decodeOK(t, withBase(""))
		if !reflect.DeepEqual(req, want) {
			t.Fatalf("got %+v\nwant %+v", req, want)
		}
	})
	t.Run("seed request", func(t *testing.T) {
		req := decodeOK(t, `{"model":"asi1-mini","messages":[{"role":"user","content":"Hello, how are you?"}],"temperature":0.7,"stream":false,"max_tokens":1024}`)
		if req.Temperature != 0.7 || req.Stream || req.MaxTokens != 1024 {
			t.Fatalf("%+v", req)
		}
	})
	t.Run("temperature bounds", func(t *testing.T) {
		for _, v := range []string{"0", "2", "0.0", "2.0", "-0", "1e-400", "0.7"} {
			req := decodeOK(t, withBase(`"temperature":`+v))
			if req.Temperature < 0 || req.Temperature > 2 {
				t.Fatalf("%s -> %v", v, req.Temperature)
			}
		}
		if decodeOK(t, withBase(`"temperature":0`)).Temperature != 0 {
			t.Fatal("temperature 0 must stay 0 (greedy)")
		}
	})
	t.Run("stream true", func(t *testing.T) {
		if !decodeOK(t, withBase(`"stream":true`)).Stream {
			t.Fatal("stream not set")
		}
	})
	t.Run("max_tokens values", func(t *testing.T) {
		for in, want := range map[string]int64{
			"1": 1, "1024": 1024, "2.0": 2, "1e3": 1000, "1E+3": 1000, "100e-2": 1, "0.5e1": 5,
			"9223372036854775807": 9223372036854775807, "9223372036854775807.000": 9223372036854775807,
		} {
			req := decodeOK(t, withBase(`"max_tokens":`+in))
			if req.MaxTokens != want {
				t.Errorf("max_tokens %s -> %d, want %d", in, req.MaxTokens, want)
			}
		}
	})
}

// Section 3.2: OpenAI fields.
func TestDecodeOpenAIFields(t *testing.T) {
	tool := `{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}`
	runBad(t, []badCase{
		{"max_completion_tokens zero", withBase(`"max_completion_tokens":0`), CodeInvalidValue, "max_completion_tokens"},
		{"max_completion_tokens fractional", withBase(`"max_completion_tokens":2.5`), CodeInvalidType, "max_completion_tokens"},
		{"max_completion_tokens string", withBase(`"max_completion_tokens":"5"`), CodeInvalidType, "max_completion_tokens"},
		{"max_tokens bad even if mct ok", withBase(`"max_tokens":0,"max_completion_tokens":5`), CodeInvalidValue, "max_tokens"},

		{"top_p above", withBase(`"top_p":1.01`), CodeInvalidValue, "top_p"},
		{"top_p negative", withBase(`"top_p":-1`), CodeInvalidValue, "top_p"},
		{"top_p string", withBase(`"top_p":"1"`), CodeInvalidType, "top_p"},

		{"stop empty string", withBase(`"stop":""`), CodeInvalidValue, "stop"},
		{"stop five", withBase(`"stop":["a","b","c","d","e"]`), CodeInvalidValue, "stop"},
		{"stop item empty", withBase(`"stop":["a",""]`), CodeInvalidValue, "stop[1]"},
		{"stop item number", withBase(`"stop":["a",1]`), CodeInvalidType, "stop[1]"},
		{"stop item null", withBase(`"stop":[null]`), CodeInvalidType, "stop[0]"},
		{"stop number", withBase(`"stop":5`), CodeInvalidType, "stop"},
		{"stop object", withBase(`"stop":{}`), CodeInvalidType, "stop"},

		{"seed fractional", withBase(`"seed":1.5`), CodeInvalidType, "seed"},
		{"seed string", withBase(`"seed":"42"`), CodeInvalidType, "seed"},
		{"seed beyond int64", withBase(`"seed":18446744073709551615`), CodeInvalidValue, "seed"},

		{"presence_penalty above", withBase(`"presence_penalty":2.01`), CodeInvalidValue, "presence_penalty"},
		{"presence_penalty below", withBase(`"presence_penalty":-3`), CodeInvalidValue, "presence_penalty"},
		{"presence_penalty string", withBase(`"presence_penalty":"0"`), CodeInvalidType, "presence_penalty"},
		{"frequency_penalty above", withBase(`"frequency_penalty":5`), CodeInvalidValue, "frequency_penalty"},
		{"frequency_penalty bool", withBase(`"frequency_penalty":false`), CodeInvalidType, "frequency_penalty"},

		{"n 2", withBase(`"n":2`), CodeUnsupportedValue, "n"},
		{"n 0", withBase(`"n":0`), CodeUnsupportedValue, "n"},
		{"n negative", withBase(`"n":-1`), CodeUnsupportedValue, "n"},
		{"n huge", withBase(`"n":1e400`), CodeUnsupportedValue, "n"},
		{"n fractional", withBase(`"n":1.5`), CodeInvalidType, "n"},
		{"n string", withBase(`"n":"1"`), CodeInvalidType, "n"},

		{"stream_options string", withBase(`"stream":true,"stream_options":"yes"`), CodeInvalidType, "stream_options"},
		{"stream_options array", withBase(`"stream_options":[]`), CodeInvalidType, "stream_options"},
		{"include_usage string", withBase(`"stream":true,"stream_options":{"include_usage":"true"}`), CodeInvalidType, "stream_options.include_usage"},
		{"include_usage checked without stream", withBase(`"stream_options":{"include_usage":1}`), CodeInvalidType, "stream_options.include_usage"},

		{"response_format string", withBase(`"response_format":"json_object"`), CodeInvalidType, "response_format"},
		{"response_format no type", withBase(`"response_format":{}`), CodeMissingRequired, "response_format.type"},
		{"response_format type number", withBase(`"response_format":{"type":1}`), CodeInvalidType, "response_format.type"},
		{"response_format unknown type", withBase(`"response_format":{"type":"xml"}`), CodeInvalidValue, "response_format.type"},
		{"json_schema missing", withBase(`"response_format":{"type":"json_schema"}`), CodeMissingRequired, "response_format.json_schema"},
		{"json_schema not object", withBase(`"response_format":{"type":"json_schema","json_schema":"x"}`), CodeInvalidType, "response_format.json_schema"},
		{"json_schema schema missing", withBase(`"response_format":{"type":"json_schema","json_schema":{"name":"x"}}`), CodeMissingRequired, "response_format.json_schema.schema"},
		{"json_schema schema not object", withBase(`"response_format":{"type":"json_schema","json_schema":{"schema":true}}`), CodeInvalidType, "response_format.json_schema.schema"},
		{"json_schema name number", withBase(`"response_format":{"type":"json_schema","json_schema":{"name":1,"schema":{}}}`), CodeInvalidType, "response_format.json_schema.name"},
		{"json_schema strict string", withBase(`"response_format":{"type":"json_schema","json_schema":{"schema":{},"strict":"yes"}}`), CodeInvalidType, "response_format.json_schema.strict"},

		{"tools object", withBase(`"tools":{}`), CodeInvalidType, "tools"},
		{"tools item string", withBase(`"tools":["x"]`), CodeInvalidType, "tools[0]"},
		{"tools type missing", withBase(`"tools":[{"function":{"name":"f"}}]`), CodeMissingRequired, "tools[0].type"},
		{"tools type other", withBase(`"tools":[` + tool + `,{"type":"web_search","function":{"name":"f"}}]`), CodeInvalidValue, "tools[1].type"},
		{"tools type number", withBase(`"tools":[{"type":1}]`), CodeInvalidType, "tools[0].type"},
		{"tools function missing", withBase(`"tools":[{"type":"function"}]`), CodeMissingRequired, "tools[0].function"},
		{"tools function string", withBase(`"tools":[{"type":"function","function":"f"}]`), CodeInvalidType, "tools[0].function"},
		{"tools name missing", withBase(`"tools":[{"type":"function","function":{}}]`), CodeMissingRequired, "tools[0].function.name"},
		{"tools name number", withBase(`"tools":[{"type":"function","function":{"name":5}}]`), CodeInvalidType, "tools[0].function.name"},
		{"tools name empty", withBase(`"tools":[{"type":"function","function":{"name":""}}]`), CodeInvalidValue, "tools[0].function.name"},
		{"tools name space", withBase(`"tools":[{"type":"function","function":{"name":"get weather"}}]`), CodeInvalidValue, "tools[0].function.name"},
		{"tools name dot", withBase(`"tools":[{"type":"function","function":{"name":"a.b"}}]`), CodeInvalidValue, "tools[0].function.name"},
		{"tools name 65", withBase(`"tools":[{"type":"function","function":{"name":"` + strings.Repeat("a", 65) + `"}}]`), CodeInvalidValue, "tools[0].function.name"},
		{"tools name unicode", withBase(`"tools":[{"type":"function","function":{"name":"wetter_é"}}]`), CodeInvalidValue, "tools[0].function.name"},
		{"tools name duplicate", withBase(`"tools":[` + tool + `,` + tool + `]`), CodeInvalidValue, "tools[1].function.name"},
		{"tools description number", withBase(`"tools":[{"type":"function","function":{"name":"f","description":1}}]`), CodeInvalidType, "tools[0].function.description"},
		{"tools parameters array", withBase(`"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]`), CodeInvalidType, "tools[0].function.parameters"},
		{"tools parameters string", withBase(`"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]`), CodeInvalidType, "tools[0].function.parameters"},
		{"tools strict string", withBase(`"tools":[{"type":"function","function":{"name":"f","strict":"true"}}]`), CodeInvalidType, "tools[0].function.strict"},

		{"tool_choice unknown string", withBase(`"tools":[` + tool + `],"tool_choice":"any"`), CodeInvalidValue, "tool_choice"},
		{"tool_choice number", withBase(`"tool_choice":1`), CodeInvalidType, "tool_choice"},
		{"tool_choice array", withBase(`"tool_choice":[]`), CodeInvalidType, "tool_choice"},
		{"tool_choice required without tools", withBase(`"tool_choice":"required"`), CodeInvalidValue, "tool_choice"},
		{"tool_choice undeclared", withBase(`"tools":[` + tool + `],"tool_choice":{"type":"function","function":{"name":"other"}}`), CodeInvalidValue, "tool_choice.function.name"},
		{"tool_choice function without tools", withBase(`"tool_choice":{"type":"function","function":{"name":"get_weather"}}`), CodeInvalidValue, "tool_choice.function.name"},
		{"tool_choice type missing", withBase(`"tools":[` + tool + `],"tool_choice":{"function":{"name":"get_weather"}}`), CodeMissingRequired, "tool_choice.type"},
		{"tool_choice type other", withBase(`"tools":[` + tool + `],"tool_choice":{"type":"tool","function":{"name":"get_weather"}}`), CodeInvalidValue, "tool_choice.type"},
		{"tool_choice function missing", withBase(`"tools":[` + tool + `],"tool_choice":{"type":"function"}`), CodeMissingRequired, "tool_choice.function"},
		{"tool_choice function string", withBase(`"tools":[` + tool + `],"tool_choice":{"type":"function","function":"get_weather"}`), CodeInvalidType, "tool_choice.function"},
		{"tool_choice name missing", withBase(`"tools":[` + tool + `],"tool_choice":{"type":"function","function":{}}`), CodeMissingRequired, "tool_choice.function.name"},
		{"tool_choice name number", withBase(`"tools":[` + tool + `],"tool_choice":{"type":"function","function":{"name":1}}`), CodeInvalidType, "tool_choice.function.name"},

		{"parallel_tool_calls string", withBase(`"parallel_tool_calls":"false"`), CodeInvalidType, "parallel_tool_calls"},

		{"logprobs string", withBase(`"logprobs":"true"`), CodeInvalidType, "logprobs"},
		{"logprobs number", withBase(`"logprobs":1`), CodeInvalidType, "logprobs"},
		{"top_logprobs without logprobs", withBase(`"top_logprobs":3`), CodeInvalidValue, "top_logprobs"},
		{"top_logprobs with logprobs false", withBase(`"logprobs":false,"top_logprobs":3`), CodeInvalidValue, "top_logprobs"},
		{"top_logprobs 21", withBase(`"logprobs":true,"top_logprobs":21`), CodeInvalidValue, "top_logprobs"},
		{"top_logprobs negative", withBase(`"logprobs":true,"top_logprobs":-1`), CodeInvalidValue, "top_logprobs"},
		{"top_logprobs fractional", withBase(`"logprobs":true,"top_logprobs":1.5`), CodeInvalidType, "top_logprobs"},
		{"top_logprobs string", withBase(`"logprobs":true,"top_logprobs":"2"`), CodeInvalidType, "top_logprobs"},
		{"top_logprobs huge", withBase(`"logprobs":true,"top_logprobs":1e30`), CodeInvalidValue, "top_logprobs"},

		{"logit_bias array", withBase(`"logit_bias":[1]`), CodeInvalidType, "logit_bias"},
		{"logit_bias string", withBase(`"logit_bias":"x"`), CodeInvalidType, "logit_bias"},
		{"logit_bias key word", withBase(`"logit_bias":{"hello":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias key negative", withBase(`"logit_bias":{"-1":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias key fractional", withBase(`"logit_bias":{"1.5":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias key leading zero", withBase(`"logit_bias":{"01":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias key plus", withBase(`"logit_bias":{"+1":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias key empty", withBase(`"logit_bias":{"":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias key beyond int32", withBase(`"logit_bias":{"2147483648":1}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias value above", withBase(`"logit_bias":{"50256":100.5}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias value below", withBase(`"logit_bias":{"50256":-101}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias value huge", withBase(`"logit_bias":{"50256":1e400}`), CodeInvalidValue, "logit_bias"},
		{"logit_bias value string", withBase(`"logit_bias":{"50256":"1"}`), CodeInvalidType, "logit_bias"},
		{"logit_bias value null", withBase(`"logit_bias":{"50256":null}`), CodeInvalidType, "logit_bias"},

		{"user number", withBase(`"user":1`), CodeInvalidType, "user"},
		{"user object", withBase(`"user":{}`), CodeInvalidType, "user"},
	})

	t.Run("max_completion_tokens wins", func(t *testing.T) {
		for _, body := range []string{
			withBase(`"max_tokens":100,"max_completion_tokens":7`),
			withBase(`"max_completion_tokens":7,"max_tokens":100`),
			withBase(`"max_completion_tokens":7`),
			withBase(`"max_tokens":null,"max_completion_tokens":7`),
		} {
			if got := decodeOK(t, body).MaxTokens; got != 7 {
				t.Errorf("%s: MaxTokens %d", body, got)
			}
		}
		if got := decodeOK(t, withBase(`"max_tokens":100,"max_completion_tokens":null`)).MaxTokens; got != 100 {
			t.Errorf("null max_completion_tokens must not hide max_tokens: %d", got)
		}
	})
	t.Run("sampling values", func(t *testing.T) {
		req := decodeOK(t, withBase(`"top_p":0.9,"presence_penalty":-2,"frequency_penalty":2,"seed":-42,"n":1`))
		if req.TopP != 0.9 || req.PresencePenalty != -2 || req.FrequencyPenalty != 2 || req.Seed == nil || *req.Seed != -42 {
			t.Fatalf("%+v", req)
		}
		req = decodeOK(t, withBase(`"seed":9223372036854775807,"n":1.0`))
		if *req.Seed != 9223372036854775807 {
			t.Fatalf("seed %d", *req.Seed)
		}
		if decodeOK(t, withBase(`"seed":0`)).Seed == nil {
			t.Fatal("seed 0 must be present")
		}
	})
	t.Run("stop", func(t *testing.T) {
		if got := decodeOK(t, withBase(`"stop":"\n"`)).Stop; !reflect.DeepEqual(got, []string{"\n"}) {
			t.Fatalf("%q", got)
		}
		if got := decodeOK(t, withBase(`"stop":["a","b","c","d"]`)).Stop; !reflect.DeepEqual(got, []string{"a", "b", "c", "d"}) {
			t.Fatalf("%q", got)
		}
		if got := decodeOK(t, withBase(`"stop":[]`)).Stop; got != nil {
			t.Fatalf("%q", got)
		}
	})
	t.Run("stream_options", func(t *testing.T) {
		if !decodeOK(t, withBase(`"stream":true,"stream_options":{"include_usage":true}`)).IncludeUsage {
			t.Fatal("include_usage lost")
		}
		if decodeOK(t, withBase(`"stream":false,"stream_options":{"include_usage":true}`)).IncludeUsage {
			t.Fatal("include_usage must be ignored without stream")
		}
		if decodeOK(t, withBase(`"stream":true,"stream_options":{"include_usage":null,"continuous_usage_stats":true}`)).IncludeUsage {
			t.Fatal("null include_usage")
		}
	})
	t.Run("response_format", func(t *testing.T) {
		if rf := decodeOK(t, withBase(`"response_format":{"type":"text"}`)).ResponseFormat; rf != nil {
			t.Fatalf("text must be nil, got %+v", rf)
		}
		rf := decodeOK(t, withBase(`"response_format":{"type":"json_object"}`)).ResponseFormat
		if rf == nil || rf.Type != "json_object" || rf.Schema != nil {
			t.Fatalf("%+v", rf)
		}
		rf = decodeOK(t, withBase(`"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}}`)).ResponseFormat
		if rf == nil || rf.Type != "json_schema" || rf.SchemaName != "person" || !rf.Strict ||
			string(rf.Schema) != `{"type":"object","properties":{"a":{"type":"string"}}}` {
			t.Fatalf("%+v", rf)
		}
		rf = decodeOK(t, withBase(`"response_format":{"type":"json_schema","json_schema":{"schema":{}}}`)).ResponseFormat
		if rf == nil || rf.SchemaName != "" || string(rf.Schema) != `{}` {
			t.Fatalf("name must be optional: %+v", rf)
		}
	})
	t.Run("tools and tool_choice defaults", func(t *testing.T) {
		req := decodeOK(t, withBase(`"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","strict":true,"parameters":{"type":"object","properties":{}}},"x_extra":1}]`))
		if len(req.Tools) != 1 {
			t.Fatalf("%+v", req.Tools)
		}
		tl := req.Tools[0]
		if tl.Name != "get_weather" || tl.Description != "Weather" || !tl.Strict ||
			string(tl.Parameters) != `{"type":"object","properties":{}}` ||
			string(tl.Raw) != `{"type":"function","function":{"name":"get_weather","description":"Weather","strict":true,"parameters":{"type":"object","properties":{}}},"x_extra":1}` {
			t.Fatalf("%+v", tl)
		}
		if req.ToolChoice != (ToolChoice{Mode: "auto"}) || !req.ParallelToolCalls {
			t.Fatalf("%+v", req.ToolChoice)
		}
		noParams := decodeOK(t, withBase(`"tools":[{"type":"function","function":{"name":"A-b_9","parameters":null}}]`))
		if noParams.Tools[0].Parameters != nil {
			t.Fatal("parameters must be nil when absent")
		}
		if decodeOK(t, withBase(`"tools":[]`)).ToolChoice.Mode != "none" {
			t.Fatal("empty tools: none")
		}
		if decodeOK(t, withBase(`"tool_choice":"auto"`)).ToolChoice.Mode != "none" {
			t.Fatal("auto without tools: none")
		}
		if decodeOK(t, withBase(`"tool_choice":"none"`)).ToolChoice.Mode != "none" {
			t.Fatal("none")
		}
		name64 := strings.Repeat("z", 64)
		decodeOK(t, withBase(`"tools":[{"type":"function","function":{"name":"`+name64+`"}}]`))
	})
	t.Run("tool_choice values", func(t *testing.T) {
		tools := `"tools":[` + tool + `,{"type":"function","function":{"name":"other"}}]`
		for in, want := range map[string]ToolChoice{
			`"none"`:     {Mode: "none"},
			`"auto"`:     {Mode: "auto"},
			`"required"`: {Mode: "required"},
			`{"type":"function","function":{"name":"other"}}`: {Mode: "function", Name: "other"},
		} {
			if got := decodeOK(t, withBase(tools+`,"tool_choice":`+in)).ToolChoice; got != want {
				t.Errorf("%s: %+v", in, got)
			}
		}
		if decodeOK(t, withBase(tools+`,"parallel_tool_calls":false`)).ParallelToolCalls {
			t.Error("parallel_tool_calls false")
		}
	})
	t.Run("logprobs", func(t *testing.T) {
		req := decodeOK(t, withBase(`"logprobs":true,"top_logprobs":0`))
		if !req.Logprobs || !req.HasTopLogprobs || req.TopLogprobs != 0 {
			t.Fatalf("%+v", req)
		}
		req = decodeOK(t, withBase(`"logprobs":true,"top_logprobs":20`))
		if req.TopLogprobs != 20 {
			t.Fatalf("%+v", req)
		}
		req = decodeOK(t, withBase(`"logprobs":true`))
		if !req.Logprobs || req.HasTopLogprobs {
			t.Fatalf("%+v", req)
		}
		req = decodeOK(t, withBase(`"logprobs":false,"top_logprobs":null`))
		if req.Logprobs || req.HasTopLogprobs {
			t.Fatalf("%+v", req)
		}
	})
	t.Run("logit_bias", func(t *testing.T) {
		req := decodeOK(t, withBase(`"logit_bias":{"50256":-100,"0":100,"2147483647":0.5}`))
		want := map[int32]float64{50256: -100, 0: 100, 2147483647: 0.5}
		if !reflect.DeepEqual(req.LogitBias, want) {
			t.Fatalf("%v", req.LogitBias)
		}
		if decodeOK(t, withBase(`"logit_bias":{}`)).LogitBias != nil {
			t.Fatal("empty logit_bias must be nil")
		}
	})
	t.Run("user", func(t *testing.T) {
		if decodeOK(t, withBase(`"user":"u-1"`)).User != "u-1" {
			t.Fatal("user")
		}
	})
}

// Section 3.3: messages.
func TestDecodeMessages(t *testing.T) {
	runBad(t, []badCase{
		{"item string", withMessages(`["hi"]`), CodeInvalidType, "messages[0]"},
		{"item null", withMessages(`[{"role":"user","content":"a"},null]`), CodeInvalidType, "messages[1]"},
		{"item array", withMessages(`[[]]`), CodeInvalidType, "messages[0]"},
		{"role missing", withMessages(`[{"role":"user","content":"a"},{"role":"user","content":"b"},{"content":"c"}]`), CodeMissingRequired, "messages[2].role"},
		{"role null", withMessages(`[{"role":null,"content":"c"}]`), CodeMissingRequired, "messages[0].role"},
		{"role unknown", withMessages(`[{"role":"bot","content":"c"}]`), CodeInvalidValue, "messages[0].role"},
		{"role case", withMessages(`[{"role":"User","content":"c"}]`), CodeInvalidValue, "messages[0].role"},
		{"role function (legacy)", withMessages(`[{"role":"function","content":"c"}]`), CodeInvalidValue, "messages[0].role"},
		{"role number", withMessages(`[{"role":1,"content":"c"}]`), CodeInvalidValue, "messages[0].role"},
		{"role array", withMessages(`[{"role":["user"],"content":"c"}]`), CodeInvalidValue, "messages[0].role"},

		{"content missing user", withMessages(`[{"role":"user"}]`), CodeMissingRequired, "messages[0].content"},
		{"content null system", withMessages(`[{"role":"system","content":null}]`), CodeMissingRequired, "messages[0].content"},
		{"content missing assistant", withMessages(`[{"role":"assistant"}]`), CodeMissingRequired, "messages[0].content"},
		{"content missing assistant empty tool_calls", withMessages(`[{"role":"assistant","tool_calls":[]}]`), CodeMissingRequired, "messages[0].content"},
		{"content missing tool", withMessages(`[{"role":"tool","tool_call_id":"c1"}]`), CodeMissingRequired, "messages[0].content"},
		{"content missing user with tool_calls", withMessages(`[{"role":"user","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]`), CodeMissingRequired, "messages[0].content"},
		{"content number", withMessages(`[{"role":"user","content":5}]`), CodeInvalidType, "messages[0].content"},
		{"content object", withMessages(`[{"role":"user","content":{"type":"text","text":"a"}}]`), CodeInvalidType, "messages[0].content"},
		{"content bool", withMessages(`[{"role":"user","content":true}]`), CodeInvalidType, "messages[0].content"},

		{"part string", withMessages(`[{"role":"user","content":["a"]}]`), CodeInvalidType, "messages[0].content[0]"},
		{"part type missing", withMessages(`[{"role":"user","content":[{"text":"a"}]}]`), CodeMissingRequired, "messages[0].content[0].type"},
		{"part type number", withMessages(`[{"role":"user","content":[{"type":1}]}]`), CodeInvalidType, "messages[0].content[0].type"},
		{"part image_url", withMessages(`[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"http://x"}}]}]`), CodeUnsupportedValue, "messages[0].content[1].type"},
		{"part input_audio", withMessages(`[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]`), CodeUnsupportedValue, "messages[0].content[0].type"},
		{"part file", withMessages(`[{"role":"system","content":"s"},{"role":"user","content":[{"type":"file","file":{}}]}]`), CodeUnsupportedValue, "messages[1].content[0].type"},
		{"part unknown type", withMessages(`[{"role":"user","content":[{"type":"video"}]}]`), CodeInvalidValue, "messages[0].content[0].type"},
		{"part text missing", withMessages(`[{"role":"user","content":[{"type":"text"}]}]`), CodeMissingRequired, "messages[0].content[0].text"},
		{"part text number", withMessages(`[{"role":"user","content":[{"type":"text","text":1}]}]`), CodeInvalidType, "messages[0].content[0].text"},

		{"tool no tool_call_id", withMessages(`[{"role":"tool","content":"42"}]`), CodeMissingRequired, "messages[0].tool_call_id"},
		{"tool tool_call_id null", withMessages(`[{"role":"tool","content":"42","tool_call_id":null}]`), CodeMissingRequired, "messages[0].tool_call_id"},
		{"tool tool_call_id number", withMessages(`[{"role":"tool","content":"42","tool_call_id":7}]`), CodeInvalidType, "messages[0].tool_call_id"},

		{"name number", withMessages(`[{"role":"user","content":"a","name":1}]`), CodeInvalidType, "messages[0].name"},

		{"tool_calls object", withMessages(`[{"role":"assistant","tool_calls":{}}]`), CodeInvalidType, "messages[0].tool_calls"},
		{"tool_calls item string", withMessages(`[{"role":"assistant","tool_calls":["x"]}]`), CodeInvalidType, "messages[0].tool_calls[0]"},
		{"tool_calls id missing", withMessages(`[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]`), CodeMissingRequired, "messages[0].tool_calls[0].id"},
		{"tool_calls id number", withMessages(`[{"role":"assistant","tool_calls":[{"id":1,"type":"function","function":{"name":"f"}}]}]`), CodeInvalidType, "messages[0].tool_calls[0].id"},
		{"tool_calls type other", withMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","function":{"name":"f"}}]}]`), CodeInvalidValue, "messages[0].tool_calls[0].type"},
		{"tool_calls function missing", withMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"function"}]}]`), CodeMissingRequired, "messages[0].tool_calls[0].function"},
		{"tool_calls name missing", withMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]`), CodeMissingRequired, "messages[0].tool_calls[0].function.name"},
		{"tool_calls arguments number", withMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":1}}]}]`), CodeInvalidType, "messages[0].tool_calls[0].function.arguments"},
		{"reasoning_content number", withMessages(`[{"role":"assistant","content":"a","reasoning_content":1}]`), CodeInvalidType, "messages[0].reasoning_content"},
	})

	t.Run("roles and content", func(t *testing.T) {
		req := decodeOK(t, withMessages(`[
			{"role":"developer","content":"Be terse."},
			{"role":"system","content":""},
			{"role":"user","content":[{"type":"text","text":"line one"},{"type":"text","text":"line two","cache_control":{}}],"name":"alice"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","function":{"name":"f","arguments":{"a":1}}}]},
			{"role":"tool","tool_call_id":"call_1","content":"22C"},
			{"role":"assistant","content":"It is 22C.","reasoning_content":"look it up"},
			{"role":"user","content":[]}
		]`))
		want := []ChatMessage{
			{Role: "system", Content: "Be terse.", HasContent: true},
			{Role: "system", Content: "", HasContent: true},
			{Role: "user", Content: "line one\nline two", HasContent: true, Name: "alice"},
			{Role: "assistant", ToolCalls: []MessageToolCall{
				{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`},
				{ID: "call_2", Name: "f", Arguments: `{"a":1}`},
			}},
			{Role: "tool", ToolCallID: "call_1", Content: "22C", HasContent: true},
			{Role: "assistant", Content: "It is 22C.", HasContent: true, ReasoningContent: "look it up"},
			{Role: "user", Content: "", HasContent: true},
		}
		if !reflect.DeepEqual(req.Messages, want) {
			t.Fatalf("got  %+v\nwant %+v", req.Messages, want)
		}
	})
	t.Run("assistant tool_calls with content absent", func(t *testing.T) {
		req := decodeOK(t, withMessages(`[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]`))
		if req.Messages[0].HasContent || len(req.Messages[0].ToolCalls) != 1 {
			t.Fatalf("%+v", req.Messages[0])
		}
	})
	t.Run("fields ignored on other roles", func(t *testing.T) {
		req := decodeOK(t, withMessages(`[{"role":"user","content":"a","tool_calls":5,"reasoning_content":1,"tool_call_id":2,"extra":{}}]`))
		if !reflect.DeepEqual(req.Messages[0], ChatMessage{Role: "user", Content: "a", HasContent: true}) {
			t.Fatalf("%+v", req.Messages[0])
		}
	})
}

// Section 3.4: ASI1 fields.
func TestDecodeASI1Fields(t *testing.T) {
	runBad(t, []badCase{
		{"web_search string", withBase(`"web_search":"true"`), CodeInvalidType, "web_search"},
		{"web_search number", withBase(`"web_search":0`), CodeInvalidType, "web_search"},
		{"agent_address number", withBase(`"agent_address":1`), CodeInvalidType, "agent_address"},
		{"agent_address bool", withBase(`"agent_address":false`), CodeInvalidType, "agent_address"},
	})
	req := decodeOK(t, withBase(`"web_search":true,"agent_address":"agent1qxyz","fun_mode":true,"session_id":"s"`))
	if !req.WebSearch || req.AgentAddress != "agent1qxyz" {
		t.Fatalf("%+v", req)
	}
}

func TestParseJSONInt(t *testing.T) {
	cases := []struct {
		in   string
		v    int64
		want intResult
	}{
		{"0", 0, intOK}, {"-0", 0, intOK}, {"0.000", 0, intOK}, {"0e999999999999", 0, intOK},
		{"7", 7, intOK}, {"-7", -7, intOK}, {"7.0", 7, intOK}, {"70e-1", 7, intOK}, {"0.7e1", 7, intOK},
		{"1e18", 1e18, intOK}, {"1e19", 0, intOverflow}, {"9.223372036854775807e18", 9223372036854775807, intOK},
		{"9223372036854775807", 9223372036854775807, intOK}, {"9223372036854775808", 0, intOverflow},
		{"-9223372036854775808", -9223372036854775808, intOK}, {"-9223372036854775809", 0, intOverflow},
		{"0.5", 0, intFractional}, {"1.05e1", 0, intFractional}, {"1e-1", 0, intFractional},
		{"123456789e-9", 0, intFractional}, {"1e-9999999999", 0, intFractional}, {"1e+9999999999", 0, intOverflow},
		{"00000000000000000000000000001", 1, intOK}, // not valid JSON, but the arithmetic holds
		{"100000000000000000000e-2", 1000000000000000000, intOK},
	}
	for _, tc := range cases {
		v, res := parseJSONInt(tc.in)
		if res != tc.want || (res == intOK && v != tc.v) {
			t.Errorf("%s: got %d,%d want %d,%d", tc.in, v, res, tc.v, tc.want)
		}
	}
}
