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
	for _, name := range []string{"background", "conversation", "prompt"} {
		if raw, ok := top.present(name); ok && string(trimJSONSpace(raw)) != "false" {
			return nil, badRequest(CodeUnsupportedValue, name, "%s is not supported by this server", name)
		}
	}
	steps := []func(jsonObject, *responsesRequest) *APIError{
		func(o jsonObject, r *responsesRequest) *APIError { return decodeModel(o, &r.chat) },
		decodeResponsesInput,
		decodeResponsesScalars,
		decodeResponsesTools,
		decodeResponsesToolChoice,
		decodeResponsesText,
		decodeResponsesMetadata,
	}
	for _, step := range steps {
		if aerr := step(top, r); aerr != nil {
			return nil, aerr
		}
	}
	return r, nil
}

func decodeResponsesInput(top jsonObject, r *responsesRequest) *APIError {
	if raw, ok := top.present("instructions"); ok {
		s, aerr := asString(raw, "instructions")
		if aerr != nil {
			return aerr
		}
		r.instructions = &s
	}
	if raw, ok := top.present("previous_response_id"); ok {
		s, aerr := asString(raw, "previous_response_id")
		if aerr != nil {
			return aerr
		}
		if s == "" {
			return badRequest(CodeInvalidValue, "previous_response_id", "previous_response_id must not be empty")
		}
		r.previousID = s
	}
	raw, ok := top.present("input")
	if !ok {
		return errMissing("input")
	}
	switch kindOf(raw) {
	case kindString:
		s, aerr := asString(raw, "input")
		if aerr != nil {
			return aerr
		}
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
	items, aerr := asArray(raw, "input")
	if aerr != nil {
		return aerr
	}
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
		switch typ {
		case api.ItemMessage:
			m, aerr := decodeResponsesMessage(o, p)
			if aerr != nil {
				return aerr
			}
			if m.Role == RoleAssistant {
				m.ReasoningContent, reasoning = reasoning, ""
			}
			r.add(m, p)
		case api.ItemFunctionCall:
			call, aerr := decodeFunctionCall(o, p)
			if aerr != nil {
				return aerr
			}
			if n := len(r.input); n > 0 && r.input[n-1].Role == RoleAssistant && reasoning == "" {
				r.input[n-1].ToolCalls = append(r.input[n-1].ToolCalls, call)
				continue
			}
			r.add(ChatMessage{Role: RoleAssistant, ToolCalls: []MessageToolCall{call}, ReasoningContent: reasoning}, p)
			reasoning = ""
		case api.ItemFunctionCallOutput:
			m, aerr := decodeFunctionCallOutput(o, p)
			if aerr != nil {
				return aerr
			}
			r.add(m, p)
		case api.ItemReasoning:
			text, aerr := decodeReasoningItem(o, p)
			if aerr != nil {
				return aerr
			}
			reasoning = strings.TrimSpace(strings.Join([]string{reasoning, text}, "\n\n"))
		case "item_reference", "file_search_call", "web_search_call", "computer_call", "computer_call_output",
			"image_generation_call", "code_interpreter_call", "local_shell_call", "local_shell_call_output",
			"mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call",
			"custom_tool_call_output", "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output":
			return badRequest(CodeUnsupportedValue, p+".type", "input items of type %s are not supported by this server", quotedStr(typ))
		default:
			return badRequest(CodeInvalidValue, p+".type", "%s.type must be one of message, function_call, function_call_output, reasoning; got %s", p, quotedStr(typ))
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

func decodeResponsesMessage(o jsonObject, p string) (ChatMessage, *APIError) {
	var m ChatMessage
	rawRole, ok := o.present("role")
	if !ok {
		return m, errMissing(p + ".role")
	}
	role, aerr := asString(rawRole, p+".role")
	if aerr != nil {
		return m, aerr
	}
	switch role {
	case RoleSystem, RoleUser, RoleAssistant:
	case "developer":
		role = RoleSystem
	default:
		return m, badRequest(CodeInvalidValue, p+".role", "%s.role must be one of user, system, developer, assistant; got %s", p, quotedStr(role))
	}
	m.Role = role
	raw, ok := o.present("content")
	if !ok {
		return m, errMissing(p + ".content")
	}
	switch kindOf(raw) {
	case kindString:
		m.Content, aerr = asString(raw, p+".content")
		m.HasContent = true
		return m, aerr
	case kindArray:
	default:
		return m, errType(p+".content", "a string or an array of content parts", raw)
	}
	parts, _ := asArray(raw, p+".content")
	texts := make([]string, 0, len(parts))
	for j, part := range parts {
		pp := fmt.Sprintf("%s.content[%d]", p, j)
		po, aerr := asObject(part, pp)
		if aerr != nil {
			return m, aerr
		}
		rawType, ok := po.present("type")
		if !ok {
			return m, errMissing(pp + ".type")
		}
		typ, aerr := asString(rawType, pp+".type")
		if aerr != nil {
			return m, aerr
		}
		switch typ {
		case api.PartInputText, api.PartOutputText:
		case "input_image", "input_file", "input_audio", "refusal":
			return m, badRequest(CodeUnsupportedValue, pp+".type", "content parts of type %s are not supported by this server; only text parts are", quotedStr(typ))
		default:
			return m, badRequest(CodeInvalidValue, pp+".type", "%s.type must be \"input_text\" or \"output_text\", got %s", pp, quotedStr(typ))
		}
		rawText, ok := po.present("text")
		if !ok {
			return m, errMissing(pp + ".text")
		}
		text, aerr := asString(rawText, pp+".text")
		if aerr != nil {
			return m, aerr
		}
		texts = append(texts, text)
	}
	m.Content, m.HasContent = strings.Join(texts, "\n"), true
	return m, nil
}

// reqString reads a required string member.
func reqString(o jsonObject, p, key string) (string, *APIError) {
	raw, ok := o.present(key)
	if !ok {
		return "", errMissing(p + "." + key)
	}
	return asString(raw, p+"."+key)
}

func decodeFunctionCall(o jsonObject, p string) (MessageToolCall, *APIError) {
	var c MessageToolCall
	var aerr *APIError
	if c.ID, aerr = reqString(o, p, "call_id"); aerr != nil {
		return c, aerr
	}
	if c.ID == "" {
		return c, badRequest(CodeInvalidValue, p+".call_id", "%s.call_id must not be empty", p)
	}
	if c.Name, aerr = reqString(o, p, "name"); aerr != nil {
		return c, aerr
	}
	if c.Arguments, aerr = reqString(o, p, "arguments"); aerr != nil {
		return c, aerr
	}
	return c, nil
}

func decodeFunctionCallOutput(o jsonObject, p string) (ChatMessage, *APIError) {
	m := ChatMessage{Role: RoleTool, HasContent: true}
	var aerr *APIError
	if m.ToolCallID, aerr = reqString(o, p, "call_id"); aerr != nil {
		return m, aerr
	}
	raw, ok := o.present("output")
	if !ok {
		return m, errMissing(p + ".output")
	}
	if kindOf(raw) == kindArray {
		// A list of input_text parts, as a message's content.
		mm, aerr := decodeResponsesMessage(jsonObject{"role": json.RawMessage(`"user"`), "content": raw}, p)
		if aerr != nil {
			aerr.Param = strings.Replace(aerr.Param, p+".content", p+".output", 1)
			aerr.Message = strings.Replace(aerr.Message, p+".content", p+".output", 1)
			return m, aerr
		}
		m.Content = mm.Content
		return m, nil
	}
	m.Content, aerr = asString(raw, p+".output")
	if aerr != nil {
		return m, errType(p+".output", "a string or an array of input_text parts", raw)
	}
	return m, nil
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
		for j, part := range parts {
			pp := fmt.Sprintf("%s.%s[%d]", p, key, j)
			po, aerr := asObject(part, pp)
			if aerr != nil {
				return "", aerr
			}
			text, aerr := reqString(po, pp, "text")
			if aerr != nil {
				return "", aerr
			}
			texts = append(texts, text)
		}
	}
	return strings.Join(texts, "\n\n"), nil
}

func decodeResponsesScalars(top jsonObject, r *responsesRequest) *APIError {
	c := &r.chat
	for _, f := range []struct {
		name   string
		lo, hi float64
		dst    *float64
		has    *bool
	}{{"temperature", 0, 2, &c.Temperature, &c.HasTemperature}, {"top_p", 0, 1, &c.TopP, &c.HasTopP}} {
		if raw, ok := top.present(f.name); ok {
			x, aerr := asRange(raw, f.name, f.lo, f.hi)
			if aerr != nil {
				return aerr
			}
			*f.dst, *f.has = x, true
		}
	}
	bools := []struct {
		name string
		dst  *bool
	}{{"stream", &c.Stream}, {"parallel_tool_calls", &c.ParallelToolCalls}, {"store", &r.store}}
	for _, f := range bools {
		if raw, ok := top.present(f.name); ok {
			b, aerr := asBool(raw, f.name)
			if aerr != nil {
				return aerr
			}
			*f.dst = b
		}
	}
	if raw, ok := top.present("max_output_tokens"); ok {
		v, aerr := asInt(raw, "max_output_tokens")
		if aerr != nil {
			return aerr
		}
		if v < 1 {
			return badRequest(CodeInvalidValue, "max_output_tokens", "max_output_tokens must be at least 1, got %d", v)
		}
		c.MaxTokens, r.maxOutput = v, v
	}
	if raw, ok := top.present("user"); ok {
		s, aerr := asString(raw, "user")
		if aerr != nil {
			return aerr
		}
		c.User = s
	}
	return nil
}

func decodeResponsesTools(top jsonObject, r *responsesRequest) *APIError {
	raw, ok := top.present("tools")
	if !ok {
		return nil
	}
	items, aerr := asArray(raw, "tools")
	if aerr != nil {
		return aerr
	}
	// Rewritten in chat's shape, decodeTools validates them; its params
	// ("tools[0].function.name") are mapped back.
	chatTools := make([]json.RawMessage, len(items))
	for i, item := range items {
		p := fmt.Sprintf("tools[%d]", i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return aerr
		}
		typ, aerr := reqString(o, p, "type")
		if aerr != nil {
			return aerr
		}
		if typ != "function" {
			return badRequest(CodeUnsupportedValue, p+".type", "tools of type %s are not supported by this server; only function tools are", quotedStr(typ))
		}
		fn := jsonObject{}
		for _, k := range []string{"name", "description", "parameters", "strict"} {
			if v, ok := o.present(k); ok {
				fn[k] = v
			}
		}
		b, _ := json.Marshal(map[string]any{"type": "function", "function": fn})
		chatTools[i] = b
	}
	b, _ := json.Marshal(chatTools)
	if aerr := decodeTools(jsonObject{"tools": b}, &r.chat); aerr != nil {
		aerr.Param = strings.Replace(aerr.Param, ".function.", ".", 1)
		aerr.Message = strings.ReplaceAll(aerr.Message, ".function.", ".")
		return aerr
	}
	for _, t := range r.chat.Tools {
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

func decodeResponsesToolChoice(top jsonObject, r *responsesRequest) *APIError {
	raw, ok := top.present("tool_choice")
	if !ok {
		if len(r.chat.Tools) == 0 {
			r.chat.ToolChoice = ToolChoice{Mode: "none"}
		} else {
			r.chat.ToolChoice = ToolChoice{Mode: "auto"}
		}
		return nil
	}
	r.toolChoice = append(json.RawMessage(nil), trimJSONSpace(raw)...)
	if kindOf(raw) == kindObject {
		o, _ := asObject(raw, "tool_choice")
		typ, aerr := reqString(o, "tool_choice", "type")
		if aerr != nil {
			return aerr
		}
		if typ != "function" {
			return badRequest(CodeUnsupportedValue, "tool_choice.type", "tool_choice of type %s is not supported by this server; use \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"name\":...}", quotedStr(typ))
		}
		name, aerr := reqString(o, "tool_choice", "name")
		if aerr != nil {
			return aerr
		}
		b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": name}})
		raw = b
	}
	if aerr := decodeToolChoice(jsonObject{"tool_choice": raw}, &r.chat); aerr != nil {
		aerr.Param = strings.Replace(aerr.Param, "tool_choice.function.name", "tool_choice.name", 1)
		return aerr
	}
	return nil
}

func decodeResponsesText(top jsonObject, r *responsesRequest) *APIError {
	raw, ok := top.present("text")
	if !ok {
		return nil
	}
	o, aerr := asObject(raw, "text")
	if aerr != nil {
		return aerr
	}
	if v, ok := o.present("verbosity"); ok {
		if _, aerr := asString(v, "text.verbosity"); aerr != nil {
			return aerr
		}
	}
	rawFormat, ok := o.present("format")
	if !ok {
		return nil
	}
	f, aerr := asObject(rawFormat, "text.format")
	if aerr != nil {
		return aerr
	}
	typ, aerr := reqString(f, "text.format", "type")
	if aerr != nil {
		return aerr
	}
	switch typ {
	case "text":
		return nil
	case "json_object":
		r.chat.ResponseFormat = &ResponseFormat{Type: typ}
		r.format = api.ResponseFormatText{Type: typ}
		return nil
	case "json_schema":
	default:
		return badRequest(CodeInvalidValue, "text.format.type", "text.format.type must be one of text, json_object, json_schema; got %s", quotedStr(typ))
	}
	// chat's json_schema object has the same members, one level down.
	b, _ := json.Marshal(map[string]any{"type": "json_schema", "json_schema": f})
	if aerr := decodeResponseFormat(jsonObject{"response_format": b}, &r.chat); aerr != nil {
		aerr.Param = strings.Replace(aerr.Param, "response_format.json_schema", "text.format", 1)
		aerr.Message = strings.ReplaceAll(aerr.Message, "response_format.json_schema", "text.format")
		return aerr
	}
	rf := r.chat.ResponseFormat
	strict := rf.Strict
	r.format = api.ResponseFormatText{Type: typ, Name: rf.SchemaName, Schema: rf.Schema, Strict: &strict}
	if d, ok := f.present("description"); ok {
		r.format.Description, _ = asString(d, "text.format.description")
	}
	return nil
}

// Limits of metadata (OpenAI's).
const (
	maxMetadataKeys  = 16
	maxMetadataKey   = 64
	maxMetadataValue = 512
)

func decodeResponsesMetadata(top jsonObject, r *responsesRequest) *APIError {
	raw, ok := top.present("metadata")
	if !ok {
		return nil
	}
	o, aerr := asObject(raw, "metadata")
	if aerr != nil {
		return aerr
	}
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
