package testutil

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/asi1d/asi1d"

// layers is the house, bottom up (docs/ARCHITECTURE.md draws it). A
// package's non-test code may import packages of its own layer or of a
// layer below it, never above: the serving parts never import tools or
// test helpers, and nothing imports a command. A pattern ending in /...
// matches the folder and everything under it; a new package must be
// placed here before its first import is checked.
var layers = []struct {
	name string
	pkgs []string
}{
	{"leaves", []string{"sampler", "tokenizer", "server/api", "engine/threads", "engine/llamacpp/ggmlamx", "engine/llamacpp/ggmlfa", "models/synth", "models/gguf"}},
	{"models", []string{"models"}},
	{"engine port", []string{"engine"}},
	{"engine parts", []string{"engine/llamacpp", "engine/sessions", "engine/scheduler", "engine/enginetest"}},
	{"serving parts", []string{"models/catalog", "server/ratelimit"}},
	{"server", []string{"server"}},
	{"serving stack", []string{"server/stack"}},
	{"tools", []string{"internal/bench/...", "internal/chatclient"}},
	{"test helpers", []string{"internal/testutil/...", "internal/e2e/..."}},
	{"commands", []string{"cmd/...", "deploy", "scripts"}},
}

// layerOf is the index in layers of the package rel (a path inside the
// module), or -1.
func layerOf(rel string) int {
	for i, l := range layers {
		for _, p := range l.pkgs {
			if rel == p || (strings.HasSuffix(p, "/...") && (rel == strings.TrimSuffix(p, "/...") || strings.HasPrefix(rel, strings.TrimSuffix(p, "...")))) {
				return i
			}
		}
	}
	return -1
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// modulePackages is `go list -json ./...` from the module root, with cgo
// on so that cgo files' imports count too.
func modulePackages(t *testing.T) []listedPackage {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportLayers checks the import rules of docs/ARCHITECTURE.md: every
// package has a layer, and no non-test import runs upwards.
func TestImportLayers(t *testing.T) {
	pkgs := modulePackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: is this the module root?", len(pkgs))
	}
	var graph []string
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		from := layerOf(rel)
		if from < 0 {
			t.Errorf("%s has no layer: place it in layers (and docs/ARCHITECTURE.md)", rel)
			continue
		}
		var deps []string
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			deps = append(deps, dep)
			to := layerOf(dep)
			switch {
			case to < 0:
				t.Errorf("%s imports %s, which has no layer", rel, dep)
			case to > from:
				t.Errorf("%s (%s) imports %s (%s): an import upwards", rel, layers[from].name, dep, layers[to].name)
			}
		}
		sort.Strings(deps)
		graph = append(graph, rel+" -> "+strings.Join(deps, " "))
	}
	sort.Strings(graph)
	t.Logf("package graph (non-test imports):\n%s", strings.Join(graph, "\n"))
}

// TestInternalHoldsToolsAndTestHelpers: internal/ is for the tools
// (bench, the chat client) and the test code, nothing that serves.
func TestInternalHoldsToolsAndTestHelpers(t *testing.T) {
	entries, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"bench": true, "chatclient": true, "testutil": true, "e2e": true}
	for _, e := range entries {
		if e.IsDir() && !allowed[e.Name()] {
			t.Errorf("internal/%s: internal holds only tools (bench, chatclient) and test code (testutil, e2e); serving parts live under what they serve", e.Name())
		}
	}
}

func TestLayerOf(t *testing.T) {
	for rel, want := range map[string]string{
		"server": "server", "server/stack": "serving stack", "server/api": "leaves",
		"internal/bench/loadgen": "tools", "internal/testutil": "test helpers",
		"cmd/asi1d/cliflag": "commands", "models/catalog": "serving parts",
	} {
		if i := layerOf(rel); i < 0 || layers[i].name != want {
			t.Errorf("layerOf(%q) = %d, want %s", rel, i, want)
		}
	}
	if i := layerOf("serverx"); i >= 0 {
		t.Errorf("layerOf(serverx) = %s, want none", layers[i].name)
	}

}
