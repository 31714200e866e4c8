package server_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/asi1d/asi1d/server"
)

func TestMetricsShowDevices(t *testing.T) {
	srv := server.New(server.Options{Logger: ctQuiet})
	var free atomic.Uint64
	free.Store(1 << 30)
	srv.RegisterDevices(func() []server.Device {
		return []server.Device{
			{Name: "CUDA0", Description: "NVIDIA H200", Type: "gpu", FreeBytes: free.Load(), TotalBytes: 140 << 30},
			{Name: "CPU", Description: "AMD EPYC", Type: "cpu", FreeBytes: 5, TotalBytes: 7},
		}
	})
	scrape := func() string {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(w.Result().Body)
		return string(b)
	}
	body := scrape()
	for _, want := range []string{
		`asi1_device_memory_total_bytes{description="NVIDIA H200",device="CUDA0",type="gpu"} 1.5032385536e+11`,
		`asi1_device_memory_free_bytes{description="NVIDIA H200",device="CUDA0",type="gpu"} 1.073741824e+09`,
		`asi1_device_memory_free_bytes{description="AMD EPYC",device="CPU",type="cpu"} 5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	free.Store(2 << 30) // read at scrape time
	if body := scrape(); !strings.Contains(body, `asi1_device_memory_free_bytes{description="NVIDIA H200",device="CUDA0",type="gpu"} 2.147483648e+09`) {
		t.Errorf("free memory not read at scrape time:\n%s", body)
	}
}
