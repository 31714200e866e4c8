package models

import (
	"encoding/json"
	"strconv"
	"strings"
)

// ToolSpec is a declared function as the tool-call grammar needs it.
type ToolSpec struct {
	Name string
	// Parameters is the JSON Schema of the arguments; nil means any object.
	Parameters json.RawMessage
}

// MaxGrammarCalls bounds how many calls a constrained answer may hold when
// parallel calls are allowed, so that a model cannot loop on calls forever.
const MaxGrammarCalls = 8

// ToolCallGrammar returns what a grammar that forces tool calls in format f
// needs: the JSON Schema of one call (any of tools, name as a constant and
// the arguments as the tool's parameters) and the body of the GBNF root rule
// around it, with VALUE standing for one call (see
// engine.GrammarCompiler.SchemaGrammar). prefix is literal text the answer
// must start with (for example the closing tag of a thought the prompt
// opened); "" for none. ToolFormatNone is treated as Hermes, the format the
// parser then reads. Each tool's parameters must have passed CheckSchema.
func ToolCallGrammar(f ToolFormat, tools []ToolSpec, parallel bool, prefix string) (schema []byte, root string) {
	argsKey := "arguments"
	if f == ToolFormatLlama3 {
		argsKey = "parameters"
	}
	defs := make(map[string]json.RawMessage, len(tools))
	alts := make([]any, 0, len(tools))
	for i, t := range tools {
		var args any = map[string]any{"type": "object"}
		if len(t.Parameters) > 0 {
			// Each tool's schema moves under $defs/tN; its local references
			// are rewritten to stay valid there.
			key := "t" + strconv.Itoa(i)
			defs[key] = rebaseRefs(t.Parameters, "#/$defs/"+key+"/")
			args = map[string]any{"$ref": "#/$defs/" + key}
		}
		alts = append(alts, map[string]any{
			"type": "object",
			"properties": orderedProps{
				{"name", map[string]any{"const": t.Name}},
				{argsKey, args},
			},
			"required":             []string{"name", argsKey},
			"additionalProperties": false,
		})
	}
	var top map[string]any
	if len(alts) == 1 {
		top = alts[0].(map[string]any)
	} else {
		top = map[string]any{"anyOf": alts}
	}
	if len(defs) > 0 {
		top["$defs"] = defs
	}
	schema, _ = json.Marshal(top)

	var body string
	switch f {
	case ToolFormatLlama3:
		body = "VALUE" // Llama 3.x makes one call per answer
	case ToolFormatMistral:
		body = `"[TOOL_CALLS]" "[" VALUE`
		if parallel {
			body += ` ( "," " "? VALUE ){0,` + strconv.Itoa(MaxGrammarCalls-1) + `}`
		}
		body += ` "]"`
	default:
		call := `"<tool_call>\n" VALUE "\n</tool_call>"`
		body = call
		if parallel {
			body += ` ( "\n" ` + call + ` ){0,` + strconv.Itoa(MaxGrammarCalls-1) + `}`
		}
	}
	if prefix != "" {
		body = GBNFLiteral(prefix) + " " + body
	}
	return schema, body
}

// Trigger is the marker that opens the calls of format f when it starts
// the grammar of ToolCallGrammar: "<tool_call>" (Hermes), "[TOOL_CALLS]"
// (Mistral); "" when the calls have none (Llama 3 writes bare JSON).
func (f ToolFormat) Trigger() string {
	switch f {
	case ToolFormatHermes:
		return hermesOpen
	case ToolFormatMistral:
		return mistralCalls
	}
	return ""
}

// Markers returns the texts of the format's markup tokens: the markers that
// open and close calls, which a model's vocabulary may hold as special
// tokens that must reach the parser ("<tool_call>", "</tool_call>" for
// Hermes, "<|python_tag|>" for Llama3, "[TOOL_CALLS]" and "[ARGS]" for
// Mistral). None for ToolFormatNone.
func (f ToolFormat) Markers() []string {
	switch f {
	case ToolFormatHermes:
		return []string{hermesOpen, hermesClose}
	case ToolFormatLlama3:
		return []string{llamaPythonTag}
	case ToolFormatMistral:
		return []string{mistralCalls, mistralArgs}
	}
	return nil
}

// SchemaRoot is the GBNF root body that puts prefix before a schema's value;
// "" (the schema alone) when prefix is empty.
func SchemaRoot(prefix string) string {
	if prefix == "" {
		return ""
	}
	return GBNFLiteral(prefix) + " VALUE"
}

// GBNFLiteral quotes s as a GBNF string literal.
func GBNFLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				b.WriteString(`\x`)
				b.WriteString(strconv.FormatInt(int64(r)+0x100, 16)[1:])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// rebaseRefs rewrites every local "$ref": "#/..." in a schema to start with
// base instead of "#/". The schema must be valid JSON.
func rebaseRefs(schema json.RawMessage, base string) json.RawMessage {
	if !strings.Contains(string(schema), `"$ref"`) {
		return schema // keeps the key order, which the grammar follows
	}
	var v any
	if json.Unmarshal(schema, &v) != nil {
		return schema
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case map[string]any:
			for k, e := range t {
				if k == "$ref" {
					if s, ok := e.(string); ok && strings.HasPrefix(s, "#/") {
						t[k] = base + strings.TrimPrefix(s, "#/")
					}
					continue
				}
				t[k] = walk(e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return x
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return schema
	}
	return out
}

// orderedProps marshals as a JSON object keeping its order, so that the
// grammar writes "name" before the arguments.
type orderedProps []struct {
	k string
	v any
}

func (o orderedProps) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.k)
		v, err := json.Marshal(p.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
