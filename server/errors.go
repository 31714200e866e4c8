package server

import (
	"fmt"
	"net/http"
)

// Error types and codes of the contract (shared/ASI1-API.md section 9).
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"

	CodeInvalidJSON        = "invalid_json"
	CodeInvalidContentType = "invalid_content_type"
	CodeInvalidType        = "invalid_type"
	CodeInvalidValue       = "invalid_value"
	CodeMissingRequired    = "missing_required_parameter"
	CodeUnsupportedValue   = "unsupported_value"
	CodeContextLength      = "context_length_exceeded"
	CodeInvalidAPIKey      = "invalid_api_key"
	CodeModelNotFound      = "model_not_found"
	CodeUnknownURL         = "unknown_url"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeRequestTooLarge    = "request_too_large"
	CodeInternal           = "internal_error"
	CodeOverloaded         = "server_overloaded"
	CodeModelLoading       = "model_loading"
	CodeRateLimited        = "rate_limit_exceeded"
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

// errorBody is the wire shape of an APIError.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// Body returns the JSON-marshalable wire form of the error.
func (e *APIError) Body() any {
	d := errorDetail{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		p := e.Param
		d.Param = &p
	}
	if e.Code != "" {
		c := e.Code
		d.Code = &c
	}
	return errorBody{Error: d}
}

// badRequest builds a 400 invalid_request_error.
func badRequest(code, param, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}
