package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/internal/testutil/testserver"
	"github.com/asi1d/asi1d/models/catalog"
	"github.com/asi1d/asi1d/models/synth"
)

// catalogDir writes a catalog of three real models (the reference model
// and synth models at two shapes), a corrupt file, and a model whose
// pinned checksum no longer matches its file.
func catalogDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(testmodel.Path(t, testmodel.Stories260K))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stories.gguf"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	writeSynthFile(t, filepath.Join(dir, "tiny.gguf"), synth.Options{Preset: "tiny", Template: synth.TemplateChatMLThink, Seed: 1})
	writeSynthFile(t, filepath.Join(dir, "wide.gguf"), synth.Options{Preset: "tiny", NEmbd: 128, NLayer: 4, NFF: 256, Seed: 2})
	writeSynthFile(t, filepath.Join(dir, "changed.gguf"), synth.Options{Preset: "tiny", Seed: 3})
	if err := os.WriteFile(filepath.Join(dir, "corrupt.gguf"), append([]byte("GGUF\x03\x00\x00\x00"), strings.Repeat("\xff\x13", 4000)...), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &catalog.Manifest{Models: map[string]*catalog.ModelConfig{
		"stories": {Aliases: []string{"asi1-mini"}},
		"tiny":    {Sampling: &catalog.Sampling{Temperature: ptr(0.0)}},
		"changed": {SHA256: strings.Repeat("ab", 32)},
	}}
	if err := catalog.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ptr[T any](v T) *T { return &v }

func writeSynthFile(t *testing.T, path string, o synth.Options) {
	t.Helper()
	if _, err := writeSynth(context.Background(), path, o); err != nil {
		t.Fatalf("synth %s: %v", path, err)
	}
}

type modelRow struct {
	ID            string   `json:"id"`
	Aliases       []string `json:"aliases"`
	ContextLength int      `json:"context_length"`
	Quantization  string   `json:"quantization"`
	SizeBytes     int64    `json:"size_bytes"`
	SHA256        *string  `json:"sha256"`
	Loaded        bool     `json:"loaded"`
	Status        string   `json:"status"`
	Error         string   `json:"error"`
}

func listModels(t *testing.T, base string) map[string]modelRow {
	t.Helper()
	r, err := http.Get(base + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var list struct{ Data []modelRow }
	if err := json.NewDecoder(r.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]modelRow{}
	for _, m := range list.Data {
		out[m.ID] = m
	}
	return out
}

func loadedSet(rows map[string]modelRow) string {
	var on []string
	for _, id := range []string{"changed", "corrupt", "stories", "tiny", "wide"} {
		if rows[id].Loaded {
			on = append(on, id)
		}
	}
	return strings.Join(on, ",")
}

// metric is one sample of ts's /metrics (0 when absent).
func metric(t *testing.T, ts *testserver.Server, series string) float64 {
	t.Helper()
	v, _ := ts.Metric(t, series)
	return v
}

func postChat(ctx context.Context, base, model string) (int, string) {
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8}`, model)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// TestCatalogServe serves a catalog of real files from a real process with
// room for two models, and uses it as clients and an operator would.
func TestCatalogServe(t *testing.T) {
	t.Parallel()
	dir := catalogDir(t)
	addr := fleettest.FreeAddr(t)
	base := "http://" + addr
	out := &syncBuffer{}
	p := startProc(t, out, "serve", "--models-dir", dir, "--addr", addr, "--max-loaded-models", "2",
		"--parallel", "2", "--ctx", "512", "--threads", "1", "--log-level", "info")
	p.waitOK(t, base+"/health", 60*time.Second)
	ts := &testserver.Server{URL: base} // for its /metrics reader

	rows := listModels(t, base)
	if len(rows) != 5 {
		t.Fatalf("listed %d models, want 5: %v", len(rows), rows)
	}
	if r := rows["corrupt"]; r.Status != "unusable" || r.Error == "" {
		t.Errorf("corrupt file: %+v", r)
	}
	if r := rows["stories"]; r.Quantization == "" || r.SizeBytes == 0 || len(r.Aliases) != 1 || r.Loaded || r.ContextLength != 512 { // one request may use the whole pool of --ctx 512
		t.Errorf("stories before any request: %+v", r)
	}
	if r := rows["changed"]; r.SHA256 == nil || *r.SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("pinned sha256 not listed: %+v", r)
	}

	// Each model in turn, with room for two: the least recently used goes.
	for _, step := range []struct{ model, want string }{
		{"stories", "stories"}, {"tiny", "stories,tiny"}, {"asi1-mini", "stories,tiny"}, {"wide", "stories,wide"}, {"tiny", "tiny,wide"},
	} {
		if code, body := postChat(t.Context(), base, step.model); code != 200 {
			t.Fatalf("%s: %d %s", step.model, code, body)
		}
		if got := loadedSet(listModels(t, base)); got != step.want {
			t.Fatalf("after %s: loaded %q, want %q", step.model, got, step.want)
		}
	}
	if v := metric(t, ts, `asi1_model_unloads_total{model="stories",reason="lru"}`); v != 1 {
		t.Errorf("stories lru unloads: %v", v)
	}
	if v := metric(t, ts, `asi1_models_loaded`); v != 2 {
		t.Errorf("asi1_models_loaded %v", v)
	}

	// Two models at once, several requests each, while stories loads.
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 6 {
		model := []string{"tiny", "stories"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := postChat(t.Context(), base, model); code != 200 {
				errs <- fmt.Sprintf("%s: %d %s", model, code, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if v := metric(t, ts, `asi1_model_loads_total{model="stories"}`); v != 2 {
		t.Errorf("stories loaded %v times; three requests waiting for one load should load it once more", v)
	}

	// Unknown, corrupt, and a pinned checksum that no longer matches.
	for _, c := range []struct{ model, want string }{
		{"gpt-4", "does not exist"}, {"corrupt", "cannot be served"}, {"changed", "checksum"},
	} {
		code, body := postChat(t.Context(), base, c.model)
		if code != 404 || !strings.Contains(body, "model_not_found") || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s", c.model, code, body)
		}
	}
	if r := listModels(t, base)["changed"]; r.Status != "unusable" || !strings.Contains(r.Error, "checksum") {
		t.Errorf("changed after its refused load: %+v", r)
	}

	// The operator unloads and loads.
	for _, c := range []struct{ path, want string }{
		{"/v1/models/tiny/unload", `"loaded":false`}, {"/v1/models/wide/load", `"loaded":true`},
	} {
		r, err := http.Post(base+c.path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: %d %s", c.path, r.StatusCode, b)
		}
	}
	if v := metric(t, ts, `asi1_model_unloads_total{model="tiny",reason="operator"}`); v != 1 {
		t.Errorf("tiny operator unloads: %v\n%s", v, out)
	}
	if err := p.stop(os.Interrupt, 30*time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if strings.Contains(out.String(), "panic") {
		t.Fatalf("panic in the log:\n%s", out)
	}
}
