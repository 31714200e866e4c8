package server

import (
	"encoding/json"
	"strings"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/server/api"
)

// This file turns one request's scheduler events into a Responses answer:
// its output items (reasoning, message, function_call) and the typed
// events of a stream, in OpenAI's order. The same builder makes both, so
// a streamed response ends with the items a plain one has. It does no I/O.

// respBuilder builds one response.
type respBuilder struct {
	j    *chatJob
	tp   *models.ToolCallParser // nil: tool calls are not parsed
	resp api.Response
	seq  int64
	// events made since the last take (stream only reads them).
	events []api.ResponseEvent

	open     int // index in resp.Output of the open item; -1: none
	text     strings.Builder
	thoughts []string // reasoning blocks, by Block
	pending  string   // blank text held until it is known to be content
	messages int      // message items made
	calls    int      // function_call items made
}

func newRespBuilder(j *chatJob, base api.Response) *respBuilder {
	base.Status = api.ResponseInProgress
	base.Output = []api.OutputItem{}
	return &respBuilder{j: j, tp: j.toolParser(), resp: base, open: -1}
}

func intp(i int) *int { return &i }

func sptr(s string) *string { return &s }

var emptyList = &[]json.RawMessage{}

func (b *respBuilder) emit(ev api.ResponseEvent) {
	ev.SequenceNumber = b.seq
	b.seq++
	b.events = append(b.events, ev)
}

// snapshot is a copy of the response as it is now.
func (b *respBuilder) snapshot() *api.Response {
	r := b.resp
	r.Output = append([]api.OutputItem{}, b.resp.Output...)
	return &r
}

// start makes response.created and response.in_progress.
func (b *respBuilder) start() {
	b.emit(api.ResponseEvent{Type: api.EventResponseCreated, Response: b.snapshot()})
	b.emit(api.ResponseEvent{Type: api.EventResponseInProgress, Response: b.snapshot()})
}

// take returns the events made since the last take.
func (b *respBuilder) take() []api.ResponseEvent {
	evs := b.events
	b.events = b.events[:0:0]
	return evs
}

// openItem closes the open item unless it is of type typ, and opens one of
// typ when none is open.
func (b *respBuilder) openItem(typ string, it api.OutputItem) {
	if b.open >= 0 && b.resp.Output[b.open].Type == typ && typ != api.ItemFunctionCall {
		return
	}
	b.closeItem(api.ResponseCompleted)
	it.Type, it.Status = typ, api.ResponseInProgress
	b.resp.Output = append(b.resp.Output, it)
	b.open = len(b.resp.Output) - 1
	added := it
	b.emit(api.ResponseEvent{Type: api.EventItemAdded, OutputIndex: intp(b.open), Item: &added})
	b.text.Reset()
	switch typ {
	case api.ItemMessage:
		b.messages++
		b.emit(api.ResponseEvent{Type: api.EventPartAdded, OutputIndex: intp(b.open), ItemID: it.ID, ContentIndex: intp(0),
			Part: &api.ContentPart{Type: api.PartOutputText, Annotations: emptyList, Logprobs: emptyList}})
	case api.ItemReasoning:
		b.emit(api.ResponseEvent{Type: api.EventPartAdded, OutputIndex: intp(b.open), ItemID: it.ID, ContentIndex: intp(0),
			Part: &api.ContentPart{Type: api.PartReasoningText}})
	case api.ItemFunctionCall:
		b.calls++
	}
}

// closeItem ends the open item with status.
func (b *respBuilder) closeItem(status string) {
	if b.open < 0 {
		return
	}
	i := b.open
	it := &b.resp.Output[i]
	text := b.text.String()
	switch it.Type {
	case api.ItemMessage:
		part := api.ContentPart{Type: api.PartOutputText, Text: text, Annotations: emptyList, Logprobs: emptyList}
		b.emit(api.ResponseEvent{Type: api.EventTextDone, OutputIndex: intp(i), ItemID: it.ID, ContentIndex: intp(0), Text: sptr(text), Logprobs: emptyList})
		b.emit(api.ResponseEvent{Type: api.EventPartDone, OutputIndex: intp(i), ItemID: it.ID, ContentIndex: intp(0), Part: &part})
		it.Content = []api.ContentPart{part}
	case api.ItemReasoning:
		part := api.ContentPart{Type: api.PartReasoningText, Text: text}
		b.emit(api.ResponseEvent{Type: api.EventReasoningDone, OutputIndex: intp(i), ItemID: it.ID, ContentIndex: intp(0), Text: sptr(text)})
		b.emit(api.ResponseEvent{Type: api.EventPartDone, OutputIndex: intp(i), ItemID: it.ID, ContentIndex: intp(0), Part: &part})
		it.Content = []api.ContentPart{part}
	case api.ItemFunctionCall:
		it.Arguments = sptr(text)
		b.emit(api.ResponseEvent{Type: api.EventArgumentsDone, OutputIndex: intp(i), ItemID: it.ID, Arguments: sptr(text), Name: it.Name})
	}
	it.Status = status
	done := *it
	b.emit(api.ResponseEvent{Type: api.EventItemDone, OutputIndex: intp(i), Item: &done})
	b.open = -1
}

// delta appends text to the open item and makes its delta event.
func (b *respBuilder) delta(text string) {
	if text == "" {
		return
	}
	it := &b.resp.Output[b.open]
	b.text.WriteString(text)
	ev := api.ResponseEvent{OutputIndex: intp(b.open), ItemID: it.ID, Delta: sptr(text)}
	switch it.Type {
	case api.ItemMessage:
		ev.Type, ev.ContentIndex, ev.Logprobs = api.EventTextDelta, intp(0), emptyList
	case api.ItemReasoning:
		ev.Type, ev.ContentIndex = api.EventReasoningDelta, intp(0)
	case api.ItemFunctionCall:
		ev.Type = api.EventArgumentsDelta
	}
	b.emit(ev)
}

func (b *respBuilder) thought(f scheduler.Fragment) {
	text := f.Text
	if f.Block >= len(b.thoughts) && f.Block > 0 {
		text = "\n\n" + text
	}
	for len(b.thoughts) <= f.Block {
		b.thoughts = append(b.thoughts, "")
	}
	b.thoughts[f.Block] += f.Text
	if b.open < 0 || b.resp.Output[b.open].Type != api.ItemReasoning {
		text = strings.TrimLeft(text, "\n")
	}
	b.openItem(api.ItemReasoning, api.OutputItem{ID: "rs_" + randomString(24), Summary: &[]api.ContentPart{}})
	b.delta(text)
}

// content takes answer text: blank text is held until text that is not
// blank follows (blank text between reasoning and a tool call is no
// message).
func (b *respBuilder) content(text string) {
	if b.open < 0 || b.resp.Output[b.open].Type != api.ItemMessage {
		if strings.TrimSpace(b.pending+text) == "" {
			b.pending += text
			return
		}
		b.openItem(api.ItemMessage, api.OutputItem{ID: "msg_" + randomString(24), Role: RoleAssistant})
	}
	text, b.pending = b.pending+text, ""
	b.delta(text)
}

func (b *respBuilder) toolChunks(chs []models.ToolChunk) {
	for _, ch := range chs {
		if ch.Call == nil {
			b.content(ch.Content)
			continue
		}
		if ch.Call.ID != "" {
			b.pending = ""
			b.openItem(api.ItemFunctionCall, api.OutputItem{ID: "fc_" + randomString(24), CallID: ch.Call.ID, Name: ch.Call.Name, Arguments: sptr("")})
		}
		if b.open >= 0 && b.resp.Output[b.open].Type == api.ItemFunctionCall {
			b.delta(ch.Call.Arguments)
		}
	}
}

// add takes one event. The final event ends the response: see finish.
func (b *respBuilder) add(ev scheduler.Event) {
	for _, f := range ev.Fragments {
		switch {
		case f.Thought:
			b.thought(f)
		case b.tp != nil:
			b.toolChunks(b.tp.Push(f.Text))
		default:
			b.content(f.Text)
		}
	}
	if ev.Done {
		b.finish(ev)
	}
}

// finish ends the response on its final event: the last items closed,
// status completed, incomplete (max_output_tokens) or failed, usage, and
// the last event.
func (b *respBuilder) finish(ev scheduler.Event) {
	if ev.Finish == scheduler.FinishError {
		b.closeItem(api.ResponseIncomplete)
		e := eventError(ev)
		b.emit(api.ResponseEvent{Type: api.EventError, Code: e.Code, Message: e.Message})
		b.resp.Status = api.ResponseFailed
		b.resp.Error = &api.ResponseError{Code: e.Code, Message: e.Message}
		b.emit(api.ResponseEvent{Type: api.EventResponseFailed, Response: b.snapshot()})
		return
	}
	if b.tp != nil {
		if ev.Finish == scheduler.FinishLength {
			b.toolChunks(b.tp.Cut())
		} else {
			b.toolChunks(b.tp.Flush())
		}
	}
	if b.messages == 0 && b.calls == 0 {
		// Every answer without calls has a message, if only an empty one.
		b.openItem(api.ItemMessage, api.OutputItem{ID: "msg_" + randomString(24), Role: RoleAssistant})
		b.delta(b.pending)
	}
	status, last := api.ResponseCompleted, api.EventResponseCompleted
	if ev.Finish == scheduler.FinishLength {
		status, last = api.ResponseIncomplete, api.EventResponseIncomplete
		b.resp.IncompleteDetails = &api.IncompleteDetails{Reason: "max_output_tokens"}
	}
	b.closeItem(status)
	b.resp.Status = status
	u := ev.Usage
	b.resp.Usage = &api.ResponseUsage{
		InputTokens: u.PromptTokens, InputTokensDetails: api.InputTokensDetails{CachedTokens: u.CachedTokens},
		OutputTokens: u.CompletionTokens, OutputTokensDetails: api.OutputTokenDetails{ReasoningTokens: b.reasoningTokens(u.CompletionTokens)},
		TotalTokens: u.PromptTokens + u.CompletionTokens,
	}
	b.emit(api.ResponseEvent{Type: last, Response: b.snapshot()})
}

// reasoningTokens counts the tokens of the reasoning by tokenizing its
// text again (the scheduler counts tokens, not which were reasoning), at
// most the completion's tokens.
func (b *respBuilder) reasoningTokens(completion int) int {
	text := strings.Join(b.thoughts, "")
	if text == "" || b.j.tok == nil {
		return 0
	}
	toks, err := b.j.tok.Tokenize(text, false, false)
	if err != nil {
		return 0
	}
	return min(len(toks), completion)
}

// conversation is the response's output as the assistant turn a later
// request continues (previous_response_id): its text, calls and reasoning.
func (b *respBuilder) conversation() ChatMessage {
	m := ChatMessage{Role: RoleAssistant, ReasoningContent: strings.Join(thoughtList(b.thoughts), "\n\n")}
	var text strings.Builder
	for _, it := range b.resp.Output {
		switch it.Type {
		case api.ItemMessage:
			for _, p := range it.Content {
				text.WriteString(p.Text)
			}
		case api.ItemFunctionCall:
			m.ToolCalls = append(m.ToolCalls, MessageToolCall{ID: it.CallID, Name: it.Name, Arguments: *it.Arguments})
		}
	}
	m.Content = text.String()
	m.HasContent = m.Content != "" || len(m.ToolCalls) == 0
	return m
}
