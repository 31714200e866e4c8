package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/ratelimit"
)

// rlClock is a frozen clock 20 s into a minute, so a test never straddles
// two windows.
func rlClock() func() time.Time {
	t := time.Unix(1_800_000_000-1_800_000_000%60+20, 0)
	return func() time.Time { return t }
}

func rlLimiter(t *testing.T, o ratelimit.Options) *ratelimit.Limiter {
	t.Helper()
	if o.Now == nil {
		o.Now = rlClock()
	}
	if o.Logger == nil {
		o.Logger = ctQuiet
	}
	l, err := ratelimit.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func rlCheckRefusal(t *testing.T, r ctResp, kind string) {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", r.status, r.body)
	}
	e := ctObj(t, r.body)["error"].(map[string]any)
	if e["type"] != "rate_limit_error" || e["code"] != "rate_limit_exceeded" || e["param"] != nil {
		t.Fatalf("429 body: %s", r.body)
	}
	if !strings.Contains(e["message"].(string), kind+" per minute") {
		t.Fatalf("message does not name the %s limit: %s", kind, r.body)
	}
}

func TestRateLimitRequests(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{"k1", "k2"},
		Limits: rlLimiter(t, ratelimit.Options{RPM: 2})}})
	body := ctBody("hi", map[string]any{"max_tokens": 2})
	for i := range 2 {
		r := e.chat(body, "Authorization", "Bearer k1")
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if got := r.header.Get("x-ratelimit-limit-requests"); got != "2" {
			t.Fatalf("x-ratelimit-limit-requests %q", got)
		}
		if got := r.header.Get("x-ratelimit-remaining-requests"); got != strconv.Itoa(1-i) {
			t.Fatalf("request %d: x-ratelimit-remaining-requests %q", i, got)
		}
		if got := r.header.Get("x-ratelimit-reset-requests"); got != "40s" {
			t.Fatalf("x-ratelimit-reset-requests %q, want 40s (the frozen clock is 20 s into its minute)", got)
		}
		if r.header.Get("x-ratelimit-limit-tokens") != "" {
			t.Fatal("token headers without a token limit")
		}
	}
	r := e.chat(body, "Authorization", "Bearer k1")
	rlCheckRefusal(t, r, "requests")
	if got := r.header.Get("Retry-After"); got != "40" {
		t.Fatalf("Retry-After %q, want 40", got)
	}
	if got := r.header.Get("x-ratelimit-remaining-requests"); got != "0" {
		t.Fatalf("x-ratelimit-remaining-requests on 429: %q", got)
	}
	// Counted per key: k2 has its own two; a bad key is refused by auth
	// before it is counted.
	if r := e.chat(body, "Authorization", "Bearer k2"); r.status != 200 {
		t.Fatalf("k2: %d %s", r.status, r.body)
	}
	if r := e.chat(body, "Authorization", "Bearer nope"); r.status != 401 {
		t.Fatalf("bad key: %d", r.status)
	}
	// Other routes are not counted.
	if r := e.do("GET", "/v1/models", "", "Authorization", "Bearer k1"); r.status != 200 || r.header.Get("x-ratelimit-limit-requests") != "" {
		t.Fatalf("/v1/models: %d %v", r.status, r.header)
	}
}

func TestRateLimitTokens(t *testing.T) {
	e := ctStart(t, ctConfig{ctx: 256, opts: server.Options{Limits: rlLimiter(t, ratelimit.Options{TPM: 200})}})
	// The fake tokenizes one token per byte plus BOS: "hello" is 6 tokens.
	r := e.chat(ctBody("hello", map[string]any{"max_tokens": 10}))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Reserved 6+10 before it ran.
	if got := r.header.Get("x-ratelimit-remaining-tokens"); got != "184" {
		t.Fatalf("x-ratelimit-remaining-tokens %q, want 184 (200 - 6 prompt - 10 max_tokens)", got)
	}
	if r.header.Get("x-ratelimit-limit-tokens") != "200" || r.header.Get("x-ratelimit-reset-tokens") != "40s" {
		t.Fatalf("token headers: %v", r.header)
	}
	used1 := rlUsed(t, r.body)
	// The second request's remaining shows the first one settled to its
	// real usage.
	r = e.chat(ctBody("hello", map[string]any{"max_tokens": 10}))
	want := 200 - used1 - 16
	if got := r.header.Get("x-ratelimit-remaining-tokens"); got != strconv.Itoa(want) {
		t.Fatalf("after the first settled to %d tokens: remaining %q, want %d", used1, got, want)
	}
	used2 := rlUsed(t, r.body)
	// Without max_tokens DefaultCompletionReserve is reserved, or the rest
	// of the context when less (256 - 6), here above what is left of the
	// limit and above the limit itself: 429 without Retry-After.
	r = e.chat(ctBody("hello", map[string]any{"max_tokens": nil}))
	rlCheckRefusal(t, r, "tokens")
	if r.header.Get("Retry-After") != "" || !strings.Contains(string(r.body), "Request too large") {
		t.Fatalf("a request above the whole limit: %v %s", r.header, r.body)
	}
	// A refused or invalid request keeps nothing reserved.
	if r := e.chat(ctBody("hello", map[string]any{"max_tokens": 10, "temperature": 9})); r.status != 400 {
		t.Fatalf("bad temperature: %d", r.status)
	}
	// What is left, reserved exactly, passes; one token more does not.
	left := 200 - used1 - used2
	r = e.chat(ctBody("hello", map[string]any{"max_tokens": left - 6 + 1}))
	rlCheckRefusal(t, r, "tokens")
	if got := r.header.Get("Retry-After"); got != "40" {
		t.Fatalf("Retry-After %q on a token refusal, want 40", got)
	}
	if got := r.header.Get("x-ratelimit-remaining-tokens"); got != strconv.Itoa(left) {
		t.Fatalf("remaining on refusal %q, want %d", got, left)
	}
	r = e.chat(ctBody("hello", map[string]any{"max_tokens": left - 6}))
	if r.status != 200 || r.header.Get("x-ratelimit-remaining-tokens") != "0" {
		t.Fatalf("reserving exactly the %d left: %d %v %s", left, r.status, r.header, r.body)
	}
}

// Without max_tokens a request reserves DefaultCompletionReserve, not the
// whole context, and settles to its real usage.
func TestRateLimitTokensWithoutMaxTokens(t *testing.T) {
	e := ctStart(t, ctConfig{ctx: 4096, next: func([]engine.Token) engine.Token { return enginetest.EOS },
		opts: server.Options{Limits: rlLimiter(t, ratelimit.Options{TPM: 1000})}})
	r := e.chat(ctBody("hello", map[string]any{"max_tokens": nil}))
	if r.status != 200 {
		t.Fatalf("without max_tokens under a limit below the context: %d %s", r.status, r.body)
	}
	want := 1000 - 6 - server.DefaultCompletionReserve
	if got := r.header.Get("x-ratelimit-remaining-tokens"); got != strconv.Itoa(want) {
		t.Fatalf("x-ratelimit-remaining-tokens %q, want %d (1000 - 6 prompt - %d reserved)", got, want, server.DefaultCompletionReserve)
	}
	used := rlUsed(t, r.body)
	r = e.chat(ctBody("hello", map[string]any{"max_tokens": nil}))
	want = 1000 - used - 6 - server.DefaultCompletionReserve
	if got := r.header.Get("x-ratelimit-remaining-tokens"); r.status != 200 || got != strconv.Itoa(want) {
		t.Fatalf("after the first settled to %d: %d, remaining %q, want %d", used, r.status, got, want)
	}
}

// rlUsed returns usage.total_tokens of a completion.
func rlUsed(t *testing.T, body []byte) int {
	t.Helper()
	var v struct {
		Usage struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Usage.TotalTokens == 0 {
		t.Fatalf("usage: %v %s", err, body)
	}
	return v.Usage.TotalTokens
}

// rlTry sends one chat request and returns its status (0 on a transport error).
func rlTry(url, key string) (int, error) {
	body := `{"model":"asi1-mini","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// TestRateLimitSharedReplicas runs rlSharedReplicas on miniredis (an
// in-process Redis); the integration lane runs it on a real redis-server
// (ratelimit_integration_test.go).
func TestRateLimitSharedReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	rlSharedReplicas(t, "redis://"+mr.Addr()+"/0", mr.Close)
}

// rlSharedReplicas: two server stacks (replicas) sharing one Redis never
// admit more than a key's limit together under concurrent load; when Redis
// goes away mid-test (stop), requests keep being served, counted in the
// process, with a warning logged.
func rlSharedReplicas(t *testing.T, redisURL string, stop func()) {
	const limit = 15
	clk := rlClock()
	var logs [2]*syncLog
	var envs [2]*ctEnv
	for i := range envs {
		logs[i] = &syncLog{}
		// A generous Redis timeout: on a loaded test machine a slow Redis
		// call must not count as an outage (checked below).
		l := rlLimiter(t, ratelimit.Options{RPM: limit, RedisURL: redisURL, Now: clk, RetryAfter: time.Hour, RedisTimeout: 10 * time.Second,
			Logger: slog.New(slog.NewTextHandler(logs[i], nil))})
		envs[i] = ctStart(t, ctConfig{parallel: 4, maxQueue: 128, opts: server.Options{APIKeys: []string{"key"}, Limits: l}})
	}
	var mu sync.Mutex
	counts := map[[2]int]int{} // {replica, status} -> n
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := rlTry(envs[g%2].url, "key")
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			counts[[2]int{g % 2, st}]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	a, b := counts[[2]int{0, 200}], counts[[2]int{1, 200}]
	t.Logf("limit %d/min, 40 concurrent requests over 2 replicas: admitted A %d + B %d = %d, refused with 429: %d",
		limit, a, b, a+b, counts[[2]int{0, 429}]+counts[[2]int{1, 429}])
	for i := range logs {
		if out := logs[i].String(); out != "" {
			t.Fatalf("replica %d logged while Redis was up (a fallback would make its count local):\n%s", i, out)
		}
	}
	if a+b != limit || a+b+counts[[2]int{0, 429}]+counts[[2]int{1, 429}] != 40 {
		t.Fatalf("statuses %v: want exactly %d admitted together and the rest 429", counts, limit)
	}

	// Redis goes away: replica A serves what its own count leaves (limit -
	// a), every one of them 200, then refuses.
	stop()
	for i := 0; i < limit-a; i++ {
		if st, err := rlTry(envs[0].url, "key"); st != 200 {
			t.Fatalf("without Redis, request %d of the %d A's count allows: status %d %v", i+1, limit-a, st, err)
		}
	}
	if st, _ := rlTry(envs[0].url, "key"); st != 429 {
		t.Fatalf("without Redis, A went past the limit by its own count: %d", st)
	}
	if !strings.Contains(logs[0].String(), "level=WARN") {
		t.Fatalf("no warning when Redis went away: %s", logs[0].String())
	}
	t.Logf("Redis stopped: A then served %d (200) and refused the next (429); log: %s", limit-a, strings.TrimSpace(logs[0].String()))
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
