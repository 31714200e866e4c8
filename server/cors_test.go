package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/ratelimit"
)

// preflight sends the OPTIONS request a browser sends before a
// cross-origin POST with the given request headers.
func (e *ctEnv) preflight(path, origin, headers string, extra ...string) ctResp {
	e.t.Helper()
	hdr := []string{"Origin", origin, "Access-Control-Request-Method", "POST"}
	if headers != "" {
		hdr = append(hdr, "Access-Control-Request-Headers", headers)
	}
	return e.do(http.MethodOptions, path, "", append(hdr, extra...)...)
}

func hasVary(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// A preflight from a loopback page (allowed by default) is answered 204
// with the methods, the headers the browser asked for (the OpenAI SDK's
// included) and a max age, without an API key and without counting
// against the rate limit; the request that follows gets the origin and
// the exposed headers, which it carries.
func TestCORSPreflightNeedsNoKeyAndIsNotCounted(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{"k1"},
		Limits: rlLimiter(t, ratelimit.Options{RPM: 1})}})
	const origin = "http://localhost:5173"
	asked := "authorization, content-type, x-stainless-os, x-stainless-retry-count, openai-organization, OpenAI-Project, x-session-id"
	for i := 0; i < 3; i++ {
		r := e.preflight("/v1/chat/completions", origin, asked)
		if r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Fatalf("preflight %d: status %d body %q", i, r.status, r.body)
		}
		h := r.header
		if got := h.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("Allow-Origin %q", got)
		}
		if got := h.Get("Access-Control-Allow-Methods"); got != "GET, POST, HEAD, OPTIONS" {
			t.Errorf("Allow-Methods %q", got)
		}
		if got := h.Get("Access-Control-Allow-Headers"); got != "authorization, content-type, x-stainless-os, x-stainless-retry-count, openai-organization, OpenAI-Project, x-session-id" {
			t.Errorf("Allow-Headers %q", got)
		}
		if got := h.Get("Access-Control-Max-Age"); got != "600" {
			t.Errorf("Max-Age %q", got)
		}
		if !hasVary(h, "Origin") {
			t.Errorf("Vary %q lacks Origin", h.Values("Vary"))
		}
		if h.Get("WWW-Authenticate") != "" || h.Get(server.HeaderLimitRequests) != "" {
			t.Errorf("the preflight went through auth or the limit: %v", h)
		}
	}
	// A preflight of GET /v1/models too (a route without OPTIONS).
	if r := e.preflight("/v1/models", origin, ""); r.status != http.StatusNoContent ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight of /v1/models: %d %v", r.status, r.header)
	}

	// The one request of the minute still goes through: preflights were not counted.
	r := e.chat(ctBody("hi", map[string]any{"max_tokens": 2}), "Authorization", "Bearer k1", "Origin", origin)
	if r.status != http.StatusOK {
		t.Fatalf("request after preflights: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("answer's Allow-Origin %q", got)
	}
	exposed := strings.Split(r.header.Get("Access-Control-Expose-Headers"), ", ")
	for _, name := range []string{server.HeaderLimitRequests, server.HeaderRemainingRequests, server.HeaderResetRequests,
		server.HeaderLimitTokens, server.HeaderRemainingTokens, server.HeaderResetTokens, "Retry-After", "x-request-id", "x-session-id"} {
		found := false
		for _, x := range exposed {
			found = found || strings.EqualFold(x, name)
		}
		if !found {
			t.Errorf("Expose-Headers %q lacks %s", exposed, name)
		}
	}
	if r.header.Get(server.HeaderRemainingRequests) != "0" || r.header.Get("x-request-id") == "" {
		t.Errorf("the exposed headers are not there: %v", r.header)
	}
	// A refusal carries the origin too, so the page can read the 429 and its Retry-After.
	r = e.chat(ctBody("hi", map[string]any{"max_tokens": 2}), "Authorization", "Bearer k1", "Origin", origin)
	if r.status != http.StatusTooManyRequests || r.header.Get("Access-Control-Allow-Origin") != origin || r.header.Get("Retry-After") == "" {
		t.Errorf("429 for the page: %d %v", r.status, r.header)
	}
	// So does a 401.
	r = e.do(http.MethodGet, "/v1/models", "", "Origin", origin)
	if r.status != http.StatusUnauthorized || r.header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("401 for the page: %d %v", r.status, r.header)
	}
}

// The default set is loopback http(s) on any port; nothing else.
func TestCORSDefaultLoopbackSet(t *testing.T) {
	e := ctStart(t, ctConfig{})
	for origin, want := range map[string]bool{
		"http://localhost":             true,
		"http://localhost:3000":        true,
		"https://localhost:8443":       true,
		"http://127.0.0.1:5173":        true,
		"https://127.0.0.1":            true,
		"http://[::1]:5173":            true,
		"http://LOCALHOST:1":           true,
		"http://localhost.example.com": false,
		"http://127.0.0.1.nip.io":      false,
		"https://example.com":          false,
		"http://10.0.0.1:8080":         false,
		"null":                         false,
		"file://":                      false,
		"ftp://localhost":              false,
		"http://localhost/path":        false,
		"http://user@localhost":        false,
	} {
		r := e.preflight("/v1/chat/completions", origin, "content-type")
		got := r.header.Get("Access-Control-Allow-Origin")
		switch {
		case want && (r.status != http.StatusNoContent || got != origin):
			t.Errorf("%s: status %d Allow-Origin %q, want 204 and the origin", origin, r.status, got)
		case !want && (r.status != http.StatusForbidden || got != ""):
			t.Errorf("%s: status %d Allow-Origin %q, want 403 and none", origin, r.status, got)
		}
	}
}

// A list replaces the default set: a listed origin is allowed, a loopback
// page is not (unless the list says localhost), the server's own origin
// is. A refused preflight is 403 in the error shape; a refused simple
// request runs but gets no CORS header, so the browser hides the answer.
func TestCORSAllowedOriginsList(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{AllowedOrigins: []string{"https://app.example.com", "http://127.0.0.1:9"}}})
	// Listed (the browser sends the origin without a default port).
	r := e.preflight("/v1/chat/completions", "https://app.example.com", "authorization")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("listed origin: %d %v", r.status, r.header)
	}
	if r := e.preflight("/v1/chat/completions", "http://127.0.0.1:9", ""); r.status != http.StatusNoContent {
		t.Errorf("listed loopback origin: %d", r.status)
	}
	// Not listed: a loopback page on another port.
	const other = "http://localhost:5173"
	r = e.preflight("/v1/chat/completions", other, "authorization")
	if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("unlisted origin's preflight: %d %v %s", r.status, r.header, r.body)
	}
	er := ctObj(t, r.body)["error"].(map[string]any)
	if er["type"] != "permission_error" || er["code"] != "origin_not_allowed" || er["param"] != nil ||
		!strings.Contains(er["message"].(string), `"`+other+`"`) || !strings.Contains(er["message"].(string), "--allowed-origins") {
		t.Errorf("403 body: %s", r.body)
	}
	if !hasVary(r.header, "Origin") {
		t.Errorf("403 without Vary: Origin: %v", r.header)
	}
	r = e.do(http.MethodGet, "/v1/models", "", "Origin", other)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("unlisted origin's GET: %d %v", r.status, r.header)
	}
	// The server's own origin (the playground) is always allowed.
	own := e.url
	if r := e.preflight("/v1/chat/completions", own, "content-type"); r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != own {
		t.Errorf("own origin %s: %d %v", own, r.status, r.header)
	}
	// Without an Origin there is nothing to decide: an OPTIONS is the 405 it was.
	if r := e.do(http.MethodOptions, "/v1/chat/completions", "", "Access-Control-Request-Method", "POST"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("OPTIONS without Origin: %d", r.status)
	}

	// "localhost" in a list adds the loopback set back.
	e2 := ctStart(t, ctConfig{opts: server.Options{AllowedOrigins: []string{"localhost", "https://app.example.com"}}})
	if r := e2.preflight("/v1/chat/completions", other, ""); r.status != http.StatusNoContent {
		t.Errorf("localhost in the list: %d", r.status)
	}
	if r := e2.preflight("/v1/chat/completions", "https://evil.example.com", ""); r.status != http.StatusForbidden {
		t.Errorf("unlisted with localhost in the list: %d", r.status)
	}
}

// "*" allows every origin, answered with Access-Control-Allow-Origin: *.
func TestCORSAnyOrigin(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{AllowedOrigins: []string{"*"}, APIKeys: []string{"k"}}})
	r := e.preflight("/v1/chat/completions", "https://anything.example", "Authorization, Content-Type, bad header, x-ok")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	// Only valid header names are echoed.
	if got := r.header.Get("Access-Control-Allow-Headers"); got != "Authorization, Content-Type, x-ok" {
		t.Errorf("Allow-Headers %q", got)
	}
	r = e.do(http.MethodGet, "/v1/models", "", "Origin", "https://anything.example", "Authorization", "Bearer k")
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET: %d %v", r.status, r.header)
	}
}

func TestCheckOrigins(t *testing.T) {
	for _, ok := range [][]string{nil, {"*"}, {"localhost"}, {"https://a.example.com", "http://[::1]:3000", "http://localhost:5173/"}, {"chrome-extension://abcdef"}} {
		if err := server.CheckOrigins(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"a.example.com", "https://a.example.com/app", "https://u:p@a.example.com", "https://a.example.com?x=1", "://x", "http://"} {
		err := server.CheckOrigins([]string{"https://fine.example", bad})
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "scheme://host") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
