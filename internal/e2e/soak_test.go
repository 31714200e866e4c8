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
// aborted mid-stream, then every end check of the report must pass.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	// The RSS is this test process's (server and clients), after a
	// 64-request warm-up: it grew 1.1-2.4% over the 240 requests without
	// the race detector and 6.5-9.2% with it, whose own memory grows with
	// the goroutines it has seen (2.7-4.2% even after 480 warm-up
	// requests). Under it the bound is 15%, which a leak of 70 KB a
	// request still crosses; the long soaks (asi1d bench scenario soak)
	// hold a real server to 5%.
	rssBound := 0.05
	if raceOn {
		rssBound = 0.15
	}
	e, _ := startWith(t, testmodel.Path(t, testmodel.Stories260K), 4, 512, scheduler.Options{StepTokens: 64})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := loadgen.RunSoak(ctx, loadgen.SoakConfig{
		ScenarioConfig: loadgen.ScenarioConfig{URL: e.url, RequestTimeout: time.Minute},
		Requests:       240, Concurrency: 8, Warmup: 64,
		AbortShare: 0.2, StreamShare: 0.4, ToolShare: 0.1, FormatShare: 0.1,
		MaxPromptWords: 60, MaxAnswer: 48, Seed: 14, RSSTolerance: rssBound, Settle: 10 * time.Second,
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
		if !c.Pass {
			t.Errorf("check %s failed: %s", c.Name, c.Detail)
		}
	}
	if !rep.Pass {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Errorf("soak failed:\n%s", b)
	}
}
