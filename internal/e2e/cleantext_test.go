package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/models/synth"
	"github.com/asi1d/asi1d/server/api"
)

// cleanAnswers is how many answers TestNoControlTokenText samples per model
// (ASI1D_CLEAN_ANSWERS overrides it, for a longer run).
func cleanAnswers(t *testing.T) int {
	if s := os.Getenv("ASI1D_CLEAN_ANSWERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("ASI1D_CLEAN_ANSWERS=%q: want a positive number", s)
		}
		return n
	}
	return 120
}

// Control tokens never reach an answer as text: many answers sampled at
// high temperature (1.2 to 1.5), streamed and not, on the reference model
// (which draws its <s> now and then) and on random-weight synth chat
// models (which draw every token), with tools offered to the ChatML one so
// that the tool-call parser and its lazy grammar run too. No content,
// reasoning or tool-call argument may hold the text of a control token;
// the control tokens the answers drew are counted from their logprobs, so
// that the test shows it met some.
func TestNoControlTokenText(t *testing.T) {
	t.Parallel()
	n := cleanAnswers(t)
	drawn, answers := 0, 0
	for _, c := range []struct {
		name  string
		path  string
		tools bool
		// The reference model draws <s> where a story ends (its training
		// data separates stories with BOS): its answers are long.
		maxTokens int
	}{
		{"stories260K", testmodel.Path(t, testmodel.Stories260K), false, 256},
		{"synth-chatml-think", randomModel(t, synth.TemplateChatMLThink), true, 64},
		{"synth-llama3", randomModel(t, synth.TemplateLlama3), false, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, be := startOnCtx(t, c.path, 1, 0, 2048)
			var control []string
			for tok := range be.Info().NVocab {
				if be.IsControl(engine.Token(tok)) {
					if s := string(be.Piece(engine.Token(tok))); s != "" {
						control = append(control, s)
					}
				}
			}
			if len(control) == 0 {
				t.Fatal("the vocabulary has no control token")
			}
			leaks, modelDrawn := 0, 0
			for i := range n {
				stream := i%2 == 1
				body := map[string]any{
					"model": "asi1-mini", "temperature": 1.2 + 0.1*float64(i%4), "seed": i, "max_tokens": c.maxTokens,
					"stream": stream, "logprobs": !stream,
					"messages": []map[string]any{{"role": "user", "content": "Once upon a time"}},
				}
				if c.tools && i%3 == 0 {
					body["tools"] = toolsBody(false, 0, "auto", true)["tools"]
				}
				a := ask(t, e.url, body)
				answers++
				texts := []string{a.Reasoning}
				if a.Content != nil {
					texts = append(texts, *a.Content)
				}
				for _, call := range a.Calls {
					texts = append(texts, call.Name, call.Arguments)
				}
				if leaked := controlText(texts, control); leaked != "" {
					leaks++
					if leaks <= 5 {
						t.Errorf("answer %d (seed %d, stream %v) holds %q: content %q reasoning %q calls %+v",
							i, i, stream, leaked, deref(a.Content), a.Reasoning, a.Calls)
					}
				}
				if !stream {
					modelDrawn += drawnControl(t, a.Raw, control)
				}
			}
			t.Logf("%s: %d answers, %d control tokens drawn (non-streamed half, from logprobs), %d answers with control-token text",
				c.name, n, modelDrawn, leaks)
			drawn += modelDrawn
		})
	}
	if drawn == 0 && !t.Failed() {
		t.Errorf("%d answers drew no control token: the test checked nothing", answers)
	}
}

// controlText returns the first control-token text found in texts, or "".
func controlText(texts, control []string) string {
	for _, s := range texts {
		for _, c := range control {
			if strings.Contains(s, c) {
				return c
			}
		}
	}
	return ""
}

// drawnControl counts the tokens of a non-streamed answer's logprobs whose
// text is a control token's.
func drawnControl(t *testing.T, raw []byte, control []string) int {
	t.Helper()
	var c api.ChatCompletion
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Choices) == 0 || c.Choices[0].Logprobs == nil {
		t.Fatalf("no logprobs (%v): %s", err, raw)
	}
	n := 0
	for _, lp := range c.Choices[0].Logprobs.Content {
		for _, s := range control {
			if lp.Token == s {
				n++
				break
			}
		}
	}
	return n
}

// The real engine with a scripted synth ChatML model that thinks, writes
// "sure." and then a Hermes call in three pieces: max_tokens cutting the
// call leaves "sure." in content, no markup, no call, finish_reason
// "length", streamed or not; uncut, the call is made.
func TestToolCallCutOnRealEngine(t *testing.T) {
	pieces := []string{"\n{\"name\": \"get_time\", ", "\"arguments\": {\"zone\": ", "\"utc\"}}\n"}
	script := []string{"<0x0A>", "<think>", "▁so", "</think>", "▁sure", ".", "<tool_call>",
		pieces[0], pieces[1], pieces[2], "</tool_call>", "<|im_end|>"}
	path := filepath.Join(t.TempDir(), "cut.gguf")
	o := synth.Options{Preset: "tiny", Type: synth.TypeQ8_0, Template: synth.TemplateChatMLThink, Script: script, Pieces: pieces}
	if err := synth.WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
	e, _ := startOnCtx(t, path, 1, 0, 2048)
	body := func(stream bool, maxTokens int) map[string]any {
		b := toolsBody(stream, 0, "auto", true)
		b["temperature"], b["max_tokens"] = 0, maxTokens
		return b
	}
	for _, stream := range []bool{false, true} {
		a := ask(t, e.url, body(stream, 400))
		if a.Finish != "tool_calls" || len(a.Calls) != 1 || a.Calls[0].Arguments != `{"zone":"utc"}` || deref(a.Content) != "sure." {
			t.Fatalf("stream %v, uncut: finish %q calls %+v content %q", stream, a.Finish, a.Calls, deref(a.Content))
		}
		// Tokens: <think> so </think> Sure . <tool_call> p0 p1 p2 </tool_call>.
		for _, cut := range []int{6, 7, 8, 9} {
			a := ask(t, e.url, body(stream, cut))
			if a.Finish != "length" || len(a.Calls) != 0 || deref(a.Content) != "sure." || a.Reasoning != "so" {
				t.Errorf("stream %v, max_tokens %d: finish %q calls %+v content %q reasoning %q",
					stream, cut, a.Finish, a.Calls, deref(a.Content), a.Reasoning)
			}
		}
	}
}

// A JSON answer (response_format) on the synth ChatML reasoning model whose
// free string holds "<think>" and "<tool_call>" (a logit bias makes the
// model draw those tokens): they are text of the string, not markup, so the
// content is the whole JSON and there is no reasoning.
func TestTagsInsideJSONAreText(t *testing.T) {
	e, be := startOnCtx(t, randomModel(t, synth.TemplateChatMLThink), 1, 0, 2048)
	bias := map[string]any{}
	for _, tag := range []string{"<think>", "</think>", "<tool_call>"} {
		toks, err := be.Tokenize(tag, false, true)
		if err != nil || len(toks) != 1 {
			t.Fatalf("%s is %v (%v), want one token", tag, toks, err)
		}
		bias[strconv.Itoa(int(toks[0]))] = 4
	}
	const schema = `{"type":"object","properties":{"s":{"type":"string","maxLength":120}},"required":["s"],"additionalProperties":false}`
	s := compileSchema(t, schema)
	tagged := 0
	for i := range 12 {
		body := schemaBody(i%2 == 1, i, schema)
		body["temperature"], body["logit_bias"] = 1.3, bias
		a := ask(t, e.url, body)
		if a.Finish != "stop" || a.Content == nil || a.Reasoning != "" {
			t.Fatalf("req %d: finish %q content %q reasoning %q", i, a.Finish, deref(a.Content), a.Reasoning)
		}
		validate(t, s, *a.Content)
		if strings.Contains(*a.Content, "<think>") || strings.Contains(*a.Content, "</think>") {
			tagged++
		}
	}
	if tagged == 0 {
		t.Error("no answer wrote a tag inside its string: the test checked nothing")
	}
}
