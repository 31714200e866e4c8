package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server/api"
)

// POST /v1/completions: OpenAI's legacy text completions (docs/API.md,
// "Text completions"). The prompt goes to the scheduler as raw text, with
// no chat template, tokenized with BOS as the model wants; every choice
// (prompts times n) is a scheduler request of its own, with the same
// prefix reuse, queueing and cancellation as chat. completions_decode.go
// validates the body; completions_answer.go builds the answer.

// completionJob is one text completion request on its way through the
// handler.
type completionJob struct {
	id      string
	created int64
	model   string
	fp      string
	req     *CompletionRequest
	prompts []completionPrompt
	choices []textChoice // prompts times n, by index
}

// completionPrompt is one prompt as the scheduler gets it.
type completionPrompt struct {
	tokens []engine.Token
	echo   string // the prompt's text, put before the completion with echo
	budget int    // most tokens one of its choices may generate
}

// choiceEvent is an event of one choice's stream; gone: the request's
// context ended before the choice did.
type choiceEvent struct {
	i    int
	ev   scheduler.Event
	gone bool
}

func (s *Server) completions(c *gin.Context) {
	t0 := time.Now()
	if !s.admit(c) {
		return
	}
	req, ok := readRequest(c, DecodeCompletionRequest)
	if !ok {
		return
	}
	m, release, modelID, ok := s.acquire(c, req.Base.Model)
	if !ok {
		return
	}
	defer release()
	prompts, aerr := buildCompletionPrompts(m, req)
	if aerr != nil {
		WriteError(c, aerr)
		return
	}
	info := m.Tok.Info()
	sp, aerr := samplingParams(&req.Base, info.NVocab, m.Sampling)
	if aerr != nil {
		WriteError(c, aerr)
		return
	}
	reserve := 0
	for _, p := range prompts {
		reserve += req.N * (len(p.tokens) + p.budget)
	}
	tokRes, aerr := s.reserveTokens(c, reserve)
	if aerr != nil {
		WriteError(c, aerr)
		return
	}
	j := &completionJob{id: NewCompletionID(), created: t0.Unix(), model: req.Base.Model, fp: m.Fingerprint,
		req: req, prompts: prompts, choices: make([]textChoice, len(prompts)*req.N)}
	for i := range j.choices {
		j.choices[i] = newTextChoice(i, prompts[i/req.N].echo, req)
	}
	defer func() {
		used, prompt, completion := j.usedTokens()
		settleTokens(c, tokRes, used)
		logUsage(c, req.Base.Model, prompt, completion)
	}()
	SetRequestID(c, j.id)
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()

	// The readers below end when ctx does: cancel runs first, then the
	// wait (deferred in this order).
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	before := time.Since(t0)
	evc := make(chan choiceEvent)
	for i := range j.choices {
		p := &prompts[i/req.N]
		csp := sp
		if csp.HasSeed {
			csp.Seed += uint64(i % req.N) // the choices of one prompt differ
		}
		sr := scheduler.Request{Prompt: p.tokens, MaxTokens: p.budget, Reserve: p.budget, Sampling: csp,
			Stop: req.Base.Stop, Logprobs: req.Base.Logprobs, TopLogprobs: req.Base.TopLogprobs, SessionID: SessionIDFrom(c)}
		st, err := m.Sched.Submit(ctx, sr)
		if err != nil {
			// The choices already submitted end with ctx (cancel, deferred).
			WriteError(c, ErrorFor(err))
			return
		}
		wg.Add(1)
		go readChoice(ctx, &wg, i, st, evc)
	}
	log := s.log.With("req_id", j.id, "stream", req.Base.Stream, "choices", len(j.choices))
	if sid := SessionIDFrom(c); sid != "" {
		log = log.With("session", sid)
	}
	if req.Base.Stream {
		s.streamCompletion(c, j, evc, log)
	} else {
		s.completeText(c, j, evc, log)
	}
	for i := range j.choices {
		s.observeDone(modelID, t0, before, j.choices[i].final)
	}
	_, prompt, completion := j.usedTokens()
	log.Debug("text completion", "prompt_tokens", prompt, "completion_tokens", completion, "dur", time.Since(t0))
}

// readChoice forwards the events of one choice's stream to evc until its
// final event, or until ctx ends.
func readChoice(ctx context.Context, wg *sync.WaitGroup, i int, st *scheduler.Stream, evc chan<- choiceEvent) {
	defer wg.Done()
	for {
		ev, err := st.Next(ctx)
		ce := choiceEvent{i: i, ev: ev, gone: err != nil}
		select {
		case evc <- ce:
		case <-ctx.Done():
			return
		}
		if err != nil || ev.Done {
			return
		}
	}
}

// buildCompletionPrompts tokenizes the prompts (text with BOS as the
// vocabulary asks and special-token text parsed, as llama.cpp's server
// does; token ids as sent), wraps them in the FIM tokens when a suffix is
// given, and sizes each one's budget.
func buildCompletionPrompts(m *Model, req *CompletionRequest) ([]completionPrompt, *APIError) {
	info := m.Tok.Info()
	fim := req.Suffix != ""
	if fim && !info.HasFIM() {
		return nil, badRequest(CodeUnsupportedValue, "suffix",
			"suffix (fill-in-the-middle) needs a model with FIM tokens, and model %s has none; drop suffix or use a code model with FIM tokens", quotedStr(req.Base.Model))
	}
	var suffix []engine.Token
	if fim {
		var err error
		if suffix, err = m.Tok.Tokenize(req.Suffix, false, true); err != nil {
			return nil, badRequest(CodeInvalidValue, "suffix", "The suffix could not be tokenized: %v", err)
		}
	}
	out := make([]completionPrompt, len(req.Prompts))
	for i, p := range req.Prompts {
		param := "prompt"
		if len(req.Prompts) > 1 {
			param = fmt.Sprintf("prompt[%d]", i)
		}
		var toks []engine.Token
		if p.IsTokens {
			var echo strings.Builder
			for k, t := range p.Tokens {
				if int(t) >= info.NVocab {
					return nil, badRequest(CodeInvalidValue, fmt.Sprintf("%s[%d]", param, k),
						"token id %d is not in the model's vocabulary of %d tokens", t, info.NVocab)
				}
				if t != info.BOS {
					echo.Write(m.Tok.Piece(t))
				}
			}
			toks = p.Tokens
			out[i].echo = echo.String()
		} else {
			var err error
			if toks, err = m.Tok.Tokenize(p.Text, !fim, true); err != nil {
				return nil, badRequest(CodeInvalidValue, param, "The prompt could not be tokenized: %v", err)
			}
			out[i].echo = p.Text
		}
		if fim {
			t := make([]engine.Token, 0, len(toks)+len(suffix)+4)
			if info.AddBOS && info.BOS >= 0 {
				t = append(t, info.BOS)
			}
			t = append(append(t, info.FIMPre), toks...)
			t = append(append(t, info.FIMSuf), suffix...)
			toks = append(t, info.FIMMid)
		}
		if len(toks) == 0 {
			return nil, badRequest(CodeInvalidValue, param, "The prompt is empty after tokenizing")
		}
		limit := info.NCtxSeq
		if len(toks) >= limit {
			aerr := contextTooLong(info, len(toks))
			// contextTooLong speaks of chat's messages.
			aerr.Param = param
			aerr.Message = strings.Replace(aerr.Message, "shorten the messages", "shorten the prompt", 1)
			return nil, aerr
		}
		out[i].tokens = toks
		out[i].budget = int(min(req.Base.MaxTokens, int64(limit-len(toks))))
	}
	return out, nil
}

// completeText answers a non-streamed request once every choice ended.
func (s *Server) completeText(c *gin.Context, j *completionJob, evc <-chan choiceEvent, log *slog.Logger) {
	ctx := c.Request.Context()
	for left := len(j.choices); left > 0; {
		var ce choiceEvent
		select {
		case ce = <-evc:
		case <-ctx.Done():
			c.Set(ctxAbandoned, true) // client gone; the scheduler reaps the sequences
			return
		}
		if ce.gone {
			c.Set(ctxAbandoned, true)
			return
		}
		ch := &j.choices[ce.i]
		ch.add(ce.ev)
		if !ce.ev.Done {
			continue
		}
		left--
		switch ce.ev.Finish {
		case scheduler.FinishError:
			log.Warn("generation failed", "choice", ce.i, "err", ce.ev.Err)
			WriteError(c, eventError(ce.ev))
			return
		case scheduler.FinishCancelled:
			c.Set(ctxAbandoned, true) // only the client's context cancels
			return
		}
	}
	c.JSON(http.StatusOK, j.completion())
}

// streamCompletion answers a streamed request: an event per choice's new
// text, the usage event with include_usage, then [DONE]. Headers are
// committed at the first event (or keep-alive), so an early failure is
// still a plain JSON error.
func (s *Server) streamCompletion(c *gin.Context, j *completionJob, evc <-chan choiceEvent, log *slog.Logger) {
	ctx := c.Request.Context()
	w := s.newSSEWriter(c)
	committed := false
	commit := func() {
		if !committed {
			committed = true
			api.SetSSEHeaders(c.Writer.Header())
			c.Status(http.StatusOK)
			c.Writer.WriteHeaderNow()
			w.w.Flush()
		}
	}
	keep := time.NewTicker(s.opts.KeepAlive)
	defer keep.Stop()
	for left := len(j.choices); left > 0; {
		select {
		case <-ctx.Done():
			c.Set(ctxAbandoned, true)
			return
		case <-keep.C:
			commit()
			w.write([]byte(api.KeepAliveEvent))
		case ce := <-evc:
			if ce.gone || ce.ev.Done && ce.ev.Finish == scheduler.FinishCancelled {
				c.Set(ctxAbandoned, true)
				return
			}
			if ce.ev.Done && ce.ev.Finish == scheduler.FinishError {
				log.Warn("generation failed", "choice", ce.i, "err", ce.ev.Err)
				j.choices[ce.i].final = ce.ev
				if !committed {
					WriteError(c, eventError(ce.ev))
					return
				}
				w.event(eventError(ce.ev).Body())
				w.write([]byte(api.DoneEvent))
				return
			}
			if ce.ev.Done {
				left--
			}
			if ch, ok := j.choices[ce.i].chunk(ce.ev); ok {
				commit()
				w.event(j.object([]api.CompletionChoice{ch}, nil))
			}
		}
		if w.err != nil {
			c.Set(ctxAbandoned, true)
			log.Debug("client write failed", "err", w.err)
			return
		}
	}
	commit()
	if j.req.Base.IncludeUsage {
		w.event(j.object([]api.CompletionChoice{}, j.usage()))
	}
	w.write([]byte(api.DoneEvent))
}

// textChoice is one choice of a request, as its events arrive.
type textChoice struct {
	index   int
	echo    string                  // sent before the first text (echo), else ""
	text    []byte                  // the whole text so far (not streamed answers)
	lp      *api.CompletionLogprobs // nil without logprobs
	offset  int                     // code points of the choice's text so far
	started bool                    // stream: the echo was sent
	final   scheduler.Event
}

func newTextChoice(index int, prompt string, req *CompletionRequest) textChoice {
	ch := textChoice{index: index}
	if req.Echo {
		ch.echo = prompt
		ch.text = append(ch.text, prompt...)
		ch.offset = utf8.RuneCountInString(prompt)
	}
	if req.Logprobs >= 0 {
		ch.lp = &api.CompletionLogprobs{Tokens: []string{}, TokenLogprobs: []float32{},
			TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
	}
	return ch
}

// add collects an event: its text and the legacy logprobs of its tokens.
func (ch *textChoice) add(ev scheduler.Event) {
	for _, f := range ev.Fragments {
		ch.text = append(ch.text, f.Text...)
	}
	ch.addLogprobs(ch.lp, ev.Logprobs)
	if ev.Done {
		ch.final = ev
	}
}

func (ch *textChoice) addLogprobs(lp *api.CompletionLogprobs, lps []scheduler.TokenLogprob) {
	if lp == nil {
		return
	}
	for _, t := range lps {
		top := make(map[string]float32, len(t.Top))
		for _, a := range t.Top {
			top[string(a.Text)] = a.Logprob
		}
		lp.Tokens = append(lp.Tokens, string(t.Text))
		lp.TokenLogprobs = append(lp.TokenLogprobs, t.Logprob)
		lp.TopLogprobs = append(lp.TopLogprobs, top)
		lp.TextOffset = append(lp.TextOffset, ch.offset)
		ch.offset += utf8.RuneCount(t.Text)
	}
}

// chunk is the stream's choice for an event: its new text (after the echo
// on the first), its tokens' logprobs, and the finish reason on the last.
// ok is false when there is nothing to send.
func (ch *textChoice) chunk(ev scheduler.Event) (c api.CompletionChoice, ok bool) {
	var text strings.Builder
	if !ch.started {
		ch.started = true
		text.WriteString(ch.echo)
	}
	for _, f := range ev.Fragments {
		text.WriteString(f.Text)
	}
	c = api.CompletionChoice{Text: text.String(), Index: ch.index}
	if ch.lp != nil && len(ev.Logprobs) > 0 {
		c.Logprobs = &api.CompletionLogprobs{}
		ch.addLogprobs(c.Logprobs, ev.Logprobs)
	}
	if ev.Done {
		ch.final = ev
		finish := string(ev.Finish)
		c.FinishReason = &finish
	}
	return c, c.Text != "" || c.Logprobs != nil || ev.Done
}

// object is the request's text_completion object with these choices.
func (j *completionJob) object(choices []api.CompletionChoice, u *api.Usage) api.Completion {
	return api.Completion{ID: j.id, Object: api.ObjectTextCompletion, Created: j.created, Model: j.model,
		SystemFingerprint: j.fp, Choices: choices, Usage: u}
}

// completion is the whole answer once every choice ended.
func (j *completionJob) completion() api.Completion {
	choices := make([]api.CompletionChoice, len(j.choices))
	for i := range j.choices {
		ch := &j.choices[i]
		finish := string(ch.final.Finish)
		choices[i] = api.CompletionChoice{Text: string(ch.text), Index: i, Logprobs: ch.lp, FinishReason: &finish}
	}
	return j.object(choices, j.usage())
}

// usage counts each prompt once (as OpenAI does with n above 1: its
// choices share it) and every choice's completion.
func (j *completionJob) usage() *api.Usage {
	_, prompt, completion := j.usedTokens()
	cached := 0
	for i := 0; i < len(j.choices); i += j.req.N {
		cached += j.choices[i].final.Usage.CachedTokens
	}
	return &api.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion,
		PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: cached}}
}

// usedTokens are the tokens the request used against its rate-limit
// reservation (every choice's prompt and completion), and the prompt and
// completion tokens of its usage.
func (j *completionJob) usedTokens() (used, prompt, completion int) {
	for i := range j.choices {
		u := j.choices[i].final.Usage
		used += u.PromptTokens + u.CompletionTokens
		completion += u.CompletionTokens
	}
	for i := range j.prompts {
		prompt += len(j.prompts[i].tokens)
	}
	return used, prompt, completion
}
