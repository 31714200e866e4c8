package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server/api"
)

// streamUntil streams a request and cancels it after `after` content chunks
// (-1: right after the role chunk, i.e. while the prompt is processed;
// 0: never). It returns the content read.
func streamUntil(t *testing.T, url string, body map[string]any, after int) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sse := api.NewSSEReader(resp.Body)
	var text string
	chunks := 0
	for {
		ev, err := sse.Next()
		if errors.Is(err, io.EOF) {
			return text, fmt.Errorf("stream ended without [DONE]")
		}
		if err != nil {
			return text, fmt.Errorf("stream ended without [DONE]: %w", err)
		}
		if ev.IsDone() {
			return text, nil
		}
		ch, err := api.DecodeChunk(ev.Data)
		if err != nil {
			return text, err
		}
		if len(ch.Choices) == 0 {
			continue
		}
		d := ch.Choices[0].Delta
		if d.Role != "" {
			if after == -1 {
				return text, nil // cancel (deferred) mid-prompt
			}
			continue
		}
		if d.Content != nil {
			text += *d.Content
			chunks++
			if after > 0 && chunks >= after {
				return text, nil // cancel mid-decode
			}
		}
	}
}

// 16 streams; 8 are aborted, half while their prompt is processed, half
// while decoding. The other 8 produce exactly what they produce alone, the
// slots come free and nothing leaks.
func TestCancelHalfOfSixteen(t *testing.T) {
	e := start(t, 16, 16)
	prompt := func(i int) string {
		return fmt.Sprintf("Story %d. %s", i, strings.Repeat("Once upon a time there was a little dog. ", 4+i%5))
	}
	body := func(i int) map[string]any {
		b := chatBody(prompt(i), 48, true)
		return b
	}
	// What each keeper produces alone.
	want := map[int]string{}
	for i := 1; i < 16; i += 2 {
		text, err := streamUntil(t, e.url, body(i), 0)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = text
	}
	cancelledBefore := e.sched.Stats().Finished[scheduler.FinishCancelled]
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int]string{}
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after := 0
			if i%2 == 0 {
				after = -1 // mid-prompt
				if i%4 == 0 {
					after = 3 // mid-decode
				}
			}
			text, err := streamUntil(t, e.url, body(i), after)
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
			}
			mu.Lock()
			got[i] = text
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := 1; i < 16; i += 2 {
		if got[i] != want[i] {
			t.Errorf("stream %d disturbed by the cancellations:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
	// The aborted ones are reaped within a step or two; poll the counters.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := e.sched.Stats()
		if st.Running == 0 && st.Waiting == 0 && st.Finished[scheduler.FinishCancelled]-cancelledBefore >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slots not freed: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The server still answers normally.
	c := complete(t, e.url, "Once upon a time", 8)
	if c.Usage.CompletionTokens != 8 {
		t.Fatalf("after the cancellations: %+v", c.Usage)
	}
	// Leaked goroutines fail the package's run (goleak, main_test.go).
}
