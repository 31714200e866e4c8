package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/sampler"
	"github.com/asi1d/asi1d/server/api"
)

// chatJob is one chat completion on its way through the handler.
type chatJob struct {
	id      string
	created int64
	model   string
	fp      string
	req     *ChatRequest
	tok     Tokenizer
	out     outputPlan
	// callID makes tool-call ids; nil: newCallID.
	callID func() string
}

// toolParser returns the request's tool-call parser, nil when tool calls
// are not read from this answer.
func (j *chatJob) toolParser() *models.ToolCallParser {
	if !j.out.tools {
		return nil
	}
	newID := j.callID
	if newID == nil {
		newID = newCallID
	}
	return models.NewToolCallParser(j.out.format, j.out.names, j.out.parallel, newID)
}

func (s *Server) chat(c *gin.Context) {
	t0 := time.Now()
	if !s.admit(c) {
		return
	}
	req, ok := readRequest(c, DecodeChatRequest)
	if !ok {
		return
	}
	s.generate(c, t0, req, nil, func(j *chatJob, st *scheduler.Stream, log *slog.Logger) scheduler.Event {
		if req.Stream {
			return s.stream(c, j, st, log)
		}
		return s.complete(c, j, st, log)
	})
}

// answerFunc writes the answer of a submitted job and returns its final
// event (a cancellation when the client left).
type answerFunc func(j *chatJob, st *scheduler.Stream, log *slog.Logger) scheduler.Event

// generate runs a validated chat request through the model: loading,
// prompt, limits, sampling, grammar, the scheduler; answer writes what the
// scheduler produces (chat's JSON or stream, the Responses API's). remap,
// when set, rewrites the errors generate answers itself (their param names
// a field of the endpoint's own request).
func (s *Server) generate(c *gin.Context, t0 time.Time, req *ChatRequest, remap func(*APIError) *APIError, answer answerFunc) {
	fail := func(e *APIError) {
		if remap != nil {
			e = remap(e)
		}
		WriteError(c, e)
	}
	m, release, modelID, ok := s.acquire(c, req.Model)
	if !ok {
		return
	}
	defer release()
	prompt, aerr := s.buildPrompt(m, req)
	if aerr != nil {
		fail(aerr)
		return
	}
	info := m.Tok.Info()
	limit := info.NCtxSeq
	if len(prompt.tokens) >= limit {
		fail(contextTooLong(info, len(prompt.tokens)))
		return
	}
	budget := limit - len(prompt.tokens)
	if req.MaxTokens > 0 && req.MaxTokens < int64(budget) {
		budget = int(req.MaxTokens)
	}
	sp, aerr := samplingParams(req, info.NVocab, m.Sampling)
	if aerr != nil {
		fail(aerr)
		return
	}
	tokRes, aerr := s.reserveTokens(c, len(prompt.tokens)+completionReserve(req.MaxTokens, budget))
	if aerr != nil {
		fail(aerr)
		return
	}
	usedTokens := 0 // the reservation's correction; 0 if it never ran
	defer func() { settleTokens(c, tokRes, usedTokens) }()
	sr := scheduler.Request{
		Prompt: prompt.tokens, MaxTokens: budget, Reserve: int(min(req.MaxTokens, int64(budget))), Sampling: sp, Stop: req.Stop,
		Logprobs: req.Logprobs, TopLogprobs: req.TopLogprobs, SessionID: SessionIDFrom(c),
	}
	closeThought := ""
	var thoughts *models.ThoughtParser
	if m.Tags.Open != "" {
		opened := models.PromptOpensThought(prompt.text, m.Tags.Open)
		if opened {
			closeThought = m.Tags.Close
		}
		thoughts = models.NewThoughtParser(m.Tags, opened)
		sr.Splitter = &splitter{p: thoughts}
	}
	plan, aerr := s.planOutput(m, req, closeThought)
	if aerr != nil {
		fail(aerr)
		return
	}
	sr.Grammar, sr.GrammarTriggers = plan.grammar, plan.triggers
	if thoughts != nil && plan.grammar != nil && len(plan.triggers) == 0 {
		// The grammar makes the whole answer JSON (after the close tag of a
		// thought the prompt opened): a tag in one of its strings is text.
		thoughts.Constrain()
	}
	sr.Markers = markerTokens(info.SpecialTokens, m.Tags, thoughts != nil, plan)

	j := &chatJob{id: NewCompletionID(), created: t0.Unix(), model: req.Model, fp: m.Fingerprint, req: req,
		tok: m.Tok, out: plan}
	SetRequestID(c, j.id)
	ctx := c.Request.Context()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	// Time spent here before the scheduler saw the request (reading,
	// validation, template, tokenizing, grammar) belongs to TTFT too.
	before := time.Since(t0)
	st, err := m.Sched.Submit(ctx, sr)
	if err != nil {
		if sr.Grammar != nil {
			sr.Grammar.Close() // not handed over
		}
		fail(ErrorFor(err))
		return
	}
	log := s.log.With("req_id", j.id, "stream", req.Stream)
	if plan.grammar != nil {
		log.Debug("grammar built", "dur", plan.build, "tools_forced", plan.forced)
	}
	if sid := SessionIDFrom(c); sid != "" {
		log = log.With("session", sid)
	}
	final := answer(j, st, log)
	usedTokens = final.Usage.PromptTokens + final.Usage.CompletionTokens
	logUsage(c, req.Model, final.Usage.PromptTokens, final.Usage.CompletionTokens)
	s.observeDone(modelID, t0, before, final)
	log.Debug("chat completion", "finish", final.Finish, "prompt_tokens", final.Usage.PromptTokens,
		"completion_tokens", final.Usage.CompletionTokens, "cached_tokens", final.Usage.CachedTokens,
		"dur", time.Since(t0))
}

// admit answers 503 while the server starts or drains; false when it did.
func (s *Server) admit(c *gin.Context) bool {
	if !s.models.Ready() {
		// Start-up: answer at once so that a balancer tries another replica.
		WriteError(c, ErrorFor(errModelLoading))
		return false
	}
	if s.draining.Load() {
		WriteError(c, ErrorFor(errShuttingDown))
		return false
	}
	return true
}

// acquire gets the named model for the request, loading it if it is not
// loaded: the request waits for it (bounded by its context and the load
// queue) before any answer byte. modelID is the catalog id the metrics are
// labelled with, never what the client wrote (an alias): the label's
// values are bounded by the catalog. When ok is false the error was
// answered; else release must be called.
func (s *Server) acquire(c *gin.Context, name string) (m *Model, release func(), modelID string, ok bool) {
	c.Set(ctxLogModel, name)
	m, release, err := s.models.Acquire(c.Request.Context(), name)
	if err != nil {
		if c.Request.Context().Err() != nil {
			c.Set(ctxAbandoned, true) // the client left while the model loaded
		}
		WriteError(c, ErrorFor(err))
		return nil, nil, "", false
	}
	modelID = name
	if st, ok := s.models.Status(name); ok {
		modelID = st.ID
	}
	c.Set(ctxMetricModel, modelID)
	return m, release, modelID, true
}

// observeDone records the metrics of a sequence that ended with stop or
// length: tokens, time to first token (before is the time the handler
// spent before submitting), inter-token gaps, queueing and the request's
// time since t0.
func (s *Server) observeDone(modelID string, t0 time.Time, before time.Duration, final scheduler.Event) {
	if !final.Done || final.Finish == scheduler.FinishCancelled {
		return
	}
	s.metrics.prompt.WithLabelValues(modelID).Add(float64(final.Usage.PromptTokens))
	s.metrics.completion.WithLabelValues(modelID).Add(float64(final.Usage.CompletionTokens))
	if final.FirstTok > 0 {
		s.metrics.ttft.WithLabelValues(modelID).Observe((before + final.FirstTok).Seconds())
	}
	itl := s.metrics.itl.WithLabelValues(modelID)
	for _, g := range final.Gaps {
		itl.Observe(g.Seconds())
	}
	s.metrics.queue.WithLabelValues(modelID).Observe(final.Queued.Seconds())
	s.metrics.e2e.WithLabelValues(modelID).Observe(time.Since(t0).Seconds())
}

// markerTokens are the special tokens whose text the request's parsers
// read: the reasoning tags when reasoning is split off, the tool-call
// markers when calls are parsed. The text of every other control token is
// dropped from the answer (scheduler.Request.Markers).
func markerTokens(special map[string]engine.Token, tags models.ThoughtTags, thoughts bool, plan outputPlan) []engine.Token {
	var texts []string
	if thoughts {
		texts = append(texts, tags.Open, tags.Close)
	}
	if plan.tools {
		texts = append(texts, plan.format.Markers()...)
	}
	var out []engine.Token
	for _, t := range texts {
		if tok, ok := special[t]; ok {
			out = append(out, tok)
		}
	}
	return out
}

// eventError maps a failed sequence to the error the client sees.
func eventError(ev scheduler.Event) *APIError {
	return ErrorFor(fmt.Errorf("generation failed: %w", ev.Err))
}

type builtPrompt struct {
	text   string
	tokens []engine.Token
}

// buildPrompt renders the messages with the model's template (or the plain
// rule) and tokenizes the result.
func (s *Server) buildPrompt(m *Model, req *ChatRequest) (builtPrompt, *APIError) {
	msgs := make([]models.Message, len(req.Messages))
	for i, cm := range req.Messages {
		mm := models.Message{Role: cm.Role, Content: cm.Content, HasContent: cm.HasContent, Name: cm.Name,
			ToolCallID: cm.ToolCallID, ReasoningContent: cm.ReasoningContent}
		for _, tc := range cm.ToolCalls {
			mm.ToolCalls = append(mm.ToolCalls, models.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		msgs[i] = mm
	}
	var (
		text                     string
		addSpecial, parseSpecial bool
	)
	if m.Template != nil {
		in := models.RenderInput{Messages: msgs, AddGenerationPrompt: true}
		for _, t := range req.Tools {
			in.Tools = append(in.Tools, t.Raw)
		}
		out, err := m.Template.Render(in)
		if err != nil {
			var re *models.RaiseError
			if errors.As(err, &re) {
				return builtPrompt{}, badRequest(CodeInvalidValue, "messages", "%s", re.Message)
			}
			return builtPrompt{}, badRequest(CodeInvalidValue, "messages", "The chat template could not render these messages: %v", err)
		}
		text = out
		// Templates write BOS themselves when they want it; add it only when
		// the vocabulary asks for it and the template did not.
		addSpecial = m.bosText == "" || !strings.HasPrefix(out, m.bosText)
		parseSpecial = true
	} else {
		text = models.RenderPlain(msgs)
		addSpecial = true
	}
	toks, err := m.Tok.Tokenize(text, addSpecial, parseSpecial)
	if err != nil {
		return builtPrompt{}, badRequest(CodeInvalidValue, "messages", "The prompt could not be tokenized: %v", err)
	}
	if len(toks) == 0 {
		return builtPrompt{}, badRequest(CodeInvalidValue, "messages", "The prompt is empty")
	}
	return builtPrompt{text: text, tokens: toks}, nil
}

func samplingParams(req *ChatRequest, nvocab int, d SamplingDefaults) (sampler.Params, *APIError) {
	p := sampler.Params{
		Temperature:      float32(req.Temperature),
		TopP:             float32(req.TopP),
		PresencePenalty:  float32(req.PresencePenalty),
		FrequencyPenalty: float32(req.FrequencyPenalty),
	}
	// The model's configured defaults fill what the request left out.
	if !req.HasTemperature && d.Temperature != nil {
		p.Temperature = float32(*d.Temperature)
	}
	if !req.HasTopP && d.TopP != nil {
		p.TopP = float32(*d.TopP)
	}
	if d.TopK != nil {
		p.TopK = *d.TopK
	}
	if d.MinP != nil {
		p.MinP = float32(*d.MinP)
	}
	if d.RepeatPenalty != nil {
		p.RepeatPenalty = float32(*d.RepeatPenalty)
	}
	if req.Seed != nil {
		p.Seed, p.HasSeed = uint64(*req.Seed), true
	}
	if len(req.LogitBias) > 0 {
		p.LogitBias = make(map[int32]float32, len(req.LogitBias))
		for tok, v := range req.LogitBias {
			if int(tok) >= nvocab || tok < 0 {
				return p, badRequest(CodeInvalidValue, "logit_bias",
					"logit_bias names token %d, but the vocabulary has %d tokens", tok, nvocab)
			}
			p.LogitBias[tok] = float32(v)
		}
	}
	return p, nil
}

// splitter adapts models.ThoughtParser to scheduler.Splitter.
type splitter struct{ p *models.ThoughtParser }

func (s *splitter) Push(text string) []scheduler.Fragment { return convert(s.p.Push(text)) }
func (s *splitter) Flush() []scheduler.Fragment           { return convert(s.p.Flush()) }

func convert(fs []models.Fragment) []scheduler.Fragment {
	if len(fs) == 0 {
		return nil
	}
	out := make([]scheduler.Fragment, len(fs))
	for i, f := range fs {
		out[i] = scheduler.Fragment{Thought: f.Thought, Block: f.Block, Text: f.Text}
	}
	return out
}

// complete answers a non-streaming request once generation ends.
func (s *Server) complete(c *gin.Context, j *chatJob, st *scheduler.Stream, log *slog.Logger) scheduler.Event {
	ctx := c.Request.Context()
	a := newAnswer(j)
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			if err != io.EOF {
				c.Set(ctxAbandoned, true) // client gone; the scheduler reaps the sequence
			}
			return scheduler.Event{Finish: scheduler.FinishCancelled}
		}
		a.add(ev)
		if !ev.Done {
			continue
		}
		switch ev.Finish {
		case scheduler.FinishError:
			log.Warn("generation failed", "err", ev.Err)
			WriteError(c, eventError(ev))
		case scheduler.FinishCancelled:
			c.Set(ctxAbandoned, true) // only the client's context cancels
		default:
			c.JSON(http.StatusOK, a.completion(ev))
		}
		return ev
	}
}

// newSSEWriter is the writer of c's event stream.
func (s *Server) newSSEWriter(c *gin.Context) *sseWriter {
	return &sseWriter{w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: s.opts.WriteTimeout}
}

// sseWriter writes server-sent events with a deadline per write.
type sseWriter struct {
	w  gin.ResponseWriter
	rc *http.ResponseController
	// timeout bounds one write: a client that stops reading is dropped.
	timeout time.Duration
	buf     []byte
	err     error
	// enc writes the text chunks of the request (see textChunk).
	enc *api.ChunkEncoder
}

// frame prepares textChunk: base is the request's chunk without choices.
func (w *sseWriter) frame(base api.ChatCompletionChunk) {
	w.enc = api.NewChunkEncoder(base)
}

// textChunk writes a content chunk, or with thought a reasoning chunk,
// byte for byte as event(chunk) would, without encoding the whole chunk
// through reflection: this is the chunk of nearly every token.
func (w *sseWriter) textChunk(text string, thought bool) {
	w.buf = w.enc.AppendText(w.buf[:0], text, thought)
	w.write(w.buf)
}

// part writes one part of a stream.
func (w *sseWriter) part(p *part) {
	switch p.kind {
	case partText, partThought:
		w.textChunk(p.text, p.kind == partThought)
	case partChunk:
		w.event(&p.ch)
	case partError:
		w.buf = api.AppendErrorEvent(w.buf[:0], p.err.Body())
		w.write(w.buf)
	}
}

func (w *sseWriter) event(v any) {
	b, err := api.AppendJSONEvent(w.buf[:0], "", v)
	if err != nil {
		w.err = fmt.Errorf("encode chunk: %w", err)
		return
	}
	w.buf = b
	w.write(w.buf)
}

func (w *sseWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := w.w.Write(b); err != nil {
		w.err = err
		return
	}
	w.w.Flush()
}

// stream answers a streaming request as server-sent events. Headers are
// committed at the first event (or the first keep-alive), so an early
// failure is still a plain JSON error.
func (s *Server) stream(c *gin.Context, j *chatJob, st *scheduler.Stream, log *slog.Logger) scheduler.Event {
	w := s.newSSEWriter(c)
	committed := false
	commit := func() {
		if committed {
			return
		}
		committed = true
		api.SetSSEHeaders(c.Writer.Header())
		c.Status(http.StatusOK)
		c.Writer.WriteHeaderNow()
		w.w.Flush()
	}
	a := newAnswer(j)
	w.frame(a.base())
	var parts []part
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
		parts = a.chunks(ev, parts[:0])
		for i := range parts {
			w.part(&parts[i])
		}
		if ev.Done {
			w.write([]byte(api.DoneEvent))
			return ev
		}
	}
}

// awaitEvent returns the next event of a stream being written to a client,
// ok false when the stream ends here. While none is ready it calls
// keepAlive at every tick of keep (which commits the answer and writes a
// keep-alive comment). It gives up with a cancelled event, marking the
// request abandoned, when the client leaves or a write has failed (written
// reports the writer's error). A generation that failed is logged and, when
// nothing was committed yet, answered with a plain JSON error (ok false);
// after the commit the caller writes it into the stream (ok true). A
// cancelled generation ends the stream (only the client's context cancels).
func awaitEvent(c *gin.Context, st *scheduler.Stream, keep *time.Ticker, keepAlive func(), written func() error, committed func() bool, log *slog.Logger) (ev scheduler.Event, ok bool) {
	cancelled := scheduler.Event{Finish: scheduler.FinishCancelled}
	for {
		if err := written(); err != nil {
			c.Set(ctxAbandoned, true)
			log.Debug("client write failed", "err", err)
			return cancelled, false
		}
		ev, ok, err := st.TryNext()
		if err != nil { // io.EOF: cannot happen before Done returns
			return cancelled, false
		}
		if ok {
			if ev.Done && ev.Finish == scheduler.FinishError {
				log.Warn("generation failed", "err", ev.Err)
				if !committed() {
					WriteError(c, eventError(ev))
					return ev, false
				}
			}
			if ev.Done && ev.Finish == scheduler.FinishCancelled {
				c.Set(ctxAbandoned, true)
				return ev, false
			}
			return ev, true
		}
		select {
		case <-c.Request.Context().Done():
			c.Set(ctxAbandoned, true)
			return cancelled, false
		case <-keep.C:
			keepAlive()
		case <-st.Ready():
		}
	}
}
