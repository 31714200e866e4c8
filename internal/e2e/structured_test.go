package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/models/synth"
	"github.com/asi1d/asi1d/server/api"
)

// The structured-output tests run on a synthetic model with random weights:
// its free output is noise, so only the grammar can make it valid.

func randomModel(t *testing.T, template string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "random.gguf")
	if err := synth.WriteFile(path, synth.Options{Preset: "tiny", Type: synth.TypeQ8_0, Template: template, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	return path
}

func compileSchema(t *testing.T, schema string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, text string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		t.Fatalf("output is not JSON: %v\n%q", err, text)
	}
	if err := s.Validate(v); err != nil {
		t.Fatalf("output breaks the schema: %v\n%s", err, text)
	}
}

// orderSchema has nested objects, arrays, enums, required fields, integers
// with bounds and free numbers; every string is bounded so that random
// output ends.
const orderSchema = `{
  "type": "object",
  "properties": {
    "id": {"type": "integer", "minimum": 1, "maximum": 99999},
    "status": {"enum": ["new", "paid", "shipped"]},
    "total": {"type": "number"},
    "express": {"type": "boolean"},
    "customer": {
      "type": "object",
      "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "tier": {"enum": ["gold", "silver", null]}
      },
      "required": ["name", "tier"],
      "additionalProperties": false
    },
    "items": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "sku": {"type": "string", "maxLength": 8},
          "qty": {"type": "integer", "minimum": 1, "maximum": 20}
        },
        "required": ["sku", "qty"],
        "additionalProperties": false
      },
      "minItems": 1,
      "maxItems": 3
    },
    "note": {"anyOf": [{"type": "string", "maxLength": 10}, {"type": "null"}]}
  },
  "required": ["id", "status", "total", "customer", "items"],
  "additionalProperties": false
}`

type wireAnswer struct {
	Content   *string
	Reasoning string
	Calls     []models.ToolCall
	Finish    string
	Raw       []byte // the non-streamed body, or the last chunk
}

// ask posts a chat request and gathers the answer, streamed or not.
func ask(t *testing.T, url string, body map[string]any) wireAnswer {
	t.Helper()
	resp := post(t, url, body)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var a wireAnswer
	if s, _ := body["stream"].(bool); !s {
		var c api.ChatCompletion
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		m := c.Choices[0].Message
		a.Content, a.Reasoning, a.Finish, a.Raw = m.Content, m.ReasoningContent, c.Choices[0].FinishReason, raw
		for _, tc := range m.ToolCalls {
			if tc.Type != "function" || !strings.HasPrefix(tc.ID, "call_") {
				t.Fatalf("bad tool call %+v", tc)
			}
			a.Calls = append(a.Calls, models.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		return a
	}
	var content strings.Builder
	sawContent := false
	sse := api.NewSSEReader(bytes.NewReader(raw))
	for {
		ev, err := sse.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		if ev.IsDone() {
			continue
		}
		line := string(ev.Data)
		ch, err := api.DecodeChunk(ev.Data)
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if len(ch.Choices) == 0 {
			continue
		}
		d := ch.Choices[0].Delta
		if d.Content != nil && *d.Content != "" {
			content.WriteString(*d.Content)
			sawContent = true
		}
		a.Reasoning += d.ReasoningContent
		for _, tc := range d.ToolCalls {
			if tc.Index == len(a.Calls) {
				if tc.ID == "" || tc.Type != "function" || tc.Function.Name == "" {
					t.Fatalf("first delta of call %d lacks id/type/name: %s", tc.Index, line)
				}
				a.Calls = append(a.Calls, models.ToolCall{ID: tc.ID, Name: tc.Function.Name})
			} else if tc.Index != len(a.Calls)-1 || tc.ID != "" {
				t.Fatalf("tool call delta out of order: %s", line)
			}
			a.Calls[tc.Index].Arguments += tc.Function.Arguments
		}
		if f := ch.Choices[0].FinishReason; f != nil {
			a.Finish = *f
		}
		a.Raw = []byte(line)
	}
	if sawContent {
		s := content.String()
		a.Content = &s
	}
	return a
}

func schemaBody(stream bool, seed int, schema string) map[string]any {
	return map[string]any{
		"model": "asi1-mini", "temperature": 1, "seed": seed, "max_tokens": 400, "stream": stream,
		"messages": []map[string]any{{"role": "user", "content": "Make up an order."}},
		"response_format": map[string]any{"type": "json_schema",
			"json_schema": map[string]any{"name": "order", "strict": true, "schema": json.RawMessage(schema)}},
	}
}

func TestJSONSchemaOnRandomWeights(t *testing.T) {
	t.Parallel()
	e, _ := startOn(t, randomModel(t, synth.TemplateChatMLThink), 4, 0)
	s := compileSchema(t, orderSchema)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	sem := make(chan struct{}, 4)
	for i := range 50 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(fmt.Sprintf("req%02d", i), func(t *testing.T) {
				a := ask(t, e.url, schemaBody(i%2 == 1, i, orderSchema))
				if a.Finish != "stop" || a.Content == nil {
					t.Fatalf("finish %q content %v", a.Finish, a.Content)
				}
				validate(t, s, *a.Content)
			})
		}()
	}
	wg.Wait()
	close(errs)
}

func TestJSONObjectOnRandomWeights(t *testing.T) {
	t.Parallel()
	e, _ := startOn(t, randomModel(t, synth.TemplateLlama3), 1, 0)
	for _, stream := range []bool{false, true} {
		body := schemaBody(stream, 3, "")
		body["response_format"] = map[string]any{"type": "json_object"}
		body["max_tokens"] = 300
		a := ask(t, e.url, body)
		if a.Content == nil {
			t.Fatal("no content")
		}
		var v map[string]any
		if a.Finish == "stop" {
			if err := json.Unmarshal([]byte(*a.Content), &v); err != nil {
				t.Fatalf("stream=%v: not a JSON object: %v\n%s", stream, err, *a.Content)
			}
		} else if !strings.HasPrefix(strings.TrimSpace(*a.Content), "{") {
			// An unbounded object may run out of tokens; it is still an object so far.
			t.Fatalf("stream=%v finish %s: %q", stream, a.Finish, *a.Content)
		}
	}
}

const weatherParams = `{"type":"object","properties":{"city":{"type":"string","minLength":1,"maxLength":10},"unit":{"enum":["c","f"]},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","unit"],"additionalProperties":false}`
const timeParams = `{"type":"object","properties":{"zone":{"type":"string","maxLength":6}},"required":["zone"],"additionalProperties":false}`

func toolsBody(stream bool, seed int, choice any, parallel bool) map[string]any {
	return map[string]any{
		"model": "asi1-mini", "temperature": 1, "seed": seed, "max_tokens": 400, "stream": stream,
		"messages": []map[string]any{{"role": "user", "content": "What is the weather in Paris?"}},
		"tools": []map[string]any{
			{"type": "function", "function": map[string]any{"name": "get_weather", "description": "Weather by city", "parameters": json.RawMessage(weatherParams)}},
			{"type": "function", "function": map[string]any{"name": "get_time", "parameters": json.RawMessage(timeParams)}},
		},
		"tool_choice": choice, "parallel_tool_calls": parallel,
	}
}

func TestForcedToolCallsOnRandomWeights(t *testing.T) {
	t.Parallel()
	schemas := map[string]*jsonschema.Schema{"get_weather": compileSchema(t, weatherParams), "get_time": compileSchema(t, timeParams)}
	for _, tmpl := range []string{synth.TemplateChatMLThink, synth.TemplateLlama3} {
		t.Run(tmpl, func(t *testing.T) {
			e, _ := startOnCtx(t, randomModel(t, tmpl), 2, 0, 2048)
			named := map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}
			for i := range 12 {
				stream := i%2 == 1
				var choice any = "required"
				if i%3 == 2 {
					choice = named
				}
				parallel := i%4 == 0 && tmpl != synth.TemplateLlama3
				a := ask(t, e.url, toolsBody(stream, i, choice, parallel))
				if a.Finish != "tool_calls" || len(a.Calls) == 0 {
					t.Fatalf("req %d (stream %v, choice %v): finish %q, calls %v, content %q", i, stream, choice, a.Finish, a.Calls, deref(a.Content))
				}
				if a.Content != nil {
					t.Errorf("req %d: content %q next to tool calls, want null", i, *a.Content)
				}
				if !parallel && len(a.Calls) != 1 {
					t.Errorf("req %d: %d calls with parallel_tool_calls false", i, len(a.Calls))
				}
				for _, c := range a.Calls {
					s := schemas[c.Name]
					if s == nil || (choice != "required" && c.Name != "get_time") {
						t.Fatalf("req %d: call of %q (choice %v)", i, c.Name, choice)
					}
					validate(t, s, c.Arguments)
				}
			}
		})
	}
}

// The official Go client reads forced calls as tool calls.
func TestToolCallsWithOpenAIClient(t *testing.T) {
	e, _ := startOnCtx(t, randomModel(t, synth.TemplateChatMLThink), 1, 0, 2048)
	client := sdkClient(e.url)
	var params openai.FunctionParameters
	if err := json.Unmarshal([]byte(weatherParams), &params); err != nil {
		t.Fatal(err)
	}
	p := openai.ChatCompletionNewParams{
		Model:       "asi1-mini",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Oslo?")},
		Temperature: openai.Float(0.7),
		Seed:        openai.Int(5),
		MaxTokens:   openai.Int(300),
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
			Name: "get_weather", Parameters: params,
		})},
		ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
	}
	ctx := context.Background()
	resp, err := client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	s := compileSchema(t, weatherParams)
	msg := resp.Choices[0].Message
	if resp.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" {
		t.Fatalf("finish %q, tool calls %+v", resp.Choices[0].FinishReason, msg.ToolCalls)
	}
	validate(t, s, msg.ToolCalls[0].Function.Arguments)

	st := client.Chat.Completions.NewStreaming(ctx, p)
	var acc openai.ChatCompletionAccumulator
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("streamed: finish %q, calls %+v", acc.Choices[0].FinishReason, calls)
	}
	validate(t, s, calls[0].Function.Arguments)
	if calls[0].Function.Arguments != msg.ToolCalls[0].Function.Arguments {
		t.Errorf("streamed arguments %q differ from non-streamed %q (same seed)", calls[0].Function.Arguments, msg.ToolCalls[0].Function.Arguments)
	}
}

func TestUnsupportedSchemaIsRefused(t *testing.T) {
	e, _ := startOnCtx(t, randomModel(t, synth.TemplateChatMLThink), 1, 0, 2048)
	for _, c := range []struct {
		body  map[string]any
		param string
		word  string
	}{
		{schemaBody(false, 1, `{"type":"object","properties":{"a":{"type":"string","not":{"const":"x"}}}}`), "response_format.json_schema.schema", `"not"`},
		{schemaBody(true, 1, `{"type":"number","multipleOf":0.5}`), "response_format.json_schema.schema", `"multipleOf"`},
		{func() map[string]any {
			b := toolsBody(false, 1, "required", false)
			b["tools"].([]map[string]any)[1]["function"].(map[string]any)["parameters"] = json.RawMessage(`{"type":"object","properties":{"z":{"type":"string","format":"idn-email"}}}`)
			return b
		}(), "tools[1].function.parameters", `"format"`},
	} {
		resp := post(t, e.url, c.body)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var er api.ErrorBody
		_ = json.Unmarshal(raw, &er)
		if resp.StatusCode != 400 || er.Error.Code != "unsupported_value" || er.Error.Param != c.param || !strings.Contains(er.Error.Message, c.word) {
			t.Errorf("status %d body %s; want 400 unsupported_value param %s naming %s", resp.StatusCode, raw, c.param, c.word)
		}
	}
	// The server still answers after the refusals (no leaked slot).
	a := ask(t, e.url, schemaBody(false, 2, `{"enum":["x","y"]}`))
	if c := strings.TrimSpace(deref(a.Content)); c != `"x"` && c != `"y"` {
		t.Fatalf("content %q", deref(a.Content))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// scriptedCall is the chain of a scripted model that thinks, then calls a
// tool in Hermes/Qwen syntax, without any grammar: what tool_choice "auto"
// reads from a real model.
var scriptedCall = []string{"<0x0A>", "<think>", "▁so", "▁let", "▁me", "</think>", "<tool_call>",
	callPiece, "</tool_call>", "<|im_end|>"}

const callPiece = "\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"utc\"}}\n"

func TestAutoToolCallWithToolThought(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.gguf")
	o := synth.Options{Preset: "tiny", Type: synth.TypeQ8_0, Template: synth.TemplateChatMLThink, Script: scriptedCall, Pieces: []string{callPiece}}
	if err := synth.WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
	e, _ := startOnCtx(t, path, 1, 0, 2048)
	if e.model.ToolFormat != models.ToolFormatHermes {
		t.Fatalf("tool format %v, want hermes", e.model.ToolFormat)
	}
	body := func(stream bool, choice any) map[string]any {
		b := toolsBody(stream, 0, choice, true)
		b["temperature"] = 0
		return b
	}
	const wantArgs = `{"zone":"utc"}`
	for _, stream := range []bool{false, true} {
		a := ask(t, e.url, body(stream, "auto"))
		if a.Finish != "tool_calls" || len(a.Calls) != 1 || a.Calls[0].Name != "get_time" || a.Calls[0].Arguments != wantArgs || a.Content != nil {
			t.Fatalf("stream %v: finish %q calls %+v content %q", stream, a.Finish, a.Calls, deref(a.Content))
		}
		if a.Reasoning != "so let me" {
			t.Errorf("stream %v: reasoning_content %q", stream, a.Reasoning)
		}
	}
	// tool_thought holds the reasoning behind the calls; thought is empty.
	resp := post(t, e.url, body(false, "auto"))
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env api.ChatCompletion
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Thought) != 0 || len(env.ToolThought) != 1 || env.ToolThought[0] != "so let me" {
		t.Errorf("thought %q tool_thought %q (%v): %s", env.Thought, env.ToolThought, err, raw)
	}
	// Streamed: the first tool-call chunk carries tool_thought.
	resp = post(t, e.url, body(true, "auto"))
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	found := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, `"tool_calls"`) && strings.Contains(line, `"id":"call_`) {
			found = strings.Contains(line, `"tool_thought":["so let me"]`)
			break
		}
	}
	if !found {
		t.Errorf("the first tool-call chunk lacks tool_thought:\n%s", raw)
	}
	// tool_choice none: the same output is plain content.
	a := ask(t, e.url, body(false, "none"))
	if a.Finish != "stop" || len(a.Calls) != 0 || deref(a.Content) != "<tool_call>"+callPiece+"</tool_call>" {
		t.Errorf("tool_choice none: finish %q calls %v content %q", a.Finish, a.Calls, deref(a.Content))
	}
}

// tool_choice "auto" on random weights: a logit bias makes the model open a
// call (<tool_call>) at once; from there the lazy call grammar must make
// every call valid, where free sampling would write noise.
func TestAutoToolCallsValidByGrammar(t *testing.T) {
	t.Parallel()
	e, be := startOnCtx(t, randomModel(t, synth.TemplateChatMLThink), 2, 0, 2048)
	open, err := be.Tokenize("<tool_call>", false, true)
	if err != nil || len(open) != 1 {
		t.Fatalf("<tool_call> is %v (%v), want one token", open, err)
	}
	schemas := map[string]*jsonschema.Schema{"get_weather": compileSchema(t, weatherParams), "get_time": compileSchema(t, timeParams)}
	for i := range 10 {
		body := toolsBody(i%2 == 1, i, "auto", false)
		body["logit_bias"] = map[string]any{fmt.Sprint(open[0]): 100}
		a := ask(t, e.url, body)
		if a.Finish != "tool_calls" || len(a.Calls) != 1 {
			t.Fatalf("req %d: finish %q calls %v content %q", i, a.Finish, a.Calls, deref(a.Content))
		}
		s := schemas[a.Calls[0].Name]
		if s == nil {
			t.Fatalf("req %d: call of %q", i, a.Calls[0].Name)
		}
		validate(t, s, a.Calls[0].Arguments)
	}
}
