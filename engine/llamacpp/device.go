package llamacpp

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include <dlfcn.h>
#include "ggml-backend.h"
#include "llama.h"

// asi1d_try_dlopen opens a library the way ggml's loader does and returns
// NULL on success, or dlerror()'s text (valid until the next dl call).
static const char *asi1d_try_dlopen(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		return e ? e : "dlopen failed";
	}
	dlclose(h);
	return NULL;
}

extern void goLlamaLog(int level, char *text, void *user);
static void asi1d_base_log_cb(enum ggml_log_level level, const char *text, void *user) {
	goLlamaLog((int)level, (char *)text, user);
}

// asi1d_preload opens libggml-base for good (never closed) and sends its
// log lines (the GPU backend logs through this copy of ggml-base, not the
// binary's) to goLlamaLog too.
static int asi1d_preload(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		return 0;
	}
	void (*set)(ggml_log_callback, void *) = (void (*)(ggml_log_callback, void *))dlsym(h, "ggml_log_set");
	if (set != NULL) {
		set(asi1d_base_log_cb, NULL);
	}
	return 1;
}
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/ollama/ollama/llama"
)

// Device is one ggml compute device: the CPU, or a GPU whose backend
// library was loaded at run time.
type Device struct {
	Name        string // ggml's name: "CPU", "CUDA0", ...
	Description string // e.g. "NVIDIA H200"
	Type        string // "cpu", "gpu", "igpu" or "accel"
	Backend     string // the backend registry's name: "CPU", "CUDA", ...
	// FreeBytes and TotalBytes are ggml_backend_dev_memory's answer. For a
	// GPU they are read only when asked (Devices(true)): the first query
	// creates the CUDA context (hundreds of MiB of device memory).
	FreeBytes, TotalBytes uint64
}

// IsGPU reports a discrete or integrated GPU.
func (d Device) IsGPU() bool { return d.Type == "gpu" || d.Type == "igpu" }

// InitBackends loads the GPU backend libraries (once per process) from the
// search path (see LibrarySearchPath). Open calls it too.
func InitBackends() {
	initOnce.Do(func() {
		preloadBase()
		llama.BackendInit() // ggml_backend_load_all_from_path on LibrarySearchPath
		setLog()
	})
}

// Devices lists the devices ggml knows, GPUs first. With gpuMemory false a
// GPU's memory is left at 0 so that no GPU context is created.
func Devices(gpuMemory bool) []Device {
	InitBackends()
	n := int(C.ggml_backend_dev_count())
	out := make([]Device, 0, n)
	for i := range n {
		dev := C.ggml_backend_dev_get(C.size_t(i))
		d := Device{
			Name:        C.GoString(C.ggml_backend_dev_name(dev)),
			Description: C.GoString(C.ggml_backend_dev_description(dev)),
			Backend:     C.GoString(C.ggml_backend_reg_name(C.ggml_backend_dev_backend_reg(dev))),
		}
		switch C.ggml_backend_dev_type(dev) {
		case C.GGML_BACKEND_DEVICE_TYPE_CPU:
			d.Type = "cpu"
		case C.GGML_BACKEND_DEVICE_TYPE_GPU:
			d.Type = "gpu"
		case C.GGML_BACKEND_DEVICE_TYPE_IGPU:
			d.Type = "igpu"
		default:
			d.Type = "accel"
		}
		if gpuMemory || !d.IsGPU() {
			var free, total C.size_t
			C.ggml_backend_dev_memory(dev, &free, &total)
			d.FreeBytes, d.TotalBytes = uint64(free), uint64(total)
		}
		out = append(out, d)
	}
	return out
}

// preloadBase opens libggml-base.so.0 from each search folder that holds
// a GPU backend library, before ggml's loader opens that library: the
// dynamic loader then satisfies the backend's DT_NEEDED libggml-base.so.0
// with the copy already loaded (glibc matches loaded objects by SONAME),
// whatever the backend's RUNPATH says. The build also sets RUNPATH $ORIGIN
// (scripts/build-gpu.sh); this makes a copied folder work without it.
//
// The binary does not export its own (static) ggml-base symbols, so the GPU
// backend binds to this second copy: its log callback, registry and CPU
// buffer type are separate from the binary's. Backends only hand plain
// structs with their own function tables across, which works (ollama runs
// the same way); the log callback is set here so the backend's lines reach
// slog.
func preloadBase() {
	for _, dir := range LibrarySearchPath() {
		if !hasGPULibrary(dir) {
			continue
		}
		for _, name := range []string{"libggml-base.so.0", "libggml-base.so"} {
			p := filepath.Join(dir, name)
			if !fileExists(p) {
				continue
			}
			cp := C.CString(p)
			C.asi1d_preload(cp)
			C.free(unsafe.Pointer(cp))
			break
		}
	}
}

func hasGPULibrary(dir string) bool {
	for _, name := range gpuLibraries {
		if fileExists(filepath.Join(dir, "lib"+name+".so")) {
			return true
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "lib"+name+"-*.so")); len(m) > 0 {
			return true
		}
	}
	return false
}

// gpuLibraries are the backend libraries that provide a GPU device; ggml's
// loader looks for lib<name>.so and lib<name>-*.so in each search folder.
var gpuLibraries = []string{"ggml-cuda", "ggml-hip", "ggml-vulkan"}

// LibrarySearchPath returns the folders ggml's backend loader searches, as
// the ollama binding computes them: $OLLAMA_LIBRARY_PATH (a list) when set,
// else <executable dir>/../lib/ollama. The binding skips a folder whose path
// holds no "lib/ollama" (other than the executable's own folder).
func LibrarySearchPath() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "."
	}
	if v, ok := os.LookupEnv("OLLAMA_LIBRARY_PATH"); ok {
		var out []string
		for _, p := range filepath.SplitList(v) {
			if abs, err := filepath.Abs(p); err == nil {
				out = append(out, abs)
			}
		}
		return out
	}
	return []string{filepath.Clean(filepath.Join(filepath.Dir(exe), "..", "lib", "ollama"))}
}

// GPUError is returned when layers are to be offloaded but no GPU backend
// loaded. It says which libraries were looked for, where, and why a library
// that is there did not load (ggml's loader itself is silent about it).
type GPUError struct {
	Layers  int
	Folders []string
	Reasons []string // one per finding, e.g. "/x/lib/ollama/libggml-cuda.so: libggml-base.so.0: cannot open shared object file"
}

func (e *GPUError) Error() string {
	var libs []string
	for _, n := range gpuLibraries {
		libs = append(libs, "lib"+n+".so")
	}
	return fmt.Sprintf("--gpu-layers %d but no GPU backend loaded: looked for %s in %s: %s (build it with `make build GPU=cuda`, see README \"GPU\"; --gpu-layers 0 runs on the CPU)",
		e.Layers, strings.Join(libs, ", "), strings.Join(e.Folders, ":"), strings.Join(e.Reasons, "; "))
}

// CheckGPU returns a *GPUError when layers > 0 and no GPU device is
// registered, and nil otherwise.
func CheckGPU(layers int) error {
	if layers <= 0 {
		return nil
	}
	for _, d := range Devices(false) {
		if d.IsGPU() {
			return nil
		}
	}
	e := &GPUError{Layers: layers, Folders: LibrarySearchPath()}
	for _, dir := range e.Folders {
		if !strings.Contains(filepath.ToSlash(dir), "lib/ollama") {
			e.Reasons = append(e.Reasons, dir+": skipped by the loader (the path must contain lib/ollama)")
			continue
		}
		if _, err := os.Stat(dir); err != nil {
			e.Reasons = append(e.Reasons, dir+": no such folder")
			continue
		}
		found := false
		for _, name := range gpuLibraries {
			paths, _ := filepath.Glob(filepath.Join(dir, "lib"+name+"-*.so"))
			if p := filepath.Join(dir, "lib"+name+".so"); fileExists(p) {
				paths = append(paths, p)
			}
			for _, p := range paths {
				found = true
				cp := C.CString(p)
				msg := C.asi1d_try_dlopen(cp)
				C.free(unsafe.Pointer(cp))
				if msg != nil {
					e.Reasons = append(e.Reasons, p+" did not load: "+C.GoString(msg))
				} else {
					e.Reasons = append(e.Reasons, p+" loads but found no device (driver missing, or CUDA_VISIBLE_DEVICES hides it?)")
				}
			}
		}
		if !found {
			e.Reasons = append(e.Reasons, dir+": no GPU backend library there")
		}
	}
	return e
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// logPlacement logs where the layers went: at info when some are on a GPU,
// at debug when all are on the CPU. llama.cpp puts the last gpuLayers of the
// n_layer repeating layers (and, when gpuLayers > n_layer, the output layer)
// on the GPU devices and the rest on the CPU; its own "load_tensors:" lines,
// logged at debug (log.go), give the buffer sizes per device.
func logPlacement(log *slog.Logger, model *C.struct_llama_model, gpuLayers int) {
	nl := int(C.llama_model_n_layer(model))
	onGPU := min(max(gpuLayers, 0), nl)
	var gpus, cpu []any
	for _, d := range Devices(gpuLayers > 0) {
		attrs := []any{"name", d.Name, "description", d.Description, "free_mib", d.FreeBytes >> 20, "total_mib", d.TotalBytes >> 20}
		if d.IsGPU() {
			gpus = append(gpus, slog.Group(d.Name, attrs[2:]...))
		} else if d.Type == "cpu" {
			cpu = attrs[2:]
		}
	}
	args := []any{"layers", nl, "gpu_layers", onGPU, "cpu_layers", nl - onGPU, "output_on_gpu", gpuLayers > nl}
	if onGPU > 0 {
		args = append(args, slog.Group("gpu", gpus...))
	}
	args = append(args, slog.Group("cpu", cpu...))
	lvl := slog.LevelDebug
	if onGPU > 0 {
		lvl = slog.LevelInfo
	}
	log.Log(context.Background(), lvl, "layer placement", args...)
}
