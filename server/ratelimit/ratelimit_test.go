package ratelimit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/asi1d/asi1d/server/ratelimit"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start is 15 s into a minute.
func newClock() *clock { return &clock{t: time.Unix(1_800_000_000-1_800_000_000%60+15, 0)} }

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestInProcessRequests(t *testing.T) {
	clk := newClock()
	l, err := ratelimit.New(ratelimit.Options{RPM: 3, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		r, _ := l.Take(ctx, "a", ratelimit.Requests, 1)
		if !r.Allowed || r.Limit != 3 || r.Remaining != int64(2-i) || r.Reset != 45*time.Second {
			t.Fatalf("take %d: %+v", i, r)
		}
	}
	if r, res := l.Take(ctx, "a", ratelimit.Requests, 1); r.Allowed || res != nil || r.Remaining != 0 {
		t.Fatalf("4th take: %+v", r)
	}
	if r, _ := l.Take(ctx, "b", ratelimit.Requests, 1); !r.Allowed {
		t.Fatalf("another key shares a's count: %+v", r)
	}
	if r, _ := l.Take(ctx, "a", ratelimit.Tokens, 1_000_000); !r.Allowed || r.Limit != 0 {
		t.Fatalf("tokens are not limited here: %+v", r)
	}
	clk.add(45 * time.Second) // the next minute
	if r, _ := l.Take(ctx, "a", ratelimit.Requests, 1); !r.Allowed || r.Remaining != 2 || r.Reset != time.Minute {
		t.Fatalf("new window: %+v", r)
	}
}

func TestInProcessTokensSettle(t *testing.T) {
	clk := newClock()
	l, _ := ratelimit.New(ratelimit.Options{TPM: 100, Now: clk.now})
	ctx := context.Background()
	r, res := l.Take(ctx, "k", ratelimit.Tokens, 80)
	if !r.Allowed || r.Remaining != 20 {
		t.Fatalf("reserve 80: %+v", r)
	}
	if r, _ := l.Take(ctx, "k", ratelimit.Tokens, 30); r.Allowed {
		t.Fatalf("30 more over 100 admitted: %+v", r)
	}
	res.Settle(ctx, 50) // used 50 of the 80
	res.Settle(ctx, 0)  // a second settle is ignored
	if r, _ := l.Take(ctx, "k", ratelimit.Tokens, 50); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after settling to 50, 50 more: %+v", r)
	}
	if r, _ := l.Take(ctx, "k", ratelimit.Tokens, 101); r.Allowed || r.Requested != 101 {
		t.Fatalf("a take above the whole limit: %+v", r)
	}
}

// TestRedisSharedAcrossReplicas runs sharedAcrossReplicas on miniredis (an
// in-process Redis that runs the limiter's Lua scripts); the integration
// lane runs it on a real redis-server (ratelimit_integration_test.go).
func TestRedisSharedAcrossReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	sharedAcrossReplicas(t, "redis://"+mr.Addr()+"/0", mr.Close)
}

// sharedAcrossReplicas: two limiters (two replicas) on one Redis never
// admit more than the limit together under concurrent takes, tokens
// included; when Redis goes away (stop), each keeps counting in the
// process from its own share, logs a warning, and refuses nothing its own
// count allows.
func sharedAcrossReplicas(t *testing.T, redisURL string, stop func()) {
	clk := newClock()
	const rpm, tpm = 50, 1000
	var logs [2]*syncBuffer
	var reps [2]*ratelimit.Limiter
	for i := range reps {
		logs[i] = &syncBuffer{}
		l, err := ratelimit.New(ratelimit.Options{RPM: rpm, TPM: tpm, RedisURL: redisURL, Now: clk.now,
			RetryAfter: time.Hour, RedisTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(logs[i], nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		reps[i] = l
	}
	ctx := context.Background()
	var admitted [2]atomic.Int64
	var tokens atomic.Int64
	// One take each, in turn, first: B must see A's. (Left to the
	// concurrent phase alone, one replica can spend the whole limit before
	// the other's goroutines start, which says nothing about sharing.)
	if r, _ := reps[0].Take(ctx, "shared", ratelimit.Requests, 1); !r.Allowed || r.Remaining != rpm-1 {
		t.Fatalf("A's first take: %+v, want allowed with %d left", r, rpm-1)
	}
	if r, _ := reps[1].Take(ctx, "shared", ratelimit.Requests, 1); !r.Allowed || r.Remaining != rpm-2 {
		t.Fatalf("B's first take: %+v, want allowed with %d left (A's take counted): the replicas do not share", r, rpm-2)
	}
	admitted[0].Add(1)
	admitted[1].Add(1)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep := g % 2
			for range 10 {
				if r, _ := reps[rep].Take(ctx, "shared", ratelimit.Requests, 1); r.Allowed {
					admitted[rep].Add(1)
				}
				if r, _ := reps[rep].Take(ctx, "shared", ratelimit.Tokens, int64(7+g)); r.Allowed {
					tokens.Add(int64(7 + g))
				}
			}
		}()
	}
	wg.Wait()
	a, b := admitted[0].Load(), admitted[1].Load()
	t.Logf("limit %d requests/min: replica A admitted %d, B %d, together %d of 322 tried; tokens admitted %d of %d",
		rpm, a, b, a+b, tokens.Load(), tpm)
	if a+b != rpm {
		t.Fatalf("together the replicas admitted %d requests, want exactly the limit %d", a+b, rpm)
	}
	if n := tokens.Load(); n > tpm || n < tpm-38 {
		t.Fatalf("tokens admitted together %d, want at most %d and within one take of it", n, tpm)
	}
	for i := range logs {
		if strings.Contains(logs[i].String(), "WARN") {
			t.Fatalf("replica %d fell back while Redis was up:\n%s", i, logs[i].String())
		}
	}

	// Redis goes away: replica A counts in the process from its own share.
	stop()
	for i := int64(0); i < rpm-a; i++ {
		r, _ := reps[0].Take(ctx, "shared", ratelimit.Requests, 1)
		if !r.Allowed {
			t.Fatalf("without Redis, take %d of the %d left to A by its own count was refused: %+v", i+1, rpm-a, r)
		}
	}
	if r, _ := reps[0].Take(ctx, "shared", ratelimit.Requests, 1); r.Allowed {
		t.Fatalf("without Redis, A admitted past the limit by its own count: %+v", r)
	}
	out := logs[0].String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "Redis unavailable") {
		t.Fatalf("no warning logged when Redis went away:\n%s", out)
	}
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1:\n%s", n, out)
	}
	t.Logf("after Redis stopped: A admitted the %d its own count left, then refused; warning: %s", rpm-a, strings.TrimSpace(out))
}

// TestRedisComesBack: after the back-off, a Redis that is there again is
// used again (shared counts), and the limiter says so in its log.
func TestRedisComesBack(t *testing.T) {
	mr := miniredis.RunT(t)
	url := "redis://" + mr.Addr() + "/0"
	clk := newClock()
	var log syncBuffer
	l, err := ratelimit.New(ratelimit.Options{RPM: 3, RedisURL: url, Now: clk.now, RetryAfter: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, _ := ratelimit.New(ratelimit.Options{RPM: 3, RedisURL: url, Now: clk.now, Logger: slog.New(slog.DiscardHandler)})
	defer other.Close()
	ctx := context.Background()
	mr.Close()
	if r, _ := l.Take(ctx, "k", ratelimit.Requests, 1); !r.Allowed {
		t.Fatalf("refused while Redis is down: %+v", r)
	}
	if !strings.Contains(log.String(), "Redis unavailable") {
		t.Fatalf("no warning while Redis is down:\n%s", log.String())
	}
	// Redis comes back on the same address, its data lost: the shared
	// count starts over.
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	mr.FlushAll()
	clk.add(3 * time.Second)
	// The other replica spends two of the three in the fresh Redis; l, back
	// on Redis, sees them: one left.
	for range 2 {
		if r, _ := other.Take(ctx, "k", ratelimit.Requests, 1); !r.Allowed {
			t.Fatalf("other replica refused: %+v", r)
		}
	}
	if r, _ := l.Take(ctx, "k", ratelimit.Requests, 1); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("back on Redis: %+v, want allowed with 0 left", r)
	}
	if r, _ := l.Take(ctx, "k", ratelimit.Requests, 1); r.Allowed {
		t.Fatalf("past the shared limit: %+v", r)
	}
	if !strings.Contains(log.String(), "Redis is back") {
		t.Fatalf("no recovery in the log:\n%s", log.String())
	}
}

// TestRedisCounterKeys: what the limiter leaves in Redis. A take makes one
// counter per key, kind and minute that expires 5 s after its window;
// Settle corrects it while it exists and never brings an expired one back.
func TestRedisCounterKeys(t *testing.T) {
	mr := miniredis.RunT(t)
	clk := newClock() // 15 s into a minute: the window ends in 45 s
	l, err := ratelimit.New(ratelimit.Options{TPM: 100, RedisURL: "redis://" + mr.Addr() + "/0", Now: clk.now,
		Prefix: "t:", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	name := fmt.Sprintf("t:alice:t:%d", clk.now().Unix()/60)
	r, res := l.Take(ctx, "alice", ratelimit.Tokens, 80)
	if !r.Allowed || res == nil {
		t.Fatalf("take 80: %+v", r)
	}
	if v, err := mr.Get(name); err != nil || v != "80" {
		t.Fatalf("counter %s = %q (%v), want 80; keys %v", name, v, err, mr.Keys())
	}
	if ttl := mr.TTL(name); ttl != 50*time.Second {
		t.Fatalf("counter expires in %v, want 50s (45 s left in the window + 5 s)", ttl)
	}
	if r, _ := l.Take(ctx, "alice", ratelimit.Tokens, 21); r.Allowed || r.Remaining != 20 {
		t.Fatalf("21 more over 100: %+v", r)
	}
	if v, _ := mr.Get(name); v != "80" {
		t.Fatalf("a refused take changed the counter to %s", v)
	}
	res.Settle(ctx, 50)
	if v, _ := mr.Get(name); v != "50" {
		t.Fatalf("after Settle(50) the counter is %s", v)
	}
	// The counter expires; a late Settle does not bring it back.
	_, res2 := l.Take(ctx, "alice", ratelimit.Tokens, 10)
	mr.FastForward(51 * time.Second)
	res2.Settle(ctx, 0)
	if mr.Exists(name) {
		t.Fatalf("Settle recreated an expired counter: %v", mr.Keys())
	}
}

// TestRedisUnreachableAtStart: a Redis that is not there at all never
// refuses a request the in-process count admits.
func TestRedisUnreachableAtStart(t *testing.T) {
	clk := newClock()
	var log syncBuffer
	l, err := ratelimit.New(ratelimit.Options{RPM: 2, RedisURL: "redis://127.0.0.1:1/0", Now: clk.now,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 2 {
		if r, _ := l.Take(context.Background(), "k", ratelimit.Requests, 1); !r.Allowed {
			t.Fatalf("take %d refused: %+v", i, r)
		}
	}
	if r, _ := l.Take(context.Background(), "k", ratelimit.Requests, 1); r.Allowed {
		t.Fatalf("third take admitted: %+v", r)
	}
	if !strings.Contains(log.String(), "Redis unavailable") {
		t.Fatalf("no warning: %s", log.String())
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := ratelimit.New(ratelimit.Options{RPM: -1}); err == nil {
		t.Fatal("negative rpm accepted")
	}
	if _, err := ratelimit.New(ratelimit.Options{RPM: 1, RedisURL: "http://x"}); err == nil {
		t.Fatal("a non-redis URL accepted")
	}
}
