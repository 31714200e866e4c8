package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/asi1d/asi1d/engine/scheduler"
)

// metrics holds the contract's asi1_ families (section 8) and the
// scheduler's. Request-level values are observed by handlers at the edges;
// scheduler state is read from Scheduler.Stats at scrape time.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	prompt     *prometheus.CounterVec
	completion *prometheus.CounterVec
	inFlight   prometheus.Gauge
	ttft       *prometheus.HistogramVec
	itl        *prometheus.HistogramVec
	e2e        *prometheus.HistogramVec
	queue      *prometheus.HistogramVec
	step       prometheus.Histogram
	stepTokens prometheus.Histogram
	panics     prometheus.Counter
}

var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asi1_requests_total",
			Help: "Finished /v1/* requests by route, model and HTTP status (499: client went away)."}, []string{"endpoint", "model", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "asi1_request_duration_seconds",
			Help: "Wall time of /v1/* requests.", Buckets: latencyBuckets}, []string{"endpoint", "model"}),
		prompt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asi1_prompt_tokens_total",
			Help: "Sum of prompt_tokens of answered chat completions."}, []string{"model"}),
		completion: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asi1_completion_tokens_total",
			Help: "Sum of completion_tokens of answered chat completions."}, []string{"model"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "asi1_requests_in_flight",
			Help: "Chat completions queued or generating right now."}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "asi1_time_to_first_token_seconds",
			Help: "From arrival to the first generated token.", Buckets: latencyBuckets}, []string{"model"}),
		itl: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "asi1_inter_token_latency_seconds",
			Help:    "Mean gap between generated tokens, one observation per token gap.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32, .64, 1.28}}, []string{"model"}),
		e2e: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "asi1_e2e_request_latency_seconds",
			Help: "Chat completion wall time, arrival to last byte.", Buckets: latencyBuckets}, []string{"model"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "asi1_queue_time_seconds",
			Help: "Time a request waited for a sequence.", Buckets: latencyBuckets}, []string{"model"}),
		step: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "asi1_step_seconds",
			Help: "Duration of one decode step.", Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16, .32, .64, 1.28, 2.56}}),
		stepTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "asi1_step_tokens",
			Help: "Tokens carried by one decode step.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "asi1_panics_total",
			Help: "Panics recovered while serving a request (each also logged with its stack)."}),
	}
	reg.MustRegister(m.requests, m.duration, m.prompt, m.completion, m.inFlight, m.ttft, m.itl, m.e2e, m.queue, m.step, m.stepTokens, m.panics,
		&schedCollector{s: s})
	return m
}

// OnStep is the scheduler's step hook: it observes step duration and size.
func (s *Server) OnStep(d time.Duration, tokens int) {
	s.metrics.step.Observe(d.Seconds())
	s.metrics.stepTokens.Observe(float64(tokens))
}

// observe counts every /v1/* request when it ends, labelled with the
// catalog id of the model it was served by (ctxMetricModel), or "" for a
// request that never resolved to one (an unknown model, a 400 before the
// model was known, the model routes): the label's values are bounded by the
// catalog, whatever clients send.
func (m *metrics) observe(c *gin.Context) {
	t0 := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unknown"
	}
	status := c.Writer.Status()
	if c.Request.Context().Err() != nil && c.GetBool(ctxAbandoned) {
		status = 499
	}
	model := c.GetString(ctxMetricModel)
	m.requests.WithLabelValues(route, model, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, model).Observe(time.Since(t0).Seconds())
}

// countPanics counts a panic of a later handler and passes it on to
// Recovery, which runs before it (http.ErrAbortHandler is an abort, not a
// fault: not counted).
func (m *metrics) countPanics(c *gin.Context) {
	defer func() {
		if rec := recover(); rec != nil {
			if err, ok := rec.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
				m.panics.Inc()
			}
			panic(rec)
		}
	}()
	c.Next()
}

// ctxAbandoned marks a request whose client went away mid-answer.
const ctxAbandoned = "asi1d.abandoned"

// ctxMetricModel holds the catalog id of the model a request resolved to,
// the model label of its metrics.
const ctxMetricModel = "asi1d.metric_model"

var (
	descRunning = prometheus.NewDesc("asi1_requests_running", "Requests holding a sequence.", nil, nil)
	descWaiting = prometheus.NewDesc("asi1_requests_waiting", "Requests waiting for a sequence.", nil, nil)
	descKV      = prometheus.NewDesc("asi1_kv_cache_usage_ratio", "Share of KV cells holding tokens (running or cached).", nil, nil)
	descGen     = prometheus.NewDesc("asi1_generation_tokens_total", "Tokens generated by the scheduler, cancelled requests included.", nil, nil)
	descPrompt  = prometheus.NewDesc("asi1_scheduler_prompt_tokens_total", "Prompt tokens admitted to the scheduler.", nil, nil)
	descQueried = prometheus.NewDesc("asi1_prefix_cache_queried_tokens_total", "Prompt tokens looked up in the prefix cache.", nil, nil)
	descHit     = prometheus.NewDesc("asi1_prefix_cache_hit_tokens_total", "Prompt tokens whose KV was reused from the prefix cache.", nil, nil)
	descSteps   = prometheus.NewDesc("asi1_steps_total", "Decode steps.", nil, nil)
	descFinish  = prometheus.NewDesc("asi1_requests_finished_total", "Requests finished by the scheduler, by reason.", []string{"finish_reason"}, nil)
	descCtx     = prometheus.NewDesc("asi1_context_per_sequence_tokens", "Context one request may use (prompt plus answer).", nil, nil)

	descSessSaved    = prometheus.NewDesc("asi1_session_states_saved_total", "Session KV states saved to --session-dir (on eviction and drain).", nil, nil)
	descSessRestored = prometheus.NewDesc("asi1_session_states_restored_total", "Session KV states restored from --session-dir instead of prefilled.", nil, nil)
	descSessTokens   = prometheus.NewDesc("asi1_session_restored_tokens_total", "Prompt tokens restored from saved session states.", nil, nil)
	descModelsLoaded = prometheus.NewDesc("asi1_models_loaded", "Models loaded now.", nil, nil)
	descModelLoaded  = prometheus.NewDesc("asi1_model_loaded", "1 while the model is loaded, 0 otherwise.", []string{"model"}, nil)
	descModelLoads   = prometheus.NewDesc("asi1_model_loads_total", "Model loads.", []string{"model"}, nil)
	descModelUnloads = prometheus.NewDesc("asi1_model_unloads_total", "Model unloads by reason: lru (room for another), idle (--keep-alive), operator.", []string{"model", "reason"}, nil)
	descModelLoadDur = prometheus.NewDesc("asi1_model_load_seconds", "Duration of the model's last load.", []string{"model"}, nil)
)

// schedCollector reads the scheduler's counters at scrape time.
type schedCollector struct{ s *Server }

func (c *schedCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRunning, descWaiting, descKV, descGen, descPrompt, descQueried, descHit, descSteps, descFinish, descCtx,
		descSessSaved, descSessRestored, descSessTokens,
		descModelsLoaded, descModelLoaded, descModelLoads, descModelUnloads, descModelLoadDur} {
		ch <- d
	}
}

func (c *schedCollector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	loaded := 0
	for _, m := range c.s.models.List() {
		on := 0.0
		if m.State == StateLoaded {
			on, loaded = 1, loaded+1
		}
		g(descModelLoaded, on, m.ID)
		ch <- prometheus.MustNewConstMetric(descModelLoads, prometheus.CounterValue, float64(m.Loads), m.ID)
		for _, r := range []string{"lru", "idle", "operator"} {
			ch <- prometheus.MustNewConstMetric(descModelUnloads, prometheus.CounterValue, float64(m.Unloads[r]), m.ID, r)
		}
		if m.Loads > 0 {
			g(descModelLoadDur, m.LoadSeconds, m.ID)
		}
	}
	g(descModelsLoaded, float64(loaded))
	if !c.s.models.Ready() {
		return
	}
	st := c.s.models.Stats()
	ctr := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g(descRunning, float64(st.Running))
	g(descWaiting, float64(st.Waiting))
	if st.KVCells > 0 {
		g(descKV, float64(st.KVUsed)/float64(st.KVCells))
	}
	g(descCtx, float64(st.CtxPerSeq))
	ctr(descGen, st.GeneratedTokens)
	ctr(descPrompt, st.PromptTokens)
	ctr(descQueried, st.PrefixQueriedTokens)
	ctr(descHit, st.PrefixHitTokens)
	ctr(descSteps, st.Steps)
	ctr(descSessSaved, st.SessionsSaved)
	ctr(descSessRestored, st.SessionsRestored)
	ctr(descSessTokens, st.SessionRestoredTokens)
	for _, r := range []scheduler.FinishReason{scheduler.FinishStop, scheduler.FinishLength, scheduler.FinishCancelled, scheduler.FinishError} {
		ctr(descFinish, st.Finished[r], string(r))
	}
}
