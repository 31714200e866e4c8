package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Decoding notes (choices where shared/ASI1-API.md is silent):
//
//   - The body is decoded with encoding/json into map[string]json.RawMessage
//     and each field is then checked by its row of chatFields (the engine is
//     decode_rules.go), so numbers are never rounded
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
	if aerr := apply(top, "", chatFields, req); aerr != nil {
		return nil, aerr
	}
	if req.ToolChoice.Mode == "" { // tool_choice absent or null
		defaultToolChoice(req)
	}
	return req, nil
}

// chatFields is the chat body's table (contract section 3.2), in the
// order its errors are reported.
var chatFields = slices.Concat(
	[]field[ChatRequest]{modelField, messagesField},
	samplingFields,
	[]field[ChatRequest]{nField, logitBiasField},
	[]field[ChatRequest]{
		{name: "logprobs", typ: tBool, set: func(r *ChatRequest, v val) { r.Logprobs = v.b }},
		{name: "top_logprobs", typ: tInt, valid: within(0, 20), check: func(r *ChatRequest, _ val, at loc) *APIError {
			if !r.Logprobs {
				return badRequest(CodeInvalidValue, at.String(), "top_logprobs requires logprobs to be true")
			}
			return nil
		}, set: func(r *ChatRequest, v val) { r.TopLogprobs, r.HasTopLogprobs = int(v.i), true }},
		responseFormatField,
		toolsField,
		toolChoiceField,
		{name: "parallel_tool_calls", typ: tBool, set: func(r *ChatRequest, v val) { r.ParallelToolCalls = v.b }},
		{name: "user", typ: tString, set: func(r *ChatRequest, v val) { r.User = v.str }},
		{name: "agent_address", typ: tString, set: func(r *ChatRequest, v val) { r.AgentAddress = v.str }},
		{name: "web_search", typ: tBool, set: func(r *ChatRequest, v val) { r.WebSearch = v.b }},
	},
)

// modelField is model, which every endpoint requires.
var modelField = field[ChatRequest]{name: "model", typ: tString, required: true, empty: "must be a non-empty string",
	set: func(r *ChatRequest, v val) { r.Model = v.str }}

// samplingFields are the members chat shares with text completions.
var samplingFields = []field[ChatRequest]{
	{name: "temperature", typ: tNumber, lo: 0, hi: 2, set: func(r *ChatRequest, v val) { r.Temperature, r.HasTemperature = v.num, true }},
	{name: "top_p", typ: tNumber, lo: 0, hi: 1, set: func(r *ChatRequest, v val) { r.TopP, r.HasTopP = v.num, true }},
	{name: "presence_penalty", typ: tNumber, lo: -2, hi: 2, set: func(r *ChatRequest, v val) { r.PresencePenalty = v.num }},
	{name: "frequency_penalty", typ: tNumber, lo: -2, hi: 2, set: func(r *ChatRequest, v val) { r.FrequencyPenalty = v.num }},
	{name: "seed", typ: tInt, set: func(r *ChatRequest, v val) { seed := v.i; r.Seed = &seed }},
	{name: "stream", typ: tBool, set: func(r *ChatRequest, v val) { r.Stream = v.b }},
	{name: "stream_options", typ: tObject, sub: []field[ChatRequest]{
		{name: "include_usage", typ: tBool, set: func(r *ChatRequest, v val) { r.IncludeUsage = v.b && r.Stream }},
	}},
	{name: "max_tokens", typ: tInt, valid: atLeast(1), set: func(r *ChatRequest, v val) { r.MaxTokens = v.i }},
	// max_completion_tokens comes second and wins.
	{name: "max_completion_tokens", typ: tInt, valid: atLeast(1), set: func(r *ChatRequest, v val) { r.MaxTokens = v.i }},
	{name: "stop", check: decodeStop},
}

// decodeStop reads stop: a non-empty string or up to 4 of them.
func decodeStop(req *ChatRequest, v val, _ loc) *APIError {
	raw := v.raw
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

// nField is chat's n: an integer, and only 1 is served.
var nField = field[ChatRequest]{name: "n", check: func(_ *ChatRequest, v val, _ loc) *APIError {
	raw := v.raw
	if kindOf(raw) != kindNumber {
		return errType("n", "an integer", raw)
	}
	n, res := parseJSONInt(string(trimJSONSpace(raw)))
	if res == intFractional {
		return badRequest(CodeInvalidType, "n", "n must be an integer, got %s", shownRaw(raw))
	}
	if res != intOK || n != 1 {
		return badRequest(CodeUnsupportedValue, "n", "only n=1 is supported, got %s", shownRaw(raw))
	}
	return nil
}}

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

// logitBiasField is logit_bias: token ids to biases in [-100, 100]. Its
// errors name param "logit_bias" and the key in the message.
var logitBiasField = field[ChatRequest]{name: "logit_bias", typ: tObject, check: func(req *ChatRequest, v val, _ loc) *APIError {
	o := v.obj
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
		b := o[k]
		if kindOf(b) != kindNumber {
			return badRequest(CodeInvalidType, "logit_bias", "logit_bias[%s] must be a number, got %s", quotedStr(k), kindName(kindOf(b)))
		}
		x, ok := numberValue(b)
		if !ok || x < -100 || x > 100 {
			return badRequest(CodeInvalidValue, "logit_bias", "logit_bias[%s] must be between -100 and 100, got %s", quotedStr(k), shownRaw(b))
		}
		bias[id] = x
	}
	req.LogitBias = bias
	return nil
}}
