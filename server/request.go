package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Decoding notes (choices where shared/ASI1-API.md is silent):
//
//   - The body is decoded with encoding/json into map[string]json.RawMessage
//     and each field is then checked by hand, so numbers are never rounded
//     through float64 before their integer checks, field names are matched
//     case-sensitively ("Temperature" is an unknown field and is ignored), and
//     a duplicated key keeps its last value (encoding/json semantics).
//   - Invalid UTF-8 inside JSON strings is not rejected: encoding/json
//     replaces each bad byte (and each lone surrogate escape) with U+FFFD.
//   - Nesting deeper than maxJSONDepth levels is answered invalid_json
//     before the stdlib parser (limit 10000) runs.
//   - Integer fields: a non-number or a number with a fractional part
//     ("1.5", "1e-3") is invalid_type; an integer-valued number written with
//     a fraction or exponent ("2.0", "1e3") is accepted; an integer outside
//     int64 ("1e400", "9223372036854775808") is invalid_value, as are 0 and
//     negative max_tokens.
//   - n: any integer other than 1 (0, 2, huge) is unsupported_value.
//   - stream_options is type-checked even when stream is false, but
//     IncludeUsage is only set when Stream is true.
//   - tool_choice "required" or a named function without any tools is
//     invalid_value; "auto" without tools is normalised to "none", so Mode is
//     always "none" when Tools is empty.
//   - Duplicate tool names are invalid_value (tool_choice and parsed tool
//     calls refer to tools by name).
//   - An empty content array is accepted as empty content; content part types
//     image_url, input_audio, file and refusal are unsupported_value, any
//     other part type is invalid_value.
//   - logit_bias keys must be canonical decimal token ids (no sign, no
//     leading zeros) up to 2^31-1; whether the id exists in the vocabulary
//     is for the caller. Errors name param "logit_bias" and the key in the
//     message.
//   - Model existence, context length, logprobs support and grammar support
//     for response_format are the caller's checks.

// maxJSONDepth caps the nesting of arrays and objects in a request body.
const maxJSONDepth = 128

// ChatRequest is a validated POST /v1/chat/completions body (contract section 3).
type ChatRequest struct {
	// Model is the requested model ID or alias, non-empty; existence is not checked here.
	Model string
	// Messages holds at least one message.
	Messages []ChatMessage
	// Temperature is in [0, 2]; 1.0 when absent or null.
	Temperature float64
	// TopP is in [0, 1]; 1.0 when absent or null.
	TopP float64
	// HasTemperature and HasTopP report whether the request set them; when
	// not, the model's configured defaults apply.
	HasTemperature, HasTopP bool
	// Stream asks for server-sent events.
	Stream bool
	// IncludeUsage is stream_options.include_usage, and only true when Stream is.
	IncludeUsage bool
	// MaxTokens is >= 1, or 0 when absent; max_completion_tokens wins over max_tokens.
	MaxTokens int64
	// Stop holds at most 4 non-empty stop strings; nil when absent.
	Stop []string
	// Seed is nil when absent.
	Seed *int64
	// PresencePenalty is in [-2, 2]; 0 when absent.
	PresencePenalty float64
	// FrequencyPenalty is in [-2, 2]; 0 when absent.
	FrequencyPenalty float64
	// LogitBias maps token ids to biases in [-100, 100]; nil when absent or empty.
	LogitBias map[int32]float64
	// Logprobs asks for token log probabilities.
	Logprobs bool
	// TopLogprobs is in [0, 20]; only meaningful when HasTopLogprobs (which implies Logprobs).
	TopLogprobs int
	// HasTopLogprobs reports whether top_logprobs was given.
	HasTopLogprobs bool
	// ResponseFormat is nil for plain text.
	ResponseFormat *ResponseFormat
	// Tools holds the declared function tools; nil when absent or empty.
	Tools []Tool
	// ToolChoice is "auto" by default with tools and always "none" without.
	ToolChoice ToolChoice
	// ParallelToolCalls defaults to true.
	ParallelToolCalls bool
	// User is the OpenAI end-user identifier; may be logged.
	User string
	// WebSearch is the ASI1 flag; accepted with no effect.
	WebSearch bool
	// AgentAddress is the ASI1 agent address; accepted and logged, no effect.
	AgentAddress string
}

// ChatMessage is one validated item of messages (contract section 3.3).
type ChatMessage struct {
	// Role is system, user, assistant or tool ("developer" is normalised to "system").
	Role string
	// Content is the string content, or the text parts joined with "\n".
	Content string
	// HasContent is false when content was absent or null, which is only
	// allowed on an assistant message that carries tool calls.
	HasContent bool
	// Name is the optional participant name (accepted, otherwise ignored).
	Name string
	// ToolCallID is the tool_call_id of a tool message.
	ToolCallID string
	// ToolCalls are the tool calls of an assistant message.
	ToolCalls []MessageToolCall
	// ReasoningContent is the optional reasoning_content of an assistant message.
	ReasoningContent string
}

// MessageToolCall is one item of an assistant message's tool_calls.
type MessageToolCall struct {
	// ID is the call id ("call_...").
	ID string
	// Name is the called function's name.
	Name string
	// Arguments is the JSON text of the arguments, as sent. A JSON object sent
	// instead of a string is accepted and kept as its JSON text.
	Arguments string
}

// Tool is one validated item of tools (a function tool).
type Tool struct {
	// Name matches ^[A-Za-z0-9_-]{1,64}$ and is unique among the tools.
	Name string
	// Description is the optional function description.
	Description string
	// Parameters is the JSON Schema object of the arguments; nil when absent.
	Parameters json.RawMessage
	// Strict is function.strict.
	Strict bool
	// Raw is the whole tool object as sent (for chat templates).
	Raw json.RawMessage
}

// ResponseFormat is a non-text response_format.
type ResponseFormat struct {
	// Type is json_object or json_schema (text is represented by a nil *ResponseFormat).
	Type string
	// SchemaName is json_schema.name, may be empty.
	SchemaName string
	// Schema is the json_schema.schema object; nil for json_object.
	Schema json.RawMessage
	// Strict is json_schema.strict.
	Strict bool
}

// ToolChoice is the validated tool_choice.
type ToolChoice struct {
	// Mode is "none", "auto", "required" or "function".
	Mode string
	// Name is the forced function's name when Mode is "function".
	Name string
}

// Message roles accepted in ChatMessage.Role after normalisation.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// jsonObject is a decoded JSON object whose members are still raw.
type jsonObject map[string]json.RawMessage

// DecodeChatRequest parses and validates a chat completions body per
// contract sections 3.1-3.4. Every violation is a 400 *APIError whose Param
// is the JSON path of the offending field (empty, sent as null, for a body
// that is not a JSON object). Model existence and context length are not
// checked here.
func DecodeChatRequest(body []byte) (*ChatRequest, *APIError) {
	top, aerr := decodeBody(body)
	if aerr != nil {
		return nil, aerr
	}
	req := &ChatRequest{Temperature: 1, TopP: 1, ParallelToolCalls: true}
	steps := []func(jsonObject, *ChatRequest) *APIError{
		decodeModel,
		decodeMessages,
		decodeSampling,
		decodeStreamFields,
		decodeMaxTokens,
		decodeStop,
		decodeN,
		decodeLogitBias,
		decodeLogprobs,
		decodeResponseFormat,
		decodeTools,
		decodeToolChoice,
		decodeASI1AndMisc,
	}
	for _, step := range steps {
		if aerr := step(top, req); aerr != nil {
			return nil, aerr
		}
	}
	return req, nil
}

// decodeBody checks that body is one JSON object no deeper than maxJSONDepth
// and returns its members.
func decodeBody(body []byte) (jsonObject, *APIError) {
	trimmed := trimJSONSpace(body)
	if len(trimmed) == 0 {
		return nil, badRequest(CodeInvalidJSON, "", "request body is empty; expected a JSON object")
	}
	if jsonTooDeep(trimmed, maxJSONDepth) {
		return nil, badRequest(CodeInvalidJSON, "", "request body nests JSON deeper than %d levels", maxJSONDepth)
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return nil, badRequest(CodeInvalidJSON, "", "request body must be a JSON object, got %s", kindName(kindOf(trimmed)))
		}
		return nil, invalidJSON(json.Unmarshal(trimmed, new(json.RawMessage)))
	}
	var top jsonObject
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, invalidJSON(err)
	}
	return top, nil
}

// invalidJSON describes a syntax error of the whole body.
func invalidJSON(err error) *APIError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest(CodeInvalidJSON, "", "request body is not valid JSON: %s (at byte offset %d)", se.Error(), se.Offset)
	}
	if err == nil {
		err = errors.New("unexpected input")
	}
	return badRequest(CodeInvalidJSON, "", "request body is not valid JSON: %s", err.Error())
}

// trimJSONSpace removes JSON insignificant whitespace (RFC 8259: space, tab,
// LF, CR) from both ends; other Unicode spaces are not JSON whitespace.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// jsonTooDeep reports whether b nests arrays/objects deeper than limit. It
// only tracks strings and brackets, so on invalid JSON its answer is a guess;
// either way the body is then rejected as invalid_json.
func jsonTooDeep(b []byte, limit int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// jsonKind is the JSON type of a raw value.
type jsonKind int

const (
	kindInvalid jsonKind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// kindOf classifies a raw JSON value (already known to be valid) by its first byte.
func kindOf(raw []byte) jsonKind {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return kindInvalid
	}
	switch c := raw[0]; {
	case c == 'n':
		return kindNull
	case c == 't' || c == 'f':
		return kindBool
	case c == '"':
		return kindString
	case c == '[':
		return kindArray
	case c == '{':
		return kindObject
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber
	}
	return kindInvalid
}

// kindName names a JSON type for messages.
func kindName(k jsonKind) string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	case kindObject:
		return "object"
	}
	return "invalid JSON"
}

// present returns the member key of o when it is present and not null.
func (o jsonObject) present(key string) (json.RawMessage, bool) {
	raw, ok := o[key]
	if !ok || kindOf(raw) == kindNull {
		return nil, false
	}
	return raw, true
}

// shownRaw renders a raw value for an error message, truncated.
func shownRaw(raw []byte) string {
	const maxLen = 40
	s := string(trimJSONSpace(raw))
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// quotedStr renders a string value for an error message, truncated.
func quotedStr(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}

func errType(path, want string, raw []byte) *APIError {
	return badRequest(CodeInvalidType, path, "%s must be %s, got %s", path, want, kindName(kindOf(raw)))
}

func errMissing(path string) *APIError {
	return badRequest(CodeMissingRequired, path, "%s is required", path)
}

// asString decodes a JSON string.
func asString(raw []byte, path string) (string, *APIError) {
	if kindOf(raw) != kindString {
		return "", errType(path, "a string", raw)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errType(path, "a string", raw)
	}
	return s, nil
}

// asBool decodes a JSON boolean.
func asBool(raw []byte, path string) (bool, *APIError) {
	switch string(trimJSONSpace(raw)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errType(path, "a boolean", raw)
}

// asObject decodes a JSON object into raw members.
func asObject(raw []byte, path string) (jsonObject, *APIError) {
	if kindOf(raw) != kindObject {
		return nil, errType(path, "an object", raw)
	}
	var o jsonObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, errType(path, "an object", raw)
	}
	return o, nil
}

// asArray decodes a JSON array into raw items.
func asArray(raw []byte, path string) ([]json.RawMessage, *APIError) {
	if kindOf(raw) != kindArray {
		return nil, errType(path, "an array", raw)
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, errType(path, "an array", raw)
	}
	return a, nil
}

// asRange decodes a JSON number and checks lo <= x <= hi. Numbers too large
// for float64 become ±Inf and fail the range check (invalid_value).
func asRange(raw []byte, path string, lo, hi float64) (float64, *APIError) {
	if kindOf(raw) != kindNumber {
		return 0, errType(path, "a number", raw)
	}
	x, err := strconv.ParseFloat(string(trimJSONSpace(raw)), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errType(path, "a number", raw)
	}
	if math.IsNaN(x) || x < lo || x > hi {
		return 0, badRequest(CodeInvalidValue, path, "%s must be between %s and %s, got %s", path, fmtNum(lo), fmtNum(hi), shownRaw(raw))
	}
	return x, nil
}

func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// intResult classifies a JSON number as an integer.
type intResult int

const (
	intOK intResult = iota
	intFractional
	intOverflow
)

// parseJSONInt converts a valid JSON number literal to an int64 exactly,
// without float rounding and without big allocations for huge exponents.
func parseJSONInt(s string) (int64, intResult) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	intPart, rest := s, ""
	if i := strings.IndexAny(s, ".eE"); i >= 0 {
		intPart, rest = s[:i], s[i:]
	}
	frac := ""
	if strings.HasPrefix(rest, ".") {
		rest = rest[1:]
		j := strings.IndexAny(rest, "eE")
		if j < 0 {
			j = len(rest)
		}
		frac, rest = rest[:j], rest[j:]
	}
	expNeg, expDigits := false, ""
	if rest != "" { // "e..." or "E..."
		rest = rest[1:]
		if strings.HasPrefix(rest, "-") {
			expNeg, rest = true, rest[1:]
		} else if strings.HasPrefix(rest, "+") {
			rest = rest[1:]
		}
		expDigits = strings.TrimLeft(rest, "0")
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	sig := strings.TrimRight(digits, "0")
	if sig == "" {
		return 0, intOK
	}
	// value = sig * 10^e10, e10 = exp - len(frac) + trailing zeros.
	if len(expDigits) > 9 {
		if expNeg {
			return 0, intFractional
		}
		return 0, intOverflow
	}
	exp := 0
	if expDigits != "" {
		exp, _ = strconv.Atoi(expDigits)
	}
	if expNeg {
		exp = -exp
	}
	e10 := exp - len(frac) + (len(digits) - len(sig))
	if e10 < 0 {
		return 0, intFractional
	}
	if len(sig)+e10 > 19 {
		return 0, intOverflow
	}
	lit := sig + strings.Repeat("0", e10)
	if neg {
		lit = "-" + lit
	}
	v, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return 0, intOverflow
	}
	return v, intOK
}

// asInt decodes a JSON integer: invalid_type for non-numbers and fractional
// numbers, invalid_value for integers outside int64.
func asInt(raw []byte, path string) (int64, *APIError) {
	if kindOf(raw) != kindNumber {
		return 0, errType(path, "an integer", raw)
	}
	v, res := parseJSONInt(string(trimJSONSpace(raw)))
	switch res {
	case intFractional:
		return 0, badRequest(CodeInvalidType, path, "%s must be an integer, got %s", path, shownRaw(raw))
	case intOverflow:
		return 0, badRequest(CodeInvalidValue, path, "%s is out of range for a 64-bit integer, got %s", path, shownRaw(raw))
	}
	return v, nil
}

func decodeModel(top jsonObject, req *ChatRequest) *APIError {
	raw, ok := top.present("model")
	if !ok {
		return errMissing("model")
	}
	s, aerr := asString(raw, "model")
	if aerr != nil {
		return aerr
	}
	if s == "" {
		return badRequest(CodeInvalidValue, "model", "model must be a non-empty string")
	}
	req.Model = s
	return nil
}

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

func decodeSampling(top jsonObject, req *ChatRequest) *APIError {
	fields := []struct {
		name   string
		lo, hi float64
		dst    *float64
		has    *bool
	}{
		{"temperature", 0, 2, &req.Temperature, &req.HasTemperature},
		{"top_p", 0, 1, &req.TopP, &req.HasTopP},
		{"presence_penalty", -2, 2, &req.PresencePenalty, nil},
		{"frequency_penalty", -2, 2, &req.FrequencyPenalty, nil},
	}
	for _, f := range fields {
		if raw, ok := top.present(f.name); ok {
			x, aerr := asRange(raw, f.name, f.lo, f.hi)
			if aerr != nil {
				return aerr
			}
			*f.dst = x
			if f.has != nil {
				*f.has = true
			}
		}
	}
	if raw, ok := top.present("seed"); ok {
		v, aerr := asInt(raw, "seed")
		if aerr != nil {
			return aerr
		}
		req.Seed = &v
	}
	return nil
}

func decodeStreamFields(top jsonObject, req *ChatRequest) *APIError {
	if raw, ok := top.present("stream"); ok {
		b, aerr := asBool(raw, "stream")
		if aerr != nil {
			return aerr
		}
		req.Stream = b
	}
	if raw, ok := top.present("stream_options"); ok {
		o, aerr := asObject(raw, "stream_options")
		if aerr != nil {
			return aerr
		}
		if r, ok := o.present("include_usage"); ok {
			b, aerr := asBool(r, "stream_options.include_usage")
			if aerr != nil {
				return aerr
			}
			req.IncludeUsage = b && req.Stream
		}
	}
	return nil
}

func decodeMaxTokens(top jsonObject, req *ChatRequest) *APIError {
	for _, name := range []string{"max_tokens", "max_completion_tokens"} {
		raw, ok := top.present(name)
		if !ok {
			continue
		}
		v, aerr := asInt(raw, name)
		if aerr != nil {
			return aerr
		}
		if v < 1 {
			return badRequest(CodeInvalidValue, name, "%s must be at least 1, got %d", name, v)
		}
		req.MaxTokens = v // max_completion_tokens comes second and wins
	}
	return nil
}

func decodeStop(top jsonObject, req *ChatRequest) *APIError {
	raw, ok := top.present("stop")
	if !ok {
		return nil
	}
	switch kindOf(raw) {
	case kindString:
		s, aerr := asString(raw, "stop")
		if aerr != nil {
			return aerr
		}
		if s == "" {
			return badRequest(CodeInvalidValue, "stop", "stop must not be an empty string")
		}
		req.Stop = []string{s}
		return nil
	case kindArray:
	default:
		return errType("stop", "a string or an array of strings", raw)
	}
	items, aerr := asArray(raw, "stop")
	if aerr != nil {
		return aerr
	}
	if len(items) > 4 {
		return badRequest(CodeInvalidValue, "stop", "stop may hold at most 4 strings, got %d", len(items))
	}
	for i, item := range items {
		p := fmt.Sprintf("stop[%d]", i)
		s, aerr := asString(item, p)
		if aerr != nil {
			return aerr
		}
		if s == "" {
			return badRequest(CodeInvalidValue, p, "%s must not be an empty string", p)
		}
		req.Stop = append(req.Stop, s)
	}
	return nil
}

func decodeN(top jsonObject, _ *ChatRequest) *APIError {
	raw, ok := top.present("n")
	if !ok {
		return nil
	}
	if kindOf(raw) != kindNumber {
		return errType("n", "an integer", raw)
	}
	v, res := parseJSONInt(string(trimJSONSpace(raw)))
	if res == intFractional {
		return badRequest(CodeInvalidType, "n", "n must be an integer, got %s", shownRaw(raw))
	}
	if res != intOK || v != 1 {
		return badRequest(CodeUnsupportedValue, "n", "only n=1 is supported, got %s", shownRaw(raw))
	}
	return nil
}

// validTokenID reports whether k is a canonical decimal token id (no sign,
// no leading zeros) that fits in int32.
func validTokenID(k string) (int32, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(k, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(v), true
}

func decodeLogitBias(top jsonObject, req *ChatRequest) *APIError {
	raw, ok := top.present("logit_bias")
	if !ok {
		return nil
	}
	o, aerr := asObject(raw, "logit_bias")
	if aerr != nil {
		return aerr
	}
	if len(o) == 0 {
		return nil
	}
	// Iterate keys in a fixed order so the reported error is deterministic.
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bias := make(map[int32]float64, len(o))
	for _, k := range keys {
		id, ok := validTokenID(k)
		if !ok {
			return badRequest(CodeInvalidValue, "logit_bias", "logit_bias keys must be token ids (decimal integers from 0 to 2147483647), got %s", quotedStr(k))
		}
		v := o[k]
		if kindOf(v) != kindNumber {
			return badRequest(CodeInvalidType, "logit_bias", "logit_bias[%s] must be a number, got %s", quotedStr(k), kindName(kindOf(v)))
		}
		x, err := strconv.ParseFloat(string(trimJSONSpace(v)), 64)
		if (err != nil && !errors.Is(err, strconv.ErrRange)) || x < -100 || x > 100 {
			return badRequest(CodeInvalidValue, "logit_bias", "logit_bias[%s] must be between -100 and 100, got %s", quotedStr(k), shownRaw(v))
		}
		bias[id] = x
	}
	req.LogitBias = bias
	return nil
}

func decodeLogprobs(top jsonObject, req *ChatRequest) *APIError {
	if raw, ok := top.present("logprobs"); ok {
		b, aerr := asBool(raw, "logprobs")
		if aerr != nil {
			return aerr
		}
		req.Logprobs = b
	}
	raw, ok := top.present("top_logprobs")
	if !ok {
		return nil
	}
	v, aerr := asInt(raw, "top_logprobs")
	if aerr != nil {
		return aerr
	}
	if v < 0 || v > 20 {
		return badRequest(CodeInvalidValue, "top_logprobs", "top_logprobs must be between 0 and 20, got %s", shownRaw(raw))
	}
	if !req.Logprobs {
		return badRequest(CodeInvalidValue, "top_logprobs", "top_logprobs requires logprobs to be true")
	}
	req.TopLogprobs, req.HasTopLogprobs = int(v), true
	return nil
}

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

func decodeASI1AndMisc(top jsonObject, req *ChatRequest) *APIError {
	if raw, ok := top.present("parallel_tool_calls"); ok {
		b, aerr := asBool(raw, "parallel_tool_calls")
		if aerr != nil {
			return aerr
		}
		req.ParallelToolCalls = b
	}
	strs := []struct {
		name string
		dst  *string
	}{{"user", &req.User}, {"agent_address", &req.AgentAddress}}
	for _, f := range strs {
		if raw, ok := top.present(f.name); ok {
			s, aerr := asString(raw, f.name)
			if aerr != nil {
				return aerr
			}
			*f.dst = s
		}
	}
	if raw, ok := top.present("web_search"); ok {
		b, aerr := asBool(raw, "web_search")
		if aerr != nil {
			return aerr
		}
		req.WebSearch = b
	}
	return nil
}
