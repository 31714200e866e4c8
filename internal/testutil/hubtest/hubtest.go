// Package hubtest is a stand-in for the Hugging Face hub on loopback, for
// tests of asi1d models pull: it speaks the hub's protocol (the tree
// listing API, resolve URLs that answer small files themselves and
// redirect LFS files to a storage host on another port with
// X-Linked-Etag/X-Linked-Size, bearer tokens, the hub's error headers),
// and injects faults on demand (a storage host that serves wrong bytes or
// cuts a transfer short). It also splits a GGUF file the way llama.cpp's
// gguf-split does (SplitGGUF).
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request a server received.
type Request struct {
	Server        string // "hub" or "storage"
	Method, Path  string // Path unescaped
	Query         string
	Range         string
	IfRange       string
	Authorization string
}

type file struct {
	data []byte
	lfs  bool
	sha  string // sha256 hex
	oid  string // git blob id (of the LFS pointer for an LFS file)
}

// Hub is the stand-in hub and its storage host.
type Hub struct {
	// URL is the hub's address (HF_ENDPOINT); StorageURL the storage host's.
	URL, StorageURL string

	mu sync.Mutex
	// token, when set, is the only bearer token accepted for downloads:
	// one without it is answered 401, one with another 403 (a gated
	// repository: its file list stays public, as on the hub).
	token    string
	pageSize int
	repos    map[string]map[string]map[string]*file // repo -> rev -> path -> file
	corrupt  map[string]bool                        // sha -> storage serves wrong bytes
	cut      map[string]int                         // sha -> cut the next transfer after n bytes
	linked   map[string]string                      // sha -> the X-Linked-Etag resolve sends instead
	reqs     []Request
}

// New starts a hub and its storage host; the test's cleanup stops them.
func New(t testing.TB) *Hub {
	h := &Hub{repos: map[string]map[string]map[string]*file{}, corrupt: map[string]bool{}, cut: map[string]int{}, linked: map[string]string{}}
	hub := httptest.NewServer(http.HandlerFunc(h.serveHub))
	storage := httptest.NewServer(http.HandlerFunc(h.serveStorage))
	t.Cleanup(hub.Close)
	t.Cleanup(storage.Close)
	h.URL, h.StorageURL = hub.URL, storage.URL
	return h
}

// RequireToken makes every repository gated: only "Bearer "+token may
// download its files; anyone may list them.
func (h *Hub) RequireToken(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.token = token
}

// PageSize makes the tree listing answer n entries a page (0: one page).
func (h *Hub) PageSize(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pageSize = n
}

// Add puts data at path in repo ("owner/name") at revision main, as an
// LFS file (every model file on the real hub is one).
func (h *Hub) Add(repo, p string, data []byte) { h.AddAt(repo, "main", p, data, true) }

// AddAt puts data at path in repo at revision rev, in LFS or in git.
func (h *Hub) AddAt(repo, rev, p string, data []byte, lfs bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := &file{data: data, lfs: lfs, sha: SHA256(data)}
	if lfs {
		f.oid = gitOID([]byte(fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", f.sha, len(data))))
	} else {
		f.oid = gitOID(data)
	}
	if h.repos[repo] == nil {
		h.repos[repo] = map[string]map[string]*file{}
	}
	if h.repos[repo][rev] == nil {
		h.repos[repo][rev] = map[string]*file{}
	}
	h.repos[repo][rev][p] = f
}

// Corrupt makes the storage host serve wrong bytes (of the right length)
// for the content data.
func (h *Hub) Corrupt(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.corrupt[SHA256(data)] = true
}

// LinkedETag makes resolve say sha (X-Linked-Etag) of the content data,
// against the listing.
func (h *Hub) LinkedETag(data []byte, sha string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.linked[SHA256(data)] = sha
}

// Heal undoes Corrupt.
func (h *Hub) Heal(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.corrupt, SHA256(data))
}

// CutNext makes the storage host drop the connection after n bytes of its
// next transfer of the content data.
func (h *Hub) CutNext(data []byte, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cut[SHA256(data)] = n
}

// Requests is every request received so far, in order.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// SHA256 is the hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func gitOID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (h *Hub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, Request{Server: server, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Range: r.Header.Get("Range"), IfRange: r.Header.Get("If-Range"), Authorization: r.Header.Get("Authorization")})
}

// hubError answers as the hub does: a status, X-Error-Code and
// X-Error-Message, and a JSON body.
func hubError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("X-Error-Code", errCode)
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// segments splits the request's escaped path, so that an escaped "/" in a
// revision stays inside its segment.
func segments(r *http.Request) []string {
	raw := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			u = s
		}
		out[i] = u
	}
	return out
}

// access checks the bearer token and finds the repository's revision;
// false when it has answered.
func (h *Hub) access(w http.ResponseWriter, r *http.Request, repo, rev string, download bool) (map[string]*file, bool) {
	h.mu.Lock()
	token, revs := h.token, h.repos[repo]
	h.mu.Unlock()
	auth := r.Header.Get("Authorization")
	if revs == nil {
		if auth == "" {
			hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository Not Found for url: "+r.URL.String()+". Please make sure you specified the correct `repo_id` and `repo_type`. If you are trying to access a private or gated repo, make sure you are authenticated.")
		} else {
			hubError(w, http.StatusNotFound, "RepoNotFound", "Repository Not Found")
		}
		return nil, false
	}
	if download && token != "" && auth != "Bearer "+token {
		if auth == "" {
			hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+repo+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		} else {
			hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+repo+" is restricted and you are not in the authorized list.")
		}
		return nil, false
	}
	files := revs[rev]
	if files == nil {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return nil, false
	}
	return files, true
}

// treeEntry is an entry of the tree listing, as the hub writes it.
type treeEntry struct {
	Type string   `json:"type"`
	OID  string   `json:"oid"`
	Size int64    `json:"size"`
	Path string   `json:"path"`
	LFS  *lfsInfo `json:"lfs,omitempty"`
}

type lfsInfo struct {
	OID         string `json:"oid"`
	Size        int64  `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	s := segments(r)
	switch {
	// /api/models/OWNER/REPO/tree/REV[/PATH]
	case len(s) >= 6 && s[0] == "api" && s[1] == "models" && s[4] == "tree":
		files, ok := h.access(w, r, s[2]+"/"+s[3], s[5], false)
		if !ok {
			return
		}
		h.serveTree(w, r, files, strings.Join(s[6:], "/"))
	// /OWNER/REPO/resolve/REV/PATH
	case len(s) >= 5 && s[2] == "resolve":
		files, ok := h.access(w, r, s[0]+"/"+s[1], s[3], true)
		if !ok {
			return
		}
		p := strings.Join(s[4:], "/")
		f := files[p]
		if f == nil {
			hubError(w, http.StatusNotFound, "EntryNotFound", p+" does not exist on \""+s[3]+"\"")
			return
		}
		w.Header().Set("X-Repo-Commit", strings.Repeat("c", 40))
		if !f.lfs {
			w.Header().Set("ETag", `"`+f.oid+`"`)
			http.ServeContent(w, r, path.Base(p), time.Time{}, bytes.NewReader(f.data))
			return
		}
		h.mu.Lock()
		linked, ok := h.linked[f.sha]
		h.mu.Unlock()
		if !ok {
			linked = f.sha
		}
		w.Header().Set("X-Linked-Etag", `"`+linked+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
		w.Header().Set("ETag", `"`+f.oid+`"`)
		w.Header().Set("Location", h.StorageURL+"/blobs/"+f.sha+"?X-Amz-Signature=x&expires=1")
		w.WriteHeader(http.StatusFound)
	default:
		hubError(w, http.StatusNotFound, "", "Not Found")
	}
}

func (h *Hub) serveTree(w http.ResponseWriter, r *http.Request, files map[string]*file, under string) {
	recursive := r.URL.Query().Get("recursive")
	deep := recursive == "true" || recursive == "True" || recursive == "1"
	var list []treeEntry
	dirs := map[string]bool{}
	for p, f := range files {
		if under != "" && !strings.HasPrefix(p, under+"/") {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, under), "/")
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			d := path.Join(under, strings.Join(parts[:i], "/"))
			if (deep || i == 1) && !dirs[d] {
				dirs[d] = true
				list = append(list, treeEntry{Type: "directory", OID: gitOID([]byte(d)), Path: d})
			}
		}
		if !deep && len(parts) > 1 {
			continue
		}
		e := treeEntry{Type: "file", OID: f.oid, Size: int64(len(f.data)), Path: p}
		if f.lfs {
			e.LFS = &lfsInfo{OID: f.sha, Size: int64(len(f.data)), PointerSize: 134}
		}
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	h.mu.Lock()
	size := h.pageSize
	h.mu.Unlock()
	if size > 0 {
		start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		start = min(max(start, 0), len(list))
		end := min(start+size, len(list))
		if end < len(list) {
			next := *r.URL
			q := next.Query()
			q.Set("cursor", strconv.Itoa(end))
			next.RawQuery = q.Encode()
			w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, h.URL, next.RequestURI()))
		}
		list = list[start:end]
	}
	if list == nil {
		list = []treeEntry{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

func (h *Hub) serveStorage(w http.ResponseWriter, r *http.Request) {
	h.record("storage", r)
	sha, ok := strings.CutPrefix(r.URL.Path, "/blobs/")
	if !ok || r.URL.Query().Get("X-Amz-Signature") == "" {
		http.Error(w, "AccessDenied", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	var data []byte
	for _, revs := range h.repos {
		for _, files := range revs {
			for _, f := range files {
				if f.sha == sha {
					data = f.data
				}
			}
		}
	}
	corrupt := h.corrupt[sha]
	cut, cutting := h.cut[sha]
	if cutting && r.Method == http.MethodGet {
		delete(h.cut, sha)
	}
	h.mu.Unlock()
	if data == nil {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	if corrupt {
		data = append([]byte(nil), data...)
		for i := len(data) / 2; i < len(data)/2+64 && i < len(data); i++ {
			data[i] ^= 0x5a
		}
	}
	w.Header().Set("ETag", `"s3-`+sha[:16]+`"`)
	var cw http.ResponseWriter = w
	if cutting && r.Method == http.MethodGet {
		cw = &CutWriter{ResponseWriter: w, Left: cut}
	}
	http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(data))
}

// CutWriter sends Left bytes of the body, flushes them, then drops the
// connection (a download cut short).
type CutWriter struct {
	http.ResponseWriter
	Left int
}

func (c *CutWriter) Write(p []byte) (int, error) {
	if len(p) >= c.Left {
		c.ResponseWriter.Write(p[:c.Left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.Left -= len(p)
	return c.ResponseWriter.Write(p)
}
