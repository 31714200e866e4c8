package server

import (
	"fmt"
	"strings"
)

// Decoding messages: roles, content (string or parts) and the assistant's
// tool calls.

func decodeMessages(top jsonObject, req *ChatRequest) *APIError {
	raw, ok := top.present("messages")
	if !ok {
		return errMissing("messages")
	}
	items, aerr := asArray(raw, "messages")
	if aerr != nil {
		return aerr
	}
	if len(items) == 0 {
		return badRequest(CodeInvalidValue, "messages", "messages must contain at least 1 message")
	}
	req.Messages = make([]ChatMessage, len(items))
	for i, item := range items {
		if aerr := decodeMessage(item, fmt.Sprintf("messages[%d]", i), &req.Messages[i]); aerr != nil {
			return aerr
		}
	}
	return nil
}

// unsupportedPartTypes are OpenAI content part types this server cannot take.
var unsupportedPartTypes = map[string]bool{"image_url": true, "input_audio": true, "file": true, "refusal": true}

func decodeMessage(raw []byte, path string, m *ChatMessage) *APIError {
	o, aerr := asObject(raw, path)
	if aerr != nil {
		return aerr
	}
	rolePath := path + ".role"
	rawRole, ok := o.present("role")
	if !ok {
		return errMissing(rolePath)
	}
	if kindOf(rawRole) != kindString {
		return badRequest(CodeInvalidValue, rolePath, "%s must be one of system, developer, user, assistant, tool; got %s", rolePath, kindName(kindOf(rawRole)))
	}
	role, aerr := asString(rawRole, rolePath)
	if aerr != nil {
		return aerr
	}
	switch role {
	case RoleSystem, RoleUser, RoleAssistant, RoleTool:
	case "developer":
		role = RoleSystem
	default:
		return badRequest(CodeInvalidValue, rolePath, "%s must be one of system, developer, user, assistant, tool; got %s", rolePath, quotedStr(role))
	}
	m.Role = role

	if role == RoleAssistant {
		if rawCalls, ok := o.present("tool_calls"); ok {
			calls, aerr := decodeMessageToolCalls(rawCalls, path+".tool_calls")
			if aerr != nil {
				return aerr
			}
			m.ToolCalls = calls
		}
		if r, ok := o.present("reasoning_content"); ok {
			s, aerr := asString(r, path+".reasoning_content")
			if aerr != nil {
				return aerr
			}
			m.ReasoningContent = s
		}
	}

	if rawContent, ok := o.present("content"); ok {
		content, aerr := decodeContent(rawContent, path+".content")
		if aerr != nil {
			return aerr
		}
		m.Content, m.HasContent = content, true
	} else if role != RoleAssistant || len(m.ToolCalls) == 0 {
		return errMissing(path + ".content")
	}

	if r, ok := o.present("name"); ok {
		s, aerr := asString(r, path+".name")
		if aerr != nil {
			return aerr
		}
		m.Name = s
	}
	if role == RoleTool {
		r, ok := o.present("tool_call_id")
		if !ok {
			return errMissing(path + ".tool_call_id")
		}
		s, aerr := asString(r, path+".tool_call_id")
		if aerr != nil {
			return aerr
		}
		m.ToolCallID = s
	}
	return nil
}

// decodeContent decodes a message content: a string or an array of text parts.
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
	texts := make([]string, 0, len(parts))
	for j, part := range parts {
		pp := fmt.Sprintf("%s[%d]", path, j)
		po, aerr := asObject(part, pp)
		if aerr != nil {
			return "", aerr
		}
		rawType, ok := po.present("type")
		if !ok {
			return "", errMissing(pp + ".type")
		}
		typ, aerr := asString(rawType, pp+".type")
		if aerr != nil {
			return "", aerr
		}
		if typ != "text" {
			if unsupportedPartTypes[typ] {
				return "", badRequest(CodeUnsupportedValue, pp+".type", "content parts of type %s are not supported by this server; only text parts are", quotedStr(typ))
			}
			return "", badRequest(CodeInvalidValue, pp+".type", "%s.type must be \"text\", got %s", pp, quotedStr(typ))
		}
		rawText, ok := po.present("text")
		if !ok {
			return "", errMissing(pp + ".text")
		}
		text, aerr := asString(rawText, pp+".text")
		if aerr != nil {
			return "", aerr
		}
		texts = append(texts, text)
	}
	return strings.Join(texts, "\n"), nil
}

func decodeMessageToolCalls(raw []byte, path string) ([]MessageToolCall, *APIError) {
	items, aerr := asArray(raw, path)
	if aerr != nil {
		return nil, aerr
	}
	if len(items) == 0 {
		return nil, nil
	}
	calls := make([]MessageToolCall, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return nil, aerr
		}
		rawID, ok := o.present("id")
		if !ok {
			return nil, errMissing(p + ".id")
		}
		if calls[i].ID, aerr = asString(rawID, p+".id"); aerr != nil {
			return nil, aerr
		}
		if rawType, ok := o.present("type"); ok {
			typ, aerr := asString(rawType, p+".type")
			if aerr != nil {
				return nil, aerr
			}
			if typ != "function" {
				return nil, badRequest(CodeInvalidValue, p+".type", "%s.type must be \"function\", got %s", p, quotedStr(typ))
			}
		}
		rawFn, ok := o.present("function")
		if !ok {
			return nil, errMissing(p + ".function")
		}
		fn, aerr := asObject(rawFn, p+".function")
		if aerr != nil {
			return nil, aerr
		}
		rawName, ok := fn.present("name")
		if !ok {
			return nil, errMissing(p + ".function.name")
		}
		if calls[i].Name, aerr = asString(rawName, p+".function.name"); aerr != nil {
			return nil, aerr
		}
		if rawArgs, ok := fn.present("arguments"); ok {
			switch kindOf(rawArgs) {
			case kindString:
				if calls[i].Arguments, aerr = asString(rawArgs, p+".function.arguments"); aerr != nil {
					return nil, aerr
				}
			case kindObject:
				calls[i].Arguments = string(trimJSONSpace(rawArgs))
			default:
				return nil, errType(p+".function.arguments", "a string", rawArgs)
			}
		}
	}
	return calls, nil
}
