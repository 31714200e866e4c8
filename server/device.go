package server

import "github.com/prometheus/client_golang/prometheus"

// Device is a compute device as /metrics shows it: the CPU, or a GPU.
type Device struct {
	Name        string // e.g. "CUDA0"
	Description string // e.g. "NVIDIA H200"
	Type        string // "cpu", "gpu", ...
	FreeBytes   uint64
	TotalBytes  uint64
}

// RegisterDevices adds the device families to /metrics:
// asi1_device_memory_free_bytes and asi1_device_memory_total_bytes, labelled
// device, description and type. list is called at every scrape (free memory
// changes); it must be safe for concurrent use.
func (s *Server) RegisterDevices(list func() []Device) {
	s.opts.Registry.MustRegister(&deviceCollector{list: list})
}

var (
	deviceFree = prometheus.NewDesc("asi1_device_memory_free_bytes",
		"Free memory of a compute device (ggml_backend_dev_memory).", []string{"device", "description", "type"}, nil)
	deviceTotal = prometheus.NewDesc("asi1_device_memory_total_bytes",
		"Total memory of a compute device (ggml_backend_dev_memory).", []string{"device", "description", "type"}, nil)
)

type deviceCollector struct{ list func() []Device }

func (c *deviceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deviceFree
	ch <- deviceTotal
}

func (c *deviceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.list() {
		ch <- prometheus.MustNewConstMetric(deviceFree, prometheus.GaugeValue, float64(d.FreeBytes), d.Name, d.Description, d.Type)
		ch <- prometheus.MustNewConstMetric(deviceTotal, prometheus.GaugeValue, float64(d.TotalBytes), d.Name, d.Description, d.Type)
	}
}
