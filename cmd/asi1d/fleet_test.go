//go:build integration

package main

// The fleet test: three asi1d replicas (this test binary, run as
// `asi1d serve`) behind a real nginx on the shipped deploy/nginx file, on
// loopback. It measures session affinity against round robin, kills a
// replica under load, and restarts every replica in turn under load.
//
//	go test -count=1 -tags integration -v -run TestFleet ./cmd/asi1d/

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/api"
)

// replicaProc is one replica of the fleet: asi1d on addr, one log across
// its restarts. TestFleet's cleanup stops it, whichever subtest last
// started it.
type replicaProc struct {
	id, addr, model string
	extra           []string // further serve flags, from the next start on
	out             syncBuffer
	p               *proc
}

func (r *replicaProc) start(t *testing.T) {
	t.Helper()
	args := []string{"serve", "--model", r.model, "--addr", r.addr, "--replica-id", r.id,
		"--parallel", "8", "--ctx", "8192", "--threads", "1", "--drain-timeout", "30s", "--log-level", "warn"}
	r.p = launch(t, &r.out, append(args, r.extra...)...)
}

// stop signals the replica and waits (bounded) for it to exit.
func (r *replicaProc) stop(sig os.Signal, within time.Duration) error {
	if r.p == nil {
		return nil
	}
	if err := r.p.stop(sig, within); err != nil {
		return fmt.Errorf("%s: %w", r.id, err)
	}
	return nil
}

func (r *replicaProc) waitReady(t *testing.T) {
	t.Helper()
	r.p.waitOK(t, "http://"+r.addr+"/ready", 60*time.Second)
}

type msg struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// result is one streamed chat completion as the client saw it.
type result struct {
	status         int
	replica        string
	err            error
	ttft, total    time.Duration
	content        string
	chunks         int
	done           bool      // data: [DONE] arrived
	doneAt         time.Time // when
	prompt, cached int
	completion     int
	end            time.Time
}

type chatOpts struct {
	session   string
	maxTokens int
	noEOS     bool
	timeout   time.Duration
	started   func(replica string) // called at the first data chunk
}

// streamChat sends one streaming chat completion and reads it to the end,
// within o.timeout: a hang shows as a deadline error.
func streamChat(base string, msgs []msg, o chatOpts) (r result) {
	body := map[string]any{"model": "asi1-mini", "messages": msgs, "stream": true, "temperature": 0,
		"max_tokens": o.maxTokens, "stream_options": map[string]any{"include_usage": true}}
	if o.noEOS {
		body["logit_bias"] = map[string]any{"2": -100} // stories260K's EOS: generate max_tokens
	}
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	t0 := time.Now()
	defer func() { r.total, r.end = time.Since(t0), time.Now() }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if o.session != "" {
		req.Header.Set(server.HeaderSessionID, o.session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	r.status, r.replica = resp.StatusCode, resp.Header.Get(server.HeaderReplica)
	if resp.StatusCode != 200 {
		eb, _ := io.ReadAll(resp.Body)
		r.err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(eb))
		return r
	}
	sse := api.NewSSEReader(resp.Body)
	var sb strings.Builder
	for {
		ev, err := sse.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			break
		}
		if ev.IsDone() {
			r.done, r.doneAt = true, time.Now()
			continue
		}
		ch, err := api.DecodeChunk(ev.Data) // an error event is an *api.Error
		if err != nil {
			r.err = err
			return r
		}
		if r.chunks == 0 && o.started != nil {
			o.started(r.replica)
		}
		r.chunks++
		for _, c := range ch.Choices {
			if c.Delta.Text() != "" && r.ttft == 0 {
				r.ttft = time.Since(t0)
			}
			sb.WriteString(c.Delta.Text())
		}
		u, err := ch.UsageStats()
		if err != nil {
			r.err = fmt.Errorf("bad chunk %q: %w", ev.Data, err)
			return r
		}
		if u != nil {
			r.prompt, r.completion, r.cached = u.PromptTokens, u.CompletionTokens, u.CachedTokens()
		}
	}
	r.content = sb.String()
	if r.err == nil && !r.done {
		r.err = io.ErrUnexpectedEOF
	}
	return r
}

// affinity is what affinityRun measured.
type affinity struct {
	hit      float64       // cached tokens over the previous turn's prompt tokens, turns 2-5
	replyHit float64       // of the previous turn's reply, the share also reused, turns 2-5
	ttft5    time.Duration // median TTFT of turn 5
	fill5    int           // median prompt tokens turn 5 had to prefill
	sticky   int           // sessions that stayed on one replica
}

// affinityRun plays 20 sessions of 5 growing turns, workers sessions at a
// time, and returns what their turns 2-5 reused.
func affinityRun(t *testing.T, base, tag string, workers int) affinity {
	t.Helper()
	names := []string{"Anna", "Ben", "Carl", "Dora", "Emma", "Finn", "Gus", "Hana", "Ivy", "Jack",
		"Kim", "Leo", "Mia", "Ned", "Olga", "Pete", "Quinn", "Rosa", "Sam", "Tom"}
	type sess struct {
		reused, possible int
		replyReused      int // of the previous replies' tokens
		replyPossible    int
		fill5            int
		ttft5            time.Duration
		replicas         map[string]bool
		err              error
	}
	out := make([]sess, len(names))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := &out[i]
				s.replicas = map[string]bool{}
				// The name comes first, so two sessions share no more than
				// the template's first tokens. A background of about 200
				// tokens makes the prefill, which affinity saves, most of
				// a turn's time on this tiny model, as it is on real ones.
				n := names[i]
				background := fmt.Sprintf("%s was a little %s. %s lived in a small house by the sea with a dog and a red boat. "+
					"Every morning %s walked to the market, said hello to the baker, and bought bread and milk. ", n, tag, n, n)
				msgs := []msg{{"user", strings.Repeat(background, 2) + fmt.Sprintf("Tell me a story about %s.", n)}}
				prev, prevReply := 0, 0
				for turn := 1; turn <= 5; turn++ {
					r := streamChat(base, msgs, chatOpts{session: fmt.Sprintf("%s-%d", tag, i), maxTokens: 24, timeout: 60 * time.Second})
					if r.err != nil {
						s.err = fmt.Errorf("session %d turn %d: %w", i, turn, r.err)
						break
					}
					s.replicas[r.replica] = true
					if turn > 1 {
						s.possible += prev
						s.reused += min(r.cached, prev)
						// The reply's last token was sampled but never
						// decoded, so one fewer can be in the cache.
						s.replyPossible += prevReply - 1
						s.replyReused += min(max(r.cached-prev, 0), prevReply-1)
					}
					if turn == 5 {
						s.ttft5, s.fill5 = r.ttft, r.prompt-r.cached
					}
					prev, prevReply = r.prompt, r.completion
					msgs = append(msgs, msg{"assistant", r.content},
						msg{"user", fmt.Sprintf("What did %s do next? Turn %d.", names[i], turn+1)})
				}
			}
		}()
	}
	for i := range names {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var reused, possible, replyReused, replyPossible int
	var t5 []time.Duration
	var f5 []int
	var a affinity
	for _, s := range out {
		if s.err != nil {
			t.Fatalf("%s: %v", tag, s.err)
		}
		reused += s.reused
		possible += s.possible
		replyReused += s.replyReused
		replyPossible += s.replyPossible
		t5, f5 = append(t5, s.ttft5), append(f5, s.fill5)
		if len(s.replicas) == 1 {
			a.sticky++
		}
	}
	slices.Sort(t5)
	slices.Sort(f5)
	a.hit = float64(reused) / float64(max(possible, 1))
	a.replyHit = float64(replyReused) / float64(max(replyPossible, 1))
	a.ttft5, a.fill5 = t5[len(t5)/2], f5[len(f5)/2]
	return a
}

func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("the fleet test starts 3 servers and nginx")
	}
	fleettest.Nginx(t) // skip or fail (CI) first when nginx is missing
	// ASI1D_FLEET_MODEL runs the fleet on another model (by hand: e.g. the
	// small synth model, where a prefill costs what it does in use).
	model := os.Getenv("ASI1D_FLEET_MODEL")
	if model == "" {
		model = testmodel.Path(t, testmodel.Stories260K)
	}
	reps := make([]*replicaProc, 3)
	addrs := make([]string, len(reps))
	for i := range reps {
		addrs[i] = fleettest.FreeAddr(t)
		reps[i] = &replicaProc{id: fmt.Sprintf("r%d", i+1), addr: addrs[i], model: model}
		reps[i].start(t)
	}
	t.Cleanup(func() {
		for _, r := range reps {
			_ = r.stop(syscall.SIGKILL, 10*time.Second)
		}
		if t.Failed() {
			for _, r := range reps {
				t.Logf("%s log:\n%s", r.id, r.out.String())
			}
		}
	})
	for _, r := range reps {
		r.waitReady(t)
	}
	lb := fleettest.Start(t, addrs, false)
	hashed, robin := lb.URL, fleettest.Start(t, addrs, true).URL
	var report []string
	say := func(format string, a ...any) {
		report = append(report, fmt.Sprintf(format, a...))
		t.Logf(format, a...)
	}
	defer func() { t.Logf("fleet report:\n  %s", strings.Join(report, "\n  ")) }()

	// Affinity: hashing keeps every session on one replica and reuses each
	// previous turn's prompt; round robin mostly cannot.
	t0 := time.Now()
	h := affinityRun(t, hashed, "hash", 1)
	r := affinityRun(t, robin, "robin", 1)
	c := affinityRun(t, hashed, "hash4", 4)
	say("affinity, 20 sessions x 5 turns, one session at a time: hashing reuses %.1f%% of the possible prefix on turns 2-5 (%d/20 sessions on one replica) and %.1f%% of the previous reply too, round robin %.1f%% (%d/20)",
		100*h.hit, h.sticky, 100*h.replyHit, 100*r.hit, r.sticky)
	say("turn-5 TTFT median: hashing %v, round robin %v (%.2fx; %d vs %d prompt tokens prefilled; %s on loopback)",
		h.ttft5.Round(time.Microsecond), r.ttft5.Round(time.Microsecond), float64(h.ttft5)/float64(max(r.ttft5, 1)),
		h.fill5, r.fill5, filepath.Base(model))
	say("affinity with 4 sessions at a time (not asserted): hashing reuses %.1f%% (%d/20 on one replica), turn-5 TTFT %v", 100*c.hit, c.sticky, c.ttft5.Round(time.Microsecond))
	say("affinity phase took %v", time.Since(t0).Round(time.Millisecond))
	if h.hit < 0.95 {
		t.Errorf("hashing reused %.1f%% of the possible prefix on turns 2-5, want >= 95%%", 100*h.hit)
	}
	if h.sticky != 20 {
		t.Errorf("hashing kept %d of 20 sessions on one replica", h.sticky)
	}
	if r.hit >= h.hit {
		t.Errorf("round robin reused as much as hashing (%.3f >= %.3f): the comparison shows nothing", r.hit, h.hit)
	}
	// The previous reply is in the replica's cache too, and the next turn's
	// prompt begins with it as the model wrote it (a greedy reply of the
	// tiny model mostly tokenizes back to the same tokens).
	if model == testmodel.Path(t, testmodel.Stories260K) && h.replyHit < 0.8 {
		t.Errorf("hashing reused %.1f%% of the previous replies, want >= 80%% (0%% when the plain rule put the reply on a line of its own)", 100*h.replyHit)
	}

	t.Run("failover", func(t *testing.T) { fleetFailover(t, hashed, reps, say) })
	t.Run("rolling-restart", func(t *testing.T) { fleetRolling(t, lb, reps, say) })
	t.Run("restore", func(t *testing.T) { fleetRestore(t, hashed, reps, say) })
}

// fleetRestore: the replicas restart on one shared --session-dir; a
// session's replica is restarted between two turns, and the second turn
// restores the first's prefix instead of prefilling it, measured against a
// cold prompt of the same length; another replica restores it too.
func fleetRestore(t *testing.T, base string, reps []*replicaProc, say func(string, ...any)) {
	dir := t.TempDir()
	byID := map[string]*replicaProc{}
	for _, r := range reps {
		if err := r.stop(syscall.SIGTERM, 45*time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v", r.id, err)
		}
		r.extra = []string{"--session-dir", dir, "--session-min-tokens", "64"}
		r.start(t)
		byID[r.id] = r
	}
	for _, r := range reps {
		r.waitReady(t)
	}
	// A long first turn (stories260K has 512 cells per sequence) whose
	// text no other request shares.
	story := func(who string) []msg {
		var b strings.Builder
		for i := range 14 {
			fmt.Fprintf(&b, "%s saw a big red ball number %d in the park and was happy. ", who, i)
		}
		return []msg{{"user", b.String()}}
	}
	opts := func(session string) chatOpts {
		return chatOpts{session: session, maxTokens: 8, noEOS: true, timeout: 60 * time.Second}
	}
	const rounds = 3
	var warm, cold, other []time.Duration
	var turn1, restored, coldCached, otherCached int
	var served string
	for k := range rounds {
		sid := fmt.Sprintf("restore-%d", k)
		msgs := story(fmt.Sprintf("Lily%d", k))
		r1 := streamChat(base, msgs, opts(sid))
		if r1.err != nil {
			t.Fatalf("turn 1: %v", r1.err)
		}
		rep := byID[r1.replica]
		if rep == nil {
			t.Fatalf("turn 1 answered by unknown replica %q", r1.replica)
		}
		// Restart the session's replica: its drain saves the session.
		if err := rep.stop(syscall.SIGTERM, 45*time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v", rep.id, err)
		}
		rep.start(t)
		rep.waitReady(t)
		next := append(slices.Clone(msgs), msg{"assistant", r1.content}, msg{"user", "And then?"})
		r2 := streamChat("http://"+rep.addr, next, opts(sid))
		// A cold prompt of the same length on the same replica.
		rc := streamChat("http://"+rep.addr, story(fmt.Sprintf("Tomm%d", k)), opts(fmt.Sprintf("cold-%d", k)))
		// Another replica, which never saw the session, restores it from
		// the shared directory.
		var peer *replicaProc
		for _, r := range reps {
			if r != rep {
				peer = r
				break
			}
		}
		r3 := streamChat("http://"+peer.addr, next, opts(sid))
		for _, r := range []result{r2, rc, r3} {
			if r.err != nil {
				t.Fatalf("round %d: %v\n%s log:\n%s", k, r.err, rep.id, rep.out.String())
			}
		}
		turn1, served = r1.prompt, rep.id
		restored, coldCached, otherCached = r2.cached, rc.cached, r3.cached
		if r2.cached < r1.prompt-8 {
			t.Errorf("round %d: after %s restarted, the next turn reused %d of the %d tokens of turn 1", k, rep.id, r2.cached, r1.prompt)
		}
		if r3.cached < r1.prompt-8 {
			t.Errorf("round %d: %s reused %d of the %d tokens of turn 1 from the shared directory", k, peer.id, r3.cached, r1.prompt)
		}
		if rc.cached > 16 {
			t.Errorf("round %d: a cold prompt reused %d tokens", k, rc.cached)
		}
		warm, cold, other = append(warm, r2.ttft), append(cold, rc.ttft), append(other, r3.ttft)
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	say("restore: a %d-token first turn, its replica (%s, last round) restarted; the next turn reused %d tokens restored from the shared --session-dir, TTFT median %v against %v for a cold prompt of the same length (%d cached) (%.2fx); another replica restored it too (%d tokens, TTFT %v); %d rounds, %s",
		turn1, served, restored, med(warm).Round(time.Microsecond), med(cold).Round(time.Microsecond), coldCached,
		float64(med(warm))/float64(max(med(cold), 1)), otherCached, med(other).Round(time.Microsecond), rounds, filepath.Base(reps[0].model))
}

// fleetFailover: 16 streams, kill -9 the replica serving the most of them.
func fleetFailover(t *testing.T, base string, reps []*replicaProc, say func(string, ...any)) {
	t0 := time.Now()
	const n = 16
	const timeout = 30 * time.Second
	results := make([]result, n)
	var mu sync.Mutex
	serving := map[string]int{} // streams started per replica
	running := map[string]int{} // of them, not finished yet
	startedAll := make(chan struct{})
	left := n
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(func() {
				mu.Lock()
				defer mu.Unlock()
				if left--; left == 0 {
					close(startedAll)
				}
			})
			defer once() // a stream that fails at once still counts as started
			r := streamChat(base, []msg{{"user", fmt.Sprintf("Story %d: once upon a time", i)}}, chatOpts{
				session: fmt.Sprintf("fo-%d", i), maxTokens: 900, noEOS: true, timeout: timeout,
				started: func(rep string) {
					mu.Lock()
					serving[rep]++
					running[rep]++
					mu.Unlock()
					once()
				}})
			mu.Lock()
			if r.chunks > 0 {
				running[r.replica]--
			}
			results[i] = r
			mu.Unlock()
		}()
	}
	<-startedAll
	// The victim: the replica with the most streams that are still running.
	mu.Lock()
	victim := -1
	for i, r := range reps {
		if victim < 0 || running[r.id] > running[reps[victim].id] {
			victim = i
		}
	}
	inFlight := running[reps[victim].id]
	mu.Unlock()
	vr := reps[victim]
	killAt := time.Now()
	if err := vr.stop(syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatalf("%s exited cleanly after SIGKILL", vr.id)
	}
	wg.Wait()
	var finishedBefore, truncated, cleanErr, completed, hung int
	var longest time.Duration
	for i, r := range results {
		onVictim := r.replica == vr.id
		if errors.Is(r.err, context.DeadlineExceeded) {
			hung++
			t.Errorf("stream %d (%s) hung until its %v timeout", i, r.replica, timeout)
			continue
		}
		switch {
		case r.done && r.doneAt.Before(killAt):
			finishedBefore++
		case onVictim && r.done:
			// Its end was already on its way (in the socket buffers) when
			// the kill landed: a whole answer, not a failure.
			finishedBefore++
		case onVictim && r.chunks > 0:
			truncated++
			longest = max(longest, r.end.Sub(killAt))
		case onVictim:
			cleanErr++
			longest = max(longest, r.end.Sub(killAt))
		case r.err != nil:
			t.Errorf("stream %d on %s, which was not killed, failed: %v", i, r.replica, r.err)
		default:
			completed++
		}
	}
	// Every request after the kill succeeds, those whose session hashed to
	// the dead replica included.
	var after, afterOK int
	var awg sync.WaitGroup
	var amu sync.Mutex
	for i := range n {
		awg.Add(1)
		go func() {
			defer awg.Done()
			r := streamChat(base, []msg{{"user", "After the kill"}}, chatOpts{session: fmt.Sprintf("fo-%d", i), maxTokens: 16, timeout: timeout})
			amu.Lock()
			defer amu.Unlock()
			after++
			if r.err == nil && r.done && r.replica != vr.id {
				afterOK++
			} else {
				t.Errorf("request %d after the kill: replica %q err %v", i, r.replica, r.err)
			}
		}()
	}
	awg.Wait()
	say("failover: 16 streams, kill -9 %s while %d of its %d were running: %d had finished before the kill, %d truncated without [DONE], %d clean errors, %d hung; the last of them ended %v after the kill; %d others completed; after the kill %d/%d requests succeeded (%v)",
		vr.id, inFlight, serving[vr.id], finishedBefore, truncated, cleanErr, hung, longest.Round(time.Millisecond), completed, afterOK, after, time.Since(t0).Round(time.Millisecond))
	if truncated+cleanErr == 0 {
		t.Errorf("no stream was in flight on %s when it was killed: the failover was not exercised", vr.id)
	}
	vr.start(t)
	vr.waitReady(t)
}

// fleetRolling: 8 streams at all times while each replica in turn gets
// SIGTERM, drains, exits and starts again.
func fleetRolling(t *testing.T, lb *fleettest.Balancer, reps []*replicaProc, say func(string, ...any)) {
	base := lb.URL
	retried0, _ := lb.Retried()
	t0 := time.Now()
	stop := make(chan struct{})
	var mu sync.Mutex
	var total, failed int
	perReplica := map[string]int{}
	lastServed := map[string]time.Time{} // when a replica last answered a request in full
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				sid := fmt.Sprintf("roll-%d", (w*7+k)%24)
				if k%4 == 3 {
					sid = "" // some without a session: least connections
				}
				r := streamChat(base, []msg{{"user", fmt.Sprintf("Worker %d asks for story %d", w, k)}},
					chatOpts{session: sid, maxTokens: 200, noEOS: true, timeout: 60 * time.Second})
				mu.Lock()
				total++
				perReplica[r.replica]++
				if r.err == nil && r.done {
					lastServed[r.replica] = r.end
				} else {
					failed++
					t.Errorf("request %d of worker %d (session %q, replica %q) failed during the rolling restart: %v", k, w, sid, r.replica, r.err)
				}
				mu.Unlock()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad() // also when a check below ends the test early
	var drains []string
	// backInRotation waits until r has answered a request of the load in
	// full after since: nginx has taken it back (its passive check keeps a
	// failed replica out for fail_timeout, whatever its /ready says).
	backInRotation := func(r *replicaProc, since time.Time) time.Time {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			at := lastServed[r.id]
			mu.Unlock()
			if at.After(since) {
				return at
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx sent %s no request within 30s of its restart", r.id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, r := range reps {
		// The replica is serving part of the load before it is stopped.
		backInRotation(r, t0)
		d0 := time.Now()
		if err := r.stop(syscall.SIGTERM, 45*time.Second); err != nil {
			t.Errorf("%s after SIGTERM: %v", r.id, err)
		}
		drained := time.Since(d0)
		r.start(t)
		r.waitReady(t)
		ready := time.Since(d0)
		back := backInRotation(r, d0.Add(ready)).Sub(d0)
		// The operator's pacing from deploy/compose.fleet.yaml: the next replica
		// is stopped only after nginx's fail_timeout (5 s) has passed since
		// this one's last failure (its drain's 503s, or a kept-alive
		// connection to its old process). nginx keeps each replica's fail
		// state to itself and open-source nginx cannot be asked for it, so
		// this is a pause the procedure prescribes, not a wait for an event:
		// without it two replicas can be out of rotation while the third
		// drains, and nginx answers 502 "no live upstreams" (seen here once
		// with restarts 0.4-0.7 s apart).
		time.Sleep(time.Until(d0.Add(6 * time.Second)))
		drains = append(drains, fmt.Sprintf("%s drained in %v, ready %v and serving through nginx %v after SIGTERM",
			r.id, drained.Round(time.Millisecond), ready.Round(time.Millisecond), back.Round(time.Millisecond)))
	}
	stopLoad()
	retried, after503 := lb.Retried()
	say("rolling restart under 8 streams: %d requests, %d failed, %d passed by nginx to a second replica (%d of them after a 503); served by %v; %s (%v)",
		total, failed, retried-retried0, after503, perReplica, strings.Join(drains, "; "), time.Since(t0).Round(time.Millisecond))
}
