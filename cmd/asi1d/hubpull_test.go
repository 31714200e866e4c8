package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
	"github.com/asi1d/asi1d/internal/testutil/hubtest"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/models/synth"
)

// runAsi1d runs asi1d to its end with extra environment variables and
// returns its exit error and output.
func runAsi1d(t *testing.T, env []string, args ...string) (error, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asAsi1d+"=1"), env...)
	out, err := cmd.CombinedOutput()
	return err, string(out)
}

// TestPullFromHubAndServe pulls two models from a stand-in Hugging Face
// hub (HF_ENDPOINT, a gated repository read with HF_TOKEN) with the real
// asi1d, one of them split in two parts, then serves the catalog and
// chats with both: llama.cpp must find the second part by its name.
func TestPullFromHubAndServe(t *testing.T) {
	t.Parallel()
	hub := hubtest.New(t)
	hub.RequireToken("hf_e2e")
	stories, err := os.ReadFile(testmodel.Path(t, testmodel.Stories260K))
	if err != nil {
		t.Fatal(err)
	}
	hub.Add("acme/Stories-GGUF", "stories260K-F32.gguf", stories)
	hub.Add("acme/Stories-GGUF", "README.md", []byte("# stories\n"))
	tiny := filepath.Join(t.TempDir(), "tiny.gguf")
	writeSynthFile(t, tiny, synth.Options{Preset: "tiny", Type: "q8_0", Template: synth.TemplateChatMLThink, Seed: 4})
	whole, err := os.ReadFile(tiny)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := hubtest.SplitGGUF(whole, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		hub.Add("acme/Tiny-GGUF", fmt.Sprintf("Q8_0/Tiny-Q8_0-%05d-of-00002.gguf", i+1), p)
	}
	hub.Add("acme/Tiny-GGUF", "Tiny-F16.gguf", stories)

	dir := t.TempDir()
	env := []string{"HF_ENDPOINT=" + hub.URL, "HF_TOKEN=hf_e2e", "ASI1D_MODELS_DIR=" + dir}
	if err, out := runAsi1d(t, env[:1], "models", "pull", "--models-dir", dir, "hf.co/acme/Stories-GGUF:f32"); err == nil || !strings.Contains(out, "HF_TOKEN") {
		t.Fatalf("pull without HF_TOKEN: %v\n%s", err, out)
	}
	for _, ref := range []string{"hf.co/acme/Stories-GGUF:f32", "hf.co/acme/Tiny-GGUF:Q8_0"} {
		if err, out := runAsi1d(t, env, "models", "pull", ref); err != nil || !strings.Contains(out, "pulled ") {
			t.Fatalf("pull %s: %v\n%s", ref, err, out)
		}
	}
	for _, r := range hub.Requests() {
		if r.Server == "storage" && r.Authorization != "" {
			t.Fatalf("the token reached the storage host: %+v", r)
		}
	}
	if err, out := runAsi1d(t, env, "models", "ls"); err != nil || strings.Count(out, " ok") != 2 ||
		!strings.Contains(out, "Tiny-Q8_0") || strings.Contains(out, "00002-of") {
		t.Fatalf("ls: %v\n%s", err, out)
	}

	addr := fleettest.FreeAddr(t)
	base := "http://" + addr
	out := &syncBuffer{}
	p := startProc(t, out, "serve", "--models-dir", dir, "--addr", addr, "--ctx", "256", "--threads", "1")
	p.waitOK(t, base+"/health", 60*time.Second)
	// Tiny-Q8_0's first part holds half its tensors: its answer means
	// llama.cpp found the second part by its name.
	for _, model := range []string{"stories260K-F32", "Tiny-Q8_0"} {
		code, body := postChat(t.Context(), base, model)
		if code != 200 || !strings.Contains(body, `"choices"`) {
			t.Fatalf("chat with %s: %d %s\n%s", model, code, body, out)
		}
	}
	if err := p.stop(os.Interrupt, 30*time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
}

// readmeBlock returns the commands of the README's shell block that follows
// the heading.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatalf("no shell block under %q", heading)
	}
	var cmds []string
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// TestReadmeServeARealModel runs the README's "Serve a real model" commands
// word for word (the binary and the models folder swapped for the test's),
// with HF_ENDPOINT at a stand-in hub that holds the repository they name,
// then asks the model by the two names the README promises.
func TestReadmeServeARealModel(t *testing.T) {
	t.Parallel()
	cmds := readmeBlock(t, "## Serve a real model")
	if len(cmds) != 2 || !strings.HasPrefix(cmds[0], "./bin/asi1d models pull ") || !strings.HasPrefix(cmds[1], "./bin/asi1d serve ") {
		t.Fatalf("the README's two commands changed: %q", cmds)
	}
	dir := filepath.Join(t.TempDir(), "models") // not there yet, as on a new machine
	args := func(cmd string) []string {
		f := strings.Fields(strings.ReplaceAll(cmd, "~/models", dir))
		return f[1:] // without ./bin/asi1d
	}
	pull := args(cmds[0])
	ref := pull[len(pull)-1] // hf.co/OWNER/REPO:QUANT
	repo, quant, ok := strings.Cut(strings.TrimPrefix(ref, "hf.co/"), ":")
	if !ok {
		t.Fatalf("the README pulls %q, not hf.co/OWNER/REPO:QUANT", ref)
	}
	hub := hubtest.New(t)
	stories, err := os.ReadFile(testmodel.Path(t, testmodel.Stories260K))
	if err != nil {
		t.Fatal(err)
	}
	// The repository as bartowski lays such repositories out: one file per
	// quantisation, named after the model.
	name := strings.TrimSuffix(repo[strings.Index(repo, "/")+1:], "-GGUF")
	hub.Add(repo, name+"-"+quant+".gguf", stories)
	hub.Add(repo, name+"-Q8_0.gguf", stories)
	hub.Add(repo, "README.md", []byte("# "+name+"\n"))
	if err, out := runAsi1d(t, []string{"HF_ENDPOINT=" + hub.URL}, pull...); err != nil || !strings.Contains(out, "pulled ") {
		t.Fatalf("%s: %v\n%s", cmds[0], err, out)
	}
	addr := fleettest.FreeAddr(t)
	out := &syncBuffer{}
	p := startProc(t, out, append(args(cmds[1]), "--addr", addr, "--threads", "1")...)
	p.waitOK(t, "http://"+addr+"/health", 60*time.Second)
	// The id the README names (the file name) and asi1-mini.
	for _, model := range []string{name + "-" + quant, "asi1-mini"} {
		if code, body := postChat(t.Context(), "http://"+addr, model); code != 200 || !strings.Contains(body, `"choices"`) {
			t.Fatalf("chat with %s: %d %s\n%s", model, code, body, out)
		}
	}
	if !strings.Contains(string(mustRead(t, filepath.Join("..", "..", "README.md"))), "`"+name+"-"+quant+"`") {
		t.Errorf("the README does not name the model id %s", name+"-"+quant)
	}
	if err := p.stop(os.Interrupt, 30*time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
