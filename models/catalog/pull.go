package catalog

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PullOptions are Pull's options.
type PullOptions struct {
	// Name is the model id (default: the file's name without .gguf, and
	// without -00001-of-0000N for a split model).
	Name string
	// SHA256 is the expected checksum (asi1d models pull --sha256). For a
	// plain URL, "" fetches URL + ".sha256"; for a hub file the hub's own
	// checksum is used and SHA256, when set, must agree with it.
	SHA256 string
	// NoChecksum allows a plain-URL download that no checksum vouches for
	// (--no-checksum). Hub downloads always have the hub's checksum.
	NoChecksum bool
	// HubEndpoint is the Hugging Face hub or mirror that hf.co/... names
	// and huggingface.co links are fetched from (HF_ENDPOINT); ""
	// means DefaultHubEndpoint.
	HubEndpoint string
	// HubToken is an access token for the hub (HF_TOKEN), sent as a bearer
	// token to the hub only, never to the storage host it redirects to.
	HubToken string
	// Progress, when set, receives a progress bar or lines (NewProgress).
	Progress io.Writer
	// Client replaces the default HTTP client (tests); its redirect policy
	// is replaced by Pull's.
	Client *http.Client
}

const (
	partialSuffix = ".partial"
	metaSuffix    = ".meta"
)

// Timeouts of Pull: to connect, for the TLS handshake, for the response
// headers, and for a body that stops sending. A whole download has no
// limit (a large model over a slow link takes hours): ctx ends it.
var (
	dialTimeout   = 30 * time.Second
	headerTimeout = 60 * time.Second
	stallTimeout  = 2 * time.Minute
)

// HTTPError is an HTTP answer other than the one wanted.
type HTTPError struct {
	URL  string // redacted
	Code int
	// Message is the server's own explanation (the hub's X-Error-Message),
	// when it gave one.
	Message string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("GET %s: %s (HTTP %d)", e.URL, strings.ToLower(http.StatusText(e.Code)), e.Code)
	if e.Code == 0 || http.StatusText(e.Code) == "" {
		s = fmt.Sprintf("GET %s: HTTP %d", e.URL, e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func httpError(u *url.URL, resp *http.Response) *HTTPError {
	return &HTTPError{URL: u.Redacted(), Code: resp.StatusCode, Message: oneLine(resp.Header.Get("X-Error-Message"))}
}

// oneLine keeps the first line of s, at most 200 bytes of it.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Pull downloads a GGUF model into the catalog in dir. ref is either a
// Hugging Face name or link (hf.co/OWNER/REPO:QUANT,
// hf.co/OWNER/REPO/FILE.gguf, https://huggingface.co/OWNER/REPO/resolve/
// REV/FILE.gguf...: see pullHub) or a plain http(s) URL of a .gguf file.
//
// A plain URL's file is written to <name>.gguf.partial and, when Pull runs
// again after an interruption, resumed from where it stopped (a Range
// request with If-Range, so a file changed on the server starts over). The
// checksum comes from o.SHA256, else from rawURL + ".sha256" (sha256sum's
// format, or a bare hex digest); with neither, Pull refuses unless
// o.NoChecksum. A mismatch deletes the download and leaves nothing in the
// catalog. On success the file is renamed into place, its header checked
// and its sha256 pinned in the manifest. For a plain URL, Pull contacts
// only its host: it ignores proxy settings in the environment and refuses
// redirects to another host.
func Pull(ctx context.Context, dir, ref string, o PullOptions) (*Entry, error) {
	hr, err := parseHubRef(ref, o.HubEndpoint)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if hr != nil {
		e, err := pullHub(ctx, dir, hr, o)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
		return e, nil
	}
	return pullURL(ctx, dir, ref, o)
}

// pullURL is Pull of a plain URL.
func pullURL(ctx context.Context, dir, rawURL string, o PullOptions) (*Entry, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("pull: bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("pull: %q: only http and https URLs and hub names (hf.co/OWNER/REPO:QUANT) are supported", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("pull: URL %q has no host", rawURL)
	}
	name := o.Name
	if name == "" {
		name = strings.TrimSuffix(path.Base(u.Path), ".gguf")
		if name == "/" || name == "." || name == "" {
			return nil, fmt.Errorf("pull: URL %q names no file: give --name ID", rawURL)
		}
	}
	if err := ValidID(name); err != nil {
		return nil, fmt.Errorf("pull: %w: give --name ID", err)
	}
	want := ""
	if o.SHA256 != "" {
		if want, err = normalizeSHA256(o.SHA256); err != nil {
			return nil, fmt.Errorf("pull: --sha256: %w", err)
		}
	}
	client := pullClient(o.Client, false)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	existing, err := existingModel(dir, name)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if want == "" {
		if want, err = fetchChecksum(ctx, client, u); err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		if want == "" && !o.NoChecksum {
			// Say "not found" for a file that is not there rather than
			// asking for its checksum.
			if err := probe(ctx, client, u); err != nil {
				return nil, fmt.Errorf("pull: %w", err)
			}
			return nil, fmt.Errorf("pull: no checksum for %s (no %s.sha256 beside it): give --sha256 HEX, or pass --no-checksum to accept the file unchecked",
				u.Redacted(), path.Base(u.Path))
		}
	}
	if existing != nil {
		if want == "" {
			return nil, fmt.Errorf("pull: model %q already exists (%s): remove it first (asi1d models rm %s) or choose another --name", name, existing.Path, name)
		}
		e, err := sameOrRefuse(dir, existing, want)
		if err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		return e, nil
	}
	partial := filepath.Join(dir, name+".gguf"+partialSuffix)
	sum, err := download(ctx, &fetch{client: client, url: u, partial: partial, label: "pull " + name, want: want, progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if want != "" && sum != want {
		removePartial(partial)
		return nil, fmt.Errorf("pull: %w: the download was deleted", &ChecksumError{Path: rawURL, Want: want, Got: sum})
	}
	e, err := install(dir, name, partial, sum, nil)
	os.Remove(partial + metaSuffix)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	return e, nil
}

// removePartial deletes a download and its sidecar.
func removePartial(partial string) {
	os.Remove(partial)
	os.Remove(partial + metaSuffix)
}

// probe asks whether u exists (HEAD): an error for an answer that says it
// does not or may not be read; nil otherwise, also for a server that does
// not answer HEAD.
func probe(ctx context.Context, client *http.Client, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil // the GET would say; a HEAD is only a question here
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone, http.StatusUnauthorized, http.StatusForbidden:
		return httpError(u, resp)
	}
	return nil
}

const userAgent = "asi1d-models-pull"

// pullClient is the HTTP client of Pull: no proxy, bounded connect and
// header waits. For a plain URL (hub false) it refuses redirects to
// another host; for the hub it follows them (the hub sends large files to
// its storage host) but drops the Authorization header there.
func pullClient(c *http.Client, hub bool) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		out.Transport = &http.Transport{
			Proxy:                 nil, // never a proxy from the environment
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   dialTimeout,
			ResponseHeaderTimeout: headerTimeout,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	out.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		from := via[0].URL
		if from.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("redirect from https to http refused")
		}
		if !strings.EqualFold(hostPort(req.URL), hostPort(from)) {
			if !hub {
				return fmt.Errorf("redirect to another host (%s) refused: pull contacts only %s", req.URL.Host, from.Host)
			}
			// The token is the hub's: never sent to its storage host.
			// (Go keeps it for the same host name on another port.)
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &out
}

// hostPort is u's host with its port (the scheme's default when absent).
func hostPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return net.JoinHostPort(u.Hostname(), p)
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// get sends a GET; a connection failure names the host it could not
// reach.
func get(ctx context.Context, client *http.Client, u *url.URL, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	// identity: no transparent gzip, so byte offsets are the file's.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			return nil, fmt.Errorf("GET %s: %w", u.Redacted(), cerr)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("cannot reach %s: %w", hostPort(u), op)
		}
		return nil, err
	}
	return resp, nil
}

// fetchChecksum reads u + ".sha256"; "" when the server has none (404).
func fetchChecksum(ctx context.Context, client *http.Client, u *url.URL) (string, error) {
	su := *u
	su.Path += ".sha256"
	if su.RawPath != "" {
		su.RawPath += ".sha256"
	}
	resp, err := get(ctx, client, &su, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return "", nil
	case resp.StatusCode != http.StatusOK:
		return "", httpError(&su, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", su.Redacted(), err)
	}
	sum, err := parseChecksum(string(body), path.Base(u.Path))
	if err != nil {
		return "", fmt.Errorf("%s: %w", su.Redacted(), err)
	}
	return sum, nil
}

// parseChecksum reads sha256sum's output ("HEX  NAME" or "HEX *NAME", one
// line per file: the line naming file wins) or a bare hex digest.
func parseChecksum(text, file string) (string, error) {
	first := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		sum, err := normalizeSHA256(fields[0])
		if err != nil {
			continue
		}
		if len(fields) > 1 && path.Base(strings.TrimPrefix(fields[1], "*")) == file {
			return sum, nil
		}
		if first == "" {
			first = sum
		}
	}
	if first == "" {
		return "", errors.New("no sha256 digest in the checksum file")
	}
	return first, nil
}

// partialMeta is the sidecar of a partial download: what the server said
// about the file, so that a resume asks for the same version (If-Range).
type partialMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Want is the checksum the download was started for: the same
	// checksum wanted again means the same file (the hub's files are
	// content-addressed), so a resume needs no validator.
	Want string `json:"want,omitempty"`
}

// validator is the If-Range value: a strong ETag, else Last-Modified.
func (m partialMeta) validator() string {
	if m.ETag != "" && !strings.HasPrefix(m.ETag, "W/") {
		return m.ETag
	}
	return m.LastModified
}

// fetch is one file to download.
type fetch struct {
	client *http.Client
	url    *url.URL
	header http.Header // sent with the first request (a redirect may drop some)
	// partial is where the bytes go; partial + metaSuffix is its sidecar.
	partial string
	label   string // progress description
	// want is the checksum expected ("" unknown): it keys the resume.
	want     string
	progress io.Writer

	// linked is what the hub said about the file on the way (its redirect's
	// X-Linked-Etag, unquoted), set by download.
	linked string
}

// download fetches f.url into f.partial, resuming from partial's size
// when its sidecar says it is the same file, and returns the sha256 of the
// whole file. An interrupted download keeps partial for the next try.
func download(ctx context.Context, f *fetch) (string, error) {
	u := f.url
	var meta partialMeta
	have := int64(0)
	if b, err := os.ReadFile(f.partial + metaSuffix); err == nil && json.Unmarshal(b, &meta) == nil &&
		meta.URL == u.String() && (meta.validator() != "" || (f.want != "" && meta.Want == f.want)) {
		if fi, err := os.Stat(f.partial); err == nil {
			have = fi.Size()
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt == 2 {
			return "", fmt.Errorf("GET %s: the server does not honour the range it was asked for", u.Redacted())
		}
		h := http.Header{}
		for k, v := range f.header {
			h[k] = v
		}
		if have > 0 {
			h.Set("Range", fmt.Sprintf("bytes=%d-", have))
			if v := meta.validator(); v != "" {
				h.Set("If-Range", v)
			}
		}
		rctx, cancel := context.WithCancelCause(ctx)
		resp, err := get(rctx, f.client, u, h)
		if err != nil {
			cancel(nil)
			return "", err
		}
		f.linked = linkedETag(resp)
		restart := false
		switch resp.StatusCode {
		case http.StatusPartialContent:
			if have == 0 || contentRangeStart(resp.Header.Get("Content-Range")) != have {
				restart = true
			}
		case http.StatusOK:
			have = 0 // a whole file: the server ignored Range or the file changed
		case http.StatusRequestedRangeNotSatisfiable:
			restart = true
		default:
			resp.Body.Close()
			cancel(nil)
			e := httpError(u, resp)
			if final := resp.Request.URL; !strings.EqualFold(final.Host, u.Host) {
				e.Message = strings.TrimPrefix(e.Message+"; answered by "+final.Host, "; ")
			}
			return "", e
		}
		if restart {
			resp.Body.Close()
			cancel(nil)
			have = 0
			os.Remove(f.partial)
			continue
		}
		sum, err := receive(rctx, cancel, resp, f, have)
		resp.Body.Close()
		cancel(nil)
		return sum, err
	}
}

// linkedETag is the X-Linked-Etag of the hub's redirect that led to resp
// (the sha256 of an LFS file), unquoted; "" when there was none.
func linkedETag(resp *http.Response) string {
	for r := resp; r != nil; {
		if v := r.Header.Get("X-Linked-Etag"); v != "" {
			return strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
		}
		if r.Request == nil {
			break
		}
		r = r.Request.Response // the redirect that caused this request
	}
	return ""
}

// receive writes resp's body to f.partial after its first have bytes,
// hashing the whole file.
func receive(ctx context.Context, cancel context.CancelCauseFunc, resp *http.Response, f *fetch, have int64) (string, error) {
	u, partial := f.url, f.partial
	h := sha256.New()
	flags := os.O_WRONLY | os.O_CREATE
	if have == 0 {
		flags |= os.O_TRUNC
		meta := partialMeta{URL: u.String(), ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Want: f.want}
		b, _ := json.Marshal(meta)
		if err := os.WriteFile(partial+metaSuffix, b, 0o644); err != nil {
			return "", err
		}
	} else if err := hashPrefix(h, partial, have); err != nil {
		return "", err
	}
	file, err := os.OpenFile(partial, flags, 0o644)
	if err != nil {
		return "", err
	}
	defer file.Close()
	if have > 0 {
		if err := file.Truncate(have); err != nil {
			return "", err
		}
		if _, err := file.Seek(have, io.SeekStart); err != nil {
			return "", err
		}
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	p := NewProgress(f.progress, f.label, total)
	p.Add(have)
	// A body that stops sending for stallTimeout ends the request.
	errStalled := fmt.Errorf("no data from %s for %s", resp.Request.URL.Host, stallTimeout)
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	body := &stallReader{r: resp.Body, reset: func() { watchdog.Reset(stallTimeout) }}
	n, err := io.Copy(io.MultiWriter(file, h, progressWriter{p}), body)
	got := have + n
	if err == nil && total >= 0 && got != total {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			err = cerr
		}
		file.Sync()
		return "", fmt.Errorf("download of %s interrupted after %s of %s: %w (pull again to resume)",
			u.Redacted(), HumanBytes(got), sizeOrUnknown(total), err)
	}
	p.Finish()
	if err := file.Sync(); err != nil {
		return "", err
	}
	if err := file.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sizeOrUnknown(n int64) string {
	if n < 0 {
		return "an unknown size"
	}
	return HumanBytes(n)
}

// hashPrefix feeds the first n bytes of path to h.
func hashPrefix(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(h, f, n); err != nil {
		return fmt.Errorf("read partial download: %w", err)
	}
	return nil
}

// contentRangeStart is the first byte of "bytes START-END/TOTAL"; -1 when
// it does not parse.
func contentRangeStart(s string) int64 {
	s, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return -1
	}
	start, _, ok := strings.Cut(s, "-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// stallReader calls reset after every read that returns data.
type stallReader struct {
	r     io.Reader
	reset func()
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.reset()
	}
	return n, err
}
