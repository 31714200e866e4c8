package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/models"
)

// Test helpers: events as the scheduler sends them.
func content(s string) scheduler.Fragment { return scheduler.Fragment{Text: s} }
func thought(block int, s string) scheduler.Fragment {
	return scheduler.Fragment{Thought: true, Block: block, Text: s}
}
func lp(texts ...string) []scheduler.TokenLogprob {
	out := make([]scheduler.TokenLogprob, len(texts))
	for i, t := range texts {
		out[i] = scheduler.TokenLogprob{Text: []byte(t), Logprob: -1}
	}
	return out
}
func done(f scheduler.FinishReason) scheduler.Event {
	return scheduler.Event{Done: true, Finish: f, Usage: scheduler.Usage{PromptTokens: 5, CompletionTokens: 3}}
}

// summary renders a part in a short form that names what a client sees.
func summary(p part) string {
	switch p.kind {
	case partText:
		return fmt.Sprintf("content %q", p.text)
	case partThought:
		return fmt.Sprintf("reasoning %q", p.text)
	case partError:
		return fmt.Sprintf("error %d %s %q", p.err.Status, p.err.Code, p.err.Message)
	}
	var out []string
	if p.ch.ExecutableData != nil {
		out = append(out, "envelope")
	}
	if len(p.ch.Choices) == 0 {
		out = append(out, "usage "+string(p.ch.Usage))
	}
	for _, c := range p.ch.Choices {
		d := c.Delta
		if d.Role != "" {
			out = append(out, "role "+d.Role)
		}
		if d.Content != nil && d.Role == "" {
			out = append(out, fmt.Sprintf("content %q", *d.Content))
		}
		for _, tc := range d.ToolCalls {
			out = append(out, fmt.Sprintf("call %d %s %s %q", tc.Index, tc.ID, tc.Function.Name, tc.Function.Arguments))
		}
		if c.Logprobs != nil {
			var toks []string
			for _, t := range c.Logprobs.Content {
				toks = append(toks, t.Token)
			}
			out = append(out, fmt.Sprintf("logprobs %q", toks))
		}
		if c.FinishReason != nil {
			out = append(out, "finish "+*c.FinishReason)
		}
	}
	if len(p.ch.ToolThought) > 0 && p.ch.ExecutableData == nil {
		out = append(out, "tool_thought "+string(p.ch.ToolThought))
	}
	return strings.Join(out, ", ")
}

type answerCase struct {
	name   string
	req    ChatRequest
	tools  bool // tool calls of function "f", in format (Hermes when unset)
	format models.ToolFormat
	events []scheduler.Event
	stream []string
	// completion's message and top-level fields
	content     *string
	reasoning   string
	thought     []string
	toolThought []string
	calls       []string // "id name args"
	finish      string
	logprobs    []string
}

func strp(s string) *string { return &s }

var answerCases = []answerCase{
	{
		name:    "plain content",
		events:  []scheduler.Event{{Fragments: []scheduler.Fragment{content("Hel")}}, {Fragments: []scheduler.Fragment{content("lo")}}, done(scheduler.FinishStop)},
		stream:  []string{"envelope, role assistant", `content "Hel"`, `content "lo"`, "finish stop"},
		content: strp("Hello"), thought: []string{}, toolThought: []string{}, finish: "stop",
	},
	{
		name:   "usage chunk and length",
		req:    ChatRequest{IncludeUsage: true},
		events: []scheduler.Event{{Fragments: []scheduler.Fragment{content("a")}}, done(scheduler.FinishLength)},
		stream: []string{"envelope, role assistant", `content "a"`, "finish length",
			`usage {"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":0}}`},
		content: strp("a"), thought: []string{}, toolThought: []string{}, finish: "length",
	},
	{
		name: "reasoning blocks",
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{thought(0, "think"), thought(0, " more")}},
			{Fragments: []scheduler.Fragment{thought(1, "again"), content("Answer")}},
			done(scheduler.FinishStop),
		},
		stream:  []string{"envelope, role assistant", `reasoning "think"`, `reasoning " more"`, `reasoning "\n\nagain"`, `content "Answer"`, "finish stop"},
		content: strp("Answer"), reasoning: "think more\n\nagain", thought: []string{"think more", "again"}, toolThought: []string{}, finish: "stop",
	},
	{
		name: "logprobs held until their text",
		req:  ChatRequest{Logprobs: true},
		events: []scheduler.Event{
			{Logprobs: lp("St")}, // held back: may start a stop string
			{Fragments: []scheduler.Fragment{content("Sta")}, Logprobs: lp("a")}, // released with the next token
			{Fragments: []scheduler.Fragment{content("r")}, Logprobs: lp("r")},
			{Logprobs: lp("!")},
			done(scheduler.FinishStop),
		},
		stream:  []string{"envelope, role assistant", `content "Sta", logprobs ["St" "a"]`, `content "r", logprobs ["r"]`, `logprobs ["!"], finish stop`},
		content: strp("Star"), thought: []string{}, toolThought: []string{}, finish: "stop", logprobs: []string{"St", "a", "r", "!"},
	},
	{
		name:  "tool call after reasoning",
		tools: true,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{thought(0, "need f")}},
			{Fragments: []scheduler.Fragment{content(`<tool_call>{"name":"f","arguments":{"x":1}}`)}},
			{Fragments: []scheduler.Fragment{content(`</tool_call>`)}},
			done(scheduler.FinishStop),
		},
		stream:  []string{"envelope, role assistant", `reasoning "need f"`, `call 0 call_1 f ""`, `tool_thought ["need f"]`, "finish tool_calls"},
		thought: []string{}, toolThought: []string{"need f"}, reasoning: "need f", finish: "tool_calls",
		calls: []string{`call_1 f {"x":1}`},
	},
	{
		name:  "tool call cut by length keeps length",
		tools: true,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content(`Sure. <tool_call>{"name":"f","arguments":{}}</tool_call>`)}},
			done(scheduler.FinishLength),
		},
		stream:  []string{"envelope, role assistant", `content "Sure. "`, `call 0 call_1 f ""`, `tool_thought []`, "finish length"},
		content: strp("Sure. "), thought: []string{}, toolThought: []string{}, finish: "length",
		calls: []string{`call_1 f {}`},
	},
	{
		name:  "hermes call cut by length is dropped",
		tools: true,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content("Let me check. ")}},
			{Fragments: []scheduler.Fragment{content(`<tool_call>{"name":"f","argu`)}},
			done(scheduler.FinishLength),
		},
		stream:  []string{"envelope, role assistant", `content "Let me check. "`, "finish length"},
		content: strp("Let me check. "), thought: []string{}, toolThought: []string{}, finish: "length",
	},
	{
		name:  "second hermes call cut by length is dropped, the first kept",
		tools: true,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content(`<tool_call>{"name":"f","arguments":{"x":1}}</tool_call>` + "\n")}},
			{Fragments: []scheduler.Fragment{content(`<tool_call>{"name":"f","arguments":{"x":`)}},
			done(scheduler.FinishLength),
		},
		stream:  []string{"envelope, role assistant", `call 0 call_1 f ""`, `tool_thought []`, "finish length"},
		thought: []string{}, toolThought: []string{}, finish: "length",
		calls: []string{`call_1 f {"x":1}`},
	},
	{
		name:   "llama3 call cut by length is dropped",
		tools:  true,
		format: models.ToolFormatLlama3,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content(`<|python_tag|>{"name": "f", "para`)}},
			{Fragments: []scheduler.Fragment{content(`meters": {"x"`)}},
			done(scheduler.FinishLength),
		},
		stream:  []string{"envelope, role assistant", "finish length"},
		content: strp(""), thought: []string{}, toolThought: []string{}, finish: "length",
	},
	{
		name:   "mistral call cut by length is dropped",
		tools:  true,
		format: models.ToolFormatMistral,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content("On it. [TOOL_")}},
			{Fragments: []scheduler.Fragment{content(`CALLS][{"name": "f", "arguments": {"x": "[TOOL_CALLS]`)}},
			done(scheduler.FinishLength),
		},
		stream:  []string{"envelope, role assistant", `content "On it. "`, "finish length"},
		content: strp("On it. "), thought: []string{}, toolThought: []string{}, finish: "length",
	},
	{
		name:   "mistral call cut at stop is content",
		tools:  true,
		format: models.ToolFormatMistral,
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content(`[TOOL_CALLS]f[ARGS]{"x"`)}},
			done(scheduler.FinishStop),
		},
		stream:  []string{"envelope, role assistant", `content "[TOOL_CALLS]f[ARGS]{\"x\""`, "finish stop"},
		content: strp(`[TOOL_CALLS]f[ARGS]{"x"`), thought: []string{}, toolThought: []string{}, finish: "stop",
	},
	{
		name:    "tools offered, none called",
		tools:   true,
		events:  []scheduler.Event{{Fragments: []scheduler.Fragment{content("No call")}}, done(scheduler.FinishStop)},
		stream:  []string{"envelope, role assistant", `content "No call"`, "finish stop"},
		content: strp("No call"), thought: []string{}, toolThought: []string{}, finish: "stop",
	},
	{
		name: "failure mid-stream",
		events: []scheduler.Event{
			{Fragments: []scheduler.Fragment{content("par")}},
			{Done: true, Finish: scheduler.FinishError, Err: errors.New("boom")},
		},
		stream: []string{"envelope, role assistant", `content "par"`, `error 500 internal_error "Generation failed: boom"`},
	},
}

func jobFor(tc answerCase) *chatJob {
	req := tc.req
	j := &chatJob{id: "id_x", created: 1, model: "asi1-mini", fp: "fp_x", req: &req}
	if tc.tools {
		f := tc.format
		if f == models.ToolFormatNone {
			f = models.ToolFormatHermes
		}
		j.out = outputPlan{tools: true, format: f, names: map[string]bool{"f": true}, parallel: true}
		n := 0
		j.callID = func() string { n++; return fmt.Sprintf("call_%d", n) }
	}
	return j
}

func TestAnswerStream(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAnswer(jobFor(tc))
			var got []string
			for _, ev := range tc.events {
				for _, p := range a.chunks(ev, nil) {
					s := summary(p)
					// The delta of a call's arguments may come in pieces.
					if strings.HasPrefix(s, "call 0  ") {
						continue
					}
					got = append(got, strings.Split(s, ", tool_thought")[0])
					if i := strings.Index(s, ", tool_thought "); i >= 0 {
						got = append(got, s[i+2:])
					}
				}
			}
			if !reflect.DeepEqual(got, tc.stream) {
				t.Errorf("stream:\n got %q\nwant %q", got, tc.stream)
			}
		})
	}
}

func TestAnswerCompletion(t *testing.T) {
	for _, tc := range answerCases {
		final := tc.events[len(tc.events)-1]
		if final.Finish == scheduler.FinishError {
			continue // the handler answers the error
		}
		t.Run(tc.name, func(t *testing.T) {
			a := newAnswer(jobFor(tc))
			for _, ev := range tc.events {
				a.add(ev)
			}
			resp := a.completion(final)
			b, _ := json.Marshal(resp) // the wire form must encode
			if !json.Valid(b) {
				t.Fatal("invalid JSON")
			}
			ch := resp.Choices[0]
			if !reflect.DeepEqual(ch.Message.Content, tc.content) && (ch.Message.Content == nil || tc.content == nil || *ch.Message.Content != *tc.content) {
				t.Errorf("content %v, want %v", deref(ch.Message.Content), deref(tc.content))
			}
			if ch.Message.ReasoningContent != tc.reasoning {
				t.Errorf("reasoning_content %q, want %q", ch.Message.ReasoningContent, tc.reasoning)
			}
			if !reflect.DeepEqual(resp.Thought, tc.thought) || !reflect.DeepEqual(resp.ToolThought, tc.toolThought) {
				t.Errorf("thought %q tool_thought %q, want %q %q", resp.Thought, resp.ToolThought, tc.thought, tc.toolThought)
			}
			var calls []string
			for _, c := range ch.Message.ToolCalls {
				calls = append(calls, c.ID+" "+c.Function.Name+" "+c.Function.Arguments)
			}
			if !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("calls %q, want %q", calls, tc.calls)
			}
			if ch.FinishReason != tc.finish {
				t.Errorf("finish_reason %q, want %q", ch.FinishReason, tc.finish)
			}
			var lps []string
			if ch.Logprobs != nil {
				for _, l := range ch.Logprobs.Content {
					lps = append(lps, l.Token)
				}
			}
			if (ch.Logprobs != nil) != tc.req.Logprobs || !reflect.DeepEqual(lps, tc.logprobs) {
				t.Errorf("logprobs %v %q, want %q", ch.Logprobs != nil, lps, tc.logprobs)
			}
			if resp.Usage.TotalTokens != final.Usage.PromptTokens+final.Usage.CompletionTokens {
				t.Errorf("usage %+v", resp.Usage)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return fmt.Sprintf("%q", *s)
}
