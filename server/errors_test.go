package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
)

func TestErrorFor(t *testing.T) {
	given := badRequest(CodeInvalidValue, "temperature", "temperature must be between 0 and 2, got 3")
	for _, tc := range []struct {
		name   string
		err    error
		status int
		typ    string
		code   string
		retry  int
		msg    string
	}{
		{"api error as is", given, 400, TypeInvalidRequest, CodeInvalidValue, 0, given.Message},
		{"wrapped api error", fmt.Errorf("validate: %w", given), 400, TypeInvalidRequest, CodeInvalidValue, 0, given.Message},
		{"loading", errModelLoading, 503, TypeServer, CodeModelLoading, 5, "The model is still loading"},
		{"shutting down", errShuttingDown, 503, TypeServer, CodeOverloaded, 1, "The server is shutting down"},
		{"scheduler draining", scheduler.ErrDraining, 503, TypeServer, CodeOverloaded, 1, "The server is shutting down"},
		{"scheduler closed", scheduler.ErrClosed, 503, TypeServer, CodeOverloaded, 1, "The server is shutting down"},
		{"shutdown mid-generation", fmt.Errorf("generation failed: %w", scheduler.ErrShutdown), 503, TypeServer, CodeOverloaded, 1, "The server is shutting down"},
		{"queue full", scheduler.ErrQueueFull, 503, TypeServer, CodeOverloaded, 1, "The server is overloaded: too many requests are waiting; retry later"},
		{"engine closed", fmt.Errorf("could not build the grammar: %w", engine.ErrClosed), 503, TypeServer, CodeOverloaded, 1, "The model is being replaced; retry"},
		{"body too large", &http.MaxBytesError{Limit: 10}, 413, TypeInvalidRequest, CodeRequestTooLarge, 0, "Request body too large: the limit is 10 bytes"},
		{"wrapped body too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 7}), 413, TypeInvalidRequest, CodeRequestTooLarge, 0, "Request body too large: the limit is 7 bytes"},
		{"panic", errInternal, 500, TypeServer, CodeInternal, 0, "The server had an internal error while processing the request"},
		{"generation failed", fmt.Errorf("generation failed: %w", errors.New("boom")), 500, TypeServer, CodeInternal, 0, "Generation failed: boom"},
		{"grammar dead end", fmt.Errorf("generation failed: %w", scheduler.ErrGrammarDeadEnd), 500, TypeServer, CodeInternal, 0, "Generation failed: scheduler: the grammar allows no token that may be sampled"},
		{"nil", nil, 500, TypeServer, CodeInternal, 0, "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ErrorFor(tc.err)
			if got.Status != tc.status || got.Type != tc.typ || got.Code != tc.code || got.RetryAfter != tc.retry || got.Message != tc.msg {
				t.Errorf("ErrorFor(%v) = %d %s %s retry %d %q; want %d %s %s retry %d %q", tc.err,
					got.Status, got.Type, got.Code, got.RetryAfter, got.Message, tc.status, tc.typ, tc.code, tc.retry, tc.msg)
			}
		})
	}
}

// Every code of the contract's table (section 9) has its status and type.
func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		typ    string
	}{
		{CodeInvalidJSON, 400, TypeInvalidRequest},
		{CodeInvalidContentType, 400, TypeInvalidRequest},
		{CodeInvalidType, 400, TypeInvalidRequest},
		{CodeInvalidValue, 400, TypeInvalidRequest},
		{CodeMissingRequired, 400, TypeInvalidRequest},
		{CodeUnsupportedValue, 400, TypeInvalidRequest},
		{CodeContextLength, 400, TypeInvalidRequest},
		{CodeInvalidAPIKey, 401, TypeAuthentication},
		{CodeOriginNotAllowed, 403, TypePermission},
		{CodeModelNotFound, 404, TypeInvalidRequest},
		{CodeUnknownURL, 404, TypeInvalidRequest},
		{CodeMethodNotAllowed, 405, TypeInvalidRequest},
		{CodeRequestTooLarge, 413, TypeInvalidRequest},
		{CodeInternal, 500, TypeServer},
		{CodeOverloaded, 503, TypeServer},
		{CodeModelLoading, 503, TypeServer},
		{"no_such_code", 500, TypeServer},
	} {
		e := newError(tc.code, "p", "m %d", 1)
		if e.Status != tc.status || e.Type != tc.typ || e.Code != tc.code || e.Param != "p" || e.Message != "m 1" {
			t.Errorf("newError(%s) = %+v; want %d %s", tc.code, e, tc.status, tc.typ)
		}
	}
}

// WriteError answers what gin's c.AbortWithStatusJSON of the body would:
// the same status, Content-Type, Retry-After and bytes.
func TestWriteErrorMatchesGinJSON(t *testing.T) {
	for _, e := range []*APIError{
		badRequest(CodeInvalidValue, "messages[0].content", "bad <b>&</b> \"quoted\" \xff"),
		ErrorFor(scheduler.ErrQueueFull),
		ErrorFor(errors.New("plain failure")),
	} {
		got := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(got)
		WriteError(c, e)
		want := httptest.NewRecorder()
		cw, _ := gin.CreateTestContext(want)
		if e.RetryAfter > 0 {
			cw.Header("Retry-After", strconv.Itoa(e.RetryAfter))
		}
		cw.AbortWithStatusJSON(e.Status, e.Body())
		if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) || !c.IsAborted() {
			t.Errorf("%v:\n got %d %v %s (aborted %v)\nwant %d %v %s", e, got.Code, got.Header(), got.Body, c.IsAborted(), want.Code, want.Header(), want.Body)
		}
	}
}
