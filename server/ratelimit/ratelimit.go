// Package ratelimit counts requests and tokens per API key in fixed
// one-minute windows, in the process or, when several replicas must share
// the counts, in Redis.
//
// Why fixed windows: a counter per key and minute is one atomic Lua script
// in Redis (read, compare, INCRBY, PEXPIRE), O(1) in time and memory, and
// it gives an exact guarantee that replicas sharing a Redis can test and
// operators can reason about: at most the limit is admitted per calendar
// minute, all replicas together. Its reset time is exact too (the end of
// the minute), which is what the x-ratelimit-reset-* headers report. The
// cost is the boundary burst: a key may spend its limit at the end of one
// minute and again at the start of the next, so any 60 s span may hold up
// to twice the limit. A sliding log would bound every span but costs a
// sorted-set entry per request (and per token reservation); a sliding
// counter (two windows weighted) is only an estimate and can admit more
// than the limit in a window. Neither is worth it for an abuse guard.
//
// Tokens are reserved before a request runs (the caller decides how many:
// asi1d reserves prompt tokens plus the completion budget) and corrected
// with Reservation.Settle once the real usage is known, within the same
// window; a correction after the window ended is dropped with the window.
//
// Redis failures never refuse a request: the Limiter logs a warning, counts
// in the process (it keeps an in-process shadow of every count it made in
// Redis, so the fallback starts from this replica's share, not from zero)
// and tries Redis again after a short back-off.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Window is the length of one counting window.
const Window = time.Minute

// Kind is what a limit counts.
type Kind byte

const (
	Requests Kind = 'r'
	Tokens   Kind = 't'
)

func (k Kind) String() string {
	if k == Tokens {
		return "tokens"
	}
	return "requests"
}

// Options configure New.
type Options struct {
	// RPM and TPM are the requests and tokens allowed per key and minute;
	// 0 turns that limit off.
	RPM, TPM int64
	// RedisURL, when set, shares the counts through that Redis
	// (redis://[user:pass@]host:port/db, or rediss:// for TLS).
	RedisURL string
	// RedisTimeout bounds each Redis call (dial, read, write); after it the
	// request is counted in the process. 0: 250 ms.
	RedisTimeout time.Duration
	// RetryAfter is how long Redis is left alone after a failure. 0: 2 s.
	RetryAfter time.Duration
	// Prefix of the Redis keys. "": "asi1d:rl:".
	Prefix string
	Logger *slog.Logger
	// Now is the clock (tests freeze it); nil: time.Now.
	Now func() time.Time
}

// Result is a limit's state after a Take.
type Result struct {
	Kind    Kind
	Allowed bool
	// Limit is the window's limit, Remaining what is left of it after this
	// take (when allowed) or now (when refused).
	Limit, Remaining int64
	// Requested is what the take asked for.
	Requested int64
	// Reset is the time until the window ends and the count starts over.
	Reset time.Duration
}

// Limiter counts per key. Safe for concurrent use.
type Limiter struct {
	o     Options
	local *memStore
	rdb   *redis.Client // nil: in-process only
	down  atomic.Bool
	retry atomic.Int64 // unix nanos before which Redis is not tried
}

// New builds a limiter. With a RedisURL it connects lazily: an unreachable
// Redis at start is the same as one lost later (counted in the process).
func New(o Options) (*Limiter, error) {
	if o.RPM < 0 || o.TPM < 0 {
		return nil, fmt.Errorf("rate limits cannot be negative (rpm %d, tpm %d)", o.RPM, o.TPM)
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = 250 * time.Millisecond
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 2 * time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "asi1d:rl:"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{o: o, local: newMemStore()}
	if o.RedisURL != "" {
		ro, err := redis.ParseURL(o.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
		ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = o.RedisTimeout, o.RedisTimeout, o.RedisTimeout
		ro.PoolTimeout = o.RedisTimeout
		ro.MaxRetries = -1 // no retries: a failure falls back at once
		ro.ContextTimeoutEnabled = true
		l.rdb = redis.NewClient(ro)
		// go-redis logs through a process-wide logger of its own; route it
		// to slog at debug level (the Limiter logs the outage itself).
		redis.SetLogger(redisLog{o.Logger})
	}
	return l, nil
}

// redisLog adapts slog to go-redis's logger.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// Enabled reports whether kind has a limit.
func (l *Limiter) Enabled(kind Kind) bool {
	return l != nil && l.limit(kind) > 0
}

// Shared reports whether counts go to Redis.
func (l *Limiter) Shared() bool { return l != nil && l.rdb != nil }

// Ping checks that Redis answers (nil without Redis).
func (l *Limiter) Ping(ctx context.Context) error {
	if l == nil || l.rdb == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.o.RedisTimeout)
	defer cancel()
	return l.rdb.Ping(ctx).Err()
}

// Close closes the Redis client.
func (l *Limiter) Close() error {
	if l == nil || l.rdb == nil {
		return nil
	}
	return l.rdb.Close()
}

func (l *Limiter) limit(kind Kind) int64 {
	if kind == Tokens {
		return l.o.TPM
	}
	return l.o.RPM
}

// Reservation is an admitted take, to be corrected with Settle.
type Reservation struct {
	l    *Limiter
	name string
	n    int64
	// redis: the take was counted in Redis (and shadowed here).
	redis bool
	once  sync.Once
}

// Take counts n of kind for key if that keeps the window within the limit.
// An unlimited kind always allows (Result.Limit 0). The Reservation is nil
// unless allowed.
func (l *Limiter) Take(ctx context.Context, key string, kind Kind, n int64) (Result, *Reservation) {
	limit := l.limit(kind)
	if limit <= 0 {
		return Result{Kind: kind, Allowed: true, Requested: n}, nil
	}
	now := l.o.Now()
	idx := now.UnixNano() / int64(Window)
	end := time.Unix(0, (idx+1)*int64(Window))
	reset := end.Sub(now)
	name := l.o.Prefix + key + ":" + string(kind) + ":" + strconv.FormatInt(idx, 10)
	// Keep a counter a little past its window so a late Settle still finds
	// it harmlessly and clocks a bit apart agree.
	ttl := reset + 5*time.Second

	var count int64
	ok, viaRedis := false, false
	if l.useRedis(now) {
		c, allowed, err := l.redisAdd(ctx, name, n, limit, ttl)
		if err == nil {
			l.redisUp()
			count, ok, viaRedis = c, allowed, true
			if ok {
				l.local.force(name, n, now.Add(ttl))
			}
		} else {
			l.redisDown(now, err)
		}
	}
	if !viaRedis {
		count, ok = l.local.add(name, n, limit, now, now.Add(ttl))
	}
	res := Result{Kind: kind, Allowed: ok, Limit: limit, Requested: n, Reset: reset, Remaining: max(limit-count, 0)}
	if !ok {
		return res, nil
	}
	return res, &Reservation{l: l, name: name, n: n, redis: viaRedis}
}

// Settle corrects the reservation to used (less returns the difference,
// more adds it). Only the first call counts; a nil Reservation is a no-op.
func (r *Reservation) Settle(ctx context.Context, used int64) {
	if r == nil {
		return
	}
	r.once.Do(func() {
		delta := used - r.n
		if delta == 0 {
			return
		}
		l := r.l
		now := l.o.Now()
		l.local.adjust(r.name, delta, now)
		if r.redis && l.useRedis(now) {
			ctx, cancel := context.WithTimeout(ctx, l.o.RedisTimeout)
			defer cancel()
			if err := adjustScript.Run(ctx, l.rdb, []string{r.name}, delta).Err(); err != nil {
				l.redisDown(now, err)
			}
		}
	})
}

func (l *Limiter) useRedis(now time.Time) bool {
	return l.rdb != nil && now.UnixNano() >= l.retry.Load()
}

func (l *Limiter) redisDown(now time.Time, err error) {
	l.retry.Store(now.Add(l.o.RetryAfter).UnixNano())
	if !l.down.Swap(true) {
		l.o.Logger.Warn("rate limit: Redis unavailable, counting in this process until it is back",
			"err", err, "retry_in", l.o.RetryAfter)
	}
}

func (l *Limiter) redisUp() {
	if l.down.Swap(false) {
		l.o.Logger.Info("rate limit: Redis is back, counts are shared again")
	}
}

// takeScript adds ARGV[1] to KEYS[1] unless that passes the limit ARGV[2],
// and gives a new counter its expiry ARGV[3] (ms). Returns {allowed, count}.
var takeScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if cur + n > tonumber(ARGV[2]) then
  return {0, cur}
end
cur = redis.call('INCRBY', KEYS[1], n)
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, cur}
`)

// adjustScript adds ARGV[1] to KEYS[1] only while the counter exists.
var adjustScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return 0
`)

func (l *Limiter) redisAdd(ctx context.Context, name string, n, limit int64, ttl time.Duration) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.RedisTimeout)
	defer cancel()
	v, err := takeScript.Run(ctx, l.rdb, []string{name}, n, limit, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, fmt.Errorf("redis rate-limit script: %w", err)
	}
	if len(v) != 2 {
		return 0, false, fmt.Errorf("redis rate-limit script: unexpected reply %v", v)
	}
	return v[1], v[0] == 1, nil
}

// memStore is the in-process counter map.
type memStore struct {
	mu        sync.Mutex
	m         map[string]*memEntry
	nextSweep time.Time
}

type memEntry struct {
	count   int64
	expires time.Time
}

func newMemStore() *memStore { return &memStore{m: map[string]*memEntry{}} }

func (s *memStore) entry(name string, now, expires time.Time) *memEntry {
	if now.After(s.nextSweep) {
		for k, e := range s.m {
			if now.After(e.expires) {
				delete(s.m, k)
			}
		}
		s.nextSweep = now.Add(Window)
	}
	e := s.m[name]
	if e == nil || now.After(e.expires) {
		e = &memEntry{expires: expires}
		s.m[name] = e
	}
	return e
}

// add counts n unless that passes limit; returns the count and whether.
func (s *memStore) add(name string, n, limit int64, now, expires time.Time) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(name, now, expires)
	if e.count+n > limit {
		return e.count, false
	}
	e.count += n
	return e.count, true
}

// force counts n without a limit (the shadow of a count made in Redis).
func (s *memStore) force(name string, n int64, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[name]
	if e == nil {
		e = &memEntry{expires: expires}
		s.m[name] = e
	}
	e.count += n
}

func (s *memStore) adjust(name string, delta int64, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[name]; e != nil && !now.After(e.expires) {
		e.count = max(e.count+delta, 0)
	}
}
