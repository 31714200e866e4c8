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

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// bench compare on the reference model: both numbers for every concurrency.
func TestBenchCompare(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cmp.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, []string{"bench", "compare", "--model", testmodel.Path(t, testmodel.Stories260K), "--threads", "1",
		"--concurrency", "1,2", "--prompt-tokens", "8", "--max-tokens", "8", "--runs", "1", "--warmup=false",
		"--log-level", "error", "--json", out}, &stdout, &stderr, noenv)
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []struct {
			Concurrency                int     `json:"concurrency"`
			RawOutputTokS              float64 `json:"raw_output_tok_s"`
			ServerOutputTokS           float64 `json:"server_output_tok_s"`
			OutputRatio                float64 `json:"output_ratio"`
			ServerCompletionTokensMean float64 `json:"server_completion_tokens_mean"`
			Runs                       []struct {
				Raw struct {
					OutputTokens int `json:"output_tokens"`
				} `json:"raw"`
				Server struct {
					OutputTokens int `json:"output_tokens"`
				} `json:"server"`
			} `json:"runs"`
		} `json:"rows"`
		ScalingTo     int     `json:"scaling_to"`
		ServerScaling float64 `json:"server_scaling"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.ScalingTo != 2 || rep.ServerScaling <= 0 {
		t.Fatalf("report %s", b)
	}
	for i, row := range rep.Rows {
		if row.Concurrency != i+1 || row.RawOutputTokS <= 0 || row.ServerOutputTokS <= 0 || row.OutputRatio <= 0 || len(row.Runs) != 1 {
			t.Fatalf("row %d: %+v", i, row)
		}
		// --ban-eos: the server generates max-tokens, like the raw loop.
		if row.ServerCompletionTokensMean != 8 || row.Runs[0].Raw.OutputTokens != 8*(i+1) || row.Runs[0].Server.OutputTokens != 8*(i+1) {
			t.Fatalf("row %d tokens: %+v", i, row)
		}
	}
	if !strings.Contains(stdout.String(), "scaling 2 vs 1 streams") {
		t.Fatalf("text report:\n%s", stdout.String())
	}
}

// bench --url against a scripted server: the text report, the JSON and the flags.
func TestBenchLoad(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" { // bench sends the first model the server lists
			fmt.Fprint(w, `{"object":"list","data":[{"id":"served-model","object":"model"},{"id":"other","object":"model"}]}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer sk" {
			w.WriteHeader(401)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, s := range []string{`{"choices":[{"delta":{"content":"a"},"finish_reason":null}]}`,
			`{"choices":[{"delta":{"content":"b"},"finish_reason":"length"}]}`,
			`{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`, `[DONE]`} {
			fmt.Fprintf(w, "data: %s\n\n", s)
			w.(http.Flusher).Flush()
		}
	}))
	defer hs.Close()
	out := filepath.Join(t.TempDir(), "load.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--url", hs.URL, "--api-key", "sk", "--concurrency", "2", "--requests", "4",
		"--prompt-tokens", "6", "--max-tokens", "2", "--calibrate=false", "--logit-bias", "2=-100,3=5", "--json", out}, &stdout, &stderr, noenv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Succeeded    int `json:"succeeded"`
		OutputTokens int `json:"output_tokens"`
	}
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &rep); err != nil || rep.Succeeded != 4 || rep.OutputTokens != 8 {
		t.Fatalf("json %s (%v)", b, err)
	}
	if !strings.Contains(stdout.String(), "4 ok, 0 failed") || !strings.Contains(stderr.String(), "4/4 done") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(bodies[0], `"logit_bias":{"2":-100,"3":5}`) || !strings.Contains(bodies[0], `"model":"served-model"`) {
		t.Fatalf("body %s", bodies[0])
	}
	// Every request failing is a failed run.
	code = run(context.Background(), []string{"bench", "--url", hs.URL, "--requests", "1", "--calibrate=false", "--progress=false"}, &stdout, &stderr, noenv)
	if code != 1 {
		t.Fatalf("all requests failed: exit %d", code)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "--url", "http://x", "--logit-bias", "eos"},
		{"bench", "compare", "--concurrency", "1,x"},
		{"bench", "compare", "--runs", "0"},
		{"bench", "--url", "http://x", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr, noenv); code != 2 {
			t.Errorf("%v: exit %d, stderr %s", args, code, stderr.String())
		}
	}
}
