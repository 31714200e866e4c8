package server

import (
	"encoding/json"
	"fmt"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/server/api"
)

// maxEmbeddingInputs is the most inputs of one request, OpenAI's limit.
const maxEmbeddingInputs = 2048

// EmbeddingsRequest is a decoded POST /v1/embeddings body. Exactly one of
// Texts and Tokens is set: the inputs as text, or as token ids.
type EmbeddingsRequest struct {
	Model  string
	Texts  []string
	Tokens [][]engine.Token
	// Base64 is encoding_format "base64"; Dimensions 0 keeps every one.
	Base64     bool
	Dimensions int
	User       string
	// List: input was an array of inputs (strings or arrays of token
	// ids), so that errors name input[i].
	List bool
}

// Inputs is how many inputs the request has.
func (r *EmbeddingsRequest) Inputs() int { return len(r.Texts) + len(r.Tokens) }

// DecodeEmbeddingsRequest validates the body the way DecodeChatRequest does
// chat's: every error is a 400 that names the field. Unknown fields are
// ignored, as chat ignores them.
func DecodeEmbeddingsRequest(body []byte) (*EmbeddingsRequest, *APIError) {
	top, aerr := decodeBody(body)
	if aerr != nil {
		return nil, aerr
	}
	req := &EmbeddingsRequest{}
	if aerr := apply(top, "", embeddingsFields, req); aerr != nil {
		return nil, aerr
	}
	return req, nil
}

// embeddingsFields is the embeddings body's table.
var embeddingsFields = []field[EmbeddingsRequest]{
	{name: "model", typ: tString, required: true, empty: modelField.empty, set: func(r *EmbeddingsRequest, v val) { r.Model = v.str }},
	{name: "input", required: true, check: decodeEmbeddingInput},
	{name: "encoding_format", typ: tString, check: func(r *EmbeddingsRequest, v val, at loc) *APIError {
		switch v.str {
		case api.EncodingFloat:
		case api.EncodingBase64:
			r.Base64 = true
		default:
			return badRequest(CodeInvalidValue, "encoding_format", "encoding_format must be %q or %q, got %s", api.EncodingFloat, api.EncodingBase64, shownRaw(v.raw))
		}
		return nil
	}},
	// dimensions beyond 2^30 are kept as 2^30: more than any model has.
	{name: "dimensions", typ: tInt, valid: atLeast(1), set: func(r *EmbeddingsRequest, v val) { r.Dimensions = int(min(v.i, 1<<30)) }},
	{name: "user", typ: tString, set: func(r *EmbeddingsRequest, v val) { r.User = v.str }},
}

const inputShapes = "a string, an array of strings, an array of token ids or an array of arrays of token ids"

// decodeEmbeddingInput reads input in any of its four shapes.
func decodeEmbeddingInput(req *EmbeddingsRequest, v val, _ loc) *APIError {
	raw := v.raw
	switch kindOf(raw) {
	case kindString:
		s, aerr := asString(raw, "input")
		if aerr != nil {
			return aerr
		}
		if s == "" {
			return badRequest(CodeInvalidValue, "input", "input must not be an empty string")
		}
		req.Texts = []string{s}
		return nil
	case kindArray:
	default:
		return errType("input", inputShapes, raw)
	}
	items, aerr := asArray(raw, "input")
	if aerr != nil {
		return aerr
	}
	if len(items) == 0 {
		return badRequest(CodeInvalidValue, "input", "input must not be an empty array")
	}
	if len(items) > maxEmbeddingInputs {
		return badRequest(CodeInvalidValue, "input", "input has %d items; at most %d are embedded in one request", len(items), maxEmbeddingInputs)
	}
	switch kindOf(items[0]) {
	case kindString:
		req.List = true
		for i, it := range items {
			path := fmt.Sprintf("input[%d]", i)
			s, aerr := asString(it, path)
			if aerr != nil {
				return badRequest(CodeInvalidType, path, "%s must be a string like input[0] (an input's items are all strings or all token ids), got %s", path, kindName(kindOf(it)))
			}
			if s == "" {
				return badRequest(CodeInvalidValue, path, "%s must not be an empty string", path)
			}
			req.Texts = append(req.Texts, s)
		}
	case kindNumber:
		toks, aerr := tokenIDs(items, "input")
		if aerr != nil {
			return aerr
		}
		req.Tokens = [][]engine.Token{toks}
	case kindArray:
		req.List = true
		for i, it := range items {
			path := fmt.Sprintf("input[%d]", i)
			inner, aerr := asArray(it, path)
			if aerr != nil {
				return badRequest(CodeInvalidType, path, "%s must be an array of token ids like input[0], got %s", path, kindName(kindOf(it)))
			}
			if len(inner) == 0 {
				return badRequest(CodeInvalidValue, path, "%s must not be an empty array", path)
			}
			toks, aerr := tokenIDs(inner, path)
			if aerr != nil {
				return aerr
			}
			req.Tokens = append(req.Tokens, toks)
		}
	default:
		return badRequest(CodeInvalidType, "input[0]", "input[0] must be a string, a token id or an array of token ids (input is %s), got %s", inputShapes, kindName(kindOf(items[0])))
	}
	return nil
}

// tokenIDs reads an array of token ids (non-negative integers; the model's
// vocabulary is checked once the model is known).
func tokenIDs(items []json.RawMessage, path string) ([]engine.Token, *APIError) {
	out := make([]engine.Token, len(items))
	for i, it := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if kindOf(it) != kindNumber {
			return nil, badRequest(CodeInvalidType, p, "%s must be a token id (an integer), got %s", p, kindName(kindOf(it)))
		}
		v, aerr := asInt(it, p)
		if aerr != nil {
			return nil, aerr
		}
		if v < 0 || v > 1<<31-1 {
			return nil, badRequest(CodeInvalidValue, p, "%s must be a token id of the model's vocabulary, got %d", p, v)
		}
		out[i] = engine.Token(v)
	}
	return out, nil
}
