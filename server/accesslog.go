package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

// Keys of what the handlers tell the access log.
const (
	ctxKeyID            = "asi1d.key_id"
	ctxLogModel         = "asi1d.log_model"
	ctxPromptTokens     = "asi1d.prompt_tokens"
	ctxCompletionTokens = "asi1d.completion_tokens"
)

// KeyID is how logs name an API key: "sha256:" and the first 8 hex digits
// of its SHA-256 digest (printf %s KEY | sha256sum | cut -c1-8), never the
// key itself.
func KeyID(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:4])
}

// quietPaths are the probes and the scrape: logged at debug, so that a
// load balancer's checks do not fill the info log.
var quietPaths = map[string]bool{"/health": true, "/ready": true, "/metrics": true}

// AccessLog writes one line per request through logger when it ends:
// method, path (without the query), status, latency, and where known the
// model, prompt and completion tokens, request id, API key (its KeyID) and
// client address (the TCP peer, not X-Forwarded-For, which a client can
// forge). Probes and /metrics are logged at debug, server errors at warn,
// the rest at info. A request whose client left before the answer has
// status 499.
func AccessLog(logger *slog.Logger) gin.HandlerFunc {
	if logger == nil {
		logger = slog.Default()
	}
	return func(c *gin.Context) {
		t0 := time.Now()
		c.Next()
		path := c.Request.URL.Path
		lvl := slog.LevelInfo
		status := c.Writer.Status()
		switch {
		case c.Request.Context().Err() != nil && c.GetBool(ctxAbandoned):
			status = 499
		case status >= 500:
			lvl = slog.LevelWarn
		case quietPaths[path]:
			lvl = slog.LevelDebug
		}
		ctx := context.Background()
		if !logger.Enabled(ctx, lvl) {
			return
		}
		if len(path) > 200 {
			path = path[:200] + "..."
		}
		attrs := make([]slog.Attr, 0, 11)
		attrs = append(attrs,
			slog.String("method", c.Request.Method),
			slog.String("path", path),
			slog.Int("status", status),
			slog.Float64("ms", float64(time.Since(t0).Microseconds())/1000),
		)
		if m := c.GetString(ctxLogModel); m != "" {
			attrs = append(attrs, slog.String("model", m))
		}
		if p, ok := c.Get(ctxPromptTokens); ok {
			attrs = append(attrs, slog.Any("prompt_tokens", p), slog.Any("completion_tokens", c.GetInt(ctxCompletionTokens)))
		}
		if id := RequestIDFrom(c); id != "" {
			attrs = append(attrs, slog.String("request_id", id))
		}
		if k := c.GetString(ctxKeyID); k != "" {
			attrs = append(attrs, slog.String("key", k))
		}
		attrs = append(attrs, slog.String("client", c.RemoteIP()))
		logger.LogAttrs(ctx, lvl, "request", attrs...)
	}
}

// logUsage tells the access log a completion's model and token counts.
func logUsage(c *gin.Context, model string, prompt, completion int) {
	c.Set(ctxLogModel, model)
	c.Set(ctxPromptTokens, prompt)
	c.Set(ctxCompletionTokens, completion)
}

// getAndHead registers h for GET and HEAD: HEAD answers what GET would,
// status and headers, without the body (net/http drops it).
func getAndHead(r gin.IRoutes, path string, h ...gin.HandlerFunc) {
	r.GET(path, h...)
	r.HEAD(path, h...)
}
