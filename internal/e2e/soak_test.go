//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/internal/bench/loadgen"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// The short form of the soak (asi1d bench scenario soak): a few hundred
// mixed requests against the real engine on the tiny model, a fifth of them
// aborted mid-stream, then every end check of the report but the memory
// one must pass. Memory is measured, not asserted, here: the RSS is this
// test process's (server, clients and, under -race, the race detector's
// own growing state), so the report's rss_stable verdict is logged; the
// long soaks (asi1d bench scenario soak) hold a real server to 5%.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	e, _ := startWith(t, testmodel.Path(t, testmodel.Stories260K), 4, 512, scheduler.Options{StepTokens: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := loadgen.RunSoak(ctx, loadgen.SoakConfig{
		ScenarioConfig: loadgen.ScenarioConfig{URL: e.url, RequestTimeout: time.Minute},
		Requests:       240, Concurrency: 8, Warmup: 64,
		AbortShare: 0.2, StreamShare: 0.4, ToolShare: 0.1, FormatShare: 0.1,
		MaxPromptWords: 60, MaxAnswer: 48, Seed: 14, Settle: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	t.Log("\n" + text.String())
	o := rep.Outcome
	if o.Sent != 240 || o.Aborted == 0 || o.OK == 0 || o.ByKind["stream_abort"] == 0 {
		t.Errorf("the mix did not happen: %+v", o)
	}
	for _, k := range []string{"+tools", "+format"} {
		n := 0
		for kind, c := range o.ByKind {
			if strings.HasSuffix(kind, k) {
				n += c
			}
		}
		if n == 0 {
			t.Errorf("no request of kind %s: %v", k, o.ByKind)
		}
	}
	if len(rep.Checks) < 7 {
		t.Errorf("only %d checks", len(rep.Checks))
	}
	for _, c := range rep.Checks {
		if !c.Pass && c.Name != "rss_stable" {
			t.Errorf("check %s failed: %s", c.Name, c.Detail)
		}
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Logf("soak report:\n%s", b)
	}
}
