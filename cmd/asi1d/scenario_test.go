package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// scenarioServer is a plain scripted server for the scenario commands: it
// streams tokens tokens gap apart, counts one prompt token per word, caches
// nothing, has no /metrics and refuses requests beyond capacity with 503.
type scenarioServer struct {
	tokens   int
	gap      time.Duration
	capacity int

	mu     sync.Mutex
	active int
	bodies []map[string]any
}

func (s *scenarioServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	if s.capacity > 0 && s.active >= s.capacity {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(503)
		io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","param":null,"code":"server_overloaded"}}`)
		return
	}
	s.active++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
	}()
	words := 0
	for _, m := range body["messages"].([]any) {
		words += len(strings.Fields(m.(map[string]any)["content"].(string)))
	}
	n := min(s.tokens, int(body["max_tokens"].(float64)))
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, words, n, words+n)
	if body["stream"] != true {
		fmt.Fprintf(w, `{"choices":[{"message":{"content":"x"},"finish_reason":"length"}],"usage":%s}`, usage)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for i := range n {
		if i > 0 {
			select {
			case <-time.After(s.gap):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w%d\"},\"finish_reason\":null}]}\n\n", i)
		w.(http.Flusher).Flush()
	}
	fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: {\"choices\":[],\"usage\":%s}\n\ndata: [DONE]\n\n", usage)
}

func runScenarioCmd(t *testing.T, args ...string) (map[string]any, string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rep.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, append(append([]string{"bench", "scenario"}, args...), "--json", out), &stdout, &stderr, noenv)
	if code != 0 {
		t.Fatalf("%v: exit %d\nstderr:\n%s", args, code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, b)
	}
	return rep, stdout.String(), stderr.String()
}

// Each scenario runs from the command line with its flags, prints its
// report and writes its JSON.
func TestBenchScenarios(t *testing.T) {
	s := &scenarioServer{tokens: 400, gap: time.Millisecond}
	hs := httptest.NewServer(s)
	defer hs.Close()

	rep, stdout, stderr := runScenarioCmd(t, "prefill", "--url", hs.URL, "--streams", "2", "--stream-tokens", "4", "--long-tokens", "50",
		"--idle", "100ms", "--shorts", "2", "--rounds", "1", "--pause", "10ms", "--short-delay", "0s", "--calibrate=false", "--logit-bias", "2=-100")
	cfg := rep["config"].(map[string]any)
	if cfg["streams"] != 2.0 || cfg["long_tokens"] != 50.0 || cfg["idle_ns"] != 1e8 || cfg["logit_bias"].(map[string]any)["2"] != -100.0 ||
		len(rep["rounds"].([]any)) != 1 || rep["idle_ttft"].(map[string]any)["n"] != 2.0 {
		t.Fatalf("prefill report %v", rep)
	}
	if !strings.Contains(stdout, "prefill gap p99 / idle gap p50") || !strings.Contains(stderr, "prefill: round 1/1") {
		t.Fatalf("prefill stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}

	rep, stdout, _ = runScenarioCmd(t, "chat", "--url", hs.URL, "--turns", "2", "--system-tokens", "20", "--turn-tokens", "5",
		"--max-tokens", "3", "--evict", "2", "--calibrate=false", "--progress=false")
	turns := rep["turns"].([]any)
	if len(turns) != 2 || turns[1].(map[string]any)["added_tokens"] != 3.0+2+5 || rep["metrics"] != false ||
		rep["cold"].(map[string]any)["prompt_tokens"] != turns[1].(map[string]any)["prompt_tokens"] {
		t.Fatalf("chat report %v", rep)
	}
	if !strings.Contains(stdout, "turn 2 / cold") || !strings.Contains(stdout, "usage only") {
		t.Fatalf("chat stdout:\n%s", stdout)
	}

	s.capacity = 3
	rep, stdout, _ = runScenarioCmd(t, "overload", "--url", hs.URL, "--fill-interval", "1ms", "--settle", "10ms", "--probes", "4",
		"--fill-max-tokens", "400", "--calibrate=false", "--progress=false")
	if rep["fill_admitted"] != 3.0 || len(rep["probes"].([]any)) != 4 || rep["config"].(map[string]any)["target_ns"] != 1e7 {
		t.Fatalf("overload report %v", rep)
	}
	if !strings.Contains(stdout, "3 of 3 finished with stop or length") {
		t.Fatalf("overload stdout:\n%s", stdout)
	}
}

func TestBenchScenarioUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"bench", "scenario"}, 2},
		{[]string{"bench", "scenario", "nope"}, 2},
		{[]string{"bench", "scenario", "-h"}, 0},
		{[]string{"bench", "scenario", "chat", "-h"}, 0},
		{[]string{"bench", "scenario", "prefill"}, 2},
		{[]string{"bench", "scenario", "overload", "--url", "http://x", "--logit-bias", "eos"}, 2},
		{[]string{"bench", "scenario", "chat", "--url", "http://x", "extra"}, 2},
		{[]string{"bench", "scenario", "chat", "--url", "http://x", "--turns", "1"}, 1},
		{[]string{"bench", "scenario", "prefill", "--url", "http://127.0.0.1:1", "--calibrate=false", "--timeout", "1s", "--progress=false"}, 1},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr, noenv); code != c.code {
			t.Errorf("%v: exit %d, want %d; stderr %s", c.args, code, c.code, stderr.String())
		}
	}
}
