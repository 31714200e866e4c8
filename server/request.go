package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
