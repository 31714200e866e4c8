package llamacpp

/*
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// logger receives llama.cpp's and ggml's log lines. Set by Open.
var logger atomic.Pointer[slog.Logger]

var (
	logMu  sync.Mutex
	logBuf strings.Builder
	logLvl slog.Level
	// capture, while non-nil (during Open), collects error lines instead of
	// logging them, so that a failed load is reported as one clear error.
	capture *[]string
)

// startCapture begins collecting llama.cpp's error lines; the returned
// function stops and returns them.
func startCapture() func() []string {
	logMu.Lock()
	var lines []string
	capture = &lines
	logMu.Unlock()
	return func() []string {
		logMu.Lock()
		defer logMu.Unlock()
		capture = nil
		return lines
	}
}

// goLlamaLog is llama.cpp's log callback. C logs arrive in pieces (level CONT
// continues the previous line), so lines are assembled before reaching slog.
// llama.cpp's INFO chatter goes to Debug; warnings and errors keep their level.
//
//export goLlamaLog
func goLlamaLog(level C.int, text *C.char, _ unsafe.Pointer) {
	s := C.GoString(text)
	logMu.Lock()
	defer logMu.Unlock()
	switch int(level) {
	case 5: // GGML_LOG_LEVEL_CONT
	case 3: // WARN
		logLvl = slog.LevelWarn
	case 4: // ERROR
		logLvl = slog.LevelError
	default: // NONE, DEBUG, INFO
		logLvl = slog.LevelDebug
		if infoLine(s) {
			logLvl = slog.LevelInfo
		}
	}
	logBuf.WriteString(s)
	if !strings.HasSuffix(s, "\n") {
		return
	}
	line := strings.TrimSpace(logBuf.String())
	logBuf.Reset()
	if capture != nil && logLvl >= slog.LevelWarn && line != "" {
		*capture = append(*capture, line)
		return
	}
	l := logger.Load()
	if l == nil {
		l = slog.Default()
	}
	if line != "" && l.Enabled(context.Background(), logLvl) {
		l.Log(context.Background(), logLvl, line, "src", "llama.cpp")
	}
}

// infoLine picks the llama.cpp lines that say where the model went (device
// used, layers offloaded, buffer sizes per device): they are logged at info.
func infoLine(s string) bool {
	return strings.HasPrefix(s, "load_tensors: offloaded") ||
		(strings.HasPrefix(s, "load_tensors:") && strings.Contains(s, "model buffer size")) ||
		strings.HasPrefix(s, "llama_model_load_from_file_impl: using device") ||
		(strings.HasPrefix(s, "llama_kv_cache:") && strings.Contains(s, "KV buffer size"))
}
