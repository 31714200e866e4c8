package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server/api"
)

// Error types and codes of the contract (shared/ASI1-API.md section 9),
// as server/api names them; errorCodes below gives each its status.
const (
	TypeInvalidRequest = api.TypeInvalidRequest
	TypeAuthentication = api.TypeAuthentication
	TypePermission     = api.TypePermission
	TypeRateLimit      = api.TypeRateLimit
	TypeServer         = api.TypeServer

	CodeInvalidJSON        = api.CodeInvalidJSON
	CodeInvalidContentType = api.CodeInvalidContentType
	CodeInvalidType        = api.CodeInvalidType
	CodeInvalidValue       = api.CodeInvalidValue
	CodeMissingRequired    = api.CodeMissingRequired
	CodeUnsupportedValue   = api.CodeUnsupportedValue
	CodeContextLength      = api.CodeContextLength
	CodeInvalidAPIKey      = api.CodeInvalidAPIKey
	CodeOriginNotAllowed   = api.CodeOriginNotAllowed
	CodeModelNotFound      = api.CodeModelNotFound
	CodeUnknownURL         = api.CodeUnknownURL
	CodeMethodNotAllowed   = api.CodeMethodNotAllowed
	CodeRequestTooLarge    = api.CodeRequestTooLarge
	CodeInternal           = api.CodeInternal
	CodeOverloaded         = api.CodeOverloaded
	CodeModelLoading       = api.CodeModelLoading
	CodeRateLimited        = api.CodeRateLimited
)

// APIError is an error answered to a client in the contract's shape:
// {"error":{"message","type","param","code"}} with an HTTP status.
type APIError struct {
	Status  int
	Message string
	Type    string
	// Param is the JSON path of the offending field; "" is sent as null.
	Param string
	// Code is sent as null when "".
	Code string
	// RetryAfter, when > 0, is sent as a Retry-After header (seconds).
	RetryAfter int
}

func (e *APIError) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%d %s (%s): %s", e.Status, e.Code, e.Param, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Body returns the wire form of the error: api.ErrorBody, which writes an
// empty Param and Code as null.
func (e *APIError) Body() api.ErrorBody {
	return api.ErrorBody{Error: api.ErrorDetail{Message: e.Message, Type: e.Type, Param: e.Param, Code: e.Code}}
}

// codeClass is the status and type that go with a code.
type codeClass struct {
	status int
	typ    string
}

// errorCodes is the contract's table of codes (section 9): every code has
// one status and one type. Nothing else decides a status.
var errorCodes = map[string]codeClass{
	CodeInvalidJSON:        {http.StatusBadRequest, TypeInvalidRequest},
	CodeInvalidContentType: {http.StatusBadRequest, TypeInvalidRequest},
	CodeInvalidType:        {http.StatusBadRequest, TypeInvalidRequest},
	CodeInvalidValue:       {http.StatusBadRequest, TypeInvalidRequest},
	CodeMissingRequired:    {http.StatusBadRequest, TypeInvalidRequest},
	CodeUnsupportedValue:   {http.StatusBadRequest, TypeInvalidRequest},
	CodeContextLength:      {http.StatusBadRequest, TypeInvalidRequest},
	CodeInvalidAPIKey:      {http.StatusUnauthorized, TypeAuthentication},
	CodeOriginNotAllowed:   {http.StatusForbidden, TypePermission},
	CodeModelNotFound:      {http.StatusNotFound, TypeInvalidRequest},
	CodeUnknownURL:         {http.StatusNotFound, TypeInvalidRequest},
	CodeMethodNotAllowed:   {http.StatusMethodNotAllowed, TypeInvalidRequest},
	CodeRequestTooLarge:    {http.StatusRequestEntityTooLarge, TypeInvalidRequest},
	CodeInternal:           {http.StatusInternalServerError, TypeServer},
	CodeOverloaded:         {http.StatusServiceUnavailable, TypeServer},
	CodeModelLoading:       {http.StatusServiceUnavailable, TypeServer},
}

// newError builds the APIError of a code: its status and type come from
// errorCodes. An unknown code is a bug here and answers 500.
func newError(code, param, format string, args ...any) *APIError {
	cl, ok := errorCodes[code]
	if !ok {
		cl = errorCodes[CodeInternal]
	}
	return &APIError{Status: cl.status, Type: cl.typ, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// badRequest builds a 400 invalid_request_error.
func badRequest(code, param, format string, args ...any) *APIError {
	return newError(code, param, format, args...)
}

// contextTooLong is the 400 of a prompt that leaves no room to generate:
// the limit (the numbers of /v1/models and asi1d models ls) and how an
// operator raises it.
func contextTooLong(info engine.Info, prompt int) *APIError {
	how := "it is the model's trained context: a longer prompt needs a model trained on a longer one (asi1d serve --ctx and the \"ctx\" of models.json size the shared KV pool, but one request never gets more than the trained context)"
	switch {
	case !info.KVUnified && info.Parallel > 1:
		how = fmt.Sprintf("each of %d sequences gets %d of the server's %d KV cells (the model was trained on %d); an operator raises it with asi1d serve --ctx N (or the \"ctx\" of the model's entry in models.json), or shares one pool with --kv-unified",
			info.Parallel, info.NCtxSeq, info.NCtx, info.NCtxTrain)
	case info.NCtxTrain <= 0 || info.NCtxSeq < info.NCtxTrain:
		how = fmt.Sprintf("the server's KV pool of %d cells allows no more (the model was trained on %d); an operator raises it with asi1d serve --ctx N, or the \"ctx\" of the model's entry in models.json", info.NCtx, info.NCtxTrain)
	}
	return badRequest(CodeContextLength, "messages",
		"This model's maximum context length is %d tokens (prompt and completion), but the prompt has %d tokens; shorten the messages. The limit is %d because %s",
		info.NCtxSeq, prompt, info.NCtxSeq, how)
}

// Errors of the server's own state, answered through ErrorFor.
var (
	errModelLoading = errors.New("the model is still loading")
	errShuttingDown = errors.New("the server is shutting down")
	errInternal     = errors.New("internal error")
)

// ErrorFor maps an error to what the client sees: the one place that turns
// a Go error into a status, type and code. An *APIError (validation) is
// answered as it is; the scheduler's, the engine's and the server's own
// sentinel errors get their contract code, with Retry-After on the 503s;
// anything else is the server's fault: 500 internal_error with err's text.
func ErrorFor(err error) *APIError {
	var ae *APIError
	var mbe *http.MaxBytesError
	var unknown *UnknownModelError
	var unusable *UnusableModelError
	var loadErr *ModelLoadError
	switch {
	case err == nil:
		return newError(CodeInternal, "", "internal error")
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return newError(CodeRequestTooLarge, "", "Request body too large: the limit is %d bytes", mbe.Limit)
	case errors.As(err, &unknown):
		return modelNotFound(unknown.ID, unknown.Known)
	case errors.As(err, &unusable):
		return newError(CodeModelNotFound, "model", "The model '%s' cannot be served: %s", unusable.ID, unusable.Reason)
	case errors.As(err, &loadErr):
		return retry(newError(CodeModelLoading, "model", "The model '%s' could not be loaded: %v; retry later", loadErr.ID, loadErr.Err), 5)
	case errors.Is(err, ErrNoRoom):
		return retry(newError(CodeOverloaded, "model", "The server is overloaded: every loaded model is busy and there is no room to load another; retry later"), 1)
	case errors.Is(err, errModelLoading):
		return retry(newError(CodeModelLoading, "", "The model is still loading"), 5)
	case errors.Is(err, errShuttingDown), errors.Is(err, scheduler.ErrDraining),
		errors.Is(err, scheduler.ErrClosed), errors.Is(err, scheduler.ErrShutdown):
		return retry(newError(CodeOverloaded, "", "The server is shutting down"), 1)
	case errors.Is(err, scheduler.ErrQueueFull):
		return retry(newError(CodeOverloaded, "", "The server is overloaded: too many requests are waiting; retry later"), 1)
	case errors.Is(err, engine.ErrClosed):
		return retry(newError(CodeOverloaded, "", "The model is being replaced; retry"), 1)
	case errors.Is(err, errInternal):
		return newError(CodeInternal, "", "The server had an internal error while processing the request")
	}
	return newError(CodeInternal, "", "%s", upperFirst(err.Error()))
}

func retry(e *APIError, seconds int) *APIError {
	e.RetryAfter = seconds
	return e
}

// upperFirst capitalizes an ASCII first letter: Go errors start lower-case,
// the contract's messages are sentences.
func upperFirst(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
