package main

import (
	"fmt"
	"log/slog"

	"github.com/asi1d/asi1d/engine/sessions"
)

// openSessions opens the session-state store of --session-dir; nil (off)
// when it is empty. Every model's scheduler shares it: files are keyed by
// the model's identity and the context settings, not by session id alone.
func openSessions(cfg *serveConfig, log *slog.Logger) (*sessions.Store, error) {
	if cfg.SessionDir == "" {
		return nil, nil
	}
	st, err := sessions.Open(sessions.Options{
		Dir: cfg.SessionDir, MaxBytes: int64(cfg.SessionMaxBytes), MinTokens: cfg.SessionMinTokens, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("--session-dir: %w", err)
	}
	log.Info("session states", "dir", cfg.SessionDir, "max_bytes", int64(cfg.SessionMaxBytes), "min_tokens", cfg.SessionMinTokens)
	return st, nil
}
