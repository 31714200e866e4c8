//go:build integration

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/asi1d/asi1d/internal/testutil"
	"github.com/asi1d/asi1d/models/synth"
)

// ajvScript validates answers against their schemas with ajv (draft
// 2020-12, the dialect of zod 4 and pydantic 2) and ajv-formats, which
// checks email, hostname, ipv4, ipv6 and uri with its full-mode regular
// expressions and runs a pattern's lookaheads. pydantic's ipvanyaddress is
// ipv4 or ipv6. Input: a JSON file of {schema, answer} items; output, one
// line per item: "ok" or the errors.
const ajvScript = `
const fs = require("fs");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const full = require("ajv-formats/dist/formats").fullFormats;
ajv.addFormat("ipvanyaddress", (s) => full.ipv4.test(s) || full.ipv6.test(s));
const items = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const compiled = {};
for (const it of items) {
  const v = compiled[it.schema] ??= ajv.compile(JSON.parse(fs.readFileSync(it.schema, "utf8")));
  let doc;
  try { doc = JSON.parse(it.answer); } catch (e) { console.log("not JSON: " + e.message); continue; }
  console.log(v(doc) ? "ok" : JSON.stringify(v.errors));
}
`

// ajvRunner installs ajv and ajv-formats with npm (once per checkout,
// under .build/, which git ignores) and returns the node command that runs
// ajvScript. Without node or npm the test skips, except in CI, where it
// fails (testutil.Need): .ci/run installs them.
func ajvRunner(t *testing.T) func(input string) []string {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	testutil.Need(t, "node and npm (apt-get install -y nodejs npm), to validate answers with ajv", errors.Join(errNode, errNpm))
	dir, err := filepath.Abs("../../.build/ajv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ajv-formats", "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private":true}`), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "ajv@8", "ajv-formats@3")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install ajv ajv-formats in %s: %v\n%s", dir, err, out)
		}
	}
	script := filepath.Join(dir, "validate.js")
	if err := os.WriteFile(script, []byte(ajvScript), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(input string) []string {
		out, err := exec.Command(node, script, input).CombinedOutput()
		if err != nil {
			t.Fatalf("ajv: %v\n%s", err, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
}

// Answers sampled at temperature 1 on random weights under the grammar of
// each fixture (real zod 4 and pydantic 2 schemas with formats, number
// bounds, patterns and lengths) are valid for ajv with ajv-formats: only
// the grammar can make them so.
func TestSchemaFixturesValidateWithAjv(t *testing.T) {
	run := ajvRunner(t)
	files, err := filepath.Glob("../../models/testdata/schemas/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	// Llama 3's special tokens are all control tokens, which no string can
	// hold; the user-defined <think> and <tool_call> of the ChatML template
	// may be written inside a long free string and are then read as markup
	// (see the report of this test's commit).
	e, _ := startOnCtx(t, randomModel(t, synth.TemplateLlama3), 4, 0, 2048)
	const perSchema = 6
	type item struct {
		Schema string `json:"schema"`
		Answer string `json:"answer"`
	}
	items := make([]item, len(files)*perSchema)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range items {
		f := files[i/perSchema]
		abs, _ := filepath.Abs(f)
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(fmt.Sprintf("%s-%d", filepath.Base(f), i%perSchema), func(t *testing.T) {
				body := schemaBody(i%2 == 1, 100+i, string(raw))
				body["max_tokens"] = 1500
				a := ask(t, e.url, body)
				if a.Finish != "stop" || a.Content == nil {
					t.Fatalf("finish %q content %q", a.Finish, deref(a.Content))
				}
				items[i] = item{abs, *a.Content}
			})
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	input := filepath.Join(t.TempDir(), "answers.json")
	raw, _ := json.Marshal(items)
	if err := os.WriteFile(input, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	results := run(input)
	if len(results) != len(items) {
		t.Fatalf("ajv gave %d results for %d answers: %q", len(results), len(items), results)
	}
	valid := 0
	for i, r := range results {
		if r != "ok" {
			t.Errorf("%s: answer breaks the schema: %s\n%q", filepath.Base(items[i].Schema), r, items[i].Answer)
			continue
		}
		valid++
	}
	t.Logf("%d answers sampled under %d schemas, %d valid for ajv", len(items), len(files), valid)
}
