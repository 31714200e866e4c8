package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server/api"
)

// POST /v1/responses: OpenAI's Responses API over the chat path. The body
// is decoded into a ChatRequest (responses_decode.go), continued from a
// stored response when previous_response_id asks (responses_store.go),
// run through generate like a chat completion, and answered as a
// response object or its typed events (responses_answer.go).

func (s *Server) responses(c *gin.Context) {
	t0 := time.Now()
	if !s.admit(c) {
		return
	}
	r, ok := readRequest(c, decodeResponsesRequest)
	if !ok {
		return
	}
	if aerr := s.resolveConversation(r); aerr != nil {
		WriteError(c, aerr)
		return
	}
	req := &r.chat
	s.generate(c, t0, req, responsesParam, func(j *chatJob, st *scheduler.Stream, log *slog.Logger) scheduler.Event {
		b := newRespBuilder(j, r.base(NewResponseID(), t0.Unix()))
		SetRequestID(c, b.resp.ID)
		var final scheduler.Event
		if req.Stream {
			final = s.streamResponse(c, b, st, log)
		} else {
			final = s.completeResponse(c, b, st, log)
		}
		if final.Done && (final.Finish == scheduler.FinishStop || final.Finish == scheduler.FinishLength) && r.store {
			s.stored.put(b.resp.ID, append(req.Messages[r.history:len(req.Messages):len(req.Messages)], b.conversation()))
		}
		return final
	})
}

// NewResponseID returns "resp_" and 24 characters from [A-Za-z0-9].
func NewResponseID() string { return "resp_" + randomString(24) }

// resolveConversation fills the chat request's messages: the instructions,
// the stored conversation of previous_response_id, then the input; and
// checks that every function_call_output answers an earlier call.
func (s *Server) resolveConversation(r *responsesRequest) *APIError {
	var msgs []ChatMessage
	if r.instructions != nil {
		msgs = append(msgs, ChatMessage{Role: RoleSystem, Content: *r.instructions, HasContent: true})
	}
	r.history = len(msgs)
	if r.previousID != "" {
		prev, ok := s.stored.get(r.previousID)
		if !ok {
			return badRequest(CodeInvalidValue, "previous_response_id",
				"Previous response with id %s not found: it is unknown to this server, older than %s, pushed out by the %d kept, stored with store:false, or kept by another replica (send x-session-id to stay on one)",
				quotedStr(r.previousID), s.stored.ttl, s.stored.max)
		}
		msgs = append(msgs, prev...)
	}
	calls := map[string]bool{}
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			calls[tc.ID] = true
		}
	}
	for i, m := range r.input {
		for _, tc := range m.ToolCalls {
			calls[tc.ID] = true
		}
		if m.Role == RoleTool && !calls[m.ToolCallID] {
			return badRequest(CodeInvalidValue, r.inputParam[i]+".call_id",
				"No function_call with call_id %s comes before this function_call_output; send the call in input or continue its response with previous_response_id",
				quotedStr(m.ToolCallID))
		}
	}
	r.chat.Messages = append(msgs, r.input...)
	return nil
}

// responsesParam names the Responses field of an error the chat path
// answers about its own (messages, response_format).
func responsesParam(e *APIError) *APIError {
	out := *e
	for _, m := range []struct{ chat, resp string }{
		{"response_format.json_schema.schema", "text.format.schema"},
		{"response_format", "text.format"},
		{"messages", "input"},
		{"max_tokens", "max_output_tokens"},
	} {
		if strings.HasPrefix(out.Param, m.chat) {
			out.Param = m.resp + strings.TrimPrefix(out.Param, m.chat)
			out.Message = strings.ReplaceAll(out.Message, m.chat, m.resp)
			break
		}
	}
	return &out
}

// base is the response object before generation: the request's settings.
func (r *responsesRequest) base(id string, created int64) api.Response {
	c := &r.chat
	resp := api.Response{
		ID: id, Object: api.ObjectResponse, CreatedAt: created, Model: c.Model, Instructions: r.instructions,
		ParallelToolCalls: c.ParallelToolCalls, Store: r.store, Temperature: c.Temperature, TopP: c.TopP,
		Text: api.ResponseText{Format: r.format}, ToolChoice: r.toolChoice, Tools: r.tools, Truncation: "disabled",
		Metadata: r.metadata,
	}
	if resp.Metadata == nil {
		resp.Metadata = map[string]string{}
	}
	if r.maxOutput > 0 {
		v := r.maxOutput
		resp.MaxOutputTokens = &v
	}
	if r.previousID != "" {
		resp.PreviousResponseID = &r.previousID
	}
	if c.User != "" {
		resp.User = &c.User
	}
	return resp
}

// completeResponse answers a plain request once generation ends.
func (s *Server) completeResponse(c *gin.Context, b *respBuilder, st *scheduler.Stream, log *slog.Logger) scheduler.Event {
	ctx := c.Request.Context()
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			if err != io.EOF {
				c.Set(ctxAbandoned, true)
			}
			return scheduler.Event{Finish: scheduler.FinishCancelled}
		}
		if ev.Done && ev.Finish == scheduler.FinishCancelled {
			c.Set(ctxAbandoned, true)
			return ev
		}
		if ev.Done && ev.Finish == scheduler.FinishError {
			log.Warn("generation failed", "err", ev.Err)
			WriteError(c, eventError(ev))
			return ev
		}
		b.add(ev)
		b.take()
		if ev.Done {
			c.JSON(http.StatusOK, &b.resp)
			return ev
		}
	}
}

// eventWriter writes the typed events of a Responses stream through
// chat's sseWriter (the same deadline per write).
type eventWriter struct{ *sseWriter }

func (w *eventWriter) events(evs []api.ResponseEvent) {
	w.buf = w.buf[:0]
	for i := range evs {
		b, err := api.AppendJSONEvent(w.buf, evs[i].Type, &evs[i])
		if err != nil {
			w.err = fmt.Errorf("encode event: %w", err)
			return
		}
		w.buf = b
	}
	w.write(w.buf)
}

// streamResponse answers a streaming request as typed events. Headers are
// committed at the first event (or keep-alive), so a failure before it is
// still a plain JSON error; a failure after it is an error event and
// response.failed.
func (s *Server) streamResponse(c *gin.Context, b *respBuilder, st *scheduler.Stream, log *slog.Logger) scheduler.Event {
	w := &eventWriter{s.newSSEWriter(c)}
	committed := false
	commit := func() {
		if committed {
			return
		}
		committed = true
		api.SetSSEHeaders(c.Writer.Header())
		c.Status(http.StatusOK)
		c.Writer.WriteHeaderNow()
		b.start()
		w.events(b.take())
	}
	keep := time.NewTicker(s.opts.KeepAlive)
	defer keep.Stop()
	for {
		ev, ok := awaitEvent(c, st, keep, func() {
			commit()
			w.write([]byte(api.KeepAliveEvent))
		}, func() error { return w.err }, func() bool { return committed }, log)
		if !ok {
			return ev
		}
		commit()
		b.add(ev)
		w.events(b.take())
		if ev.Done {
			return ev
		}
	}
}
