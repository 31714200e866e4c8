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
// passed. docs/TEMPLATES.md weighs these patches against newer library
// releases and other Go Jinja libraries.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

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
// first position and its last value, as in Python. Invalid UTF-8 in a
// string becomes U+FFFD, as everywhere encoding/json decodes.
func decodeJSON(b []byte) (jinja.Value, error) {
	// json.Valid first: it bounds the nesting depth, which the Decoder's
	// Token does not, and an invalid text gets encoding/json's description.
	if !json.Valid(b) {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return jinja.Value{}, err
		}
		return jinja.Value{}, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return decodeJSONValue(dec)
}

// decodeJSONValue decodes the next value of dec, a text known to be valid.
func decodeJSONValue(dec *json.Decoder) (jinja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return jinja.Value{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			obj := jinja.NewDict()
			d := obj.AsDict()
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return jinja.Value{}, err
				}
				val, err := decodeJSONValue(dec)
				if err != nil {
					return jinja.Value{}, err
				}
				d.Set(key.(string), val)
			}
			_, err := dec.Token() // '}'
			return obj, err
		}
		items := []jinja.Value{}
		for dec.More() {
			item, err := decodeJSONValue(dec)
			if err != nil {
				return jinja.Value{}, err
			}
			items = append(items, item)
		}
		_, err := dec.Token() // ']'
		return jinja.NewList(items), err
	case string:
		return jinja.NewString(t), nil
	case bool:
		return jinja.NewBool(t), nil
	case json.Number:
		if n, err := t.Int64(); err == nil { // no fraction, no exponent, fits int64
			return jinja.NewInt(n), nil
		}
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return jinja.Value{}, err
		}
		return jinja.NewFloat(f), nil
	}
	return jinja.None(), nil // null
}

// ---------------------------------------------------------------------------
// Template globals.

// ---------------------------------------------------------------------------
// tojson: Python json.dumps, as transformers registers it:
//
//	def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
//	    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
