package server

import (
	"errors"
	"testing"
)

func TestSamplingDefaultsFillWhatTheRequestLeavesOut(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	k := 40
	d := SamplingDefaults{Temperature: f(0.3), TopP: f(0.9), TopK: &k, MinP: f(0.05), RepeatPenalty: f(1.1)}
	decode := func(body string) *ChatRequest {
		t.Helper()
		req, aerr := DecodeChatRequest([]byte(body))
		if aerr != nil {
			t.Fatal(aerr)
		}
		return req
	}
	p, aerr := samplingParams(decode(`{"model":"m","messages":[{"role":"user","content":"x"}]}`), 100, d)
	if aerr != nil {
		t.Fatal(aerr)
	}
	if p.Temperature != 0.3 || p.TopP != 0.9 || p.TopK != 40 || p.MinP != 0.05 || p.RepeatPenalty != float32(1.1) {
		t.Fatalf("defaults not applied: %+v", p)
	}
	p, _ = samplingParams(decode(`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":0,"top_p":null}`), 100, d)
	if p.Temperature != 0 || p.TopP != 0.9 {
		t.Fatalf("the request's temperature 0 must win, a null top_p takes the default: %+v", p)
	}
	p, _ = samplingParams(decode(`{"model":"m","messages":[{"role":"user","content":"x"}]}`), 100, SamplingDefaults{})
	if p.Temperature != 1 || p.TopP != 1 || p.TopK != 0 {
		t.Fatalf("no defaults: the API's: %+v", p)
	}
}

func TestModelErrorsMapToTheContract(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&UnknownModelError{ID: "x"}, 404, CodeModelNotFound},
		{&UnusableModelError{ID: "x", Reason: "bad magic"}, 404, CodeModelNotFound},
		{&ModelLoadError{ID: "x", Err: errors.New("no memory")}, 503, CodeModelLoading},
		{ErrNoRoom, 503, CodeOverloaded},
	} {
		ae := ErrorFor(c.err)
		if ae.Status != c.status || ae.Code != c.code || ae.Param != "model" {
			t.Errorf("%v: %d %s param %q", c.err, ae.Status, ae.Code, ae.Param)
		}
		if ae.Status == 503 && ae.RetryAfter == 0 {
			t.Errorf("%v: 503 without Retry-After", c.err)
		}
	}
}
