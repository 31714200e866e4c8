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
	// Name is the model id (default: the URL's file name without .gguf).
	Name string
	// SHA256 is the expected checksum; "" fetches URL + ".sha256".
	SHA256 string
	// NoChecksum allows a download that no checksum vouches for.
	NoChecksum bool
	// Progress, when set, receives a progress bar or lines (NewProgress).
	Progress io.Writer
	// Client replaces the default HTTP client (tests); Pull still refuses
	// redirects to another host.
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

// Pull downloads the GGUF file at rawURL (http or https) into the catalog
// in dir as <name>.gguf. It writes <name>.gguf.partial and, when run again
// after an interruption, resumes from where it stopped (a Range request
// with If-Range, so a file changed on the server starts over). The
// checksum comes from o.SHA256, else from rawURL + ".sha256" (sha256sum's
// format, or a bare hex digest); with neither, Pull refuses unless
// o.NoChecksum. A mismatch deletes the download and leaves nothing in the
// catalog. On success the file is renamed into place, its header checked
// and its sha256 pinned in the manifest.
//
// Pull contacts only the host of rawURL: it ignores proxy settings in the
// environment and refuses redirects to another host.
func Pull(ctx context.Context, dir, rawURL string, o PullOptions) (*Entry, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("pull: bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("pull: URL %q: only http and https URLs are supported", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("pull: URL %q has no host", rawURL)
	}
	name := o.Name
	if name == "" {
		name = strings.TrimSuffix(path.Base(u.Path), ".gguf")
		if name == "/" || name == "." || name == "" {
			return nil, fmt.Errorf("pull: URL %q names no file: give a name", rawURL)
		}
	}
	if err := ValidID(name); err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	want := ""
	if o.SHA256 != "" {
		if want, err = normalizeSHA256(o.SHA256); err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
	}
	client := pullClient(o.Client)
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
			return nil, fmt.Errorf("pull: no checksum for %s: give the sha256, publish %s.sha256 beside the file, or allow an unchecked download", rawURL, path.Base(u.Path))
		}
	}
	if existing != nil {
		if want == "" {
			return nil, fmt.Errorf("pull: model %q already exists (%s): remove it first or choose another name", name, existing.Path)
		}
		e, err := sameOrRefuse(dir, existing, want)
		if err != nil {
			return nil, fmt.Errorf("pull: %w", err)
		}
		return e, nil
	}
	partial := filepath.Join(dir, name+".gguf"+partialSuffix)
	sum, err := download(ctx, client, u, partial, name, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	if want != "" && sum != want {
		os.Remove(partial)
		os.Remove(partial + metaSuffix)
		return nil, fmt.Errorf("pull: %w: the download was deleted", &ChecksumError{Path: rawURL, Want: want, Got: sum})
	}
	e, err := install(dir, name, partial, sum, nil)
	os.Remove(partial + metaSuffix)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	return e, nil
}

// pullClient is the HTTP client of Pull: no proxy, bounded connect and
// header waits, and no redirect to another host.
func pullClient(c *http.Client) *http.Client {
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
		if !strings.EqualFold(hostPort(req.URL), hostPort(from)) {
			return fmt.Errorf("redirect to another host (%s) refused: pull contacts only %s", req.URL.Host, from.Host)
		}
		if from.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("redirect from https to http refused")
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
	req.Header.Set("User-Agent", "asi1d-models-pull")
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
		return "", fmt.Errorf("GET %s: %s", su.Redacted(), resp.Status)
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
}

// validator is the If-Range value: a strong ETag, else Last-Modified.
func (m partialMeta) validator() string {
	if m.ETag != "" && !strings.HasPrefix(m.ETag, "W/") {
		return m.ETag
	}
	return m.LastModified
}

// download fetches u into partial, resuming from partial's size when its
// sidecar says it is the same file, and returns the sha256 of the whole
// file. An interrupted download keeps partial for the next try.
func download(ctx context.Context, client *http.Client, u *url.URL, partial, name string, progress io.Writer) (string, error) {
	var meta partialMeta
	have := int64(0)
	if b, err := os.ReadFile(partial + metaSuffix); err == nil && json.Unmarshal(b, &meta) == nil &&
		meta.URL == u.String() && meta.validator() != "" {
		if fi, err := os.Stat(partial); err == nil {
			have = fi.Size()
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt == 2 {
			return "", fmt.Errorf("GET %s: the server does not honour the range it was asked for", u.Redacted())
		}
		h := http.Header{}
		if have > 0 {
			h.Set("Range", fmt.Sprintf("bytes=%d-", have))
			h.Set("If-Range", meta.validator())
		}
		rctx, cancel := context.WithCancelCause(ctx)
		resp, err := get(rctx, client, u, h)
		if err != nil {
			cancel(nil)
			return "", err
		}
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
			return "", fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
		}
		if restart {
			resp.Body.Close()
			cancel(nil)
			have = 0
			os.Remove(partial)
			continue
		}
		sum, err := receive(rctx, cancel, resp, u, partial, name, have, progress)
		resp.Body.Close()
		cancel(nil)
		return sum, err
	}
}

// receive writes resp's body to partial after its first have bytes,
// hashing the whole file.
func receive(ctx context.Context, cancel context.CancelCauseFunc, resp *http.Response, u *url.URL, partial, name string, have int64, progress io.Writer) (string, error) {
	h := sha256.New()
	flags := os.O_WRONLY | os.O_CREATE
	if have == 0 {
		flags |= os.O_TRUNC
		meta := partialMeta{URL: u.String(), ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
		b, _ := json.Marshal(meta)
		if err := os.WriteFile(partial+metaSuffix, b, 0o644); err != nil {
			return "", err
		}
	} else if err := hashPrefix(h, partial, have); err != nil {
		return "", err
	}
	f, err := os.OpenFile(partial, flags, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if have > 0 {
		if err := f.Truncate(have); err != nil {
			return "", err
		}
		if _, err := f.Seek(have, io.SeekStart); err != nil {
			return "", err
		}
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	p := NewProgress(progress, "pull "+name, total)
	p.Add(have)
	// A body that stops sending for stallTimeout ends the request.
	errStalled := fmt.Errorf("no data from %s for %s", u.Host, stallTimeout)
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	body := &stallReader{r: resp.Body, reset: func() { watchdog.Reset(stallTimeout) }}
	n, err := io.Copy(io.MultiWriter(f, h, progressWriter{p}), body)
	got := have + n
	if err == nil && total >= 0 && got != total {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil {
			err = cerr
		}
		f.Sync()
		return "", fmt.Errorf("download of %s interrupted after %s of %s: %w (pull again to resume)",
			u.Redacted(), humanBytes(got), sizeOrUnknown(total), err)
	}
	p.Finish()
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sizeOrUnknown(n int64) string {
	if n < 0 {
		return "an unknown size"
	}
	return humanBytes(n)
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
