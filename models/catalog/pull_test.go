package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil/hubtest"
)

// mirror is a site's HTTP mirror serving one model file, with faults on
// demand.
type mirror struct {
	mu        sync.Mutex
	data      []byte
	etag      string
	sha       string // body of /m.gguf.sha256; "" answers 404
	cutFirst  int    // first request: cut the body after this many bytes (0: no cut)
	noRange   bool   // ignore Range: always 200 with the whole file
	requests  []string
	ranges    []string
	ifRanges  []string
	redirect  string // answer /m.gguf with a redirect here
	srv       *httptest.Server
	fileCalls int
}

func newMirror(t *testing.T, data []byte) *mirror {
	m := &mirror{data: data, etag: `"v1"`, sha: shaOf(data) + "  m.gguf\n"}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mirror) url() string { return m.srv.URL + "/m.gguf" }

func (m *mirror) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.requests = append(m.requests, r.URL.Path)
	data, etag, sha, redirect := m.data, m.etag, m.sha, m.redirect
	cut := 0
	if r.URL.Path == "/m.gguf" && r.Method == http.MethodGet {
		m.fileCalls++
		m.ranges = append(m.ranges, r.Header.Get("Range"))
		m.ifRanges = append(m.ifRanges, r.Header.Get("If-Range"))
		if m.fileCalls == 1 {
			cut = m.cutFirst
		}
	}
	noRange := m.noRange
	m.mu.Unlock()
	switch r.URL.Path {
	case "/m.gguf.sha256":
		if sha == "" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, sha)
	case "/m.gguf":
		if redirect != "" {
			http.Redirect(w, r, redirect, http.StatusFound)
			return
		}
		w.Header().Set("ETag", etag)
		var cw http.ResponseWriter = w
		if cut > 0 {
			cw = &hubtest.CutWriter{ResponseWriter: w, Left: cut}
		}
		if noRange {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			cw.Write(data)
			return
		}
		http.ServeContent(cw, r, "m.gguf", time.Time{}, bytes.NewReader(data))
	default:
		http.NotFound(w, r)
	}
}

func (m *mirror) fileRanges() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ranges...)
}

// assertClean checks that dir holds exactly files.
func assertClean(t *testing.T, dir string, files ...string) {
	t.Helper()
	got := listDir(t, dir)
	sort.Strings(files)
	if len(files) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, files) {
		t.Fatalf("dir holds %v, want %v", got, files)
	}
}

func TestPullFull(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	m := newMirror(t, data)
	dir := t.TempDir()
	var progress bytes.Buffer
	e, err := Pull(context.Background(), dir, m.url(), PullOptions{Name: "tiny", SHA256: shaOf(data), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "tiny" || e.SHA256 != shaOf(data) || e.Err != nil || e.Facts.FileType != "Q8_0" || e.Size != int64(len(data)) {
		t.Fatalf("entry %+v", e)
	}
	assertClean(t, dir, ManifestFile, "tiny.gguf")
	if man, _ := ReadManifest(dir); man.Models["tiny"].SHA256 != shaOf(data) {
		t.Fatal("sha256 not pinned in the manifest")
	}
	if !strings.Contains(progress.String(), "pull tiny: done") || !strings.Contains(progress.String(), "pull tiny: 50%") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if got := m.fileRanges(); !reflect.DeepEqual(got, []string{""}) {
		t.Errorf("file requests with ranges %q, want one plain GET", got)
	}
	// Pulling it again: the same file is already there, no download.
	if _, err := Pull(context.Background(), dir, m.url(), PullOptions{Name: "tiny"}); err != nil {
		t.Fatal(err)
	}
	if got := m.fileRanges(); len(got) != 1 {
		t.Errorf("a second pull of the same file downloaded it again: %q", got)
	}
}

func TestPullResume(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	m := newMirror(t, data)
	const cut = 100_000
	m.cutFirst = cut
	dir := t.TempDir()
	_, err := Pull(context.Background(), dir, m.url(), PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "pull again to resume") {
		t.Fatalf("first try: %v, want an interruption", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "m.gguf.partial"))
	if err != nil || fi.Size() != cut {
		t.Fatalf("partial after the cut: %v, %v; want %d bytes", fi, err, cut)
	}
	e, err := Pull(context.Background(), dir, m.url(), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", fmt.Sprintf("bytes=%d-", cut)}
	if got := m.fileRanges(); !reflect.DeepEqual(got, want) {
		t.Fatalf("file requests with ranges %q, want %q", got, want)
	}
	if m.ifRanges[1] != `"v1"` {
		t.Errorf("If-Range %q, want the ETag", m.ifRanges[1])
	}
	if e.SHA256 != shaOf(data) || shaOfFile(t, e.Path) != shaOf(data) {
		t.Fatal("resumed file differs")
	}
	assertClean(t, dir, ManifestFile, "m.gguf")
}

func TestPullResumeChangedFile(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	m := newMirror(t, data)
	m.cutFirst = 50_000
	dir := t.TempDir()
	if _, err := Pull(context.Background(), dir, m.url(), PullOptions{}); err == nil {
		t.Fatal("cut download succeeded")
	}
	// The mirror now has a new version of the file.
	newData := synthBytes(t, narrowQ4)
	m.mu.Lock()
	m.data, m.etag, m.sha = newData, `"v2"`, shaOf(newData)
	m.mu.Unlock()
	e, err := Pull(context.Background(), dir, m.url(), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.SHA256 != shaOf(newData) || shaOfFile(t, e.Path) != shaOf(newData) {
		t.Fatal("the new version was spliced onto the old one")
	}
}

func TestPullServerIgnoresRange(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	m := newMirror(t, data)
	m.cutFirst, m.noRange = 70_000, true
	dir := t.TempDir()
	if _, err := Pull(context.Background(), dir, m.url(), PullOptions{}); err == nil {
		t.Fatal("cut download succeeded")
	}
	e, err := Pull(context.Background(), dir, m.url(), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.fileRanges(); len(got) != 2 || got[1] != "bytes=70000-" {
		t.Fatalf("ranges %q: the resume did not ask for a range", got)
	}
	if shaOfFile(t, e.Path) != shaOf(data) {
		t.Fatal("a 200 answer to a range request was appended to the partial file")
	}
	assertClean(t, dir, ManifestFile, "m.gguf")
}

func TestPullChecksumFile(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	m := newMirror(t, data)
	m.sha = "# made by sha256sum\n" + strings.Repeat("1", 64) + "  other.gguf\n" + strings.ToUpper(shaOf(data)) + " *m.gguf\n"
	dir := t.TempDir()
	e, err := Pull(context.Background(), dir, m.url(), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.SHA256 != shaOf(data) {
		t.Fatalf("sha %s", e.SHA256)
	}
}

func TestPullMismatchLeavesNothing(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	wrong := strings.Repeat("ab", 32)
	for _, viaFile := range []bool{false, true} {
		m := newMirror(t, data)
		o := PullOptions{SHA256: wrong}
		if viaFile {
			m.sha, o.SHA256 = wrong+"\n", ""
		}
		dir := t.TempDir()
		_, err := Pull(context.Background(), dir, m.url(), o)
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Want != wrong || ce.Got != shaOf(data) {
			t.Fatalf("viaFile=%v: %v, want a ChecksumError", viaFile, err)
		}
		if !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), shaOf(data)) {
			t.Errorf("error %q does not say want and got", err)
		}
		assertClean(t, dir)
		if c, _ := Scan(dir); len(c.Entries) != 0 {
			t.Fatalf("catalog after a refused pull: %v", ids(c))
		}
	}
}

func TestPullNeedsChecksum(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	m := newMirror(t, data)
	m.sha = ""
	dir := t.TempDir()
	_, err := Pull(context.Background(), dir, m.url(), PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "no checksum") || !strings.Contains(err.Error(), "--sha256 HEX") ||
		!strings.Contains(err.Error(), "--no-checksum") {
		t.Fatalf("pull without a checksum: %v, want it to name --sha256 and --no-checksum", err)
	}
	assertClean(t, dir)
	if m.fileCalls != 0 {
		t.Fatal("the file was downloaded although no checksum could vouch for it")
	}
	e, err := Pull(context.Background(), dir, m.url(), PullOptions{NoChecksum: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.SHA256 != shaOf(data) {
		t.Fatal("an unchecked pull did not pin what it got")
	}
}

func TestPullNotAModel(t *testing.T) {
	junk := corruptBytes(10_000, 4)
	m := newMirror(t, junk)
	dir := t.TempDir()
	if _, err := Pull(context.Background(), dir, m.url(), PullOptions{}); err == nil {
		t.Fatal("a corrupt file was pulled")
	}
	assertClean(t, dir)
}

func TestPullRefusesOtherHost(t *testing.T) {
	data := synthBytes(t, tinyQ8)
	other := newMirror(t, data)
	m := newMirror(t, data)
	m.redirect = other.url()
	dir := t.TempDir()
	_, err := Pull(context.Background(), dir, m.url(), PullOptions{SHA256: shaOf(data)})
	if err == nil || !strings.Contains(err.Error(), "redirect to another host") {
		t.Fatalf("redirect: %v", err)
	}
	other.mu.Lock()
	n := len(other.requests)
	other.mu.Unlock()
	if n != 0 {
		t.Fatalf("the other host got %d requests", n)
	}
	assertClean(t, dir)

	// A redirect on the same host is followed.
	m.redirect = "/moved.gguf"
	m.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved.gguf" {
			w.Write(data)
			return
		}
		m.serve(w, r)
	})
	if _, err := Pull(context.Background(), dir, m.url(), PullOptions{SHA256: shaOf(data)}); err != nil {
		t.Fatalf("same-host redirect: %v", err)
	}
}

func TestPullUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	for _, sha := range []string{"", storiesSHA} {
		_, err := Pull(context.Background(), dir, "http://"+addr+"/m.gguf", PullOptions{SHA256: sha})
		if err == nil || !strings.Contains(err.Error(), "cannot reach "+addr) {
			t.Fatalf("sha %q: %v, want it to name %s", sha, err, addr)
		}
	}
	assertClean(t, dir)
}

func TestPullBadURL(t *testing.T) {
	for _, u := range []string{"ftp://host/m.gguf", "file:///etc/passwd", "http:///m.gguf", "http://host/"} {
		if _, err := Pull(context.Background(), t.TempDir(), u, PullOptions{NoChecksum: true}); err == nil {
			t.Errorf("%s: no error", u)
		}
	}
}

func TestPullCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := newMirror(t, synthBytes(t, tinyQ8))
	if _, err := Pull(ctx, t.TempDir(), m.url(), PullOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
}

func TestParseChecksum(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, tc := range []struct{ text, want string }{
		{a, a},
		{a + "\n", a},
		{b + "  x.gguf\n" + a + "  m.gguf\n", a},
		{b + "  x.gguf\n", b},
		{strings.ToUpper(a) + " *dir/m.gguf", a},
	} {
		if got, err := parseChecksum(tc.text, "m.gguf"); err != nil || got != tc.want {
			t.Errorf("%q: %q, %v", tc.text, got, err)
		}
	}
	for _, bad := range []string{"", "<html>not found</html>", "abc  m.gguf"} {
		if _, err := parseChecksum(bad, "m.gguf"); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPullNotFound(t *testing.T) {
	m := newMirror(t, synthBytes(t, tinyQ8))
	dir := t.TempDir()
	for _, o := range []PullOptions{{}, {SHA256: storiesSHA}, {NoChecksum: true}} {
		_, err := Pull(context.Background(), dir, m.srv.URL+"/missing.gguf", o)
		if err == nil || !strings.Contains(err.Error(), "not found (HTTP 404)") || !strings.Contains(err.Error(), "/missing.gguf") ||
			strings.Contains(err.Error(), "checksum") {
			t.Errorf("%+v: %v, want a 404 that names the URL", o, err)
		}
	}
	assertClean(t, dir)
}

func TestPullNameFlag(t *testing.T) {
	m := newMirror(t, synthBytes(t, tinyQ8))
	for _, u := range []string{m.srv.URL + "/", m.srv.URL + "/bad%20name.gguf"} {
		_, err := Pull(context.Background(), t.TempDir(), u, PullOptions{NoChecksum: true})
		if err == nil || !strings.Contains(err.Error(), "--name") {
			t.Errorf("%s: %v, want it to name --name", u, err)
		}
	}
}
