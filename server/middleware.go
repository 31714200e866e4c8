package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// Keys under which the middleware stores values in the gin context.
const (
	ctxRequestID = "asi1d.request_id"
	ctxSessionID = "asi1d.session_id"
)

// Header names used by the middleware.
const (
	HeaderRequestID = "x-request-id"
	HeaderSessionID = "x-session-id"
)

// MaxSessionIDBytes is the longest accepted x-session-id value (contract section 2).
const MaxSessionIDBytes = 256

// jsonContentType is the Content-Type gin's c.JSON sends.
var jsonContentType = []string{"application/json; charset=utf-8"}

// WriteError answers err in the contract's error shape (status, Retry-After
// when set, JSON body with message/type/param/code) and aborts the handler
// chain. If the response headers were already sent (a started stream), it
// only aborts: the caller must report the error in-stream.
func WriteError(c *gin.Context, err *APIError) {
	if err == nil {
		err = ErrorFor(nil)
	}
	if c.Writer.Written() {
		c.Abort()
		return
	}
	if err.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(err.RetryAfter))
	}
	// What c.AbortWithStatusJSON(err.Status, err.Body()) writes (gin's
	// JSON Content-Type unless one is set, the body's bytes), without
	// reflection.
	c.Abort()
	h := c.Writer.Header()
	if len(h["Content-Type"]) == 0 {
		h["Content-Type"] = jsonContentType
	}
	c.Status(err.Status)
	body := err.Body()
	_, _ = c.Writer.Write(body.AppendJSON(make([]byte, 0, 96+len(err.Message)+len(err.Param)+len(err.Code))))
}

// RequestID gives every request an id from newID, sent as the x-request-id
// response header and stored in the gin context (see RequestIDFrom). The
// chat handler replaces it with the completion id through SetRequestID.
// A client-sent x-request-id is not trusted or echoed.
func RequestID(newID func() string) gin.HandlerFunc {
	return func(c *gin.Context) {
		SetRequestID(c, newID())
		c.Next()
	}
}

// SetRequestID sets the request id of c (header and context value); it has
// an effect on the header only before the response headers are written.
func SetRequestID(c *gin.Context, id string) {
	c.Set(ctxRequestID, id)
	c.Header(HeaderRequestID, id)
}

// RequestIDFrom returns the request id stored by RequestID/SetRequestID, or "".
func RequestIDFrom(c *gin.Context) string {
	return c.GetString(ctxRequestID)
}

// Recovery recovers a panic in a later handler, logs it with its stack and,
// when no response headers were written yet, answers 500 server_error /
// internal_error. A panic with http.ErrAbortHandler is re-raised so net/http
// aborts the connection quietly, as that sentinel asks. A nil logger means
// slog.Default().
func Recovery(logger *slog.Logger) gin.HandlerFunc {
	if logger == nil {
		logger = slog.Default()
	}
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			logger.Error("panic while serving request",
				"panic", fmt.Sprint(rec),
				"method", c.Request.Method,
				"path", c.Request.URL.Path,
				"request_id", RequestIDFrom(c),
				"stack", string(debug.Stack()))
			WriteError(c, ErrorFor(errInternal))
		}()
		c.Next()
	}
}

// Auth checks `Authorization: Bearer <key>` against keys when at least one
// non-empty key is configured (empty strings are not keys); with none it is
// a no-op. The scheme word is case-insensitive. Every configured key is
// compared, in constant time over SHA-256 digests so neither which key
// matched nor the key lengths leak. Failures answer 401
// authentication_error / invalid_api_key with `WWW-Authenticate: Bearer`.
// The body is never read here.
func Auth(keys []string) gin.HandlerFunc {
	var digests [][sha256.Size]byte
	for _, k := range keys {
		if k != "" {
			digests = append(digests, sha256.Sum256([]byte(k)))
		}
	}
	if len(digests) == 0 {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		token, ok := bearerToken(c.GetHeader("Authorization"))
		if ok {
			got := sha256.Sum256([]byte(token))
			match := 0
			for i := range digests {
				match |= subtle.ConstantTimeCompare(got[:], digests[i][:])
			}
			ok = match == 1
		}
		if !ok {
			c.Header("WWW-Authenticate", "Bearer")
			WriteError(c, newError(CodeInvalidAPIKey, "", "Invalid or missing API key"))
			return
		}
		c.Set(ctxKeyID, KeyID(token))
		c.Next()
	}
}

// bearerToken extracts the token of a "Bearer <token>" header value (scheme
// case-insensitive, spaces or tabs between scheme and token).
func bearerToken(h string) (string, bool) {
	h = strings.Trim(h, " \t")
	i := strings.IndexAny(h, " \t")
	if i < 0 || !strings.EqualFold(h[:i], "Bearer") {
		return "", false
	}
	token := strings.TrimLeft(h[i:], " \t")
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// BodyLimit refuses a declared Content-Length above limit with 413
// request_too_large without reading the body, and otherwise wraps the body
// in http.MaxBytesReader so that reading past limit (for example a chunked
// body) fails; ReadBody maps that failure to the same 413. The connection is
// never reset here: net/http sends the answer, then drains or closes
// (half-close first) the connection itself.
func BodyLimit(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			WriteError(c, ErrorFor(&http.MaxBytesError{Limit: limit}))
			return
		}
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			c.Request.Body = http.MaxBytesReader(unwrapWriter(c.Writer), c.Request.Body, limit)
		}
		c.Next()
	}
}

// unwrapWriter returns the innermost http.ResponseWriter under w, so that
// http.MaxBytesReader can tell net/http's own writer that the limit was hit
// (which makes the server close the connection after the answer instead of
// trying to read the rest of the body).
func unwrapWriter(w http.ResponseWriter) http.ResponseWriter {
	for i := 0; i < 16; i++ {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		inner := u.Unwrap()
		if inner == nil {
			break
		}
		w = inner
	}
	return w
}

// readRequest reads the request's body and decodes it with decode (the
// endpoint's strict decoder), answering the first error found; ok false
// when it has answered.
func readRequest[T any](c *gin.Context, decode func([]byte) (T, *APIError)) (req T, ok bool) {
	body, aerr := ReadBody(c)
	if aerr == nil {
		req, aerr = decode(body)
	}
	if aerr != nil {
		WriteError(c, aerr)
		return req, false
	}
	return req, true
}

// ReadBody reads the whole request body. A body over BodyLimit's limit gives
// 413 request_too_large; any other read failure (client gone, broken
// chunked encoding) gives 400 invalid_json with param null.
func ReadBody(c *gin.Context) ([]byte, *APIError) {
	if c.Request.Body == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	if n := c.Request.ContentLength; n > 0 && n <= 8<<20 {
		buf.Grow(int(n))
	}
	_, err := buf.ReadFrom(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrorFor(err)
		}
		return nil, badRequest(CodeInvalidJSON, "", "could not read the request body: %v", err)
	}
	return buf.Bytes(), nil
}

// RequireJSON makes a POST, PUT or PATCH request carry a Content-Type whose
// media type is application/json (case-insensitive, parameters such as
// charset allowed, even malformed ones); otherwise it answers 400
// invalid_content_type with param null.
func RequireJSON() gin.HandlerFunc {
	return func(c *gin.Context) {
		switch c.Request.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			c.Next()
			return
		}
		ct := c.GetHeader("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		// A malformed parameter ("application/json; charset") still names
		// the media type; only the media type matters here.
		if errors.Is(err, mime.ErrInvalidMediaParameter) {
			err = nil
		}
		if ct == "" || err != nil || mt != "application/json" {
			shown := ct
			if shown == "" {
				shown = "none"
			} else {
				shown = quotedStr(shown)
			}
			WriteError(c, badRequest(CodeInvalidContentType, "",
				"Content-Type must be application/json, got %s", shown))
			return
		}
		c.Next()
	}
}

// NoRoute answers any unknown path with 404 unknown_url. Install it with
// engine.NoRoute.
func NoRoute() gin.HandlerFunc {
	return func(c *gin.Context) {
		WriteError(c, newError(CodeUnknownURL, "", "Unknown request URL: %s %s", c.Request.Method, shortPath(c)))
	}
}

// NoMethod answers a known path requested with the wrong method with 405
// method_not_allowed. Install it with engine.NoMethod and set
// engine.HandleMethodNotAllowed = true: gin itself then sets the Allow
// header (the methods registered for the path) before calling this handler,
// and this handler keeps it.
func NoMethod() gin.HandlerFunc {
	return func(c *gin.Context) {
		msg := fmt.Sprintf("Method %s is not allowed for %s", c.Request.Method, shortPath(c))
		if allow := c.Writer.Header().Get("Allow"); allow != "" {
			msg += "; allowed: " + allow
		}
		WriteError(c, newError(CodeMethodNotAllowed, "", "%s", msg))
	}
}

// shortPath returns the request path for a message, bounded in length.
func shortPath(c *gin.Context) string {
	p := c.Request.URL.Path
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return p
}

// SessionID validates the optional x-session-id header (at most
// MaxSessionIDBytes bytes, else 400 invalid_value with param null), echoes a
// non-empty one in the x-session-id response header and stores it in the
// gin context (see SessionIDFrom).
func SessionID() gin.HandlerFunc {
	return func(c *gin.Context) {
		sid := c.GetHeader(HeaderSessionID)
		if len(sid) > MaxSessionIDBytes {
			WriteError(c, badRequest(CodeInvalidValue, "",
				"x-session-id must be at most %d bytes, got %d", MaxSessionIDBytes, len(sid)))
			return
		}
		if sid != "" {
			c.Set(ctxSessionID, sid)
			c.Header(HeaderSessionID, sid)
		}
		c.Next()
	}
}

// SessionIDFrom returns the x-session-id stored by SessionID, or "".
func SessionIDFrom(c *gin.Context) string {
	return c.GetString(ctxSessionID)
}
