package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error types and codes of the contract (shared/ASI1-API.md section 9).
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
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
	CodeOriginNotAllowed   = "origin_not_allowed"
	CodeModelNotFound      = "model_not_found"
	CodeUnknownURL         = "unknown_url"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeRequestTooLarge    = "request_too_large"
	CodeInternal           = "internal_error"
	CodeOverloaded         = "server_overloaded"
	CodeModelLoading       = "model_loading"
	CodeRateLimited        = "rate_limit_exceeded"
)

// ErrorBody is the body of every non-2xx answer, and the data of an error
// event inside a stream: {"error":{"message","type","param","code"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object. Param and Code are written as null
// when empty (all four keys are always present), and null reads as "".
type ErrorDetail struct {
	Message string
	Type    string
	// Param is the JSON path of the offending request field.
	Param string
	Code  string
}

type errorDetailWire struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// MarshalJSON writes the four keys, "" as null for param and code (see
// ErrorBody.AppendJSON).
func (d ErrorDetail) MarshalJSON() ([]byte, error) {
	return d.appendJSON(make([]byte, 0, 64+len(d.Message)+len(d.Type)+len(d.Param)+len(d.Code))), nil
}

// appendJSON appends the error object byte for byte as encoding/json
// writes errorDetailWire (AppendQuoted is its string encoding).
func (d ErrorDetail) appendJSON(b []byte) []byte {
	b = append(b, `{"message":`...)
	b = AppendQuoted(b, d.Message)
	b = append(b, `,"type":`...)
	b = AppendQuoted(b, d.Type)
	b = append(b, `,"param":`...)
	b = appendNullable(b, d.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, d.Code)
	return append(b, '}')
}

// AppendJSON appends the body as json.Marshal writes it, without
// reflection: what a server answers with (its error answers and the error
// events of its streams).
func (e ErrorBody) AppendJSON(b []byte) []byte {
	b = append(b, `{"error":`...)
	b = e.Error.appendJSON(b)
	return append(b, '}')
}

// MarshalJSON writes AppendJSON's bytes.
func (e ErrorBody) MarshalJSON() ([]byte, error) {
	d := &e.Error
	return e.AppendJSON(make([]byte, 0, 80+len(d.Message)+len(d.Type)+len(d.Param)+len(d.Code))), nil
}

// AppendErrorEvent appends the data-only event of an error inside a chat
// stream: what AppendJSONEvent(b, "", e) writes.
func AppendErrorEvent(b []byte, e ErrorBody) []byte {
	b = append(b, dataPrefix...)
	b = e.AppendJSON(b)
	return append(b, '\n', '\n')
}

// appendNullable appends s as a JSON string, "" as null.
func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return AppendQuoted(b, s)
}

// UnmarshalJSON reads the error object; null param and code read as "".
func (d *ErrorDetail) UnmarshalJSON(b []byte) error {
	var w errorDetailWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*d = ErrorDetail{Message: w.Message, Type: w.Type}
	if w.Param != nil {
		d.Param = *w.Param
	}
	if w.Code != nil {
		d.Code = *w.Code
	}
	return nil
}

// Error is an error answered by a server: a non-2xx status, or an error
// event inside a stream (Status 0). Detail is the contract's error object;
// for a body in another shape (a proxy's HTML page) its Message is the
// body's text.
type Error struct {
	// Status is the HTTP status; 0 for an error event inside a stream.
	Status int
	Detail ErrorDetail
	// RetryAfter is the Retry-After header of a 429 or 503 (seconds or an
	// HTTP date); 0 when absent or past.
	RetryAfter time.Duration
}

// Error reads "STATUS CODE (PARAM): MESSAGE", leaving out what is empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(' ')
	}
	if e.Detail.Code != "" {
		b.WriteString(e.Detail.Code)
		if e.Detail.Param != "" {
			fmt.Fprintf(&b, " (%s)", e.Detail.Param)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Detail.Message)
	return b.String()
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// ReadError turns a non-2xx answer into an *Error, using the contract's
// body when there is one and the body's text (or the status text)
// otherwise. It reads at most 64 KiB of resp.Body and does not close it.
func ReadError(resp *http.Response) *Error {
	b, _ := readLimited(resp.Body, maxErrorBody)
	e := &Error{Status: resp.StatusCode}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	if d, ok := ParseErrorBody(b); ok {
		e.Detail = d
		return e
	}
	e.Detail.Message = strings.TrimSpace(string(b))
	if e.Detail.Message == "" {
		e.Detail.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// ParseErrorBody reads b as an error body; ok is false unless it is one
// with a message.
func ParseErrorBody(b []byte) (ErrorDetail, bool) {
	var body struct {
		Error *ErrorDetail `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil || body.Error == nil || body.Error.Message == "" {
		return ErrorDetail{}, false
	}
	return *body.Error, true
}

// readLimited reads at most n bytes of r.
func readLimited(r io.Reader, n int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, n))
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t).Round(time.Second), 0)
	}
	return 0
}
