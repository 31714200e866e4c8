package main

import (
	"context"
	"log/slog"
	"net"
	"strconv"
)

// demoted is a slog handler that writes info records at debug. serve makes
// it the default logger: the libraries that log through slog.Default (the
// ggml backend's "system" and "device" lines) are load chatter, while
// asi1d's own code logs through the logger it is given.
type demoted struct{ slog.Handler }

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, l)
}

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d demoted) WithAttrs(a []slog.Attr) slog.Handler { return demoted{d.Handler.WithAttrs(a)} }
func (d demoted) WithGroup(n string) slog.Handler      { return demoted{d.Handler.WithGroup(n)} }

// serveURLs are the addresses a person can open for --addr (its host) and
// the listener's address (its port, which --addr may leave 0): the API
// base and, with the playground, the page. A listener on every interface
// (0.0.0.0, :: or no host) is shown at the loopback address, which works
// on the host itself; all is then true.
func serveURLs(addr, listening string, tls, playground bool) (api, page string, all bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	_, port, err := net.SplitHostPort(listening)
	if err != nil {
		port = ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		all = true
		ip := net.ParseIP(host)
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	base := scheme + "://" + net.JoinHostPort(host, port)
	if port == "" {
		base = scheme + "://" + host
	}
	if playground {
		page = base + "/"
	}
	return base + "/v1", page, all
}

// startLine is serve's one line at start: the URLs, then the model, the
// context per request and the parallel sequences (or the catalog).
func startLine(listening string, tls bool, cfg *serveConfig, model string, ctxPerReq, parallel, models int) (string, []any) {
	api, page, all := serveURLs(cfg.Addr, listening, tls, cfg.Playground)
	msg := "serving " + api
	attrs := []any{"api", api}
	if page != "" {
		msg += ", playground " + page
		attrs = append(attrs, "playground", page)
	}
	if all {
		msg += " (listening on all interfaces, port " + port(listening) + ")"
		attrs = append(attrs, "listen", cfg.Addr)
	}
	if model != "" {
		attrs = append(attrs, "model", model, "ctx_per_request", ctxPerReq, "parallel", parallel)
	} else {
		attrs = append(attrs, "models_dir", cfg.ModelsDir, "models", models, "max_loaded", cfg.MaxLoadedModels)
	}
	attrs = append(attrs, "threads", cfg.Threads, "auth", authWord(len(cfg.APIKeys)))
	return msg, attrs
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func authWord(keys int) string {
	switch keys {
	case 0:
		return "off"
	case 1:
		return "1 key"
	}
	return strconv.Itoa(keys) + " keys"
}
