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
	// loading counts the Opens in progress: while one is, llama.cpp's
	// warnings (context sizes, odd token ids) are load chatter, at debug.
	loading int
)

// quietLoad marks an Open in progress; the returned function ends it.
func quietLoad() func() {
	logMu.Lock()
	loading++
	logMu.Unlock()
	return func() {
		logMu.Lock()
		loading--
		logMu.Unlock()
	}
}

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
// llama.cpp's INFO chatter goes to Debug, and so do its warnings while a
// model loads (quietLoad); errors keep their level, other warnings theirs.
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
	lvl := logLvl
	if lvl == slog.LevelWarn && loading > 0 {
		lvl = slog.LevelDebug
	}
	if line != "" && l.Enabled(context.Background(), lvl) {
		l.Log(context.Background(), lvl, line, "src", "llama.cpp")
	}
}
