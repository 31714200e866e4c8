package server

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
)

// Cross-origin requests (CORS): a web page served from another origin may
// call the API from a browser when its origin is allowed
// (Options.AllowedOrigins):
//
//   - none configured: the default set, loopback origins on any port
//     (http and https on localhost, 127.0.0.1 and [::1]), as ollama does;
//   - "*": every origin;
//   - a list of origins (scheme://host[:port]): those alone; the word
//     "localhost" in the list stands for the default set.
//
// The server's own origin (the Host the request was sent to) is always
// allowed: the playground's own requests carry an Origin header too.
//
// An allowed origin gets Access-Control-Allow-Origin (the origin, or * for
// "*") and, on every answer, Access-Control-Expose-Headers naming the
// rate-limit headers, Retry-After, x-request-id, x-session-id and
// x-asi1d-replica. A preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered here, before auth and the
// rate limits, with 204, the methods, the headers the browser asked for,
// and Access-Control-Max-Age. A disallowed origin gets no CORS header, so
// the browser withholds the answer from the page; its preflight is
// answered 403 permission_error / origin_not_allowed in the error shape.
// Every answer carries Vary: Origin.

// Allowed methods and exposed headers of cross-origin requests.
const (
	corsMethods = "GET, POST, HEAD, OPTIONS"
	// corsMaxAge is how long (seconds) a browser may cache a preflight:
	// ten minutes, so a changed --allowed-origins takes effect soon.
	corsMaxAge = "600"
	// corsHeaders answers a preflight that names no header: what clients
	// send (the OpenAI SDK's own headers included).
	corsHeaders = "Authorization, Content-Type, x-session-id, OpenAI-Organization, OpenAI-Project, OpenAI-Beta"
	// maxRequestHeaders bounds the echoed Access-Control-Request-Headers.
	maxRequestHeaders = 4096
)

var corsExposed = strings.Join([]string{
	HeaderLimitRequests, HeaderRemainingRequests, HeaderResetRequests,
	HeaderLimitTokens, HeaderRemainingTokens, HeaderResetTokens,
	"Retry-After", HeaderRequestID, HeaderSessionID, HeaderReplica,
}, ", ")

// OriginsLocalhost is the word in an origin list for the default set of
// loopback origins.
const OriginsLocalhost = "localhost"

// corsPolicy is a parsed list of allowed origins.
type corsPolicy struct {
	any       bool
	localhost bool
	exact     map[string]bool // normalized origins
}

var schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// normalizeOrigin returns the canonical form of an origin (lower-case
// scheme and host, no default port, no trailing slash), or an error that
// says what is wrong with it.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || u.Host == "" || !schemeRE.MatchString(strings.ToLower(u.Scheme)) {
		return "", fmt.Errorf("%q is not an origin: write scheme://host[:port], e.g. https://app.example.com or http://localhost:5173", s)
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin: an origin has no path, query or user, only scheme://host[:port]", s)
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	} else if scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	}
	return scheme + "://" + host, nil
}

// CheckOrigins checks an allowed-origins list (see Options.AllowedOrigins;
// an entry may hold several, comma-separated): the error names the first bad entry and what an origin looks like.
func CheckOrigins(list []string) error {
	_, err := parseOrigins(list)
	return err
}

// splitOrigins splits comma-separated entries ("a,b" given as one flag).
func splitOrigins(list []string) []string {
	var out []string
	for _, entry := range list {
		for _, o := range strings.Split(entry, ",") {
			if o = strings.TrimSpace(o); o != "" {
				out = append(out, o)
			}
		}
	}
	return out
}

func parseOrigins(list []string) (*corsPolicy, error) {
	p := &corsPolicy{exact: map[string]bool{}}
	n := 0
	for _, o := range splitOrigins(list) {
		switch {
		case o == "*":
			p.any = true
		case strings.EqualFold(o, OriginsLocalhost):
			p.localhost = true
		default:
			norm, err := normalizeOrigin(o)
			if err != nil {
				return nil, err
			}
			p.exact[norm] = true
		}
		n++
	}
	if n == 0 {
		p.localhost = true
	}
	return p, nil
}

// isLoopbackOrigin says whether origin is http(s) on localhost, 127.0.0.1
// or [::1], any port.
func isLoopbackOrigin(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	switch strings.ToLower(u.Hostname()) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// allows says whether a request to host from origin may be answered.
func (p *corsPolicy) allows(origin, host string) bool {
	if p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true // the server's own origin
	}
	if p.localhost && isLoopbackOrigin(u) {
		return true
	}
	norm, err := normalizeOrigin(origin)
	return err == nil && p.exact[norm]
}

// tokenRE is an HTTP header name (RFC 9110 token).
var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// allowHeaders is the Access-Control-Allow-Headers of a preflight: the
// header names the browser asked for (the valid ones), or corsHeaders.
func allowHeaders(requested string) string {
	if len(requested) > maxRequestHeaders {
		requested = requested[:maxRequestHeaders]
	}
	var names []string
	for _, n := range strings.Split(requested, ",") {
		if n = strings.TrimSpace(n); tokenRE.MatchString(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return corsHeaders
	}
	return strings.Join(names, ", ")
}

// CORS applies the policy of allowed (see the comment at the top of this
// file; nil or empty: the loopback set). Entries CheckOrigins refuses are
// left out; the caller checks them first. Install it before auth and the
// rate limits: it answers preflights itself.
func CORS(allowed []string) gin.HandlerFunc {
	var good []string
	for _, o := range splitOrigins(allowed) {
		if CheckOrigins([]string{o}) == nil {
			good = append(good, o)
		}
	}
	p, _ := parseOrigins(good)
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Add("Vary", "Origin")
		origin := c.GetHeader("Origin")
		if origin == "" {
			c.Next()
			return
		}
		preflight := c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != ""
		if !p.allows(origin, c.Request.Host) {
			if preflight {
				WriteError(c, newError(CodeOriginNotAllowed, "",
					"The origin %s may not call this server from a browser; start asi1d with --allowed-origins (ASI1D_ALLOWED_ORIGINS) listing it", quotedStr(origin)))
				return
			}
			c.Next()
			return
		}
		if p.any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if !preflight {
			h.Set("Access-Control-Expose-Headers", corsExposed)
			c.Next()
			return
		}
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", allowHeaders(c.GetHeader("Access-Control-Request-Headers")))
		h.Set("Access-Control-Max-Age", corsMaxAge)
		if strings.EqualFold(c.GetHeader("Access-Control-Request-Private-Network"), "true") {
			// Chrome's Private Network Access: a public page calling a
			// server on this network asks first.
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		c.AbortWithStatus(http.StatusNoContent)
	}
}
