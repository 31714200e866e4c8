package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/server/api"
)

// With every slot busy and the queue full, new requests are refused with
// 503 server_overloaded and Retry-After, and the admitted ones run to the
// end undisturbed. (How fast the refusal comes is measured by
// `asi1d bench scenario overload`, not here.)
func TestOverloadOnRealEngine(t *testing.T) {
	t.Parallel()
	const parallel, queue = 2, 2
	e, be := startWith(t, testmodel.Path(t, testmodel.Stories260K), parallel, 2048, scheduler.Options{MaxQueue: queue})
	eos := be.Info().EOS
	body := func(prompt string, stream bool) map[string]any {
		b := chatBody(prompt, 1500, stream)
		b["logit_bias"] = map[string]any{fmt.Sprint(eos): -100}
		return b
	}
	prompts := []string{"Once upon a time", "The cat", "Tom and Lily", "One day a bird"}
	got := make([]string, len(prompts))
	var wg sync.WaitGroup
	waitFor := func(running, waiting int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := e.sched.Stats()
			if st.Running == running && st.Waiting == waiting {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never %d running and %d waiting: %+v", running, waiting, st)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i, p := range prompts {
		wg.Go(func() {
			t.Run(fmt.Sprintf("admitted%d", i), func(t *testing.T) {
				a := ask(t, e.url, body(p, i%2 == 1))
				if a.Finish != "length" {
					t.Errorf("finish %q", a.Finish)
				}
				got[i] = deref(a.Content)
			})
		})
		// Two fill the slots, two the queue.
		waitFor(min(i+1, parallel), max(i+1-parallel, 0))
	}
	for i := range 6 {
		resp := post(t, e.url, body("Refused", i%2 == 0))
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var er api.ErrorBody
		_ = json.Unmarshal(raw, &er)
		if resp.StatusCode != http.StatusServiceUnavailable || er.Error.Code != "server_overloaded" || resp.Header.Get("Retry-After") == "" {
			// The queue cannot drain meanwhile: the admitted requests
			// write 1,500 tokens each with EOS banned.
			t.Errorf("probe %d: status %d Retry-After %q body %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
	}
	wg.Wait()
	// Every admitted request ran to its max_tokens. (Their text is not
	// compared with a solo run: past several hundred tokens a batch of two
	// and a batch of one round differently and greedy output may part ways;
	// see TestDeterminismInBatchAndWarmCache for the 64-token guarantee.)
	for i := range prompts {
		if len(got[i]) < 1500 {
			t.Errorf("request %d: %d bytes of text for 1,500 tokens", i, len(got[i]))
		}
	}
	if st := e.sched.Stats(); st.Running != 0 || st.Waiting != 0 {
		t.Errorf("after the run: %+v", st)
	}
}
