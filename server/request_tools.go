package server

import (
	"encoding/json"
	"fmt"
)

// Decoding response_format, tools and tool_choice.

func decodeResponseFormat(top jsonObject, req *ChatRequest) *APIError {
	raw, ok := top.present("response_format")
	if !ok {
		return nil
	}
	o, aerr := asObject(raw, "response_format")
	if aerr != nil {
		return aerr
	}
	rawType, ok := o.present("type")
	if !ok {
		return errMissing("response_format.type")
	}
	typ, aerr := asString(rawType, "response_format.type")
	if aerr != nil {
		return aerr
	}
	switch typ {
	case "text":
		return nil
	case "json_object":
		req.ResponseFormat = &ResponseFormat{Type: typ}
		return nil
	case "json_schema":
	default:
		return badRequest(CodeInvalidValue, "response_format.type", "response_format.type must be one of text, json_object, json_schema; got %s", quotedStr(typ))
	}
	rawJS, ok := o.present("json_schema")
	if !ok {
		return errMissing("response_format.json_schema")
	}
	js, aerr := asObject(rawJS, "response_format.json_schema")
	if aerr != nil {
		return aerr
	}
	rf := &ResponseFormat{Type: typ}
	if r, ok := js.present("name"); ok {
		if rf.SchemaName, aerr = asString(r, "response_format.json_schema.name"); aerr != nil {
			return aerr
		}
	}
	if r, ok := js.present("description"); ok {
		if _, aerr = asString(r, "response_format.json_schema.description"); aerr != nil {
			return aerr
		}
	}
	rawSchema, ok := js.present("schema")
	if !ok {
		return errMissing("response_format.json_schema.schema")
	}
	if kindOf(rawSchema) != kindObject {
		return errType("response_format.json_schema.schema", "an object", rawSchema)
	}
	rf.Schema = append(json.RawMessage(nil), trimJSONSpace(rawSchema)...)
	if r, ok := js.present("strict"); ok {
		if rf.Strict, aerr = asBool(r, "response_format.json_schema.strict"); aerr != nil {
			return aerr
		}
	}
	req.ResponseFormat = rf
	return nil
}

// validToolName reports whether name matches ^[A-Za-z0-9_-]{1,64}$.
func validToolName(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func decodeTools(top jsonObject, req *ChatRequest) *APIError {
	raw, ok := top.present("tools")
	if !ok {
		return nil
	}
	items, aerr := asArray(raw, "tools")
	if aerr != nil {
		return aerr
	}
	if len(items) == 0 {
		return nil
	}
	tools := make([]Tool, len(items))
	seen := make(map[string]int, len(items))
	for i, item := range items {
		p := fmt.Sprintf("tools[%d]", i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return aerr
		}
		rawType, ok := o.present("type")
		if !ok {
			return errMissing(p + ".type")
		}
		typ, aerr := asString(rawType, p+".type")
		if aerr != nil {
			return aerr
		}
		if typ != "function" {
			return badRequest(CodeInvalidValue, p+".type", "%s.type must be \"function\", got %s", p, quotedStr(typ))
		}
		rawFn, ok := o.present("function")
		if !ok {
			return errMissing(p + ".function")
		}
		fn, aerr := asObject(rawFn, p+".function")
		if aerr != nil {
			return aerr
		}
		t := &tools[i]
		rawName, ok := fn.present("name")
		if !ok {
			return errMissing(p + ".function.name")
		}
		if t.Name, aerr = asString(rawName, p+".function.name"); aerr != nil {
			return aerr
		}
		if !validToolName(t.Name) {
			return badRequest(CodeInvalidValue, p+".function.name", "%s.function.name must match ^[A-Za-z0-9_-]{1,64}$, got %s", p, quotedStr(t.Name))
		}
		if j, dup := seen[t.Name]; dup {
			return badRequest(CodeInvalidValue, p+".function.name", "duplicate tool name %s (also tools[%d])", quotedStr(t.Name), j)
		}
		seen[t.Name] = i
		if r, ok := fn.present("description"); ok {
			if t.Description, aerr = asString(r, p+".function.description"); aerr != nil {
				return aerr
			}
		}
		if r, ok := fn.present("parameters"); ok {
			if kindOf(r) != kindObject {
				return errType(p+".function.parameters", "a JSON Schema object", r)
			}
			t.Parameters = append(json.RawMessage(nil), trimJSONSpace(r)...)
		}
		if r, ok := fn.present("strict"); ok {
			if t.Strict, aerr = asBool(r, p+".function.strict"); aerr != nil {
				return aerr
			}
		}
		t.Raw = append(json.RawMessage(nil), trimJSONSpace(item)...)
	}
	req.Tools = tools
	return nil
}

func decodeToolChoice(top jsonObject, req *ChatRequest) *APIError {
	hasTools := len(req.Tools) > 0
	req.ToolChoice = ToolChoice{Mode: "none"}
	if hasTools {
		req.ToolChoice.Mode = "auto"
	}
	raw, ok := top.present("tool_choice")
	if !ok {
		return nil
	}
	switch kindOf(raw) {
	case kindString:
		s, aerr := asString(raw, "tool_choice")
		if aerr != nil {
			return aerr
		}
		switch s {
		case "none":
			req.ToolChoice.Mode = "none"
		case "auto":
			// default already: auto with tools, none without
		case "required":
			if !hasTools {
				return badRequest(CodeInvalidValue, "tool_choice", "tool_choice \"required\" needs at least one tool in tools")
			}
			req.ToolChoice.Mode = "required"
		default:
			return badRequest(CodeInvalidValue, "tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or a function object, got %s", quotedStr(s))
		}
		return nil
	case kindObject:
	default:
		return errType("tool_choice", "a string or an object", raw)
	}
	o, aerr := asObject(raw, "tool_choice")
	if aerr != nil {
		return aerr
	}
	rawType, ok := o.present("type")
	if !ok {
		return errMissing("tool_choice.type")
	}
	typ, aerr := asString(rawType, "tool_choice.type")
	if aerr != nil {
		return aerr
	}
	if typ != "function" {
		return badRequest(CodeInvalidValue, "tool_choice.type", "tool_choice.type must be \"function\", got %s", quotedStr(typ))
	}
	rawFn, ok := o.present("function")
	if !ok {
		return errMissing("tool_choice.function")
	}
	fn, aerr := asObject(rawFn, "tool_choice.function")
	if aerr != nil {
		return aerr
	}
	rawName, ok := fn.present("name")
	if !ok {
		return errMissing("tool_choice.function.name")
	}
	name, aerr := asString(rawName, "tool_choice.function.name")
	if aerr != nil {
		return aerr
	}
	declared := false
	for _, t := range req.Tools {
		if t.Name == name {
			declared = true
			break
		}
	}
	if !declared {
		return badRequest(CodeInvalidValue, "tool_choice.function.name", "tool_choice names function %s, which is not declared in tools", quotedStr(name))
	}
	req.ToolChoice = ToolChoice{Mode: "function", Name: name}
	return nil
}
