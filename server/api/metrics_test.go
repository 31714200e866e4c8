package api

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A registry's own exposition, read back: counters with labels, a gauge,
// a histogram's buckets, sum and count.
func TestParseMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "asi1_requests_total", Help: "h"}, []string{"endpoint", "status"})
	req.WithLabelValues("/v1/chat/completions", "200").Add(3)
	req.WithLabelValues("/v1/chat/completions", "499").Add(1)
	req.WithLabelValues("/v1/models", "200").Add(2)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "asi1_requests_running", Help: "h"})
	g.Set(2)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "asi1_ttft_seconds", Help: "h", Buckets: []float64{0.1, 1}})
	h.Observe(0.05)
	h.Observe(0.5)
	odd := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "odd_total", Help: "h"}, []string{"v"})
	odd.WithLabelValues("a\"b\\c\nd").Inc()
	reg.MustRegister(req, g, h, odd)

	c, _ := serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP)
	m, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"sum all requests", m.Sum("asi1_requests_total"), 6},
		{"sum chat", m.Sum("asi1_requests_total", "endpoint", "/v1/chat/completions"), 4},
		{"sum chat 499", m.Sum("asi1_requests_total", "endpoint", "/v1/chat/completions", "status", "499"), 1},
		{"gauge", m.Sum("asi1_requests_running"), 2},
		{"histogram count", m.Sum("asi1_ttft_seconds_count"), 2},
		{"histogram sum", m.Sum("asi1_ttft_seconds_sum"), 0.55},
		{"bucket", m.Sum("asi1_ttft_seconds_bucket", "le", "0.1"), 1},
		{"absent", m.Sum("nope"), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	for series, want := range map[string]float64{
		`asi1_requests_total{endpoint="/v1/models",status="200"}`: 2,
		`asi1_requests_running`:                                   2,
		`odd_total{v="a\"b\\c\nd"}`:                               1,
	} {
		if v, ok := m.Get(series); !ok || v != want {
			t.Errorf("Get(%s) = %v %v, want %v", series, v, ok, want)
		}
	}
	if _, ok := m.Get(`asi1_requests_total{endpoint="/v1/models"}`); ok {
		t.Error("a partial label set matched a series")
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, in := range []string{"<html>not found</html>\n", "", "# HELP x y\n# TYPE x counter\n"} {
		if _, err := ParseMetrics(strings.NewReader(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
	c, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) })
	if _, err := c.Metrics(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "401") {
		t.Errorf("401: %v", err)
	}
}

// The server's own /metrics (asi1d serve over stories260K after four
// answers, three refusals and a model list) reads whole.
func TestParseServedMetrics(t *testing.T) {
	f, err := os.Open("testdata/served_metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ParseMetrics(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("asi1_requests_total", "endpoint", ChatPath); got != 7 {
		t.Errorf("chat requests %v, want 7", got)
	}
	if v, ok := m.Get(`asi1_requests_total{endpoint="/v1/chat/completions",status="400"}`); !ok || v != 2 {
		t.Errorf("400s %v %v", v, ok)
	}
	if got := m.Sum("asi1_request_duration_seconds_count", "endpoint", ModelsPath); got != 1 {
		t.Errorf("models duration count %v", got)
	}
	if m.Sum("go_goroutines") <= 0 {
		t.Error("no go_goroutines")
	}
}
