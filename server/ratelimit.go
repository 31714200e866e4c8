package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/server/ratelimit"
)

// Per-key rate limits (Options.Limits): requests per minute are counted by
// limitRequests before anything else of a chat completion; tokens per
// minute by reserveTokens in the handler, once the prompt is tokenized:
// prompt tokens plus the completion budget (max_tokens, or without it
// DefaultCompletionReserve, or less when the context has less room left:
// not the whole context, which would refuse a key a long answer it may
// never write) are reserved, and the reservation is corrected to
// the real usage (prompt + completion tokens) when the answer ends, so
// unused budget returns to the key within the same minute. Every chat
// completion answer carries the state of each configured limit:
//
//	x-ratelimit-limit-requests      requests allowed per minute
//	x-ratelimit-remaining-requests  left in this minute after this request
//	x-ratelimit-reset-requests      time until the minute ends, e.g. "12.5s"
//	x-ratelimit-limit-tokens        (and -remaining-, -reset-) the same for tokens
//
// A refused request gets 429 rate_limit_error / rate_limit_exceeded with
// Retry-After (whole seconds until the window ends, at least 1).

// Rate-limit response headers (OpenAI's names).
const (
	HeaderLimitRequests     = "x-ratelimit-limit-requests"
	HeaderRemainingRequests = "x-ratelimit-remaining-requests"
	HeaderResetRequests     = "x-ratelimit-reset-requests"
	HeaderLimitTokens       = "x-ratelimit-limit-tokens"
	HeaderRemainingTokens   = "x-ratelimit-remaining-tokens"
	HeaderResetTokens       = "x-ratelimit-reset-tokens"
)

// rateKey names the caller whose counts a request goes to: the API key
// (a digest of it, never the key itself) when auth is on, else the TCP
// peer's address (the RemoteAddr, not X-Forwarded-For, which a client
// could forge; behind a proxy without keys, all clients share one count).
func (s *Server) rateKey(c *gin.Context) string {
	if len(s.opts.APIKeys) > 0 {
		if tok, ok := bearerToken(c.GetHeader("Authorization")); ok {
			h := sha256.Sum256([]byte(tok))
			return "k:" + hex.EncodeToString(h[:12])
		}
	}
	return "ip:" + c.RemoteIP()
}

// DefaultCompletionReserve is the completion tokens reserved against
// --rate-tpm for a request without max_tokens; the reservation is settled
// to the real usage when the answer ends, above it as well as below.
const DefaultCompletionReserve = 512

// completionReserve is the completion tokens to reserve: max_tokens when
// given, else DefaultCompletionReserve; at most budget, the room the
// context leaves.
func completionReserve(maxTokens int64, budget int) int {
	if maxTokens > 0 {
		return int(min(maxTokens, int64(budget)))
	}
	return min(DefaultCompletionReserve, budget)
}

// limitRequests counts the request against the key's requests per minute.
func (s *Server) limitRequests(c *gin.Context) {
	l := s.opts.Limits
	if !l.Enabled(ratelimit.Requests) {
		c.Next()
		return
	}
	res, _ := l.Take(c.Request.Context(), s.rateKey(c), ratelimit.Requests, 1)
	setRateHeaders(c, res)
	if !res.Allowed {
		WriteError(c, rateLimited(res))
		return
	}
	c.Next()
}

// reserveTokens reserves n tokens of the key's tokens per minute. The
// reservation (nil when tokens are not limited) must be settled with the
// tokens used, 0 when the request did not run.
func (s *Server) reserveTokens(c *gin.Context, n int) (*ratelimit.Reservation, *APIError) {
	l := s.opts.Limits
	if !l.Enabled(ratelimit.Tokens) {
		return nil, nil
	}
	res, r := l.Take(c.Request.Context(), s.rateKey(c), ratelimit.Tokens, int64(n))
	setRateHeaders(c, res)
	if !res.Allowed {
		return nil, rateLimited(res)
	}
	return r, nil
}

// settleTokens corrects a reservation to the tokens used, also after the
// client has gone.
func settleTokens(c *gin.Context, r *ratelimit.Reservation, used int) {
	r.Settle(context.WithoutCancel(c.Request.Context()), int64(used))
}

func setRateHeaders(c *gin.Context, r ratelimit.Result) {
	limit, remaining, reset := HeaderLimitRequests, HeaderRemainingRequests, HeaderResetRequests
	if r.Kind == ratelimit.Tokens {
		limit, remaining, reset = HeaderLimitTokens, HeaderRemainingTokens, HeaderResetTokens
	}
	c.Header(limit, strconv.FormatInt(r.Limit, 10))
	c.Header(remaining, strconv.FormatInt(r.Remaining, 10))
	c.Header(reset, resetString(r.Reset))
}

// resetString writes a duration as OpenAI does ("1s", "6m0s", "20ms"):
// Go's duration format, rounded to milliseconds.
func resetString(d time.Duration) string {
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d.Round(time.Millisecond).String()
}

func rateLimited(r ratelimit.Result) *APIError {
	e := &APIError{Status: http.StatusTooManyRequests, Type: TypeRateLimit, Code: CodeRateLimited}
	if r.Requested > r.Limit {
		// Waiting does not help: no Retry-After.
		e.Message = fmt.Sprintf("Request too large for the %s per minute limit of this key: limit %d, requested %d; lower max_tokens or the prompt",
			r.Kind, r.Limit, r.Requested)
		return e
	}
	e.RetryAfter = max(int(math.Ceil(r.Reset.Seconds())), 1)
	e.Message = fmt.Sprintf("Rate limit reached for %s per minute on this key: limit %d, remaining %d, requested %d; retry in %s",
		r.Kind, r.Limit, r.Remaining, r.Requested, resetString(r.Reset))
	return e
}
