package server

import "strings"

// Decoding messages: roles, content (string or parts) and the assistant's
// tool calls.

var messagesField = field[ChatRequest]{name: "messages", typ: tArray, required: true, empty: "must contain at least 1 message",
	check: func(req *ChatRequest, v val, _ loc) *APIError {
		req.Messages = make([]ChatMessage, len(v.arr))
		return objects(v.arr, "messages", messageFields, req.Messages)
	}}

// messageFields is the table of one item of messages. The role comes
// first: which members are read or required depends on it.
var messageFields = []field[ChatMessage]{
	{name: "role", required: true, check: decodeRole},
	{name: "tool_calls", typ: tArray, when: isAssistant, check: decodeMessageToolCalls},
	{name: "reasoning_content", typ: tString, when: isAssistant, set: func(m *ChatMessage, v val) { m.ReasoningContent = v.str }},
	// content may be absent or null only on an assistant message with tool calls.
	{name: "content", requiredIf: func(m *ChatMessage) bool { return m.Role != RoleAssistant || len(m.ToolCalls) == 0 },
		check: func(m *ChatMessage, v val, at loc) *APIError {
			content, aerr := decodeContent(v.raw, at.String())
			m.Content, m.HasContent = content, true
			return aerr
		}},
	{name: "name", typ: tString, set: func(m *ChatMessage, v val) { m.Name = v.str }},
	{name: "tool_call_id", typ: tString, required: true, when: func(m *ChatMessage) bool { return m.Role == RoleTool },
		set: func(m *ChatMessage, v val) { m.ToolCallID = v.str }},
}

func isAssistant(m *ChatMessage) bool { return m.Role == RoleAssistant }

// decodeRole reads a message's role; "developer" is normalised to
// "system". A role of another JSON type is invalid_value, as an unknown
// role is.
func decodeRole(m *ChatMessage, v val, at loc) *APIError {
	role, ok := stringValue(v.raw)
	if !ok {
		return badRequest(CodeInvalidValue, at.String(), "%s must be one of system, developer, user, assistant, tool; got %s", at, kindName(kindOf(v.raw)))
	}
	switch role {
	case RoleSystem, RoleUser, RoleAssistant, RoleTool:
	case "developer":
		role = RoleSystem
	default:
		return badRequest(CodeInvalidValue, at.String(), "%s must be one of system, developer, user, assistant, tool; got %s", at, quotedStr(role))
	}
	m.Role = role
	return nil
}

// textPartFields is the table of one chat content part: only text parts
// are served.
var textPartFields = []field[string]{
	{name: "type", typ: tString, required: true, valid: enum{values: []string{"text"},
		unsupported:    []string{"image_url", "input_audio", "file", "refusal"},
		unsupportedMsg: "content parts of type %s are not supported by this server; only text parts are"}.valid},
	{name: "text", typ: tString, required: true, set: func(s *string, v val) { *s = v.str }},
}

// decodeContent decodes a message content: a string or an array of text
// parts, joined with "\n".
func decodeContent(raw []byte, path string) (string, *APIError) {
	switch kindOf(raw) {
	case kindString:
		return asString(raw, path)
	case kindArray:
	default:
		return "", errType(path, "a string or an array of content parts", raw)
	}
	parts, aerr := asArray(raw, path)
	if aerr != nil {
		return "", aerr
	}
	texts := make([]string, len(parts))
	if aerr := objects(parts, path, textPartFields, texts); aerr != nil {
		return "", aerr
	}
	return strings.Join(texts, "\n"), nil
}

// toolCallFields is the table of one item of an assistant's tool_calls.
var toolCallFields = []field[MessageToolCall]{
	{name: "id", typ: tString, required: true, set: func(c *MessageToolCall, v val) { c.ID = v.str }},
	{name: "type", typ: tString, valid: enum{values: []string{"function"}}.valid},
	{name: "function", typ: tObject, required: true, sub: []field[MessageToolCall]{
		{name: "name", typ: tString, required: true, set: func(c *MessageToolCall, v val) { c.Name = v.str }},
		// arguments is JSON text; an object sent instead is kept as its text.
		{name: "arguments", check: func(c *MessageToolCall, v val, at loc) *APIError {
			switch kindOf(v.raw) {
			case kindString:
				c.Arguments, _ = stringValue(v.raw)
			case kindObject:
				c.Arguments = string(trimJSONSpace(v.raw))
			default:
				return errType(at.String(), "a string", v.raw)
			}
			return nil
		}},
	}},
}

func decodeMessageToolCalls(m *ChatMessage, v val, at loc) *APIError {
	if len(v.arr) == 0 {
		return nil
	}
	m.ToolCalls = make([]MessageToolCall, len(v.arr))
	return objects(v.arr, at.String(), toolCallFields, m.ToolCalls)
}
