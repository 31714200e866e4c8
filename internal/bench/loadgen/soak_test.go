package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/asi1d/asi1d/server/api"
)

func TestRSSTrend(t *testing.T) {
	rep := &SoakReport{}
	if rep.rssTrend() != "" {
		t.Fatal("a trend from no samples")
	}
	for i := range 8 {
		mib := 40.0 + float64(min(i, 4)) // grows, then levels off
		rep.RSS = append(rep.RSS, RSSSample{Seconds: float64(10 * i), Done: int64(1000 * i), Bytes: mib * (1 << 20)})
	}
	got := rep.rssTrend()
	want := "40.0 MiB at 0, 42.0 MiB at 2000, 44.0 MiB at 4000, 44.0 MiB at 6000, 44.0 MiB at 7000 requests; second half +0.0%"
	if got != want {
		t.Fatalf("trend:\n got %s\nwant %s", got, want)
	}
}

// soakOne sorts answers by what happened: complete, aborted as planned,
// refused (4xx, 503 server_overloaded), 5xx (another 5xx or an error event),
// truncated (no [DONE], a bad body), with their finish reasons.
func TestSoakOneOutcomes(t *testing.T) {
	const (
		role  = `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n"
		text  = `data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}` + "\n\n"
		fin   = `data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}` + "\n\n"
		done  = "data: [DONE]\n\n"
		boom  = `data: {"error":{"message":"boom","type":"server_error","param":null,"code":"internal_error"}}` + "\n\n"
		whole = `{"choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}]}`
	)
	answers := map[string]struct {
		status int
		body   string
	}{
		"ok":         {200, role + text + ": keep-alive\n\n" + fin + done},
		"abort":      {200, role + text + text + text + fin + done},
		"overloaded": {503, `{"error":{"message":"busy","type":"server_error","param":null,"code":"server_overloaded"}}`},
		"loading":    {503, `{"error":{"message":"loading","type":"server_error","param":null,"code":"model_loading"}}`},
		"bad":        {400, `{"error":{"message":"bad","type":"invalid_request_error","param":"x","code":"invalid_value"}}`},
		"event":      {200, role + text + boom + done},
		"cut":        {200, role + text},
		"badchunk":   {200, role + "data: {\"cho\n\n" + done},
		"whole":      {200, whole},
		"wholebad":   {200, `{"choices":[]}`},
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.Header.Get("X-Answer")]
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	defer hs.Close()
	g := newGen(Config{URL: hs.URL, RequestTimeout: 10 * time.Second}, hs.Client())
	o := &SoakOutcome{ByStatus: map[string]int{}, ByKind: map[string]int{}, Finish: map[string]int{}}
	var mu sync.Mutex
	for _, k := range []string{"ok", "abort", "overloaded", "loading", "bad", "event", "cut", "badchunk", "whole", "wholebad"} {
		g.wire.Header = http.Header{"X-Answer": {k}}
		r := soakReq{body: []byte(`{}`), stream: !strings.HasPrefix(k, "whole"), abortAt: -1, kind: k}
		if k == "abort" {
			r.abortAt = 2
		}
		soakOne(context.Background(), g, 10*time.Second, r, o, &mu)
	}
	want := SoakOutcome{Sent: 10, OK: 2, Aborted: 1, Refused: 2, Status5xx: 2, Truncated: 3}
	if o.Sent != want.Sent || o.OK != want.OK || o.Aborted != want.Aborted || o.Refused != want.Refused ||
		o.Status5xx != want.Status5xx || o.Truncated != want.Truncated || o.Errors != 0 {
		t.Errorf("outcome %+v", o)
	}
	if o.ByStatus["503"] != 2 || o.ByStatus["400"] != 1 || o.ByStatus["200"] != 7 || o.Finish["length"] != 1 || o.Finish["stop"] != 1 {
		t.Errorf("statuses %v finish %v", o.ByStatus, o.Finish)
	}
}

// scrapeSoak reads the server's gauges and splits the chat requests by
// status and the finished ones by reason.
func TestScrapeSoak(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests, Help: "h"}, []string{"endpoint", "status"})
	req.WithLabelValues(api.ChatPath, "200").Add(5)
	req.WithLabelValues(api.ChatPath, "499").Add(2)
	req.WithLabelValues(api.ChatPath, "503").Add(3)
	req.WithLabelValues(api.ChatPath, "500").Add(1)
	req.WithLabelValues(api.ModelsPath, "200").Add(100)
	fin := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricFinished, Help: "h"}, []string{"finish_reason"})
	fin.WithLabelValues("stop").Add(4)
	fin.WithLabelValues("length").Add(1)
	fin.WithLabelValues("cancelled").Add(2)
	running := prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricRunning, Help: "h"})
	running.Set(1)
	reg.MustRegister(req, fin, running)
	hs := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer hs.Close()
	s, err := scrapeSoak(context.Background(), hs.URL+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	want := SoakServer{Running: 1, ChatRequests: 11, Chat200: 5, Chat499: 2, ChatRefused: 4, Chat5xx: 4, Finished: 5, Cancelled: 2}
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}
