package server

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/asi1d/asi1d/engine"
)

// Decoding of POST /v1/completions (docs/API.md, "Text completions"). The
// fields it shares with chat (model, temperature, top_p, penalties, seed,
// stream, stream_options, max_tokens, stop, logit_bias) are read by the
// chat table's rows, with the same rules and messages; the rest here:
//
//   - prompt: a non-empty string, a non-empty array of non-empty strings,
//     a non-empty array of token ids, or a non-empty array of non-empty
//     arrays of token ids. An array mixing these kinds is invalid_type at
//     the first item of another kind. Whether the ids exist in the
//     vocabulary is the handler's check.
//   - max_tokens defaults to 16, as OpenAI's.
//   - n is 1 to maxCompletionChoices, and the prompts times n at most that
//     too; best_of must be absent, null or equal to n (unsupported_value).
//   - logprobs is null or an integer 0 to 5; echo with logprobs is
//     unsupported_value (the prompt's logprobs are not computed).
//   - suffix is a string; "" is no suffix.

// maxCompletionChoices bounds the choices of one request (prompts times
// n): each is a scheduler request of its own.
const maxCompletionChoices = 64

// defaultCompletionMaxTokens is max_tokens when the request has none.
const defaultCompletionMaxTokens = 16

// CompletionRequest is a validated POST /v1/completions body.
type CompletionRequest struct {
	// Base holds what chat also has: model, sampling, stream, max_tokens,
	// stop, logit_bias, user. Base.Logprobs is Logprobs >= 0.
	Base ChatRequest
	// Prompts holds at least one prompt.
	Prompts []CompletionPrompt
	// Suffix is the fill-in-the-middle suffix; "" for none.
	Suffix string
	// N is the choices per prompt, >= 1.
	N int
	// Echo puts the prompt before the completion.
	Echo bool
	// Logprobs is the alternatives per token (0-5), -1 when absent.
	Logprobs int
}

// CompletionPrompt is one prompt: text, or token ids when IsTokens.
type CompletionPrompt struct {
	Text     string
	Tokens   []engine.Token
	IsTokens bool
}

// DecodeCompletionRequest parses and validates a text completions body.
// Every violation is a 400 *APIError naming the offending field.
func DecodeCompletionRequest(body []byte) (*CompletionRequest, *APIError) {
	top, aerr := decodeBody(body)
	if aerr != nil {
		return nil, aerr
	}
	req := &CompletionRequest{Base: ChatRequest{Temperature: 1, TopP: 1}, N: 1, Logprobs: -1}
	if aerr := apply(top, "", completionBaseFields, &req.Base); aerr != nil {
		return nil, aerr
	}
	if aerr := apply(top, "", completionFields, req); aerr != nil {
		return nil, aerr
	}
	if req.Base.MaxTokens == 0 {
		req.Base.MaxTokens = defaultCompletionMaxTokens
	}
	return req, nil
}

// completionBaseFields are the members text completions share with chat,
// with chat's rules; they are checked before completionFields.
var completionBaseFields = slices.Concat([]field[ChatRequest]{modelField}, samplingFields, []field[ChatRequest]{logitBiasField})

// completionFields is the rest of the text completions table.
var completionFields = []field[CompletionRequest]{
	{name: "prompt", required: true, check: decodePrompt},
	{name: "suffix", typ: tString, set: func(r *CompletionRequest, v val) { r.Suffix = v.str }},
	{name: "user", typ: tString, set: func(r *CompletionRequest, v val) { r.Base.User = v.str }},
	// n is per prompt; the prompts times n are at most maxCompletionChoices
	// (without n, decodePrompt's bound on the prompts keeps to it).
	{name: "n", typ: tInt, valid: atLeast(1), check: func(r *CompletionRequest, v val, _ loc) *APIError {
		if v.i > maxCompletionChoices {
			return badRequest(CodeUnsupportedValue, "n", "n may be at most %d, got %d", maxCompletionChoices, v.i)
		}
		r.N = int(v.i)
		if total := len(r.Prompts) * r.N; total > maxCompletionChoices {
			return badRequest(CodeUnsupportedValue, "n", "the prompts times n make %d choices; at most %d are served in one request", total, maxCompletionChoices)
		}
		return nil
	}},
	{name: "best_of", typ: tInt, check: func(r *CompletionRequest, v val, _ loc) *APIError {
		if v.i != int64(r.N) {
			return badRequest(CodeUnsupportedValue, "best_of", "best_of is not supported: it must be absent or equal to n (%d), got %d", r.N, v.i)
		}
		return nil
	}},
	{name: "echo", typ: tBool, set: func(r *CompletionRequest, v val) { r.Echo = v.b }},
	{name: "logprobs", check: decodeCompletionLogprobs},
}

func decodePrompt(req *CompletionRequest, v val, _ loc) *APIError {
	raw := v.raw
	switch kindOf(raw) {
	case kindString:
		s, aerr := asString(raw, "prompt")
		if aerr != nil {
			return aerr
		}
		if s == "" {
			return badRequest(CodeInvalidValue, "prompt", "prompt must not be empty")
		}
		req.Prompts = []CompletionPrompt{{Text: s}}
		return nil
	case kindArray:
	default:
		return errType("prompt", "a string, an array of strings, an array of token ids or an array of arrays of token ids", raw)
	}
	items, aerr := asArray(raw, "prompt")
	if aerr != nil {
		return aerr
	}
	if len(items) == 0 {
		return badRequest(CodeInvalidValue, "prompt", "prompt must not be an empty array")
	}
	switch kindOf(items[0]) {
	case kindNumber: // one prompt of token ids
		toks, aerr := decodeTokenIDs(items, "prompt")
		if aerr != nil {
			return aerr
		}
		req.Prompts = []CompletionPrompt{{Tokens: toks, IsTokens: true}}
		return nil
	case kindString, kindArray:
	default:
		return errType("prompt[0]", "a string, a token id or an array of token ids", items[0])
	}
	if len(items) > maxCompletionChoices {
		return badRequest(CodeInvalidValue, "prompt", "prompt may hold at most %d prompts, got %d", maxCompletionChoices, len(items))
	}
	first := kindOf(items[0])
	req.Prompts = make([]CompletionPrompt, len(items))
	for i, item := range items {
		p := fmt.Sprintf("prompt[%d]", i)
		if kindOf(item) != first {
			if first == kindString {
				return errType(p, "a string, as prompt[0]", item)
			}
			return errType(p, "an array of token ids, as prompt[0]", item)
		}
		if first == kindString {
			s, aerr := asString(item, p)
			if aerr != nil {
				return aerr
			}
			if s == "" {
				return badRequest(CodeInvalidValue, p, "%s must not be empty", p)
			}
			req.Prompts[i].Text = s
			continue
		}
		ids, aerr := asArray(item, p)
		if aerr != nil {
			return aerr
		}
		if len(ids) == 0 {
			return badRequest(CodeInvalidValue, p, "%s must not be an empty array", p)
		}
		toks, aerr := decodeTokenIDs(ids, p)
		if aerr != nil {
			return aerr
		}
		req.Prompts[i] = CompletionPrompt{Tokens: toks, IsTokens: true}
	}
	return nil
}

// decodeTokenIDs decodes an array of token ids (integers 0 to 2^31-1).
func decodeTokenIDs(items []json.RawMessage, path string) ([]engine.Token, *APIError) {
	out := make([]engine.Token, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if kindOf(item) != kindNumber {
			return nil, errType(p, "a token id (an integer)", item)
		}
		v, aerr := asInt(item, p)
		if aerr != nil {
			return nil, aerr
		}
		if v < 0 || v > 1<<31-1 {
			return nil, badRequest(CodeInvalidValue, p, "%s must be a token id from 0 to 2147483647, got %d", p, v)
		}
		out[i] = engine.Token(v)
	}
	return out, nil
}

// decodeCompletionLogprobs reads logprobs: null or an integer 0 to 5
// (chat's boolean is refused with a hint), and not with echo.
func decodeCompletionLogprobs(req *CompletionRequest, v val, _ loc) *APIError {
	raw := v.raw
	if kindOf(raw) == kindBool {
		return errType("logprobs", "an integer from 0 to 5 (the legacy completions' logprobs; true is chat's)", raw)
	}
	n, aerr := asInt(raw, "logprobs")
	if aerr != nil {
		return aerr
	}
	if n < 0 || n > 5 {
		return badRequest(CodeInvalidValue, "logprobs", "logprobs must be between 0 and 5, got %d", n)
	}
	if req.Echo {
		return badRequest(CodeUnsupportedValue, "echo", "echo with logprobs is not supported: the prompt tokens' logprobs are not computed; drop echo (and prepend the prompt yourself) or drop logprobs")
	}
	req.Logprobs = int(n)
	req.Base.Logprobs, req.Base.TopLogprobs = true, int(n)
	return nil
}
