package ratelimit_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/redistest"
	"github.com/asi1d/asi1d/server/ratelimit"
)

// BenchmarkTake is the cost one limit adds to a request: one Take, in the
// process or through a real redis-server on loopback (one Lua script call).
func BenchmarkTake(b *testing.B) {
	run := func(b *testing.B, o ratelimit.Options) {
		o.RPM, o.Logger = 1<<62, slog.New(slog.DiscardHandler)
		l, err := ratelimit.New(o)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r, _ := l.Take(ctx, "k", ratelimit.Requests, 1); !r.Allowed {
					b.Fatal("refused")
				}
			}
		})
	}
	b.Run("in-process", func(b *testing.B) { run(b, ratelimit.Options{}) })
	b.Run("redis", func(b *testing.B) {
		rs := redistest.Start(b, 5*time.Minute)
		run(b, ratelimit.Options{RedisURL: rs.URL(), RedisTimeout: 10 * time.Second})
	})
}
