package server

import (
	"encoding/json"
	"strings"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/server/api"
)

// This file turns one request's scheduler events into its answer: the
// completion of a plain request, or the chunks of a stream. It owns the
// rules of the answer's shape (contract sections 5 to 7, docs/API.md):
// reasoning blocks (thought, reasoning_content, joined with a blank line),
// tool-call parsing, logprobs held back with text the tool-call parser
// holds, finish_reason "tool_calls" when a stopped answer made calls, and
// tool_thought (the reasoning that led to calls). It does no I/O: complete
// and stream in chat.go write what it returns.

// answer builds one request's answer from its events. For a completion,
// add every event and call completion on the final one; for a stream, call
// chunks for every event.
type answer struct {
	j        *chatJob
	tp       *models.ToolCallParser // nil: tool calls are not parsed
	thoughts []string               // reasoning blocks so far, by Block
	content  strings.Builder        // content so far (completion only)
	lps      []api.TokenLogprob     // logprobs collected (completion) or held (stream)

	// Stream state.
	roleSent bool
	ncalls   int // tool calls started
}

func newAnswer(j *chatJob) *answer {
	return &answer{j: j, tp: j.toolParser()}
}

// partKind says how a part of a stream is written.
type partKind uint8

const (
	// partText and partThought are the chunk of nearly every token:
	// content or reasoning text and nothing else, written by
	// sseWriter.textChunk without reflection.
	partText partKind = iota
	partThought
	// partChunk is any other chunk.
	partChunk
	// partError is an error event in the stream (after a failure mid-stream).
	partError
)

// part is one server-sent event of a stream.
type part struct {
	kind partKind
	text string                  // partText, partThought
	ch   api.ChatCompletionChunk // partChunk
	err  *APIError               // partError
}

// base is the chunk without choices that every chunk of the stream starts
// from.
func (a *answer) base() api.ChatCompletionChunk {
	ch := api.ChatCompletionChunk{ID: a.j.id, Object: api.ObjectChatChunk, Created: a.j.created, Model: a.j.model, SystemFingerprint: a.j.fp}
	if a.j.req.IncludeUsage {
		ch.Usage = api.RawNull
	}
	return ch
}

func (a *answer) chunk(d api.Delta, lp *api.Logprobs, finish *string) part {
	ch := a.base()
	ch.Choices = []api.ChunkChoice{{Delta: d, Logprobs: lp, FinishReason: finish}}
	return part{kind: partChunk, ch: ch}
}

// addThought appends reasoning text to its block and returns the text as
// the stream shows it: a new block after the first starts with a blank
// line, as reasoning_content joins them.
func (a *answer) addThought(f scheduler.Fragment) string {
	text := f.Text
	if f.Block >= len(a.thoughts) && f.Block > 0 {
		text = "\n\n" + text
	}
	for len(a.thoughts) <= f.Block {
		a.thoughts = append(a.thoughts, "")
	}
	a.thoughts[f.Block] += f.Text
	return text
}

// add collects an event of a plain (non-streamed) request.
func (a *answer) add(ev scheduler.Event) {
	for _, f := range ev.Fragments {
		if f.Thought {
			a.addThought(f)
		} else {
			a.content.WriteString(f.Text)
		}
	}
	if a.j.req.Logprobs {
		a.lps = append(a.lps, wireLogprobs(ev.Logprobs)...)
	}
}

// completion is the answer of a plain request whose final event ev ended
// with stop or length.
func (a *answer) completion(ev scheduler.Event) *api.ChatCompletion {
	content := a.content.String()
	thoughts := thoughtList(a.thoughts)
	msg := api.Message{Role: api.RoleAssistant, Content: &content, ReasoningContent: strings.Join(thoughts, "\n\n")}
	finish := string(ev.Finish)
	thought, toolThought := thoughts, []string{}
	if a.tp != nil {
		var text strings.Builder
		for _, ch := range append(a.tp.Push(content), a.endTools(ev.Finish)...) {
			text.WriteString(ch.Content)
		}
		// Without calls the text is the content, less a call cut short.
		content = text.String()
		if calls := a.tp.Calls(); len(calls) > 0 {
			msg.ToolCalls = wireToolCalls(calls)
			msg.Content = nil
			if t := text.String(); strings.TrimSpace(t) != "" {
				msg.Content = &t
			}
			finish = a.finishReason(ev.Finish, true)
			// Reasoning that led to tool calls is tool_thought (docs/API.md).
			thought, toolThought = []string{}, thoughts
		}
	}
	resp := &api.ChatCompletion{
		ID: a.j.id, Object: api.ObjectChatCompletion, Created: a.j.created, Model: a.j.model, SystemFingerprint: a.j.fp,
		ExecutableData: []any{}, Thought: thought, ToolThought: toolThought,
		Choices: []api.Choice{{Message: msg, FinishReason: finish}},
		Usage:   wireUsage(ev.Usage),
	}
	if a.j.req.Logprobs {
		resp.Choices[0].Logprobs = &api.Logprobs{Content: a.lps}
	}
	return resp
}

// endTools ends the tool-call parser. An answer cut by its length limit
// drops a call it had begun and not finished: the call is incomplete and
// its markup is not answer text (docs/API.md, "Tool calls cut by
// max_tokens"); the text before it stays content and finish_reason stays
// "length".
func (a *answer) endTools(f scheduler.FinishReason) []models.ToolChunk {
	if f == scheduler.FinishLength {
		return a.tp.Cut()
	}
	return a.tp.Flush()
}

// finishReason is "tool_calls" for an answer that stopped after making
// calls, else the scheduler's reason.
func (a *answer) finishReason(f scheduler.FinishReason, calls bool) string {
	if calls && f == scheduler.FinishStop {
		return api.FinishToolCalls
	}
	return string(f)
}

// chunks appends to out the parts of a stream that event ev makes: the
// role chunk first of all, then reasoning, content and tool-call deltas,
// and after the final event the finish chunk and the usage chunk (or an
// error event when generation failed). The writer adds "[DONE]". ev must
// not be a cancellation.
func (a *answer) chunks(ev scheduler.Event, out []part) []part {
	if !a.roleSent {
		a.roleSent = true
		ch := a.base()
		ch.ExecutableData, ch.ConversationID, ch.ToolThought = api.RawEmptyArray, api.RawNull, api.RawEmptyArray
		empty := ""
		ch.Choices = []api.ChunkChoice{{Delta: api.Delta{Role: api.RoleAssistant, Content: &empty}}}
		out = append(out, part{kind: partChunk, ch: ch})
	}
	if a.j.req.Logprobs {
		a.lps = append(a.lps, wireLogprobs(ev.Logprobs)...)
	}
	for _, f := range ev.Fragments {
		if f.Thought {
			out = append(out, part{kind: partThought, text: a.addThought(f)})
			continue
		}
		// Logprobs of tokens whose text was held back (a possible stop
		// string) go with the chunk that carries their text.
		var lp *api.Logprobs
		if len(a.lps) > 0 {
			lp, a.lps = &api.Logprobs{Content: a.lps}, nil
		}
		if a.tp != nil {
			out = a.toolParts(a.tp.Push(f.Text), &lp, out)
			if lp != nil { // text held by the parser: keep its logprobs for later
				a.lps = append(lp.Content, a.lps...)
			}
			continue
		}
		if lp == nil {
			out = append(out, part{kind: partText, text: f.Text})
			continue
		}
		text := f.Text
		out = append(out, a.chunk(api.Delta{Content: &text}, lp, nil))
	}
	if !ev.Done {
		return out
	}
	if ev.Finish == scheduler.FinishError {
		return append(out, part{kind: partError, err: eventError(ev)})
	}
	var lp *api.Logprobs
	if len(a.lps) > 0 {
		lp, a.lps = &api.Logprobs{Content: a.lps}, nil
	}
	if a.tp != nil {
		out = a.toolParts(a.endTools(ev.Finish), &lp, out)
	}
	fin := a.finishReason(ev.Finish, a.ncalls > 0)
	out = append(out, a.chunk(api.Delta{}, lp, &fin))
	if a.j.req.IncludeUsage {
		ub, _ := json.Marshal(wireUsage(ev.Usage))
		ch := a.base()
		ch.Choices = []api.ChunkChoice{}
		ch.Usage = ub
		out = append(out, part{kind: partChunk, ch: ch})
	}
	return out
}

// toolParts turns the tool-call parser's output into parts: content, and
// tool-call deltas. *lp goes with the first content. The first call's
// chunk carries the reasoning so far as tool_thought.
func (a *answer) toolParts(chs []models.ToolChunk, lp **api.Logprobs, out []part) []part {
	for _, tc := range chs {
		if tc.Call == nil && *lp == nil {
			out = append(out, part{kind: partText, text: tc.Content})
			continue
		}
		if tc.Call == nil {
			text := tc.Content
			out = append(out, a.chunk(api.Delta{Content: &text}, *lp, nil))
			*lp = nil
			continue
		}
		p := a.chunk(api.Delta{ToolCalls: []api.ToolCallDelta{wireDeltaCall(tc.Call)}}, nil, nil)
		if a.ncalls == 0 {
			p.ch.ToolThought, _ = json.Marshal(thoughtList(a.thoughts))
		}
		if tc.Call.ID != "" {
			a.ncalls++
		}
		out = append(out, p)
	}
	return out
}

// thoughtList drops empty blocks (the parser already trims them).
func thoughtList(ts []string) []string {
	out := []string{}
	for _, t := range ts {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func wireLogprobs(in []scheduler.TokenLogprob) []api.TokenLogprob {
	out := make([]api.TokenLogprob, 0, len(in))
	for _, t := range in {
		e := api.TokenLogprob{Token: string(t.Text), Logprob: t.Logprob, Bytes: bytesOf(t.Text), TopLogprobs: []api.TopLogprob{}}
		for _, a := range t.Top {
			e.TopLogprobs = append(e.TopLogprobs, api.TopLogprob{Token: string(a.Text), Logprob: a.Logprob, Bytes: bytesOf(a.Text)})
		}
		out = append(out, e)
	}
	return out
}

func bytesOf(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

func wireUsage(u scheduler.Usage) api.Usage {
	return api.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens,
		TotalTokens: u.PromptTokens + u.CompletionTokens, PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: u.CachedTokens}}
}
