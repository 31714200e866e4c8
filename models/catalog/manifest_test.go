package catalog

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := &Manifest{Models: map[string]*ModelConfig{
		"b-model": {File: "sub/b.gguf", SHA256: storiesSHA, Aliases: []string{"asi1-mini", "mini"}, Ctx: 4096, Parallel: 4,
			GPULayers: ptr(0), ChatTemplate: "{{ messages }}", Preload: true,
			Sampling: &Sampling{Temperature: ptr(0.7), TopP: ptr(0.9), TopK: ptr(40), MinP: ptr(0.05), RepeatPenalty: ptr(1.1)}},
		"a-model": {},
	}}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, m)
	}
	first, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err := WriteManifest(dir, got); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	if !bytes.Equal(first, second) {
		t.Fatalf("writing the same manifest twice differs:\n%s\n%s", first, second)
	}
	if a, b := bytes.Index(first, []byte(`"a-model"`)), bytes.Index(first, []byte(`"b-model"`)); a < 0 || b < a {
		t.Fatalf("models not in id order:\n%s", first)
	}
	if !bytes.Contains(first, []byte("\n    \"a-model\"")) {
		t.Fatalf("manifest not indented:\n%s", first)
	}
	if files := listDir(t, dir); !reflect.DeepEqual(files, []string{ManifestFile}) {
		t.Fatalf("files left in dir: %v", files)
	}
}

func TestManifestMissingIsEmpty(t *testing.T) {
	m, err := ReadManifest(t.TempDir())
	if err != nil || m == nil || len(m.Models) != 0 {
		t.Fatalf("ReadManifest of an empty dir = %+v, %v; want an empty manifest", m, err)
	}
}

func TestManifestStrict(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown field", "{\n  \"models\": {\n    \"a\": {\n      \"ctxx\": 4096\n    }\n  }\n}\n", `line 4: json: unknown field "ctxx"`},
		{"unknown top-level", "{\"modles\": {}}", `line 1: json: unknown field "modles"`},
		{"syntax", "{\n  \"models\": {\n    \"a\": {,}\n  }\n}\n", "line 3: invalid character ','"},
		{"wrong type", "{\"models\": {\n\"a\": {\"ctx\": \"big\"}}}", "line 2: json: cannot unmarshal string"},
		{"truncated", "{\"models\": {\"a\": {", "unexpected end of file"},
		{"trailing", "{\"models\": {}}\n{}", "line 2: unexpected data after the top-level object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, ManifestFile), []byte(tc.text))
			_, err := ReadManifest(dir)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, ManifestFile)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want the file name and %q", err, tc.want)
			}
		})
	}
}

func TestModelConfigValidate(t *testing.T) {
	bad := map[string]ModelConfig{
		"sha":         {SHA256: "abc"},
		"alias":       {Aliases: []string{"has space"}},
		"alias slash": {Aliases: []string{"a/b"}},
		"ctx":         {Ctx: -1},
		"parallel":    {Ctx: 2, Parallel: 4},
		"gpu":         {GPULayers: ptr(-2)},
		"temperature": {Sampling: &Sampling{Temperature: ptr(2.5)}},
		"top_p":       {Sampling: &Sampling{TopP: ptr(1.5)}},
		"top_k":       {Sampling: &Sampling{TopK: ptr(-1)}},
		"penalty":     {Sampling: &Sampling{RepeatPenalty: ptr(0.0)}},
	}
	for name, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v validates", name, c)
		}
	}
	good := ModelConfig{SHA256: strings.ToUpper(storiesSHA), Aliases: []string{"asi1-mini", "llama3:8b"}, Ctx: 8, Parallel: 2,
		Sampling: &Sampling{Temperature: ptr(0.0), TopP: ptr(1.0), TopK: ptr(0)}}
	if err := good.Validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
}
