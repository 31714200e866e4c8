package server

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestEveryRowAnswersItsErrors walks every decoding table and, for each
// row, sends a body that breaks the row in each way the engine checks
// (wrong JSON type, absent when required, out of range, empty) and wants
// exactly the engine's answer naming the row's path. A row whose table
// entry or order is wrong (a missing required flag, a wrong type) fails
// here.
func TestEveryRowAnswersItsErrors(t *testing.T) {
	type endpoint struct {
		name   string
		decode func([]byte) *APIError
		// body is a valid body with ITEM where the table's object sits.
		body string
		item string
	}
	chat := func(b []byte) *APIError { _, e := DecodeChatRequest(b); return e }
	compl := func(b []byte) *APIError { _, e := DecodeCompletionRequest(b); return e }
	emb := func(b []byte) *APIError { _, e := DecodeEmbeddingsRequest(b); return e }
	resp := func(b []byte) *APIError { _, e := decodeResponsesRequest(b); return e }
	type table struct {
		endpoint
		prefix string
		rows   []rowInfo
	}
	tables := []table{
		{endpoint{"chat", chat, `ITEM`, `{"model":"m","messages":[{"role":"user","content":"x"}]}`}, "", rowsOf(chatFields)},
		{endpoint{"chat", chat, `{"model":"m","messages":[ITEM]}`, `{"role":"user","content":"x"}`}, "messages[0]", rowsOf(messageFields)},
		{endpoint{"chat", chat, `{"model":"m","messages":[{"role":"assistant","tool_calls":[ITEM]}]}`, `{"id":"c","function":{"name":"f"}}`}, "messages[0].tool_calls[0]", rowsOf(toolCallFields)},
		{endpoint{"chat", chat, `{"model":"m","messages":[{"role":"user","content":[ITEM]}]}`, `{"type":"text","text":"x"}`}, "messages[0].content[0]", rowsOf(textPartFields)},
		{endpoint{"chat", chat, `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[ITEM]}`, `{"type":"function","function":{"name":"f"}}`}, "tools[0]", rowsOf(toolFields)},
		{endpoint{"chat", chat, `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":ITEM}`, `{"type":"function","function":{"name":"f"}}`}, "tool_choice", rowsOf(toolChoiceObjectFields)},
		{endpoint{"chat", chat, `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":ITEM}}`, `{"schema":{}}`}, "response_format.json_schema", rowsOf(jsonSchemaFields)},
		{endpoint{"completions", compl, `ITEM`, `{"model":"m","prompt":"x"}`}, "", append(rowsOf(completionBaseFields), rowsOf(completionFields)...)},
		{endpoint{"embeddings", emb, `ITEM`, `{"model":"m","input":"x"}`}, "", rowsOf(embeddingsFields)},
		{endpoint{"responses", resp, `ITEM`, `{"model":"m","input":"x"}`}, "", rowsOf(responsesFields)},
		{endpoint{"responses", resp, `{"model":"m","input":[ITEM]}`, `{"type":"message","role":"user","content":"x"}`}, "input[0]", rowsOf(responsesMessageFields)},
		{endpoint{"responses", resp, `{"model":"m","input":[{"role":"user","content":[ITEM]}]}`, `{"type":"input_text","text":"x"}`}, "input[0].content[0]", rowsOf(inputTextPartFields)},
		{endpoint{"responses", resp, `{"model":"m","input":[ITEM]}`, `{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}`}, "input[0]", rowsOf(functionCallFields)},
		{endpoint{"responses", resp, `{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},ITEM]}`, `{"type":"function_call_output","call_id":"c","output":"o"}`}, "input[1]", rowsOf(functionCallOutputFields)},
		{endpoint{"responses", resp, `{"model":"m","input":"x","tools":[ITEM]}`, `{"type":"function","name":"f"}`}, "tools[0]", append(rowsOf(responsesToolTypeFields), rowsOf(functionFields)...)},
		{endpoint{"responses", resp, `{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":ITEM}`, `{"type":"function","name":"f"}`}, "tool_choice", rowsOf(responsesToolChoiceFields)},
		{endpoint{"responses", resp, `{"model":"m","input":"x","text":{"format":ITEM}}`, `{"type":"json_schema","schema":{}}`}, "text.format", rowsOf(jsonSchemaFields)},
	}
	checked := 0
	for _, tb := range tables {
		// The valid body passes.
		if aerr := tb.decode(bodyWith(tb.body, tb.item, nil, nil)); aerr != nil {
			t.Fatalf("%s %s: base body refused: %v", tb.name, tb.prefix, aerr)
		}
		for _, r := range tb.rows {
			param := r.path
			if tb.prefix != "" {
				param = tb.prefix + "." + r.path
			}
			var cases []struct {
				value   any // nil: member removed
				code    string
				message string
			}
			add := func(value any, code, message string) {
				cases = append(cases, struct {
					value   any
					code    string
					message string
				}{value, code, message})
			}
			if r.conditional {
				continue // read only in some shapes: the hand-written tests cover it
			}
			if r.typ != tAny {
				v, kind := wrongTypeValue(r.typ)
				add(v, CodeInvalidType, fmt.Sprintf("%s must be %s, got %s", param, r.want, kind))
			}
			if r.required {
				add(nil, CodeMissingRequired, param+" is required")
			}
			if r.typ == tNumber {
				add(json.RawMessage(fmtNum(r.hi+1)), CodeInvalidValue, fmt.Sprintf("%s must be between %s and %s, got %s", param, fmtNum(r.lo), fmtNum(r.hi), fmtNum(r.hi+1)))
			}
			if r.typ == tInt {
				add(json.RawMessage("1.5"), CodeInvalidType, param+" must be an integer, got 1.5")
				add(json.RawMessage("1e30"), CodeInvalidValue, param+" is out of range for a 64-bit integer, got 1e30")
			}
			if r.empty != "" {
				empty := json.RawMessage(`""`)
				if r.typ == tArray {
					empty = json.RawMessage(`[]`)
				}
				add(empty, CodeInvalidValue, param+" "+r.empty)
			}
			for _, c := range cases {
				body := bodyWith(tb.body, tb.item, r.keys, c.value)
				aerr := tb.decode(body)
				checked++
				if aerr == nil {
					t.Errorf("%s %s=%v: accepted %s", tb.name, param, c.value, body)
					continue
				}
				if aerr.Status != 400 || aerr.Code != c.code || aerr.Param != param || aerr.Message != c.message {
					t.Errorf("%s %s=%v: got %d %s %q %q, want 400 %s %q %q", tb.name, param, c.value, aerr.Status, aerr.Code, aerr.Param, aerr.Message, c.code, param, c.message)
				}
			}
		}
	}
	t.Logf("%d row errors checked", checked)
	if checked < 100 {
		t.Fatalf("only %d row errors checked", checked)
	}
}

// rowInfo is what the test reads of a row.
type rowInfo struct {
	path        string   // dotted, from its table's object
	keys        []string // the members down to it
	typ         jsonType
	want        string
	required    bool
	conditional bool
	lo, hi      float64
	empty       string
}

func rowsOf[T any](table []field[T]) []rowInfo {
	var out []rowInfo
	var walk func(keys []string, table []field[T], conditional bool)
	walk = func(keys []string, table []field[T], conditional bool) {
		for _, f := range table {
			k := append(append([]string(nil), keys...), f.name)
			path := k[0]
			for _, s := range k[1:] {
				path += "." + s
			}
			want := f.want
			if want == "" && f.typ != tAny {
				want = wants[f.typ]
			}
			cond := conditional || f.when != nil || f.requiredIf != nil
			out = append(out, rowInfo{path: path, keys: k, typ: f.typ, want: want, required: f.required,
				conditional: cond, lo: f.lo, hi: f.hi, empty: f.empty})
			walk(k, f.sub, cond)
		}
	}
	walk(nil, table, false)
	return out
}

// wrongTypeValue is a value not of typ, and its JSON type's name.
func wrongTypeValue(typ jsonType) (json.RawMessage, string) {
	switch typ {
	case tString:
		return json.RawMessage(`true`), "boolean"
	case tObject:
		return json.RawMessage(`[]`), "array"
	case tArray:
		return json.RawMessage(`{}`), "object"
	}
	return json.RawMessage(`"x"`), "string"
}

// bodyWith is body with ITEM replaced by item, in which the member at
// keys is set to value (removed when value is nil).
func bodyWith(body, item string, keys []string, value any) []byte {
	var o map[string]any
	if err := json.Unmarshal([]byte(item), &o); err != nil {
		panic(err)
	}
	if len(keys) > 0 {
		m := o
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		if value == nil {
			delete(m, keys[len(keys)-1])
		} else {
			m[keys[len(keys)-1]] = value
		}
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	out := []byte{}
	for i := 0; i < len(body); i++ {
		if i+4 <= len(body) && body[i:i+4] == "ITEM" {
			out = append(out, b...)
			i += 3
			continue
		}
		out = append(out, body[i])
	}
	return out
}
