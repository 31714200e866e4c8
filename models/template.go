// Package models holds model-level knowledge that does not depend on an
// inference backend: chat-prompt rendering from a model's own chat template,
// reasoning ("thought") tag handling, and the like.
package models

// Chat templates are rendered with github.com/ardanlabs/jinja v1.8.0 (pure
// Go, no dependencies, made for LLM chat templates). It already has what
// Hugging Face's environment adds to Jinja2 (raise_exception, strftime_now,
// loop controls, {% generation %}), namespace(), and the Python string and
// dict methods, filters and tests real templates call. Where it differs
// from Python Jinja2 in ways real templates hit, this package patches it;
// the template is then rendered as transformers' apply_chat_template
// renders it (checked byte for byte against Python Jinja2 by
// TestTemplateRefs):
//
//   - Whitespace control: the library's trim_blocks/lstrip_blocks/"-"
//     handling looks past adjacent tags and strips text Jinja2 keeps (GLM's
//     `Reasoning Effort: {{ x }}{%- endif -%}` loses its space). The source
//     is prepared at parse time so that Jinja2's own lexer rules decide all
//     whitespace (template_source.go, prepareSource), including newline
//     normalization and the dropped trailing newline.
//   - tojson: the library sorts object keys and HTML-escapes when indent=
//     is given, and writes 1.0 as 1. Every `EXPR | tojson(...)` filter
//     application is rewritten at parse time into a call of our own
//     Python-exact json.dumps (transformers' tojson: ensure_ascii=False,
//     insertion order; indent, separators, sort_keys, ensure_ascii
//     honoured).
//   - `{% for k, v in X if COND %}`: the library evaluates COND with only
//     the last loop variable bound (to the whole item), so a filter on the
//     key (Mistral v0.3: `for key, val in tool.items() if key != "return"`)
//     never filters. COND is rewritten to index the item: k becomes v[0]
//     and v becomes v[1].
//   - strftime_now: the library reads the wall clock and knows few
//     directives; ours follows Python's strftime (glibc, naive local time)
//     and reads TemplateOptions.Now so tests can fix the date.
//   - raise_exception: ours returns a *RaiseError carrying exactly the
//     template's message.
//   - A library panic (e.g. selectattr with one argument) becomes an error.
//
// Known differences that remain; none is hit by the Llama 3.1/3.2, Qwen2.5,
// Qwen3, Mistral v0.3 or Gemma 2/3 templates with the messages this server
// builds: None prints as "" rather than "None", and operations Python
// rejects on None ('a' + none, 'x' in none) do not fail, so a template
// that would raise a TypeError on a content-less assistant message renders
// instead; str.split(sep, maxsplit) ignores maxsplit; str.capitalize()
// title-cases (the capitalize filter is right); str.startswith(tuple) is
// false; selectattr/rejectattr need a test name; sort(attribute=) ignores
// the attribute; floats print with %g (tojson is exact); `-x|f` applies
// the filter before the minus; string literals know only the escapes \n
// \t \\ \' \"; tags end at the first closer outside strings, even
// inside braces; only bos_token and eos_token of the special tokens are
// passed.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// Message is one chat message as the chat template sees it.
type Message struct {
	// Role is system, user, assistant or tool (the server maps "developer"
	// to "system" before rendering).
	Role string
	// Content is the message text.
	Content string
	// HasContent is false when the content is null or absent (an assistant
	// message that only carries tool calls); the template then sees None.
	HasContent bool
	// Name is the optional participant or tool name.
	Name string
	// ToolCallID links a tool result to the assistant tool call it answers.
	ToolCallID string
	// ToolCalls are the tool calls an assistant message made, in history.
	ToolCalls []ToolCall
	// ReasoningContent is the assistant's reasoning, for templates that read
	// message.reasoning_content (Qwen3 and others). Empty means absent.
	ReasoningContent string
}

// ToolCall is one tool call made by an assistant message.
type ToolCall struct {
	// ID is the call's id (templates such as Mistral's check its shape).
	ID string
	// Name is the called function's name.
	Name string
	// Arguments is the JSON text of the arguments, as in the OpenAI API.
	Arguments string
}

// TemplateOptions are the fixed inputs of a chat template.
type TemplateOptions struct {
	// BOSToken is passed to the template as bos_token.
	BOSToken string
	// EOSToken is passed to the template as eos_token.
	EOSToken string
	// Now is the clock behind strftime_now; nil means time.Now. Tests fix
	// it to make date-printing templates (Llama 3.x) reproducible.
	Now func() time.Time
}

// RenderInput is one rendering of a chat template.
type RenderInput struct {
	// Messages is the conversation, in order.
	Messages []Message
	// Tools are OpenAI tool objects ({"type":"function","function":{...}}),
	// passed to the template as parsed objects with their key order kept.
	// Empty means no tools: the template sees tools = None.
	Tools []json.RawMessage
	// AddGenerationPrompt asks the template to open an assistant turn.
	AddGenerationPrompt bool
	// Extra are further template variables (e.g. enable_thinking). Values
	// of type json.RawMessage are decoded keeping key order; Go booleans,
	// numbers, strings, nil, slices and maps are converted (maps get sorted
	// keys); other types make Render fail. Extra cannot replace messages,
	// tools, documents, add_generation_prompt or the functions, but may
	// replace bos_token and eos_token.
	Extra map[string]any
}

// Template is a parsed chat template. It is safe for concurrent Render calls.
type Template struct {
	tmpl *jinja.Template
	opts TemplateOptions
}

// RaiseError is the error a template raises with raise_exception(message).
// Error returns the template's message unchanged, so the server can answer
// it to the client as a 400.
type RaiseError struct {
	// Message is the argument the template passed to raise_exception.
	Message string
}

// Error returns the template's message.
func (e *RaiseError) Error() string { return e.Message }

// The name of our tojson function in rewritten templates. It cannot clash
// with a template's variables in practice.
const tojsonFunc = "__asi1d_tojson"

// ParseTemplate parses a Jinja chat template (the chat_template of a
// model's tokenizer_config.json, or the one in its GGUF metadata). A
// template that does not parse is an error.
func ParseTemplate(src string, opts TemplateOptions) (*Template, error) {
	t, err := jinja.Compile(prepareSource(src))
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Template{tmpl: t, opts: opts}, nil
}

// Render renders the conversation into a prompt string with Hugging Face
// apply_chat_template semantics. A raise_exception in the template is
// returned as a *RaiseError; other failures are wrapped errors.
func (t *Template) Render(in RenderInput) (out string, err error) {
	data := make(map[string]jinja.Value, 10+len(in.Extra))
	data["bos_token"] = jinja.NewString(t.opts.BOSToken)
	data["eos_token"] = jinja.NewString(t.opts.EOSToken)
	for k, v := range in.Extra {
		val, err := extraValue(v)
		if err != nil {
			return "", fmt.Errorf("chat template variable %q: %w", k, err)
		}
		data[k] = val
	}
	msgs := make([]jinja.Value, len(in.Messages))
	for i := range in.Messages {
		msgs[i] = messageValue(&in.Messages[i])
	}
	data["messages"] = jinja.NewList(msgs)
	data["tools"] = jinja.None()
	if len(in.Tools) > 0 {
		tools := make([]jinja.Value, len(in.Tools))
		for i, raw := range in.Tools {
			v, err := decodeJSON(raw)
			if err != nil {
				return "", fmt.Errorf("chat template: tool %d: %w", i, err)
			}
			tools[i] = v
		}
		data["tools"] = jinja.NewList(tools)
	}
	data["documents"] = jinja.None()
	data["add_generation_prompt"] = jinja.NewBool(in.AddGenerationPrompt)
	data["raise_exception"] = raiseExceptionFn
	data["strftime_now"] = jinja.NewCallable("strftime_now", t.strftimeNow)
	data[tojsonFunc] = tojsonFn

	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat template: render failed: %v", r)
		}
	}()
	out, err = t.tmpl.RenderValues(data)
	if err != nil {
		var re *RaiseError
		if errors.As(err, &re) {
			return "", re
		}
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

// RenderPlain is the prompt for a model without a chat template: the text
// the model saw and wrote, in order, with no role names and no trailing
// newline. A reply is asked for where the text ends, so an assistant
// message continues the text before it, exactly as the model wrote it
// there; every other message starts a new line. Rendering a conversation
// again therefore begins with the previous turn's prompt and reply, which
// the server still holds in its KV cache (joining the reply with "\n", as
// if on a line of its own, would make every turn prefill the previous reply
// again). BOS is not added (the tokenizer adds it), so a single user
// message passes through unchanged.
func RenderPlain(msgs []Message) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 && m.Role != "assistant" {
			b.WriteByte('\n')
		}
		b.WriteString(m.Content)
	}
	return b.String()
}

// messageValue converts a message to the dict HF templates expect. Keys are
// present only when they carry something, because templates test presence
// ('tool_calls' in message, message.reasoning_content is string).
// content is always present (None when HasContent is false).
func messageValue(m *Message) jinja.Value {
	v := jinja.NewDict()
	d := v.AsDict()
	d.Set("role", jinja.NewString(m.Role))
	if m.HasContent {
		d.Set("content", jinja.NewString(m.Content))
	} else {
		d.Set("content", jinja.None())
	}
	if m.Name != "" {
		d.Set("name", jinja.NewString(m.Name))
	}
	if m.ToolCallID != "" {
		d.Set("tool_call_id", jinja.NewString(m.ToolCallID))
	}
	if len(m.ToolCalls) > 0 {
		calls := make([]jinja.Value, len(m.ToolCalls))
		for i := range m.ToolCalls {
			calls[i] = toolCallValue(&m.ToolCalls[i])
		}
		d.Set("tool_calls", jinja.NewList(calls))
	}
	if m.ReasoningContent != "" {
		d.Set("reasoning_content", jinja.NewString(m.ReasoningContent))
	}
	return v
}

// toolCallValue converts a tool call to
// {"id", "type": "function", "function": {"name", "arguments"}}. As vLLM
// does, arguments that are a JSON object become a dict (Llama and Mistral
// templates apply tojson to them, Qwen accepts both); empty arguments
// become {}; anything else stays the string it is.
func toolCallValue(c *ToolCall) jinja.Value {
	fn := jinja.NewDict()
	fn.AsDict().Set("name", jinja.NewString(c.Name))
	fn.AsDict().Set("arguments", argumentsValue(c.Arguments))
	v := jinja.NewDict()
	if c.ID != "" {
		v.AsDict().Set("id", jinja.NewString(c.ID))
	}
	v.AsDict().Set("type", jinja.NewString("function"))
	v.AsDict().Set("function", fn)
	return v
}

func argumentsValue(args string) jinja.Value {
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		return jinja.NewDict()
	}
	if trimmed[0] == '{' {
		if v, err := decodeJSON([]byte(trimmed)); err == nil {
			return v
		}
	}
	return jinja.NewString(args)
}

// extraValue converts one RenderInput.Extra value.
func extraValue(v any) (jinja.Value, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return decodeJSON(raw)
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return jinja.NewInt(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return jinja.NewInt(int64(rv.Uint())), nil
	case reflect.Float32, reflect.Float64:
		return jinja.NewFloat(rv.Float()), nil
	case reflect.Bool:
		return jinja.NewBool(rv.Bool()), nil
	case reflect.String:
		return jinja.NewString(rv.String()), nil
	}
	val := jinja.FromGoValue(v)
	if val.IsUndefined() && v != nil {
		return val, fmt.Errorf("unsupported type %T", v)
	}
	return val, nil
}

// decodeJSON decodes JSON text into template values, keeping object key
// order (Python dicts keep insertion order, and tojson shows it). Integers
// that fit int64 stay integers; numbers with a fraction or exponent, and
// larger integers, become floats, as Python's json.loads makes them
// (except that Python keeps big integers exact). A repeated key keeps its
// first position and its last value, as in Python.
func decodeJSON(b []byte) (jinja.Value, error) {
	if !json.Valid(b) {
		// Let encoding/json describe the error.
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return jinja.Value{}, err
		}
		return jinja.Value{}, errors.New("invalid JSON")
	}
	p := jsonParser{b: b}
	return p.value()
}

// jsonParser decodes JSON text already checked by json.Valid.
type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jsonParser) value() (jinja.Value, error) {
	p.skipSpace()
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		obj := jinja.NewDict()
		d := obj.AsDict()
		for {
			p.skipSpace()
			if p.b[p.i] == '}' {
				p.i++
				return obj, nil
			}
			if p.b[p.i] == ',' {
				p.i++
				p.skipSpace()
			}
			key, err := p.str()
			if err != nil {
				return jinja.Value{}, err
			}
			p.skipSpace()
			p.i++ // ':'
			val, err := p.value()
			if err != nil {
				return jinja.Value{}, err
			}
			d.Set(key, val)
		}
	case c == '[':
		p.i++
		items := []jinja.Value{}
		for {
			p.skipSpace()
			if p.b[p.i] == ']' {
				p.i++
				return jinja.NewList(items), nil
			}
			if p.b[p.i] == ',' {
				p.i++
			}
			item, err := p.value()
			if err != nil {
				return jinja.Value{}, err
			}
			items = append(items, item)
		}
	case c == '"':
		s, err := p.str()
		return jinja.NewString(s), err
	case c == 't':
		p.i += 4
		return jinja.NewBool(true), nil
	case c == 'f':
		p.i += 5
		return jinja.NewBool(false), nil
	case c == 'n':
		p.i += 4
		return jinja.None(), nil
	default:
		start := p.i
		isInt := true
		for p.i < len(p.b) && strings.IndexByte("+-0123456789.eE", p.b[p.i]) >= 0 {
			if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
				isInt = false
			}
			p.i++
		}
		num := string(p.b[start:p.i])
		if isInt {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil {
				return jinja.NewInt(n), nil
			}
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return jinja.Value{}, err
		}
		return jinja.NewFloat(f), nil
	}
}

// str decodes the string literal at p.i.
func (p *jsonParser) str() (string, error) {
	start := p.i
	p.i++
	escaped := false
	for p.b[p.i] != '"' {
		if p.b[p.i] == '\\' {
			escaped = true
			p.i++
		}
		p.i++
	}
	p.i++
	if !escaped {
		return string(p.b[start+1 : p.i-1]), nil
	}
	var s string
	err := json.Unmarshal(p.b[start:p.i], &s)
	return s, err
}

// ---------------------------------------------------------------------------
// Template globals.

var raiseExceptionFn = jinja.NewCallable("raise_exception", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	msg := ""
	if len(args) > 0 {
		msg = pyStr(args[0])
	}
	return jinja.Undefined(), &RaiseError{Message: msg}
})

func (t *Template) strftimeNow(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) != 1 || !args[0].IsString() {
		return jinja.Undefined(), errors.New("strftime_now() takes one format string")
	}
	now := time.Now
	if t.opts.Now != nil {
		now = t.opts.Now
	}
	return jinja.NewString(strftime(now(), args[0].AsString())), nil
}

// pyStr is str(v) for the values raise_exception gets (almost always a
// string).
func pyStr(v jinja.Value) string {
	switch {
	case v.IsString():
		return v.AsString()
	case v.IsNone():
		return "None"
	}
	return v.String()
}

var weekdayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

// strftime formats t like Python's datetime.strftime on glibc, for a naive
// datetime (transformers calls datetime.now(), so %z and %Z are empty). The
// glibc "-" flag (%-d) drops padding; unknown directives are kept verbatim.
func strftime(t time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		noPad := false
		if format[i] == '-' && i+1 < len(format) {
			noPad = true
			i++
		}
		num := func(n, width int, pad byte) {
			s := strconv.Itoa(n)
			if !noPad {
				for k := len(s); k < width; k++ {
					b.WriteByte(pad)
				}
			}
			b.WriteString(s)
		}
		hour12 := t.Hour() % 12
		if hour12 == 0 {
			hour12 = 12
		}
		switch format[i] {
		case 'a':
			b.WriteString(weekdayNames[t.Weekday()][:3])
		case 'A':
			b.WriteString(weekdayNames[t.Weekday()])
		case 'w':
			num(int(t.Weekday()), 1, '0')
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			num(wd, 1, '0')
		case 'd':
			num(t.Day(), 2, '0')
		case 'e':
			num(t.Day(), 2, ' ')
		case 'b', 'h':
			b.WriteString(t.Month().String()[:3])
		case 'B':
			b.WriteString(t.Month().String())
		case 'm':
			num(int(t.Month()), 2, '0')
		case 'y':
			num(t.Year()%100, 2, '0')
		case 'Y':
			num(t.Year(), 1, '0')
		case 'C':
			num(t.Year()/100, 2, '0')
		case 'H':
			num(t.Hour(), 2, '0')
		case 'k':
			num(t.Hour(), 2, ' ')
		case 'I':
			num(hour12, 2, '0')
		case 'l':
			num(hour12, 2, ' ')
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'M':
			num(t.Minute(), 2, '0')
		case 'S':
			num(t.Second(), 2, '0')
		case 'f':
			num(t.Nanosecond()/1000, 6, '0')
		case 'j':
			num(t.YearDay(), 3, '0')
		case 'U':
			num((t.YearDay()+6-int(t.Weekday()))/7, 2, '0')
		case 'W':
			num((t.YearDay()+6-(int(t.Weekday())+6)%7)/7, 2, '0')
		case 'V':
			_, w := t.ISOWeek()
			num(w, 2, '0')
		case 'G':
			y, _ := t.ISOWeek()
			num(y, 1, '0')
		case 'g':
			y, _ := t.ISOWeek()
			num(y%100, 2, '0')
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'z', 'Z':
			// naive datetime: empty
		case 'D':
			b.WriteString(strftime(t, "%m/%d/%y"))
		case 'x':
			b.WriteString(strftime(t, "%m/%d/%y"))
		case 'F':
			b.WriteString(strftime(t, "%Y-%m-%d"))
		case 'T', 'X':
			b.WriteString(strftime(t, "%H:%M:%S"))
		case 'R':
			b.WriteString(strftime(t, "%H:%M"))
		case 'r':
			b.WriteString(strftime(t, "%I:%M:%S %p"))
		case 'c':
			b.WriteString(strftime(t, "%a %b %e %H:%M:%S %Y"))
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			if noPad {
				b.WriteByte('-')
			}
			b.WriteByte(format[i])
		}
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// tojson: Python json.dumps, as transformers registers it:
//
//	def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
//	    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

var tojsonFn = jinja.NewCallable(tojsonFunc, func(args []jinja.Value, kwargs map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.Undefined(), errors.New("tojson: missing value")
	}
	o := jsonOpts{itemSep: ", ", keySep: ": "}
	// Positional parameters after the value, in the order of the Python
	// signature.
	names := []string{"ensure_ascii", "indent", "separators", "sort_keys"}
	params := map[string]jinja.Value{}
	for i, a := range args[1:] {
		if i >= len(names) {
			return jinja.Undefined(), errors.New("tojson: too many arguments")
		}
		params[names[i]] = a
	}
	for k, v := range kwargs {
		params[k] = v
	}
	for k, v := range params {
		switch k {
		case "ensure_ascii":
			o.ensureASCII = v.IsTruthy()
		case "sort_keys":
			o.sortKeys = v.IsTruthy()
		case "indent":
			switch {
			case v.IsNone() || v.IsUndefined():
			case v.IsInt() || v.IsBool():
				n := 0
				if v.IsInt() {
					n = int(v.AsInt())
				} else if v.AsBool() {
					n = 1
				}
				o.indent, o.hasIndent = strings.Repeat(" ", max(n, 0)), true
			case v.IsString():
				o.indent, o.hasIndent = v.AsString(), true
			default:
				return jinja.Undefined(), fmt.Errorf("tojson: bad indent %s", v.String())
			}
		case "separators":
		default:
			return jinja.Undefined(), fmt.Errorf("tojson: unexpected keyword argument %q", k)
		}
	}
	if o.hasIndent {
		o.itemSep = ","
	}
	if sep, ok := params["separators"]; ok && !sep.IsNone() && !sep.IsUndefined() {
		if !sep.IsList() || sep.AsList().Len() != 2 || !sep.AsList().Get(0).IsString() || !sep.AsList().Get(1).IsString() {
			return jinja.Undefined(), errors.New("tojson: separators must be two strings")
		}
		o.itemSep, o.keySep = sep.AsList().Get(0).AsString(), sep.AsList().Get(1).AsString()
	}
	var b strings.Builder
	if err := o.encode(&b, args[0], 0); err != nil {
		return jinja.Undefined(), err
	}
	return jinja.NewString(b.String()), nil
})

type jsonOpts struct {
	ensureASCII bool
	sortKeys    bool
	hasIndent   bool
	indent      string
	itemSep     string
	keySep      string
}

func (o *jsonOpts) newline(b *strings.Builder, level int) {
	b.WriteByte('\n')
	for range level {
		b.WriteString(o.indent)
	}
}

func (o *jsonOpts) encode(b *strings.Builder, v jinja.Value, level int) error {
	switch {
	case v.IsNone():
		b.WriteString("null")
	case v.IsBool():
		if v.AsBool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case v.IsInt():
		b.WriteString(strconv.FormatInt(v.AsInt(), 10))
	case v.IsFloat():
		b.WriteString(pyFloatJSON(v.AsFloat()))
	case v.IsString():
		writePyJSONString(b, v.AsString(), o.ensureASCII)
	case v.IsList():
		items := v.AsList().Items
		if len(items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			if o.hasIndent {
				o.newline(b, level+1)
			}
			if err := o.encode(b, it, level+1); err != nil {
				return err
			}
		}
		if o.hasIndent {
			o.newline(b, level)
		}
		b.WriteByte(']')
	case v.IsDict():
		d := v.AsDict()
		if d.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := d.Keys
		if o.sortKeys {
			keys = d.OrderedKeys()
			sortStrings(keys)
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			if o.hasIndent {
				o.newline(b, level+1)
			}
			writePyJSONString(b, k, o.ensureASCII)
			b.WriteString(o.keySep)
			val, _ := d.Get(k)
			if err := o.encode(b, val, level+1); err != nil {
				return err
			}
		}
		if o.hasIndent {
			o.newline(b, level)
		}
		b.WriteByte('}')
	case v.IsUndefined():
		return errors.New("Object of type Undefined is not JSON serializable")
	default:
		return fmt.Errorf("Object of type %s is not JSON serializable", v.String())
	}
	return nil
}

// sortStrings sorts like Python's sorted() on str: by code point, which for
// valid UTF-8 is byte order.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

const hexDigits = "0123456789abcdef"

// writePyJSONString writes s as Python's json.dumps does: ", \, \n, \r,
// \t, \b, \f get short escapes, other control characters \u00XX; with
// ensureASCII every non-ASCII character is \uXXXX (surrogate pairs above
// the BMP), otherwise it is written as is. Invalid UTF-8 bytes are written
// as U+FFFD.
func writePyJSONString(b *strings.Builder, s string, ensureASCII bool) {
	b.WriteByte('"')
	u4 := func(r rune) {
		b.WriteString(`\u`)
		b.WriteByte(hexDigits[r>>12&0xf])
		b.WriteByte(hexDigits[r>>8&0xf])
		b.WriteByte(hexDigits[r>>4&0xf])
		b.WriteByte(hexDigits[r&0xf])
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
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
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				if c < 0x20 {
					u4(rune(c))
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if !ensureASCII {
			if r == utf8.RuneError && size == 1 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.WriteString(s[i-size : i])
			}
			continue
		}
		if r >= 0x10000 {
			r -= 0x10000
			u4(0xd800 + (r>>10)&0x3ff)
			u4(0xdc00 + r&0x3ff)
		} else {
			u4(r)
		}
	}
	b.WriteByte('"')
}

// pyFloatJSON formats f as Python's float.__repr__ (what json.dumps uses):
// the shortest round-tripping digits, positional notation with at least
// one fractional digit when the decimal exponent is in [-4, 16), else
// d.ddde±XX.
func pyFloatJSON(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // e.g. -1.2345e+06
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // position of the decimal point relative to digits
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	x := strconv.Itoa(exp)
	if len(x) < 2 {
		x = "0" + x
	}
	return sign + m + "e" + es + x
}
