package server

import (
	"testing"

	"github.com/asi1d/asi1d/engine"
)

func TestDecodeCompletionRequest(t *testing.T) {
	ok := func(body string) *CompletionRequest {
		t.Helper()
		r, aerr := DecodeCompletionRequest([]byte(body))
		if aerr != nil {
			t.Fatalf("%s: %v", body, aerr)
		}
		return r
	}
	r := ok(`{"model":"m","prompt":"hi"}`)
	if len(r.Prompts) != 1 || r.Prompts[0].Text != "hi" || r.Base.MaxTokens != 16 || r.N != 1 || r.Logprobs != -1 || r.Base.Logprobs {
		t.Fatalf("defaults: %+v", r)
	}
	r = ok(`{"model":"m","prompt":[[1,2],[3]],"n":2,"best_of":2,"logprobs":0,"max_tokens":5,"suffix":"s","user":"u"}`)
	if len(r.Prompts) != 2 || !r.Prompts[1].IsTokens || len(r.Prompts[0].Tokens) != 2 || r.Prompts[1].Tokens[0] != engine.Token(3) ||
		r.N != 2 || r.Logprobs != 0 || !r.Base.Logprobs || r.Base.TopLogprobs != 0 || r.Base.MaxTokens != 5 || r.Suffix != "s" || r.Base.User != "u" {
		t.Fatalf("tokens: %+v", r)
	}
	r = ok(`{"model":"m","prompt":[1,2,3],"logprobs":null,"best_of":null}`)
	if len(r.Prompts) != 1 || len(r.Prompts[0].Tokens) != 3 || r.Logprobs != -1 {
		t.Fatalf("one token prompt: %+v", r)
	}
	for _, c := range []struct{ body, code, param string }{
		{`{"model":"m"}`, CodeMissingRequired, "prompt"},
		{`{"model":"m","prompt":["a",[1]]}`, CodeInvalidType, "prompt[1]"},
		{`{"model":"m","prompt":[[1],"a"]}`, CodeInvalidType, "prompt[1]"},
		{`{"model":"m","prompt":["a",""]}`, CodeInvalidValue, "prompt[1]"},
		{`{"model":"m","prompt":[[1],[]]}`, CodeInvalidValue, "prompt[1]"},
		{`{"model":"m","prompt":[[1,-2]]}`, CodeInvalidValue, "prompt[0][1]"},
		{`{"model":"m","prompt":[1.5]}`, CodeInvalidType, "prompt[0]"},
		{`{"model":"m","prompt":[true]}`, CodeInvalidType, "prompt[0]"},
		{`{"model":"m","prompt":"a","n":0}`, CodeInvalidValue, "n"},
		{`{"model":"m","prompt":["a","b","c"],"n":30}`, CodeUnsupportedValue, "n"},
		{`{"model":"m","prompt":"a","n":2,"best_of":3}`, CodeUnsupportedValue, "best_of"},
		{`{"model":"m","prompt":"a","echo":true,"logprobs":0}`, CodeUnsupportedValue, "echo"},
		{`{"model":"m","prompt":"a","logprobs":-1}`, CodeInvalidValue, "logprobs"},
		{`{"model":"m","prompt":"a","suffix":5}`, CodeInvalidType, "suffix"},
		{`{"model":"m","prompt":"a","echo":"yes"}`, CodeInvalidType, "echo"},
		{`{"model":"m","prompt":"a","max_tokens":0}`, CodeInvalidValue, "max_tokens"},
		{`{"model":"m","prompt":"a","temperature":3}`, CodeInvalidValue, "temperature"},
	} {
		_, aerr := DecodeCompletionRequest([]byte(c.body))
		if aerr == nil || aerr.Status != 400 || aerr.Code != c.code || aerr.Param != c.param {
			t.Errorf("%s: got %v, want 400 %s (%s)", c.body, aerr, c.code, c.param)
		}
	}
}
