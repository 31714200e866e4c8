package server

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/asi1d/asi1d/server/api"
)

// Decoding of POST /v1/responses bodies into the chat request the
// generation path runs (generate in chat.go). Choices where OpenAI's
// reference leaves room (docs/API.md, "Responses"):
//
//   - input is a non-empty string or a non-empty list of items: messages
//     (role user, system, developer or assistant; "type":"message"
//     optional; content a string or input_text/output_text parts),
//     function_call, function_call_output and reasoning items. Other item
//     types (item_reference, hosted tool calls) are unsupported_value.
//   - instructions become a system message before everything else; they
//     are not carried to a later response through previous_response_id.
//   - A function_call right after an assistant message or another
//     function_call joins that assistant turn (one assistant message with
//     tool calls); a reasoning item becomes the reasoning_content of the
//     assistant turn after it.
//   - function_call_output must answer a function_call earlier in the
//     conversation (the input or the stored one it continues).
//   - text.format json_schema goes through the same grammar as chat's
//     response_format; its errors name text.format.
//   - Only function tools are served; hosted tools (web_search, ...) are
//     unsupported_value.
//   - metadata: at most 16 string values, keys up to 64 and values up to
//     512 characters (OpenAI's limits). store defaults to true.
//   - Members asi1d does not act on (user, truncation "disabled",
//     reasoning, include, service_tier, prompt_cache_key, ...) are
//     accepted and ignored; background, conversation and prompt are
//     unsupported_value.

// responsesRequest is a validated Responses body.
type responsesRequest struct {
	// chat is the request generate runs; its Messages are filled by
	// resolve (instructions, the previous conversation, the input).
	chat         ChatRequest
	instructions *string
	input        []ChatMessage
	// inputParam is the param of each input message ("input[3]").
	inputParam []string
	// history is where the conversation a stored response keeps starts
	// in chat.Messages (after the instructions).
	history    int
	previousID string
	store      bool
	metadata   map[string]string
	maxOutput  int64 // 0: absent
	// Echoes of the request in the response object.
	toolChoice json.RawMessage
	tools      []api.ResponseTool
	format     api.ResponseFormatText
}

// decodeResponsesRequest parses and validates a Responses body. Every
// violation is a 400 *APIError whose Param is the JSON path of the field.
func decodeResponsesRequest(body []byte) (*responsesRequest, *APIError) {
	top, aerr := decodeBody(body)
	if aerr != nil {
		return nil, aerr
	}
	r := &responsesRequest{store: true, toolChoice: json.RawMessage(`"auto"`), tools: []api.ResponseTool{},
		format: api.ResponseFormatText{Type: "text"}}
	r.chat = ChatRequest{Temperature: 1, TopP: 1, ParallelToolCalls: true}
	if aerr := apply(top, "", responsesFields, r); aerr != nil {
		return nil, aerr
	}
	if r.chat.ToolChoice.Mode == "" { // tool_choice absent or null
		defaultToolChoice(&r.chat)
	}
	return r, nil
}

// responsesFields is the Responses body's table, in the order its errors
// are reported.
var responsesFields = []field[responsesRequest]{
	unsupportedField("background"),
	unsupportedField("conversation"),
	unsupportedField("prompt"),
	{name: "model", typ: tString, required: true, empty: modelField.empty, set: func(r *responsesRequest, v val) { r.chat.Model = v.str }},
	{name: "instructions", typ: tString, set: func(r *responsesRequest, v val) { s := v.str; r.instructions = &s }},
	{name: "previous_response_id", typ: tString, empty: "must not be empty", set: func(r *responsesRequest, v val) { r.previousID = v.str }},
	{name: "input", required: true, check: decodeResponsesInput},
	{name: "temperature", typ: tNumber, lo: 0, hi: 2, set: func(r *responsesRequest, v val) { r.chat.Temperature, r.chat.HasTemperature = v.num, true }},
	{name: "top_p", typ: tNumber, lo: 0, hi: 1, set: func(r *responsesRequest, v val) { r.chat.TopP, r.chat.HasTopP = v.num, true }},
	{name: "stream", typ: tBool, set: func(r *responsesRequest, v val) { r.chat.Stream = v.b }},
	{name: "parallel_tool_calls", typ: tBool, set: func(r *responsesRequest, v val) { r.chat.ParallelToolCalls = v.b }},
	{name: "store", typ: tBool, set: func(r *responsesRequest, v val) { r.store = v.b }},
	{name: "max_output_tokens", typ: tInt, valid: atLeast(1), set: func(r *responsesRequest, v val) { r.chat.MaxTokens, r.maxOutput = v.i, v.i }},
	{name: "user", typ: tString, set: func(r *responsesRequest, v val) { r.chat.User = v.str }},
	{name: "tools", typ: tArray, check: decodeResponsesTools},
	{name: "tool_choice", check: decodeResponsesToolChoice},
	{name: "text", typ: tObject, sub: []field[responsesRequest]{
		{name: "verbosity", typ: tString},
		{name: "format", typ: tObject, check: decodeTextFormat},
	}},
	{name: "metadata", typ: tObject, check: decodeResponsesMetadata},
}

// unsupportedField refuses a member this server does not serve, unless false.
func unsupportedField(name string) field[responsesRequest] {
	return field[responsesRequest]{name: name, check: func(_ *responsesRequest, v val, _ loc) *APIError {
		if string(trimJSONSpace(v.raw)) != "false" {
			return badRequest(CodeUnsupportedValue, name, "%s is not supported by this server", name)
		}
		return nil
	}}
}

// inputItemTypes are the types of input items.
var inputItemTypes = enum{
	values: []string{api.ItemMessage, api.ItemFunctionCall, api.ItemFunctionCallOutput, api.ItemReasoning},
	unsupported: []string{"item_reference", "file_search_call", "web_search_call", "computer_call", "computer_call_output",
		"image_generation_call", "code_interpreter_call", "local_shell_call", "local_shell_call_output",
		"mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call",
		"custom_tool_call_output", "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output"},
	unsupportedMsg: "input items of type %s are not supported by this server",
}

func decodeResponsesInput(r *responsesRequest, v val, _ loc) *APIError {
	raw := v.raw
	switch kindOf(raw) {
	case kindString:
		s, _ := stringValue(raw)
		if s == "" {
			return badRequest(CodeInvalidValue, "input", "input must not be empty")
		}
		r.input = []ChatMessage{{Role: RoleUser, Content: s, HasContent: true}}
		r.inputParam = []string{"input"}
		return nil
	case kindArray:
	default:
		return errType("input", "a string or an array of input items", raw)
	}
	items, _ := arrayValue(raw)
	if len(items) == 0 {
		return badRequest(CodeInvalidValue, "input", "input must contain at least 1 item")
	}
	reasoning := ""
	for i, item := range items {
		p := fmt.Sprintf("input[%d]", i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return aerr
		}
		typ := itemTypeOf(o)
		if rawType, ok := o.present("type"); ok {
			if typ, aerr = asString(rawType, p+".type"); aerr != nil {
				return aerr
			}
		}
		if aerr := inputItemTypes.valid(val{str: typ}, loc{p, "type"}); aerr != nil {
			return aerr
		}
		switch typ {
		case api.ItemMessage:
			var m ChatMessage
			if aerr := apply(o, p, responsesMessageFields, &m); aerr != nil {
				return aerr
			}
			if m.Role == RoleAssistant {
				m.ReasoningContent, reasoning = reasoning, ""
			}
			r.add(m, p)
		case api.ItemFunctionCall:
			var call MessageToolCall
			if aerr := apply(o, p, functionCallFields, &call); aerr != nil {
				return aerr
			}
			if n := len(r.input); n > 0 && r.input[n-1].Role == RoleAssistant && reasoning == "" {
				r.input[n-1].ToolCalls = append(r.input[n-1].ToolCalls, call)
				continue
			}
			r.add(ChatMessage{Role: RoleAssistant, ToolCalls: []MessageToolCall{call}, ReasoningContent: reasoning}, p)
			reasoning = ""
		case api.ItemFunctionCallOutput:
			m := ChatMessage{Role: RoleTool, HasContent: true}
			if aerr := apply(o, p, functionCallOutputFields, &m); aerr != nil {
				return aerr
			}
			r.add(m, p)
		case api.ItemReasoning:
			text, aerr := decodeReasoningItem(o, p)
			if aerr != nil {
				return aerr
			}
			reasoning = strings.TrimSpace(strings.Join([]string{reasoning, text}, "\n\n"))
		}
	}
	if len(r.input) == 0 {
		return badRequest(CodeInvalidValue, "input", "input must contain at least 1 message, function call or function call output")
	}
	return nil
}

// itemTypeOf is the type of an input item without a type member: a
// message when it has a role.
func itemTypeOf(o jsonObject) string {
	if _, ok := o.present("role"); ok {
		return api.ItemMessage
	}
	return ""
}

func (r *responsesRequest) add(m ChatMessage, param string) {
	r.input = append(r.input, m)
	r.inputParam = append(r.inputParam, param)
}

// responsesMessageFields is the table of a message input item.
var responsesMessageFields = []field[ChatMessage]{
	{name: "role", typ: tString, required: true, valid: enum{values: []string{RoleUser, RoleSystem, "developer", RoleAssistant}}.valid,
		set: func(m *ChatMessage, v val) {
			m.Role = v.str
			if m.Role == "developer" {
				m.Role = RoleSystem
			}
		}},
	{name: "content", required: true, check: func(m *ChatMessage, v val, at loc) *APIError {
		switch kindOf(v.raw) {
		case kindString:
			m.Content, _ = stringValue(v.raw)
			m.HasContent = true
			return nil
		case kindArray:
		default:
			return errType(at.String(), "a string or an array of content parts", v.raw)
		}
		content, aerr := decodeInputTextParts(v.raw, at.String())
		m.Content, m.HasContent = content, true
		return aerr
	}},
}

// inputTextPartFields is the table of one content part of an input
// message or function call output.
var inputTextPartFields = []field[string]{
	{name: "type", typ: tString, required: true, valid: enum{values: []string{api.PartInputText, api.PartOutputText},
		unsupported:    []string{"input_image", "input_file", "input_audio", "refusal"},
		unsupportedMsg: "content parts of type %s are not supported by this server; only text parts are"}.valid},
	{name: "text", typ: tString, required: true, set: func(s *string, v val) { *s = v.str }},
}

// decodeInputTextParts reads an array of text parts at path, joined with "\n".
func decodeInputTextParts(raw []byte, path string) (string, *APIError) {
	parts, _ := arrayValue(raw)
	texts := make([]string, len(parts))
	if aerr := objects(parts, path, inputTextPartFields, texts); aerr != nil {
		return "", aerr
	}
	return strings.Join(texts, "\n"), nil
}

// functionCallFields is the table of a function_call input item.
var functionCallFields = []field[MessageToolCall]{
	{name: "call_id", typ: tString, required: true, empty: "must not be empty", set: func(c *MessageToolCall, v val) { c.ID = v.str }},
	{name: "name", typ: tString, required: true, set: func(c *MessageToolCall, v val) { c.Name = v.str }},
	{name: "arguments", typ: tString, required: true, set: func(c *MessageToolCall, v val) { c.Arguments = v.str }},
}

// functionCallOutputFields is the table of a function_call_output input
// item; its output is a string or a list of input_text parts.
var functionCallOutputFields = []field[ChatMessage]{
	{name: "call_id", typ: tString, required: true, set: func(m *ChatMessage, v val) { m.ToolCallID = v.str }},
	{name: "output", required: true, check: func(m *ChatMessage, v val, at loc) *APIError {
		var aerr *APIError
		switch kindOf(v.raw) {
		case kindArray:
			m.Content, aerr = decodeInputTextParts(v.raw, at.String())
		case kindString:
			m.Content, _ = stringValue(v.raw)
		default:
			aerr = errType(at.String(), "a string or an array of input_text parts", v.raw)
		}
		return aerr
	}},
}

// textOnlyFields is the table of a reasoning item's part: its text.
var textOnlyFields = []field[string]{
	{name: "text", typ: tString, required: true, set: func(s *string, v val) { *s = v.str }},
}

// decodeReasoningItem reads the text of a reasoning item passed back:
// its content's reasoning_text parts, or else its summary's texts.
func decodeReasoningItem(o jsonObject, p string) (string, *APIError) {
	var texts []string
	for _, key := range []string{"content", "summary"} {
		raw, ok := o.present(key)
		if !ok || len(texts) > 0 {
			continue
		}
		parts, aerr := asArray(raw, p+"."+key)
		if aerr != nil {
			return "", aerr
		}
		texts = make([]string, len(parts))
		if aerr := objects(parts, p+"."+key, textOnlyFields, texts); aerr != nil {
			return "", aerr
		}
	}
	return strings.Join(texts, "\n\n"), nil
}

// responsesToolTypes: only function tools are served.
var responsesToolTypeFields = []field[struct{}]{
	{name: "type", typ: tString, required: true, valid: enum{values: []string{"function"}, allOthers: true,
		unsupportedMsg: "tools of type %s are not supported by this server; only function tools are"}.valid},
}

// decodeResponsesTools reads tools: every item's type first, then each
// function tool with chat's function rules one level up (tools[i].name).
func decodeResponsesTools(r *responsesRequest, v val, _ loc) *APIError {
	objs := make([]jsonObject, len(v.arr))
	for i, item := range v.arr {
		p := fmt.Sprintf("tools[%d]", i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return aerr
		}
		if aerr := apply(o, p, responsesToolTypeFields, &struct{}{}); aerr != nil {
			return aerr
		}
		objs[i] = o
	}
	if len(objs) == 0 {
		return nil
	}
	tools := make([]Tool, len(objs))
	d := toolDecoding{seen: make(map[string]int, len(objs))}
	for i, o := range objs {
		d.tool, d.i = &tools[i], i
		if aerr := apply(o, fmt.Sprintf("tools[%d]", i), functionFields, &d); aerr != nil {
			return aerr
		}
		// Raw is the tool in chat's shape, for chat templates.
		fn := jsonObject{}
		for _, k := range []string{"name", "description", "parameters", "strict"} {
			if v, ok := o.present(k); ok {
				fn[k] = v
			}
		}
		tools[i].Raw, _ = json.Marshal(map[string]any{"type": "function", "function": fn})
	}
	r.chat.Tools = tools
	for _, t := range tools {
		var desc *string
		if t.Description != "" {
			d := t.Description
			desc = &d
		}
		params := t.Parameters
		if params == nil {
			params = json.RawMessage("null")
		}
		r.tools = append(r.tools, api.ResponseTool{Type: "function", Name: t.Name, Description: desc, Parameters: params, Strict: t.Strict})
	}
	return nil
}

// responsesToolChoiceFields is the table of an object tool_choice:
// {"type":"function","name":...}.
var responsesToolChoiceFields = []field[string]{
	{name: "type", typ: tString, required: true, valid: enum{values: []string{"function"}, allOthers: true,
		unsupportedMsg: "tool_choice of type %s is not supported by this server; use \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"name\":...}"}.valid},
	{name: "name", typ: tString, required: true, set: func(s *string, v val) { *s = v.str }},
}

func decodeResponsesToolChoice(r *responsesRequest, v val, _ loc) *APIError {
	raw := v.raw
	r.toolChoice = rawCopy(raw)
	switch kindOf(raw) {
	case kindString:
		s, _ := stringValue(raw)
		return setToolChoice(&r.chat, s)
	case kindObject:
	default:
		return errType("tool_choice", "a string or an object", raw)
	}
	o, _ := objectValue(raw)
	var name string
	if aerr := apply(o, "tool_choice", responsesToolChoiceFields, &name); aerr != nil {
		return aerr
	}
	return setToolChoiceFunction(&r.chat, name, "tool_choice.name")
}

// decodeTextFormat reads text.format with response_format's rules: its
// json_schema members sit in the format itself.
func decodeTextFormat(r *responsesRequest, v val, at loc) *APIError {
	path := at.String()
	if aerr := apply(v.obj, path, []field[ChatRequest]{formatTypeField}, &r.chat); aerr != nil {
		return aerr
	}
	rf := r.chat.ResponseFormat
	switch {
	case rf == nil: // text
		return nil
	case rf.Type != "json_schema":
		r.format = api.ResponseFormatText{Type: rf.Type}
		return nil
	}
	if aerr := apply(v.obj, path, jsonSchemaFields, &r.chat); aerr != nil {
		return aerr
	}
	strict := rf.Strict
	r.format = api.ResponseFormatText{Type: rf.Type, Name: rf.SchemaName, Schema: rf.Schema, Strict: &strict}
	if d, ok := v.obj.present("description"); ok {
		r.format.Description, _ = stringValue(d)
	}
	return nil
}

// Limits of metadata (OpenAI's).
const (
	maxMetadataKeys  = 16
	maxMetadataKey   = 64
	maxMetadataValue = 512
)

func decodeResponsesMetadata(r *responsesRequest, v val, _ loc) *APIError {
	o := v.obj
	if len(o) > maxMetadataKeys {
		return badRequest(CodeInvalidValue, "metadata", "metadata may hold at most %d keys, got %d", maxMetadataKeys, len(o))
	}
	r.metadata = make(map[string]string, len(o))
	for k, v := range o {
		if len(k) > maxMetadataKey {
			return badRequest(CodeInvalidValue, "metadata", "metadata keys may be at most %d characters, got %s", maxMetadataKey, quotedStr(k))
		}
		s, aerr := asString(v, "metadata."+k)
		if aerr != nil {
			return aerr
		}
		if len(s) > maxMetadataValue {
			return badRequest(CodeInvalidValue, "metadata."+k, "metadata values may be at most %d characters", maxMetadataValue)
		}
		r.metadata[k] = s
	}
	return nil
}
