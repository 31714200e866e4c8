package server_test

// Clean answers over HTTP with the fake backend: control tokens never reach
// the answer as text, marker tokens still reach the tool-call parser, and a
// tool call cut by max_tokens leaves no markup in content (docs/API.md,
// "Tool calls cut by max_tokens").

import (
	"net/http"
	"slices"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
)

// ctTokens is a piece of a scripted answer: text (one token per byte) or
// one token.
type ctTokens struct {
	text string
	tok  engine.Token
}

func ctText(s string) ctTokens      { return ctTokens{text: s, tok: -1} }
func ctTok(t engine.Token) ctTokens { return ctTokens{tok: t} }

// ctTokenScript makes the fake answer prompt (a single user message, plain
// rule) with the tokens of out, then EOS; it returns the rule and how many
// tokens the answer has before EOS.
func ctTokenScript(prompt string, out ...ctTokens) (func([]engine.Token) engine.Token, int) {
	var toks []engine.Token
	for _, o := range out {
		if o.tok >= 0 {
			toks = append(toks, o.tok)
			continue
		}
		for i := 0; i < len(o.text); i++ {
			toks = append(toks, engine.Token(enginetest.ByteBase+int(o.text[i])))
		}
	}
	p := []engine.Token{enginetest.BOS}
	for i := 0; i < len(prompt); i++ {
		p = append(p, engine.Token(enginetest.ByteBase+int(prompt[i])))
	}
	return func(h []engine.Token) engine.Token {
		if len(h) < len(p) || !slices.Equal(h[:len(p)], p) {
			return enginetest.DefaultNext(h)
		}
		if i := len(h) - len(p); i < len(toks) {
			return toks[i]
		}
		return enginetest.EOS
	}, len(toks)
}

// ctAnswer is what a client reads of one answer, streamed or not.
type ctAnswer struct {
	content string
	calls   int // tool calls (stream: chunks with tool_calls deltas)
	finish  string
}

func (e *ctEnv) answer(t *testing.T, body map[string]any, stream bool) ctAnswer {
	t.Helper()
	body["stream"] = stream
	r := e.chat(body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if stream {
		s := ctParseSSE(t, r.body)
		a := ctAnswer{content: s.content, finish: s.finish}
		for _, ch := range s.chunks {
			if _, ok := ctDelta(ch)["tool_calls"]; ok {
				a.calls++
			}
		}
		return a
	}
	m := ctObj(t, r.body)
	c := m["choices"].([]any)[0].(map[string]any)
	msg := c["message"].(map[string]any)
	a := ctAnswer{finish: c["finish_reason"].(string)}
	a.content, _ = msg["content"].(string)
	calls, _ := msg["tool_calls"].([]any)
	a.calls = len(calls)
	return a
}

// Control tokens sampled in the middle of an answer (BOS, a chat-template
// token) are dropped; their text never reaches content.
func TestControlTokensNeverInContent(t *testing.T) {
	next, _ := ctTokenScript("hi",
		ctText("Hel"), ctTok(enginetest.BOS), ctText("lo"), ctTok(enginetest.Special2), ctText(" world"))
	e := ctStart(t, ctConfig{next: next, setup: func(f *enginetest.Fake) {
		f.SetSpecial(enginetest.Special2, "<|im_start|>", true)
	}})
	for _, stream := range []bool{false, true} {
		got := e.answer(t, ctBody("hi", nil), stream)
		if got.content != "Hello world" || got.finish != "stop" {
			t.Errorf("stream %v: content %q finish %q, want \"Hello world\" stop", stream, got.content, got.finish)
		}
	}
}

// A tool call cut by max_tokens, in each tool-call format, with its marker
// as the special token a model writes: the call is dropped, the text
// before it is content, finish_reason is "length", in a stream too; the
// same answer uncut is a call.
func TestToolCallCutByMaxTokens(t *testing.T) {
	const junk = "<|junk|>" // a control token sampled before the call: dropped
	for _, c := range []struct {
		format        string
		marker        string
		control       bool // the marker is a control token (else user-defined)
		before, after string
		call          string // after the marker
	}{
		{"hermes", "<tool_call>", false, "Sure. ", "", "\n" + `{"name": "f", "arguments": {"x": 1}}` + "\n</tool_call>"},
		{"llama3", "<|python_tag|>", true, "", "", `{"name": "f", "parameters": {"x": 1}}`},
		{"mistral", "[TOOL_CALLS]", true, "Sure. ", "", `[{"name": "f", "arguments": {"x": 1}}]`},
		{"mistral-args", "[TOOL_CALLS]", true, "Sure. ", "", `f[ARGS]{"x": 1}`},
	} {
		t.Run(c.format, func(t *testing.T) {
			out := []ctTokens{ctTok(enginetest.Special3), ctText(c.before), ctTok(enginetest.Special2), ctText(c.call)}
			next, n := ctTokenScript("call f", out...)
			e := ctStart(t, ctConfig{next: next, setup: func(f *enginetest.Fake) {
				f.SetSpecial(enginetest.Special2, c.marker, c.control)
				f.SetSpecial(enginetest.Special3, junk, true)
			}})
			tools := []any{map[string]any{"type": "function", "function": map[string]any{
				"name": "f", "parameters": map[string]any{"type": "object"}}}}
			for _, stream := range []bool{false, true} {
				whole := e.answer(t, ctBody("call f", map[string]any{"tools": tools}), stream)
				if whole.calls == 0 || whole.finish != "tool_calls" {
					t.Fatalf("stream %v, uncut: %+v, want a call and finish tool_calls", stream, whole)
				}
				// Cut anywhere from right after the marker to one token
				// before the call completes.
				start := 1 + len(c.before) + 1
				for cut := start; cut < n; cut += max(1, (n-start)/7) {
					got := e.answer(t, ctBody("call f", map[string]any{"tools": tools, "max_tokens": cut}), stream)
					want := ctAnswer{content: c.before, finish: "length"}
					if got != want {
						t.Errorf("stream %v, max_tokens %d of %d: got %+v, want %+v", stream, cut, n, got, want)
					}
				}
			}
		})
	}
}

// The tool-call markers of the fake's formats are detected from its special
// tokens alone (no chat template): the test above relies on it.
func TestFakeToolFormatFromSpecialTokens(t *testing.T) {
	for marker, want := range map[string]string{"<tool_call>": "hermes", "<|python_tag|>": "llama3", "[TOOL_CALLS]": "mistral"} {
		e := ctStart(t, ctConfig{setup: func(f *enginetest.Fake) { f.SetSpecial(enginetest.Special2, marker, true) }})
		if got := e.stk.Model.ToolFormat.String(); got != want {
			t.Errorf("%s: format %s, want %s", marker, got, want)
		}
	}
}
