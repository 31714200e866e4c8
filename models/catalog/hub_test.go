package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/internal/testutil/hubtest"
)

// hubFixture is a stand-in hub with a repository of two quantizations
// (one in a subfolder), a README kept in git and a vision projector.
type hubFixture struct {
	hub      *hubtest.Hub
	q8, q4   []byte
	readme   []byte
	endpoint string
}

func newHubFixture(t *testing.T) *hubFixture {
	f := &hubFixture{hub: hubtest.New(t), q8: synthBytes(t, tinyQ8), q4: synthBytes(t, narrowQ4), readme: []byte("# Tiny\n")}
	f.hub.Add("acme/Tiny-GGUF", "Tiny-Q8_0.gguf", f.q8)
	f.hub.Add("acme/Tiny-GGUF", "q4/Tiny-Q4_0.gguf", f.q4)
	f.hub.Add("acme/Tiny-GGUF", "mmproj-Tiny-F16.gguf", f.q4)
	f.hub.AddAt("acme/Tiny-GGUF", "main", "README.md", f.readme, false)
	f.endpoint = f.hub.URL
	return f
}

func (f *hubFixture) pull(t *testing.T, dir, ref string, o PullOptions) (*Entry, error) {
	t.Helper()
	o.HubEndpoint = f.endpoint
	return Pull(context.Background(), dir, ref, o)
}

// requests lists f's requests as "server METHOD path", with the range.
func (f *hubFixture) storageRanges() []string {
	var out []string
	for _, r := range f.hub.Requests() {
		if r.Server == "storage" {
			out = append(out, r.Range)
		}
	}
	return out
}

func TestHubPullByQuant(t *testing.T) {
	f := newHubFixture(t)
	f.hub.PageSize(2) // the listing comes in pages
	dir := t.TempDir()
	var progress bytes.Buffer
	e, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:q4_0", PullOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "Tiny-Q4_0" || e.SHA256 != shaOf(f.q4) || e.Err != nil || e.Facts.FileType != "Q4_0" {
		t.Fatalf("entry %+v", e)
	}
	assertClean(t, dir, ManifestFile, "Tiny-Q4_0.gguf")
	if shaOfFile(t, e.Path) != shaOf(f.q4) {
		t.Fatal("wrong file")
	}
	if !strings.Contains(progress.String(), "pull Tiny-Q4_0: done") {
		t.Errorf("progress:\n%s", progress.String())
	}
	var trees, resolves, blobs int
	for _, r := range f.hub.Requests() {
		switch {
		case r.Server == "hub" && strings.HasPrefix(r.Path, "/api/models/acme/Tiny-GGUF/tree/main"):
			trees++
			if !strings.Contains(r.Query, "recursive=true") {
				t.Errorf("tree listing without recursive=true: %q", r.Query)
			}
		case r.Server == "hub" && r.Path == "/acme/Tiny-GGUF/resolve/main/q4/Tiny-Q4_0.gguf":
			resolves++
		case r.Server == "storage":
			blobs++
		default:
			t.Errorf("unexpected request %+v", r)
		}
	}
	if trees < 3 || resolves != 1 || blobs != 1 {
		t.Fatalf("%d tree pages (want every page of 2 entries), %d resolves, %d storage requests", trees, resolves, blobs)
	}

	// Again: the model is there, nothing is downloaded.
	if _, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q4_0", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := len(f.storageRanges()); got != 1 {
		t.Fatalf("a second pull downloaded again (%d storage requests)", got)
	}
}

func TestHubPullByFile(t *testing.T) {
	f := newHubFixture(t)
	f.hub.AddAt("acme/Tiny-GGUF", "v2", "Tiny-Q8_0.gguf", f.q4, true) // another revision, other content
	for _, tc := range []struct{ ref, id, sha string }{
		{"hf.co/acme/Tiny-GGUF/Tiny-Q8_0.gguf", "Tiny-Q8_0", shaOf(f.q8)},
		{"huggingface.co/acme/Tiny-GGUF/q4/Tiny-Q4_0.gguf", "Tiny-Q4_0", shaOf(f.q4)},
		{"https://huggingface.co/acme/Tiny-GGUF/resolve/main/Tiny-Q8_0.gguf?download=true", "Tiny-Q8_0", shaOf(f.q8)},
		{"https://huggingface.co/acme/Tiny-GGUF/blob/main/q4/Tiny-Q4_0.gguf", "Tiny-Q4_0", shaOf(f.q4)},
		{f.endpoint + "/acme/Tiny-GGUF/resolve/main/Tiny-Q8_0.gguf", "Tiny-Q8_0", shaOf(f.q8)},
		{"hf.co/acme/Tiny-GGUF@v2/Tiny-Q8_0.gguf", "Tiny-Q8_0", shaOf(f.q4)},
		{"hf.co/acme/Tiny-GGUF@v2:Q8_0", "Tiny-Q8_0", shaOf(f.q4)},
	} {
		dir := t.TempDir()
		e, err := f.pull(t, dir, tc.ref, PullOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if e.ID != tc.id || e.SHA256 != tc.sha || shaOfFile(t, e.Path) != tc.sha {
			t.Fatalf("%s: entry %s sha %s, want %s %s", tc.ref, e.ID, e.SHA256, tc.id, tc.sha)
		}
		assertClean(t, dir, ManifestFile, tc.id+".gguf")
	}
	// --name and --sha256 (which must be the hub's).
	dir := t.TempDir()
	e, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{Name: "mine", SHA256: strings.ToUpper(shaOf(f.q8))})
	if err != nil || e.ID != "mine" {
		t.Fatalf("--name: %v %v", e, err)
	}
	_, err = f.pull(t, t.TempDir(), "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{SHA256: shaOf(f.q4)})
	if err == nil || !strings.Contains(err.Error(), "--sha256") {
		t.Fatalf("--sha256 that is not the hub's: %v", err)
	}
}

func TestHubPullCorrupt(t *testing.T) {
	f := newHubFixture(t)
	f.hub.Corrupt(f.q8)
	dir := t.TempDir()
	_, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{})
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Want != shaOf(f.q8) {
		t.Fatalf("corrupt download: %v, want a ChecksumError", err)
	}
	assertClean(t, dir)
	if c, _ := Scan(dir); len(c.Entries) != 0 {
		t.Fatalf("catalog after a refused pull: %v", ids(c))
	}
}

func TestHubPullLinkedETagDisagrees(t *testing.T) {
	f := newHubFixture(t)
	f.hub.LinkedETag(f.q8, shaOf(f.q4))
	dir := t.TempDir()
	_, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "contradicts") {
		t.Fatalf("X-Linked-Etag against the listing: %v", err)
	}
	assertClean(t, dir)
}

func TestHubPullNotFound(t *testing.T) {
	f := newHubFixture(t)
	dir := t.TempDir()
	for _, tc := range []struct{ ref, want string }{
		{"hf.co/acme/Tiny-GGUF/Nope-Q8_0.gguf", "not found (HTTP 404)"},
		{"hf.co/acme/Tiny-GGUF@nope:Q8_0", "not found (HTTP 404)"},
		{"hf.co/acme/Missing-GGUF:Q8_0", "(HTTP 401)"}, // the hub says 401 to a stranger
	} {
		_, err := f.pull(t, dir, tc.ref, PullOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.ref, err, tc.want)
		}
		if strings.Contains(fmt.Sprint(err), "no checksum") {
			t.Errorf("%s: %v speaks of a checksum", tc.ref, err)
		}
	}
	_, err := f.pull(t, dir, "hf.co/acme/Missing-GGUF:Q8_0", PullOptions{HubToken: "hf_x"})
	if err == nil || !strings.Contains(err.Error(), "not found (HTTP 404)") {
		t.Errorf("missing repository with a token: %v", err)
	}
	assertClean(t, dir)
}

func TestHubPullToken(t *testing.T) {
	f := newHubFixture(t)
	f.hub.RequireToken("hf_secret")
	dir := t.TempDir()
	_, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "(HTTP 401)") || !strings.Contains(err.Error(), "set HF_TOKEN") {
		t.Fatalf("gated without a token: %v", err)
	}
	_, err = f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{HubToken: "hf_other"})
	if err == nil || !strings.Contains(err.Error(), "(HTTP 403)") || !strings.Contains(err.Error(), "licence") {
		t.Fatalf("gated with another token: %v", err)
	}
	assertClean(t, dir)
	e, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{HubToken: "hf_secret"})
	if err != nil {
		t.Fatal(err)
	}
	if e.SHA256 != shaOf(f.q8) {
		t.Fatal("wrong file")
	}
	var storage int
	for _, r := range f.hub.Requests() {
		if r.Server == "storage" {
			storage++
			if r.Authorization != "" {
				t.Errorf("the token went to the storage host: %+v", r)
			}
		} else if r.Authorization != "" && r.Authorization != "Bearer hf_other" && r.Authorization != "Bearer hf_secret" {
			t.Errorf("hub request with %q", r.Authorization)
		}
	}
	if storage != 1 {
		t.Fatalf("%d storage requests", storage)
	}
}

func TestHubPullResume(t *testing.T) {
	f := newHubFixture(t)
	const cut = 100_000
	f.hub.CutNext(f.q8, cut)
	dir := t.TempDir()
	_, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "pull again to resume") {
		t.Fatalf("first try: %v, want an interruption", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "Tiny-Q8_0.gguf.partial")); err != nil || fi.Size() != cut {
		t.Fatalf("partial after the cut: %v, %v; want %d bytes", fi, err, cut)
	}
	e, err := f.pull(t, dir, "hf.co/acme/Tiny-GGUF:Q8_0", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"", fmt.Sprintf("bytes=%d-", cut)}; !reflect.DeepEqual(f.storageRanges(), want) {
		t.Fatalf("storage requests with ranges %q, want %q", f.storageRanges(), want)
	}
	if e.SHA256 != shaOf(f.q8) || shaOfFile(t, e.Path) != shaOf(f.q8) {
		t.Fatal("resumed file differs")
	}
	assertClean(t, dir, ManifestFile, "Tiny-Q8_0.gguf")
}

func TestHubPullSplit(t *testing.T) {
	f := newHubFixture(t)
	whole := synthBytes(t, tinyQ8)
	parts, err := hubtest.SplitGGUF(whole, 3)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for i, p := range parts {
		f.hub.Add("acme/Big-GGUF", fmt.Sprintf("Q8_0/Big-Q8_0-%05d-of-00003.gguf", i+1), p)
		total += int64(len(p))
	}
	f.hub.Add("acme/Big-GGUF", "Big-Q4_0.gguf", f.q4)
	dir := t.TempDir()

	// A corrupt part: nothing of the model is left.
	f.hub.Corrupt(parts[1])
	if _, err := f.pull(t, dir, "hf.co/acme/Big-GGUF:Q8_0", PullOptions{}); !errors.As(err, new(*ChecksumError)) {
		t.Fatalf("corrupt part: %v", err)
	}
	assertClean(t, dir)

	f.hub.Heal(parts[1])
	// Naming a later part pulls the whole model.
	e, err := f.pull(t, dir, "hf.co/acme/Big-GGUF/Q8_0/Big-Q8_0-00002-of-00003.gguf", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "Big-Q8_0" || filepath.Base(e.Path) != "Big-Q8_0-00001-of-00003.gguf" || e.Size != total || e.Err != nil || e.SHA256 != shaOf(parts[0]) {
		t.Fatalf("entry %+v (size want %d)", e, total)
	}
	if e.Facts.Arch == "" || e.Facts.Layers == 0 {
		t.Fatalf("facts from the first part: %+v", e.Facts)
	}
	assertClean(t, dir, ManifestFile, "Big-Q8_0-00001-of-00003.gguf", "Big-Q8_0-00002-of-00003.gguf", "Big-Q8_0-00003-of-00003.gguf")
	for i, p := range parts {
		if got := shaOfFile(t, filepath.Join(dir, fmt.Sprintf("Big-Q8_0-%05d-of-00003.gguf", i+1))); got != shaOf(p) {
			t.Fatalf("part %d differs", i+1)
		}
	}
	c, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(c); !reflect.DeepEqual(got, []string{"Big-Q8_0"}) {
		t.Fatalf("catalog %v: the parts must be one model", got)
	}
	if err := Remove(dir, "Big-Q8_0"); err != nil {
		t.Fatal(err)
	}
	assertClean(t, dir, ManifestFile)
}

func TestHubPullSplitIncomplete(t *testing.T) {
	h := hubtest.New(t)
	parts, err := hubtest.SplitGGUF(synthBytes(t, tinyQ8), 3)
	if err != nil {
		t.Fatal(err)
	}
	h.Add("acme/Big-GGUF", "Big-Q8_0-00001-of-00003.gguf", parts[0])
	h.Add("acme/Big-GGUF", "Big-Q8_0-00003-of-00003.gguf", parts[2])
	dir := t.TempDir()
	_, err = Pull(context.Background(), dir, "hf.co/acme/Big-GGUF:Q8_0", PullOptions{HubEndpoint: h.URL})
	if err == nil || !strings.Contains(err.Error(), "Big-Q8_0-00002-of-00003.gguf") {
		t.Fatalf("missing part: %v", err)
	}
	assertClean(t, dir)
}

func TestHubPullQuantChoice(t *testing.T) {
	h := hubtest.New(t)
	q8 := synthBytes(t, tinyQ8)
	h.Add("acme/Mix-GGUF", "Mix-7B-Q4_K_M.gguf", q8)
	h.Add("acme/Mix-GGUF", "Mix-7B-Instruct-Q4_K_M.gguf", q8)
	h.Add("acme/Mix-GGUF", "Mix-7B-UD-Q6_K_XL.gguf", q8)
	h.Add("acme/Mix-GGUF", "mmproj-F16.gguf", q8)
	dir := t.TempDir()
	pull := func(ref string) error {
		_, err := Pull(context.Background(), dir, ref, PullOptions{HubEndpoint: h.URL})
		return err
	}
	err := pull("hf.co/acme/Mix-GGUF:Q4_K_M")
	if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), "Mix-7B-Q4_K_M.gguf") ||
		!strings.Contains(err.Error(), "Mix-7B-Instruct-Q4_K_M.gguf") {
		t.Fatalf("ambiguous quant: %v", err)
	}
	for _, ref := range []string{"hf.co/acme/Mix-GGUF:Q5_K_M", "hf.co/acme/Mix-GGUF", "hf.co/acme/Mix-GGUF:F16"} {
		err = pull(ref)
		if err == nil || !strings.Contains(err.Error(), "available are Q4_K_M, UD-Q6_K_XL") {
			t.Fatalf("%s: %v, want the quants listed (and no projector)", ref, err)
		}
	}
	assertClean(t, dir)
	if err := pull("hf.co/acme/Mix-GGUF:ud-q6_k_xl"); err != nil {
		t.Fatal(err)
	}
	if err := pull("hf.co/acme/Mix-GGUF/Mix-7B-Instruct-Q4_K_M.gguf"); err != nil {
		t.Fatal(err)
	}
	c, _ := Scan(dir)
	if got := ids(c); !reflect.DeepEqual(got, []string{"Mix-7B-Instruct-Q4_K_M", "Mix-7B-UD-Q6_K_XL"}) {
		t.Fatalf("catalog %v", got)
	}
}

func TestHubPullGitFile(t *testing.T) {
	// A small model kept in git, not LFS: the hub answers it itself, and
	// its git blob id is its checksum.
	h := hubtest.New(t)
	data := synthBytes(t, narrowQ4)
	h.AddAt("acme/Small", "main", "small.gguf", data, false)
	dir := t.TempDir()
	e, err := Pull(context.Background(), dir, "hf.co/acme/Small", PullOptions{HubEndpoint: h.URL})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "small" || e.SHA256 != shaOf(data) {
		t.Fatalf("entry %+v", e)
	}
	for _, r := range h.Requests() {
		if r.Server == "storage" {
			t.Fatalf("a git file went through the storage host: %+v", r)
		}
	}
}

func TestParseHubRef(t *testing.T) {
	for _, tc := range []struct {
		ref                           string
		owner, repo, rev, file, quant string
	}{
		{"hf.co/a/b", "a", "b", "main", "", ""},
		{"hf.co/a/b:Q4_K_M", "a", "b", "main", "", "Q4_K_M"},
		{"HF.CO/a/b@dev:q8_0", "a", "b", "dev", "", "q8_0"},
		{"hf.co/a/b:q8_0@dev", "a", "b", "dev", "", "q8_0"},
		{"hf.co/a/b/x/y.gguf", "a", "b", "main", "x/y.gguf", ""},
		{"hf.co/a/b@v1.0/y.gguf", "a", "b", "v1.0", "y.gguf", ""},
		{"huggingface.co/a/b.c-d_e", "a", "b.c-d_e", "main", "", ""},
		{"https://huggingface.co/a/b/resolve/main/y.gguf?download=true", "a", "b", "main", "y.gguf", ""},
		{"https://huggingface.co/a/b/blob/refs%2Fpr%2F1/d/y.gguf", "a", "b", "refs/pr/1", "d/y.gguf", ""},
		{"https://hf.co/a/b/tree/dev", "a", "b", "dev", "", ""},
		{"http://mirror.local:8080/hf/a/b/resolve/abc123/y.gguf", "a", "b", "abc123", "y.gguf", ""},
	} {
		r, err := parseHubRef(tc.ref, "http://mirror.local:8080/hf/")
		if err != nil || r == nil {
			t.Errorf("%s: %v %v", tc.ref, r, err)
			continue
		}
		if r.owner != tc.owner || r.repo != tc.repo || r.rev != tc.rev || r.file != tc.file || r.quant != tc.quant {
			t.Errorf("%s: %+v", tc.ref, r)
		}
		if r.endpoint != "http://mirror.local:8080/hf" {
			t.Errorf("%s: endpoint %q", tc.ref, r.endpoint)
		}
	}
	r, _ := parseHubRef("hf.co/a/b@refs%2Fpr%2F1/y.gguf", "")
	if r == nil || r.resolveURL(r.file) != "https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/y.gguf" || r.treeURL() != "https://huggingface.co/api/models/a/b/tree/refs%2Fpr%2F1?recursive=true" {
		t.Errorf("escaped revision: %+v", r)
	}
	for _, notHub := range []string{"https://example.com/m.gguf", "http://hf.com/a/b", "/tmp/m.gguf"} {
		if r, err := parseHubRef(notHub, ""); r != nil || err != nil {
			t.Errorf("%s: %+v %v, want not a hub name", notHub, r, err)
		}
	}
	for _, bad := range []string{"hf.co/a", "hf.co/a/b/README.md", "hf.co/a/b:", "hf.co/a/b/x.gguf:Q4", "hf.co/datasets/a/b",
		"hf.co/a/b/resolve/main", "hf.co/a/../x.gguf", "hf.co/a/b@/x.gguf"} {
		if r, err := parseHubRef(bad, ""); err == nil {
			t.Errorf("%s: %+v, want an error", bad, r)
		}
	}
	if _, err := parseHubRef("hf.co/a/b", "ftp://x"); err == nil || !strings.Contains(err.Error(), "HF_ENDPOINT") {
		t.Errorf("bad endpoint: %v", err)
	}
}

func TestQuantOf(t *testing.T) {
	for stem, want := range map[string]string{
		"Llama-3.2-1B-Instruct-Q4_K_M": "Q4_K_M", "llama-2-7b.Q5_K_S": "Q5_K_S", "Qwen3-8B-UD-Q4_K_XL": "UD-Q4_K_XL",
		"m-IQ2_XXS": "IQ2_XXS", "gemma-bf16": "BF16", "phi_q8_0": "Q8_0", "model": "model", "gpt-oss-20b-MXFP4": "MXFP4",
	} {
		if got := quantOf(stem); got != want {
			t.Errorf("%s: %s, want %s", stem, got, want)
		}
	}
}

func TestScanSplit(t *testing.T) {
	parts, err := hubtest.SplitGGUF(synthBytes(t, tinyQ8), 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "m-00001-of-00002.gguf"), parts[0])
	writeFile(t, filepath.Join(dir, "m-00002-of-00002.gguf"), parts[1])
	writeFile(t, filepath.Join(dir, "half-00001-of-00002.gguf"), parts[0]) // its second part is missing
	c, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(c); !reflect.DeepEqual(got, []string{"half", "m"}) {
		t.Fatalf("catalog %v", got)
	}
	m, _ := c.Lookup("m")
	if m.Err != nil || m.Size != int64(len(parts[0])+len(parts[1])) || m.Facts.Arch == "" {
		t.Fatalf("split model %+v", m)
	}
	half, _ := c.Lookup("half")
	if half.Err == nil || !strings.Contains(half.Err.Error(), "part 2 of 2") {
		t.Fatalf("incomplete split: %v", half.Err)
	}
}
