package server

import (
	"encoding/json"
	"fmt"
)

// Decoding response_format, tools and tool_choice.

// responseFormatField is response_format: text (a nil ResponseFormat),
// json_object or json_schema.
var responseFormatField = field[ChatRequest]{name: "response_format", typ: tObject, sub: []field[ChatRequest]{
	formatTypeField,
	{name: "json_schema", typ: tObject, required: true, when: isJSONSchema, sub: jsonSchemaFields},
}}

// formatTypeField is the type of a format (chat's response_format, the
// Responses text.format).
var formatTypeField = field[ChatRequest]{name: "type", typ: tString, required: true,
	valid: enum{values: []string{"text", "json_object", "json_schema"}}.valid,
	set: func(r *ChatRequest, v val) {
		if v.str != "text" {
			r.ResponseFormat = &ResponseFormat{Type: v.str}
		}
	}}

func isJSONSchema(r *ChatRequest) bool {
	return r.ResponseFormat != nil && r.ResponseFormat.Type == "json_schema"
}

// jsonSchemaFields are the members of a json_schema format (chat's
// response_format.json_schema, the Responses text.format).
var jsonSchemaFields = []field[ChatRequest]{
	{name: "name", typ: tString, set: func(r *ChatRequest, v val) { r.ResponseFormat.SchemaName = v.str }},
	{name: "description", typ: tString},
	{name: "schema", typ: tObject, required: true, set: func(r *ChatRequest, v val) { r.ResponseFormat.Schema = rawCopy(v.raw) }},
	{name: "strict", typ: tBool, set: func(r *ChatRequest, v val) { r.ResponseFormat.Strict = v.b }},
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

// toolDecoding is the target of the tool tables: the tool being read and
// the names of those before it (tool names are unique).
type toolDecoding struct {
	tool *Tool
	i    int
	seen map[string]int
}

// toolFields is the table of one item of chat's tools.
var toolFields = []field[toolDecoding]{
	{name: "type", typ: tString, required: true, valid: enum{values: []string{"function"}}.valid},
	{name: "function", typ: tObject, required: true, sub: functionFields},
}

// functionFields are a function tool's members (chat's tools[i].function,
// the Responses tools[i]).
var functionFields = []field[toolDecoding]{
	{name: "name", typ: tString, required: true, check: func(d *toolDecoding, v val, at loc) *APIError {
		if !validToolName(v.str) {
			return badRequest(CodeInvalidValue, at.String(), "%s must match ^[A-Za-z0-9_-]{1,64}$, got %s", at, quotedStr(v.str))
		}
		if j, dup := d.seen[v.str]; dup {
			return badRequest(CodeInvalidValue, at.String(), "duplicate tool name %s (also tools[%d])", quotedStr(v.str), j)
		}
		d.seen[v.str] = d.i
		return nil
	}, set: func(d *toolDecoding, v val) { d.tool.Name = v.str }},
	{name: "description", typ: tString, set: func(d *toolDecoding, v val) { d.tool.Description = v.str }},
	{name: "parameters", typ: tObject, want: "a JSON Schema object", set: func(d *toolDecoding, v val) { d.tool.Parameters = rawCopy(v.raw) }},
	{name: "strict", typ: tBool, set: func(d *toolDecoding, v val) { d.tool.Strict = v.b }},
}

var toolsField = field[ChatRequest]{name: "tools", typ: tArray, check: func(req *ChatRequest, v val, _ loc) *APIError {
	if len(v.arr) == 0 {
		return nil
	}
	tools, aerr := decodeToolItems(v.arr, toolFields)
	req.Tools = tools
	return aerr
}}

// decodeToolItems applies table to each item of tools, at tools[i].
func decodeToolItems(items []json.RawMessage, table []field[toolDecoding]) ([]Tool, *APIError) {
	tools := make([]Tool, len(items))
	d := toolDecoding{seen: make(map[string]int, len(items))}
	for i, item := range items {
		p := fmt.Sprintf("tools[%d]", i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return nil, aerr
		}
		d.tool, d.i = &tools[i], i
		if aerr := apply(o, p, table, &d); aerr != nil {
			return nil, aerr
		}
		tools[i].Raw = rawCopy(item)
	}
	return tools, nil
}

// toolChoiceField is tool_choice: "none", "auto", "required" or a named
// function of tools. It comes after tools.
var toolChoiceField = field[ChatRequest]{name: "tool_choice", check: func(req *ChatRequest, v val, _ loc) *APIError {
	raw := v.raw
	switch kindOf(raw) {
	case kindString:
		s, _ := stringValue(raw)
		return setToolChoice(req, s)
	case kindObject:
	default:
		return errType("tool_choice", "a string or an object", raw)
	}
	o, _ := objectValue(raw)
	var name string
	if aerr := apply(o, "tool_choice", toolChoiceObjectFields, &name); aerr != nil {
		return aerr
	}
	return setToolChoiceFunction(req, name, "tool_choice.function.name")
}}

var toolChoiceObjectFields = []field[string]{
	{name: "type", typ: tString, required: true, valid: enum{values: []string{"function"}}.valid},
	{name: "function", typ: tObject, required: true, sub: []field[string]{
		{name: "name", typ: tString, required: true, set: func(s *string, v val) { *s = v.str }},
	}},
}

// defaultToolChoice is "auto" with tools and "none" without.
func defaultToolChoice(req *ChatRequest) {
	req.ToolChoice = ToolChoice{Mode: "none"}
	if len(req.Tools) > 0 {
		req.ToolChoice.Mode = "auto"
	}
}

// setToolChoice sets a tool_choice given as a string.
func setToolChoice(req *ChatRequest, s string) *APIError {
	defaultToolChoice(req)
	switch s {
	case "none":
		req.ToolChoice.Mode = "none"
	case "auto":
		// default already: auto with tools, none without
	case "required":
		if len(req.Tools) == 0 {
			return badRequest(CodeInvalidValue, "tool_choice", "tool_choice \"required\" needs at least one tool in tools")
		}
		req.ToolChoice.Mode = "required"
	default:
		return badRequest(CodeInvalidValue, "tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or a function object, got %s", quotedStr(s))
	}
	return nil
}

// setToolChoiceFunction forces the function name, which tools must
// declare; param is where the name sits.
func setToolChoiceFunction(req *ChatRequest, name, param string) *APIError {
	for _, t := range req.Tools {
		if t.Name == name {
			req.ToolChoice = ToolChoice{Mode: "function", Name: name}
			return nil
		}
	}
	return badRequest(CodeInvalidValue, param, "tool_choice names function %s, which is not declared in tools", quotedStr(name))
}
