package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

func noenv(string) string { return "" }

// asAsi1d set to 1 in its environment makes this test binary run as asi1d
// (main, with its signal handling) instead of the tests: the chat and fleet
// tests start it as a real process that way, with no second build.
const asAsi1d = "ASI1D_TEST_AS_ASI1D"

func TestMain(m *testing.M) {
	if os.Getenv(asAsi1d) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// Bad model input at startup: a one-line error and a non-zero exit code.
func TestBadModelExits(t *testing.T) {
	dir := t.TempDir()
	random := filepath.Join(dir, "random.gguf")
	os.WriteFile(random, bytes.Repeat([]byte{0x5a, 0x17, 0x99}, 1000), 0o644)
	src, err := os.ReadFile(testmodel.Path(t, testmodel.Stories260K))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.gguf")
	os.WriteFile(truncated, src[:len(src)*2/3], 0o644)
	cases := map[string]struct{ path, want string }{
		"missing":   {filepath.Join(dir, "nope.gguf"), "no such file"},
		"directory": {dir, "is a directory"},
		"random":    {random, "not a GGUF file"},
		"truncated": {truncated, "the file is truncated"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code := run(ctx, []string{"serve", "--model", c.path, "--addr", "127.0.0.1:0", "--log-level", "error"}, &out, &errb, noenv)
			if code == 0 {
				t.Fatal("exit code 0")
			}
			lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "asi1d: ") || !strings.Contains(lines[0], c.want) {
				t.Fatalf("stderr should be one error line containing %q, got:\n%s", c.want, errb.String())
			}
		})
	}
}

func TestConfigFromEnvAndFlags(t *testing.T) {
	env := map[string]string{"ASI1D_PARALLEL": "3", "ASI1D_API_KEY": "k1, k2", "ASI1D_MODEL_NAME": "from-env", "ASI1D_STEP_TOKENS": "16"}
	c, err := parseServe([]string{"--model-name", "from-flag", "--api-key", "k3"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Parallel != 3 || c.ModelName != "from-flag" || c.StepTokens != 16 || strings.Join(c.APIKeys, ",") != "k3" {
		t.Fatalf("config %+v", c)
	}
	c, _ = parseServe(nil, func(k string) string { return env[k] })
	if strings.Join(c.APIKeys, ",") != "k1,k2" {
		t.Fatalf("keys from env: %v", c.APIKeys)
	}
	if _, err := parseServe(nil, func(k string) string { return map[string]string{"ASI1D_PARALLEL": "x"}[k] }); err == nil {
		t.Fatal("a bad ASI1D_PARALLEL was accepted")
	}
	if _, err := parseServe([]string{"--parallel", "-1"}, noenv); err == nil {
		t.Fatal("--parallel -1 was accepted")
	}
	// 0 (the default) sizes the context and the sequences from the model.
	if c, err := parseServe(nil, noenv); err != nil || c.Ctx != 0 || c.Parallel != 0 || !c.KVUnified || c.DefaultAlias != "asi1-mini" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	for _, bad := range [][]string{{"--models-dir", "d", "--model-name", "x"}, {"--default-model", "x"}, {"--ctx", "8"}} {
		if _, err := parseServe(bad, noenv); err == nil {
			t.Fatalf("%v was accepted", bad)
		}
	}
	kf := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(kf, []byte("# comment\nfile-key\n\n"), 0o600)
	c, err = parseServe([]string{"--api-key-file", kf}, noenv)
	if err != nil || strings.Join(c.APIKeys, ",") != "file-key" {
		t.Fatalf("key file: %v %v", c, err)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb, noenv); code != 2 {
		t.Fatalf("exit %d", code)
	}
}
