package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/server"
)

// Every answer names its replica, errors and probes included.
func TestReplicaHeader(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{ReplicaID: "r-7"}})
	for _, r := range []ctResp{
		e.do(http.MethodGet, "/health", ""),
		e.do(http.MethodGet, "/ready", ""),
		e.do(http.MethodGet, "/nope", ""),
		e.do(http.MethodGet, "/v1/models", ""),
		e.chat(ctBody("hi", map[string]any{"max_tokens": 3})),
		e.chat(ctBody("hi", map[string]any{"max_tokens": -1})),
	} {
		if got := r.header.Get(server.HeaderReplica); got != "r-7" {
			t.Errorf("status %d: %s = %q, want r-7", r.status, server.HeaderReplica, got)
		}
	}
	fams := ctGather(t, e.reg)
	if v := ctValue(fams, `asi1_replica_info{replica="r-7"}`); v != 1 {
		t.Errorf("asi1_replica_info{replica=r-7} = %v", v)
	}
	if v := ctValue(fams, "asi1_draining"); v != 0 {
		t.Errorf("asi1_draining = %v before the drain", v)
	}
	// The autoscaler's inputs are all exported.
	for _, name := range []string{"asi1_requests_waiting", "asi1_requests_running", "asi1_kv_cache_usage_ratio",
		"asi1_prefix_cache_queried_tokens_total", "asi1_prefix_cache_hit_tokens_total"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	if id := server.DefaultReplicaID(); id == "" {
		t.Error("DefaultReplicaID is empty")
	}
}

// The balancer's side of a drain: a stream that runs when the drain starts
// ends with [DONE]; a stream asked for during the drain gets 503
// server_overloaded with Retry-After as a plain JSON answer before any byte
// of an event stream, which a balancer may retry on another replica.
func TestReplicaDrainRefusesBeforeAnyByte(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 2, stepDelay: 2 * time.Millisecond, opts: server.Options{ReplicaID: "r-1"}})
	b, _ := json.Marshal(ctBody("hi", map[string]any{"max_tokens": 40, "stream": true}))
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: ") {
		t.Fatalf("first line of the running stream: %q %v", first, err)
	}

	e.srv.SetDraining()
	e.sched.Drain(10 * time.Second)
	r := e.chat(ctBody("hi", map[string]any{"stream": true}))
	ctError(t, r, 503, "server_error", "server_overloaded", nil)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("draining refusal Content-Type %q, want JSON (no event stream started)", ct)
	}
	if r.header.Get("Retry-After") == "" || r.header.Get(server.HeaderReplica) != "r-1" {
		t.Errorf("draining refusal headers: %v", r.header)
	}
	if v := ctValue(ctGather(t, e.reg), "asi1_draining"); v != 1 {
		t.Errorf("asi1_draining = %v while draining", v)
	}

	var rest bytes.Buffer
	if _, err := rest.ReadFrom(rd); err != nil {
		t.Fatalf("reading the running stream: %v", err)
	}
	if !bytes.HasSuffix(rest.Bytes(), []byte("data: [DONE]\n\n")) {
		t.Fatalf("the stream running when the drain began did not finish: ...%q", ctTail(rest.Bytes(), 200))
	}
}
