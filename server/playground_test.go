package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The playground is served at / with its files, under a policy that lets
// the page load nothing from another host; turned off, / is an unknown URL.
func TestPlaygroundRoutes(t *testing.T) {
	h := New(Options{Playground: true, APIKeys: []string{"k"}}).Handler()
	files := map[string]string{"/": "text/html", "/playground/style.css": "text/css"}
	for _, js := range playgroundScripts(t) {
		files["/playground/"+js] = "text/javascript"
	}
	for path, typ := range files {
		resp, body := get(t, h, path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || len(body) < 100 {
			t.Errorf("%s: status %d type %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		// No reference to another host in the page's own markup and style.
		if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import`).FindString(body); m != "" {
			t.Errorf("%s refers to another host: %q", path, m)
		}
	}
	_, page := get(t, h, "/")
	for _, s := range []string{`<script type="module" src="/playground/app.js">`, `href="/playground/style.css"`} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %s", s)
		}
	}
	// The page itself needs no key (it asks for one); the API still does.
	for path, status := range map[string]int{"/playground/nope.js": 404, "/playground/index.html": 404, "/playground/": 404, "/v1/models": 401} {
		resp, body := get(t, h, path)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if resp.StatusCode != status || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code == "" {
			t.Errorf("%s: status %d body %s", path, resp.StatusCode, body)
		}
	}

	off := New(Options{}).Handler()
	resp, body := get(t, off, "/")
	if resp.StatusCode != 404 || !strings.Contains(body, "unknown_url") {
		t.Errorf("without the playground, /: %d %s", resp.StatusCode, body)
	}
}

// playgroundScripts lists the page's scripts; app.js must be one.
func playgroundScripts(t *testing.T) []string {
	t.Helper()
	entries, err := webFS.ReadDir("web")
	if err != nil {
		t.Fatal(err)
	}
	var js []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".js") {
			js = append(js, e.Name())
		}
	}
	if !slices.Contains(js, "app.js") || len(js) < 2 {
		t.Fatalf("scripts %v", js)
	}
	return js
}

// Model output reaches the page only as text: no script assigns HTML
// strings nor evaluates code, and every import is one of the page's own
// files.
func TestPlaygroundScriptInsertsNoHTML(t *testing.T) {
	scripts := playgroundScripts(t)
	importRE := regexp.MustCompile(`(?m)^\s*import\b[^;]*?from\s+"([^"]+)"`)
	for _, name := range scripts {
		b, err := webFS.ReadFile("web/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser", "createContextualFragment", "import("} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasPrefix(m[1], "./") || !slices.Contains(scripts, strings.TrimPrefix(m[1], "./")) {
				t.Errorf("%s imports %q, not one of the page's scripts", name, m[1])
			}
		}
	}
}
