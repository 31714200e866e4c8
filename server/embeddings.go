package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/server/api"
)

// embeddings answers POST /v1/embeddings: the inputs are tokenized here,
// embedded by the model's scheduler (its loop alternates embedding passes
// with chat steps, engine/scheduler/embed.go), truncated to dimensions and
// L2-normalised. It goes through the same model catalog, auth, rate limits,
// request and token metrics as chat.
func (s *Server) embeddings(c *gin.Context) {
	t0 := time.Now()
	if !s.models.Ready() {
		WriteError(c, ErrorFor(errModelLoading))
		return
	}
	if s.draining.Load() {
		WriteError(c, ErrorFor(errShuttingDown))
		return
	}
	req, ok := readRequest(c, DecodeEmbeddingsRequest)
	if !ok {
		return
	}
	c.Set(ctxLogModel, req.Model)
	ctx := c.Request.Context()
	m, release, err := s.models.Acquire(ctx, req.Model)
	if err != nil {
		if ctx.Err() != nil {
			c.Set(ctxAbandoned, true)
		}
		WriteError(c, ErrorFor(err))
		return
	}
	defer release()
	modelID := req.Model
	if st, ok := s.models.Status(req.Model); ok {
		modelID = st.ID
	}
	c.Set(ctxMetricModel, modelID)
	limits, err := m.Sched.EmbedLimits()
	if err != nil {
		WriteError(c, badRequest(CodeUnsupportedValue, "model", "model %q gives no embeddings: %v", req.Model, err))
		return
	}
	if req.Dimensions > limits.Dim {
		WriteError(c, badRequest(CodeInvalidValue, "dimensions", "dimensions must be at most %d, the model's embedding size, got %d", limits.Dim, req.Dimensions))
		return
	}
	inputs, total, aerr := embeddingTokens(m.Tok, req, limits)
	if aerr != nil {
		WriteError(c, aerr)
		return
	}
	tokRes, aerr := s.reserveTokens(c, total)
	if aerr != nil {
		WriteError(c, aerr)
		return
	}
	used := 0
	defer func() { settleTokens(c, tokRes, used) }()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	vecs, err := m.Sched.Embed(ctx, inputs)
	if err != nil {
		if ctx.Err() != nil {
			c.Set(ctxAbandoned, true)
		}
		WriteError(c, ErrorFor(err))
		return
	}
	used = total
	logUsage(c, req.Model, total, 0)
	s.metrics.prompt.WithLabelValues(modelID).Add(float64(total))
	resp := api.EmbeddingResponse{Object: api.ObjectList, Model: req.Model, Data: make([]api.Embedding, len(vecs)),
		Usage: api.EmbeddingsUsage{PromptTokens: total, TotalTokens: total}}
	for i, v := range vecs {
		if req.Dimensions > 0 {
			v = v[:req.Dimensions]
		}
		engine.Normalize(v)
		var enc any = v
		if req.Base64 {
			enc = api.EncodeBase64Vector(v)
		}
		resp.Data[i] = api.Embedding{Object: api.ObjectEmbedding, Index: i, Embedding: enc}
	}
	s.log.Debug("embeddings", "model", req.Model, "inputs", len(vecs), "tokens", total, "dur", time.Since(t0))
	c.JSON(http.StatusOK, resp)
}

// embeddingTokens tokenizes text inputs as the model asks (BOS, or BERT's
// [CLS] and [SEP]) and checks every input against the model's limits:
// token ids within the vocabulary, no input longer than one pass takes.
func embeddingTokens(tok Tokenizer, req *EmbeddingsRequest, l engine.EmbedLimits) ([][]engine.Token, int, *APIError) {
	inputs := req.Tokens
	nvocab := tok.Info().NVocab
	for i, in := range inputs {
		for k, t := range in {
			if int(t) >= nvocab {
				p := fmt.Sprintf("input[%d]", k)
				if req.List {
					p = fmt.Sprintf("input[%d][%d]", i, k)
				}
				return nil, 0, badRequest(CodeInvalidValue, p, "%s is token %d, but the model's vocabulary has %d tokens (0 to %d)", p, t, nvocab, nvocab-1)
			}
		}
	}
	if len(req.Texts) > 0 {
		inputs = make([][]engine.Token, 0, len(req.Texts))
	}
	for _, text := range req.Texts {
		ts, err := tok.Tokenize(text, true, false)
		if err != nil {
			if errors.Is(err, engine.ErrClosed) {
				return nil, 0, ErrorFor(err)
			}
			return nil, 0, badRequest(CodeInvalidValue, "input", "input could not be tokenized: %v", err)
		}
		inputs = append(inputs, ts)
	}
	total := 0
	for i, in := range inputs {
		if len(in) == 0 {
			return nil, 0, badRequest(CodeInvalidValue, inputPath(req, i), "%s has no tokens", inputPath(req, i))
		}
		if len(in) > l.MaxTokens {
			return nil, 0, badRequest(CodeContextLength, inputPath(req, i),
				"%s has %d tokens, but this model embeds at most %d tokens of one input; shorten or split it", inputPath(req, i), len(in), l.MaxTokens)
		}
		total += len(in)
	}
	return inputs, total, nil
}

// inputPath names input i in the shape the client sent.
func inputPath(req *EmbeddingsRequest, i int) string {
	if !req.List {
		return "input"
	}
	return fmt.Sprintf("input[%d]", i)
}
