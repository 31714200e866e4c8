package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A recovered panic is counted in asi1_panics_total; an abort is not.
func TestPanicsCounted(t *testing.T) {
	s := New(Options{Registry: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// Routes added to the real router, behind the real middleware chain.
	s.router.GET("/test-panic", func(c *gin.Context) { panic("boom") })
	s.router.GET("/test-abort", func(c *gin.Context) { panic(http.ErrAbortHandler) })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, p := range []string{"/test-panic", "/test-panic", "/test-abort"} {
		resp, err := http.Get(srv.URL + p)
		if err == nil {
			_ = resp.Body.Close()
			if p == "/test-panic" && resp.StatusCode != 500 {
				t.Fatalf("%s: status %d, want 500", p, resp.StatusCode)
			}
		}
	}
	if got := testutil.ToFloat64(s.metrics.panics); got != 2 {
		t.Fatalf("asi1_panics_total = %v, want 2", got)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"asi1_panics_total 2", "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
