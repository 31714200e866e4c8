// Package testmodel finds the model files that tests run on.
package testmodel

import (
	"os"
	"path/filepath"
	"testing"
)

// Stories260K is the file name of the tiny reference model. It ships in the
// repository (models/stories260K/) and in shared/models.
const Stories260K = "stories260K.gguf"

// bundled is where the repository keeps the models it ships, relative to the
// module root.
var bundled = map[string]string{Stories260K: "models/stories260K/" + Stories260K}

// ReferenceTokens is "Once upon a time" tokenized with BOS by stories260K.
var ReferenceTokens = []int32{1, 403, 407, 261, 378}

// ReferencePrompt is the prompt of the reference continuation.
const ReferencePrompt = "Once upon a time"

// ReferenceText is llama.cpp's greedy 64-token continuation of
// ReferencePrompt on stories260K (shared/models/README.md).
const ReferenceText = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said"

// Path returns the path of a model: in $ASI1D_TEST_MODELS when set, else the
// copy the repository ships (stories260K), else the shared/models folder
// beside the repository (../shared/models from the repository root). The test
// fails when it is missing: CI provides shared/models.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, ok := Find(name)
	if !ok {
		t.Fatalf("model %s not found: set ASI1D_TEST_MODELS or provide ../shared/models beside the repository", name)
	}
	return p
}

// Find looks for a model like Path and reports whether it exists.
func Find(name string) (string, bool) {
	if dir := os.Getenv("ASI1D_TEST_MODELS"); dir != "" {
		p := filepath.Join(dir, name)
		_, err := os.Stat(p)
		return p, err == nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			// The module root: the bundled copy, else shared/ beside it.
			if rel, ok := bundled[name]; ok {
				p := filepath.Join(d, filepath.FromSlash(rel))
				if _, err := os.Stat(p); err == nil {
					return p, true
				}
			}
			p := filepath.Join(d, "..", "shared", "models", name)
			_, err := os.Stat(p)
			return filepath.Clean(p), err == nil
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}
