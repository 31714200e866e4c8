package main

import (
	"context"
	"log/slog"

	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/server"
)

// checkDevices runs before serve listens: it loads the GPU backends, logs
// the devices (GPUs at info, the CPU at debug), and refuses --gpu-layers > 0 without a GPU backend (an error
// that names the libraries looked for and the folder; no silent CPU
// fallback). It returns the GPUs' free memory (0 without --gpu-layers),
// which caps an automatic context.
func checkDevices(cfg *serveConfig, log *slog.Logger) (gpuFree uint64, err error) {
	if err := llamacpp.CheckGPU(cfg.GPULayers); err != nil {
		return 0, err
	}
	for _, d := range llamacpp.Devices(cfg.GPULayers > 0) {
		lvl := slog.LevelDebug
		if d.IsGPU() {
			lvl = slog.LevelInfo
		}
		log.Log(context.Background(), lvl, "device", "name", d.Name, "description", d.Description, "type", d.Type, "backend", d.Backend,
			"free_mib", d.FreeBytes>>20, "total_mib", d.TotalBytes>>20)
		if d.IsGPU() {
			gpuFree += d.FreeBytes
		}
	}
	return gpuFree, nil
}

// registerDevices shows the devices and their memory in /metrics. A GPU's
// memory is read only when layers are offloaded (reading it creates a GPU
// context).
func registerDevices(srv *server.Server, cfg *serveConfig) {
	gpuMemory := cfg.GPULayers > 0
	srv.RegisterDevices(func() []server.Device {
		var out []server.Device
		for _, d := range llamacpp.Devices(gpuMemory) {
			out = append(out, server.Device{Name: d.Name, Description: d.Description, Type: d.Type, FreeBytes: d.FreeBytes, TotalBytes: d.TotalBytes})
		}
		return out
	})
}
