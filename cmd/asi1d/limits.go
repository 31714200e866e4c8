package main

import (
	"context"
	"log/slog"

	"github.com/asi1d/asi1d/server/ratelimit"
)

// newLimits builds the per-key limiter of --rate-rpm/--rate-tpm, shared
// through --redis-url when set; nil (no limits) when neither rate is set.
// An unreachable Redis at start is a warning, not an error: requests are
// counted in the process until it answers.
func newLimits(cfg *serveConfig, log *slog.Logger) (*ratelimit.Limiter, error) {
	if cfg.RateRPM == 0 && cfg.RateTPM == 0 {
		return nil, nil
	}
	l, err := ratelimit.New(ratelimit.Options{RPM: cfg.RateRPM, TPM: cfg.RateTPM, RedisURL: cfg.RedisURL, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := l.Ping(context.Background()); err != nil {
		log.Warn("rate limit: Redis does not answer at start; counting in this process until it does", "err", err)
	}
	return l, nil
}
