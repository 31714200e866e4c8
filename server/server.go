// Package server is asi1d's HTTP layer: the ASI1 chat-completions API
// (shared/ASI1-API.md) over Gin. Handlers validate requests, render the
// prompt with the model's chat template, hand the job to the scheduler and
// write its events as JSON or server-sent events. Nothing here calls the
// engine except through the scheduler and the tokenizer.
package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/server/ratelimit"
)

// Options configure New. Zero values take the Default* values.
type Options struct {
	// Models is what the server serves (server/stack builds it); nil
	// serves nothing: /health answers 503 loading.
	Models Models
	// APIKeys: none turns auth off.
	APIKeys []string
	// BodyLimit is the largest accepted request body in bytes.
	BodyLimit int64
	// ReadyQueue: /ready answers 503 while this many requests wait (0: never
	// for queue depth alone; the queue's own limit still applies).
	ReadyQueue int
	// KeepAlive is the interval of ": keep-alive" comments on a quiet stream.
	KeepAlive time.Duration
	// Playground serves the web playground at / (playground.go).
	Playground bool
	// AllowedOrigins are the origins whose web pages may call the API from
	// a browser (cors.go): nil or empty is the loopback set (localhost,
	// 127.0.0.1, [::1] on any port), "*" every origin, "localhost" the
	// loopback set within a list. Check a list with CheckOrigins first.
	AllowedOrigins []string
	// ReplicaID is sent as the x-asi1d-replica header on every answer (""
	// means DefaultReplicaID: the host name).
	ReplicaID string
	// Version goes into system_fingerprint.
	Version  string
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: a new one
	// Limits, when set, limits requests and tokens per key and minute
	// (see ratelimit.go).
	Limits *ratelimit.Limiter
	// WriteTimeout bounds one write of a stream: a client that stops
	// reading is dropped after it. 0: DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ResponsesMax and ResponsesTTL bound the responses kept for
	// previous_response_id (0: DefaultResponsesMax, DefaultResponsesTTL).
	ResponsesMax int
	ResponsesTTL time.Duration
}

// Defaults for Options.
const (
	// DefaultModelID is the id of a single model served without one given.
	DefaultModelID   = "asi1-mini"
	DefaultBodyLimit = 4 << 20
	DefaultKeepAlive = 15 * time.Second
	// DefaultWriteTimeout is Options.WriteTimeout's default.
	DefaultWriteTimeout = 30 * time.Second
)

// Tokenizer is what the server needs of the backend besides the scheduler:
// facts and tokenization. Implementations must be safe for concurrent use,
// also with the scheduler's Decode: engine.Backend's vocabulary methods are.
type Tokenizer interface {
	Info() engine.Info
	Tokenize(text string, addSpecial, parseSpecial bool) ([]engine.Token, error)
	Piece(t engine.Token) []byte
}

// Model is a loaded model as the server serves it.
type Model struct {
	Tok      Tokenizer
	Sched    *scheduler.Scheduler
	Template *models.Template // nil: the plain-text rule
	Tags     models.ThoughtTags
	// ToolFormat is how the model writes tool calls (from its template).
	ToolFormat models.ToolFormat
	// toolTrigger is the single token of ToolFormat.Trigger(), which starts
	// the lazy call grammar of tool_choice "auto"; -1 when there is none.
	toolTrigger engine.Token
	// Grammar compiles grammars for structured output; nil when the backend
	// cannot constrain sampling (response_format and forced tool calls are
	// then refused with 400 unsupported_value).
	Grammar engine.GrammarCompiler
	// Sampling holds the model's configured defaults for what a request
	// leaves out.
	Sampling SamplingDefaults
	// Created is the model object's created time (Unix seconds).
	Created     int64
	Fingerprint string
	bosText     string
}

// ModelOptions are a model's served settings besides the backend.
type ModelOptions struct {
	// Version goes into the system fingerprint.
	Version string
	// ChatTemplate, when set, replaces the template of the GGUF file.
	ChatTemplate string
	// Sampling: defaults for what a request leaves out.
	Sampling SamplingDefaults
}

// NewModel prepares a loaded backend for serving: parses its chat template
// and finds its reasoning tags from the template and vocabulary.
func NewModel(tok Tokenizer, sched *scheduler.Scheduler, o ModelOptions) (*Model, error) {
	info := tok.Info()
	if o.ChatTemplate != "" {
		info.ChatTemplate = o.ChatTemplate
	}
	version := o.Version
	m := &Model{Tok: tok, Sched: sched, Created: time.Now().Unix(), Sampling: o.Sampling}
	if info.BOS >= 0 {
		m.bosText = string(tok.Piece(info.BOS))
	}
	eos := ""
	if info.EOS >= 0 {
		eos = string(tok.Piece(info.EOS))
	}
	if info.ChatTemplate != "" {
		t, err := models.ParseTemplate(info.ChatTemplate, models.TemplateOptions{BOSToken: m.bosText, EOSToken: eos})
		if err != nil {
			return nil, fmt.Errorf("parse the model's chat template: %w", err)
		}
		m.Template = t
	}
	special := make(map[string]bool, len(info.SpecialTokens))
	for k := range info.SpecialTokens {
		special[k] = true
	}
	open, close, _ := models.DetectThoughtTags(info.ChatTemplate, special)
	m.Tags = models.ThoughtTags{Open: open, Close: close}
	m.ToolFormat = models.DetectToolFormat(info.ChatTemplate, special)
	m.toolTrigger = -1
	if mark := m.ToolFormat.Trigger(); mark != "" {
		if toks, err := tok.Tokenize(mark, false, true); err == nil && len(toks) == 1 {
			m.toolTrigger = toks[0]
		}
	}
	if gc, ok := tok.(engine.GrammarCompiler); ok {
		m.Grammar = gc
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%s|%d|%d|%d|%s", version, info.Arch, info.Name, info.Params, info.SizeBytes, info.NVocab, info.ChatTemplate))
	m.Fingerprint = "fp_" + hex.EncodeToString(h[:5])
	return m, nil
}

// Server serves the API. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	models   Models
	draining atomic.Bool
	metrics  *metrics
	router   *gin.Engine
	stored   *responseStore // responses kept for previous_response_id
}

// New builds the server. Until SetModel is called, /health and /ready answer
// 503 loading and chat completions 503 model_loading.
func New(o Options) *Server {
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Server{opts: o, log: o.Logger, models: o.Models, stored: newResponseStore(o.ResponsesMax, o.ResponsesTTL)}
	if s.models == nil {
		s.models = noModels{}
	}
	s.metrics = newMetrics(o.Registry, s)
	o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.registerReplica(o.Registry)

	s.router = newRouter(o, NewCompletionID, routes{
		health: s.health, ready: s.ready, metrics: gin.WrapH(promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{})),
		observe: s.metrics.observe, limit: s.limitRequests, panics: s.metrics.countPanics, chat: s.chat, completions: s.completions, responses: s.responses,
		listModels: s.listModels, getModel: s.getModel, embeddings: s.embeddings,
		loadModel: s.loadModel, unloadModel: s.unloadModel,
	})
	return s
}

// routes are the handlers newRouter serves.
type routes struct {
	health, ready, metrics     gin.HandlerFunc
	observe                    gin.HandlerFunc // request metrics of /v1
	limit                      gin.HandlerFunc // per-key request limits of chat completions
	panics                     gin.HandlerFunc // counts panics that Recovery answers
	chat, listModels, getModel gin.HandlerFunc
	embeddings                 gin.HandlerFunc // POST /v1/embeddings (embeddings.go)
	completions                gin.HandlerFunc // the legacy text completions
	responses                  gin.HandlerFunc // the Responses API (responses.go)
	loadModel, unloadModel     gin.HandlerFunc // the operator's model load and unload
}

// newRouter is the one place that orders routes and middleware: the access
// log (outermost, so it sees what Recovery answered), a request id, panic
// recovery (and its counter), the x-asi1d-replica header and CORS (which
// answers preflights itself, before auth and the rate limits) for
// everything; unknown paths and methods answered in the contract's shape;
// the probes, /metrics and the playground without auth; /v1 with metrics,
// auth (before the body is read) and x-session-id; chat completions with
// the per-key request limit first, then the JSON content type checked
// before the body limit. Every GET route answers HEAD too. newID makes
// request ids. The tests of the
// middleware serve this router.
func newRouter(o Options, newID func() string, rt routes) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = false
	r.Use(AccessLog(o.Logger), RequestID(newID), Recovery(o.Logger), rt.panics, Replica(replicaID(o)), CORS(o.AllowedOrigins))
	r.NoRoute(NoRoute())
	r.NoMethod(NoMethod())

	getAndHead(r, "/health", rt.health)
	getAndHead(r, "/ready", rt.ready)
	getAndHead(r, "/metrics", rt.metrics)
	mountPlayground(r, o.Playground)

	v1 := r.Group("/v1", rt.observe, Auth(o.APIKeys), SessionID())
	v1.POST("/chat/completions", rt.limit, RequireJSON(), BodyLimit(o.BodyLimit), rt.chat)
	v1.POST("/embeddings", rt.limit, RequireJSON(), BodyLimit(o.BodyLimit), rt.embeddings)
	v1.POST("/completions", rt.limit, RequireJSON(), BodyLimit(o.BodyLimit), rt.completions)
	v1.POST("/responses", rt.limit, RequireJSON(), BodyLimit(o.BodyLimit), rt.responses)
	getAndHead(v1, "/models", rt.listModels)
	getAndHead(v1, "/models/:id", rt.getModel)
	v1.POST("/models/:id/load", rt.loadModel)
	v1.POST("/models/:id/unload", rt.unloadModel)
	return r
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// SetDraining makes /ready answer 503 draining and new completions 503.
func (s *Server) SetDraining() { s.draining.Store(true) }

func (s *Server) health(c *gin.Context) {
	if !s.models.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "loading"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) ready(c *gin.Context) {
	if !s.models.Ready() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "loading"})
		return
	}
	st := s.models.Stats()
	switch {
	case s.draining.Load() || st.Draining:
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "draining"})
	case s.opts.ReadyQueue > 0 && st.Waiting >= s.opts.ReadyQueue:
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "overloaded"})
	default:
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
}
