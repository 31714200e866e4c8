package server

import (
	"encoding/json"
	"fmt"

	"github.com/asi1d/asi1d/engine"
)

// Decoding of POST /v1/completions (docs/API.md, "Text completions"). The
// fields it shares with chat (model, temperature, top_p, penalties, seed,
// stream, stream_options, max_tokens, stop, logit_bias) are decoded by the
// chat decoder's steps, with the same rules and messages; the rest here:
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
	shared := []func(jsonObject, *ChatRequest) *APIError{
		decodeModel,
		decodeSampling,
		decodeStreamFields,
		decodeMaxTokens,
		decodeStop,
		decodeLogitBias,
	}
	for _, step := range shared {
		if aerr := step(top, &req.Base); aerr != nil {
			return nil, aerr
		}
	}
	if req.Base.MaxTokens == 0 {
		req.Base.MaxTokens = defaultCompletionMaxTokens
	}
	steps := []func(jsonObject, *CompletionRequest) *APIError{
		decodePrompt,
		decodeSuffixUser,
		decodeChoices,
		decodeEchoLogprobs,
	}
	for _, step := range steps {
		if aerr := step(top, req); aerr != nil {
			return nil, aerr
		}
	}
	return req, nil
}

func decodePrompt(top jsonObject, req *CompletionRequest) *APIError {
	raw, ok := top.present("prompt")
	if !ok {
		return errMissing("prompt")
	}
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

func decodeSuffixUser(top jsonObject, req *CompletionRequest) *APIError {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"suffix", &req.Suffix}, {"user", &req.Base.User}} {
		if raw, ok := top.present(f.name); ok {
			s, aerr := asString(raw, f.name)
			if aerr != nil {
				return aerr
			}
			*f.dst = s
		}
	}
	return nil
}

func decodeChoices(top jsonObject, req *CompletionRequest) *APIError {
	if raw, ok := top.present("n"); ok {
		v, aerr := asInt(raw, "n")
		if aerr != nil {
			return aerr
		}
		if v < 1 {
			return badRequest(CodeInvalidValue, "n", "n must be at least 1, got %d", v)
		}
		if v > maxCompletionChoices {
			return badRequest(CodeUnsupportedValue, "n", "n may be at most %d, got %d", maxCompletionChoices, v)
		}
		req.N = int(v)
	}
	if total := len(req.Prompts) * req.N; total > maxCompletionChoices {
		return badRequest(CodeUnsupportedValue, "n", "the prompts times n make %d choices; at most %d are served in one request", total, maxCompletionChoices)
	}
	if raw, ok := top.present("best_of"); ok {
		v, aerr := asInt(raw, "best_of")
		if aerr != nil {
			return aerr
		}
		if v != int64(req.N) {
			return badRequest(CodeUnsupportedValue, "best_of", "best_of is not supported: it must be absent or equal to n (%d), got %d", req.N, v)
		}
	}
	return nil
}

func decodeEchoLogprobs(top jsonObject, req *CompletionRequest) *APIError {
	if raw, ok := top.present("echo"); ok {
		b, aerr := asBool(raw, "echo")
		if aerr != nil {
			return aerr
		}
		req.Echo = b
	}
	raw, ok := top.present("logprobs")
	if !ok {
		return nil
	}
	if kindOf(raw) == kindBool {
		return errType("logprobs", "an integer from 0 to 5 (the legacy completions' logprobs; true is chat's)", raw)
	}
	v, aerr := asInt(raw, "logprobs")
	if aerr != nil {
		return aerr
	}
	if v < 0 || v > 5 {
		return badRequest(CodeInvalidValue, "logprobs", "logprobs must be between 0 and 5, got %d", v)
	}
	if req.Echo {
		return badRequest(CodeUnsupportedValue, "echo", "echo with logprobs is not supported: the prompt tokens' logprobs are not computed; drop echo (and prepend the prompt yourself) or drop logprobs")
	}
	req.Logprobs = int(v)
	req.Base.Logprobs, req.Base.TopLogprobs = true, int(v)
	return nil
}
