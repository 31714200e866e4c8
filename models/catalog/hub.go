package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
)

// DefaultHubEndpoint is the Hugging Face hub; HF_ENDPOINT names another
// (a mirror, or a hub inside an air-gapped site).
const DefaultHubEndpoint = "https://huggingface.co"

// Environment variables of hub pulls, named as the Hugging Face tools
// name them.
const (
	EnvHubEndpoint = "HF_ENDPOINT"
	EnvHubToken    = "HF_TOKEN"
)

// hubRef is a model on the hub: a repository at a revision, and either a
// file in it or a quantization to pick one by.
type hubRef struct {
	endpoint string // base URL, no trailing slash
	owner    string
	repo     string
	rev      string // "main" unless given
	file     string // path in the repository; "" picks by quant
	quant    string // the :QUANT of hf.co/OWNER/REPO:QUANT; "" when none
}

func (r *hubRef) id() string { return r.owner + "/" + r.repo }

// page is the repository's page on the hub (where a licence is accepted).
func (r *hubRef) page() string { return r.endpoint + "/" + r.id() }

// treeURL lists every file of the revision (the hub's
// /api/models/{repo}/tree/{rev}?recursive=true, as huggingface_hub's
// list_repo_tree; the revision is one escaped path segment).
func (r *hubRef) treeURL() string {
	return fmt.Sprintf("%s/api/models/%s/%s/tree/%s?recursive=true",
		r.endpoint, url.PathEscape(r.owner), url.PathEscape(r.repo), url.PathEscape(r.rev))
}

// resolveURL downloads file at the revision (huggingface_hub's
// hf_hub_url): the hub answers a small file itself and redirects a large
// (LFS) one to its storage host.
func (r *hubRef) resolveURL(file string) string {
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return fmt.Sprintf("%s/%s/%s/resolve/%s/%s",
		r.endpoint, url.PathEscape(r.owner), url.PathEscape(r.repo), url.PathEscape(r.rev), strings.Join(segs, "/"))
}

// hubHosts are the names of the public hub that a reference may start
// with (they are fetched from the endpoint, so a mirror serves them).
var hubHosts = []string{"hf.co", "huggingface.co", "www.huggingface.co"}

var (
	hubNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// A revision: a branch, tag or commit (a "/" in it needs the
	// escaped form %2F of a resolve link).
	hubRevRE = regexp.MustCompile(`^[A-Za-z0-9._/+-]+$`)
)

// parseHubRef reads ref as a hub reference: nil (and no error) when it is
// not one (a plain URL). The forms:
//
//	hf.co/OWNER/REPO[@REV][:QUANT]          (also huggingface.co/...)
//	hf.co/OWNER/REPO[@REV]/PATH/FILE.gguf
//	https://huggingface.co/OWNER/REPO/resolve/REV/PATH/FILE.gguf
//	https://huggingface.co/OWNER/REPO/blob/REV/PATH/FILE.gguf
//	https://huggingface.co/OWNER/REPO[/tree/REV]
//
// and the same links under the endpoint's own URL. All are fetched from
// endpoint (HF_ENDPOINT; "" is DefaultHubEndpoint).
func parseHubRef(ref, endpoint string) (*hubRef, error) {
	if endpoint == "" {
		endpoint = DefaultHubEndpoint
	}
	endpoint = strings.TrimRight(endpoint, "/")
	ep, err := url.Parse(endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, fmt.Errorf("%s=%q is not an http(s) URL: set it to the hub's address, e.g. %s", EnvHubEndpoint, endpoint, DefaultHubEndpoint)
	}
	rest, ok := "", false
	lower := strings.ToLower(ref)
	for _, h := range hubHosts {
		for _, p := range []string{h + "/", "https://" + h + "/", "http://" + h + "/"} {
			if strings.HasPrefix(lower, p) {
				rest, ok = ref[len(p):], true
			}
		}
	}
	if !ok && strings.HasPrefix(lower, strings.ToLower(endpoint)+"/") {
		rest, ok = ref[len(endpoint)+1:], true
	}
	if !ok {
		return nil, nil
	}
	rest, _, _ = strings.Cut(rest, "#")
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q] // ?download=true on a link
	}
	r := &hubRef{endpoint: endpoint, rev: "main"}
	bad := func(why string) error {
		return fmt.Errorf("%q: %s (the forms: hf.co/OWNER/REPO:QUANT, hf.co/OWNER/REPO/FILE.gguf, %s/OWNER/REPO/resolve/REV/FILE.gguf)", ref, why, DefaultHubEndpoint)
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	if len(segs) < 2 {
		return nil, bad("names no repository")
	}
	if segs[0] == "datasets" || segs[0] == "spaces" {
		return nil, bad("only model repositories hold models")
	}
	r.owner = segs[0]
	repo := segs[1]
	if i := strings.IndexByte(repo, ':'); i >= 0 {
		repo, r.quant = repo[:i], repo[i+1:]
		if q, rev, ok := strings.Cut(r.quant, "@"); ok { // REPO:QUANT@REV
			r.quant, repo = q, repo+"@"+rev
		}
		if r.quant == "" {
			return nil, bad("the quantization after ':' is empty")
		}
	}
	if name, rev, ok := strings.Cut(repo, "@"); ok {
		if rev, err = url.PathUnescape(rev); err != nil {
			return nil, bad("bad revision")
		}
		repo, r.rev = name, rev
	}
	r.repo = repo
	switch {
	case len(segs) >= 4 && (segs[2] == "resolve" || segs[2] == "blob" || segs[2] == "tree"):
		rev, err := url.PathUnescape(segs[3])
		if err != nil {
			return nil, bad("bad revision")
		}
		r.rev = rev
		if segs[2] == "tree" {
			if len(segs) > 4 {
				return nil, bad("a folder is not a model: name a .gguf file")
			}
		} else {
			if len(segs) < 5 {
				return nil, bad("names no file")
			}
			r.file = strings.Join(segs[4:], "/")
		}
	case len(segs) >= 3:
		r.file = strings.Join(segs[2:], "/")
	}
	if r.file != "" {
		f, err := url.PathUnescape(r.file)
		if err != nil {
			return nil, bad("bad file path")
		}
		r.file = f
		if r.quant != "" {
			return nil, bad("give either a file or a :QUANT, not both")
		}
		if !strings.HasSuffix(strings.ToLower(r.file), ".gguf") {
			return nil, bad(fmt.Sprintf("%s is not a .gguf file", r.file))
		}
		for _, s := range strings.Split(r.file, "/") {
			if s == "" || s == "." || s == ".." {
				return nil, bad("bad file path")
			}
		}
	}
	if !hubNameRE.MatchString(r.owner) || !hubNameRE.MatchString(r.repo) {
		return nil, bad("bad owner or repository name")
	}
	if !hubRevRE.MatchString(r.rev) || strings.Contains(r.rev, "..") {
		return nil, bad(fmt.Sprintf("bad revision %q", r.rev))
	}
	return r, nil
}

// hubFile is one entry of the hub's tree listing.
type hubFile struct {
	Type string `json:"type"` // "file" or "directory"
	Path string `json:"path"`
	Size int64  `json:"size"`
	// OID is the git blob id (sha1 of "blob SIZE\0" + content) of a
	// file kept in git; for an LFS file, the pointer's.
	OID string `json:"oid"`
	// LFS is set for a file kept in LFS (every large file): its oid is
	// the content's sha256.
	LFS *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// sha256 is the file's sha256 when the hub knows it (an LFS file), else "".
func (f *hubFile) sha256() string {
	if f.LFS == nil {
		return ""
	}
	s, err := normalizeSHA256(f.LFS.OID)
	if err != nil {
		return ""
	}
	return s
}

// maxTreePages bounds the pages of a listing (the hub pages by 1000).
const maxTreePages = 1000

// listHub is every file of r's revision, following the listing's pages
// (the Link header's rel="next", as huggingface_hub's paginate).
func listHub(ctx context.Context, client *http.Client, r *hubRef, header http.Header) ([]hubFile, error) {
	next := r.treeURL()
	var out []hubFile
	for page := 0; next != ""; page++ {
		if page == maxTreePages {
			return nil, fmt.Errorf("the listing of %s has more than %d pages", r.id(), maxTreePages)
		}
		u, err := url.Parse(next)
		if err != nil {
			return nil, fmt.Errorf("the hub's next page %q: %w", next, err)
		}
		resp, err := get(ctx, client, u, header)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, httpError(u, resp)
		}
		var files []hubFile
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&files)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("GET %s: the hub's file list does not parse: %w", u.Redacted(), err)
		}
		out = append(out, files...)
		next = nextLink(resp.Header.Values("Link"), u)
	}
	return out, nil
}

var linkNextRE = regexp.MustCompile(`<([^>]*)>\s*;[^,]*rel="?next"?`)

// nextLink is the rel="next" target of Link headers, resolved against
// base; "" when none.
func nextLink(links []string, base *url.URL) string {
	for _, l := range links {
		if m := linkNextRE.FindStringSubmatch(l); m != nil {
			u, err := base.Parse(m[1])
			if err != nil {
				return ""
			}
			return u.String()
		}
	}
	return ""
}

// hubModel is one model of a repository: a .gguf file, or every part of
// a split one.
type hubModel struct {
	name  string    // its default id: the file name without .gguf or the split suffix
	quant string    // its quantization label (from the name), or the name
	parts []hubFile // in order; a split lists every part the repo has
	count int       // the parts a split has (1 for one file)
}

func (m *hubModel) complete() bool { return len(m.parts) == m.count }

func (m *hubModel) missing() []string {
	have := map[int]bool{}
	for _, p := range m.parts {
		_, no, _, _ := splitName(path.Base(p.Path))
		have[no] = true
	}
	var out []string
	prefix, _, _, _ := splitName(path.Base(m.parts[0].Path))
	for i := 1; i <= m.count; i++ {
		if !have[i] {
			out = append(out, splitPart(prefix, i, m.count))
		}
	}
	return out
}

// quantRE finds a quantization at the end of a file's stem: Q4_K_M, Q8_0,
// IQ2_XXS, UD-Q4_K_XL, F16, BF16, MXFP4...
var quantRE = regexp.MustCompile(`(?i)(?:^|[-_.])((?:ud-)?(?:i?q\d(?:_[a-z0-9]+)*|bf16|f16|f32|mxfp4(?:_moe)?|tq\d_\d))$`)

func quantOf(stem string) string {
	if m := quantRE.FindStringSubmatch(stem); m != nil {
		return strings.ToUpper(m[1])
	}
	return stem
}

// hubModels groups the .gguf files of a listing into models (the parts of
// a split into one), sorted by path.
func hubModels(files []hubFile) []*hubModel {
	byKey := map[string]*hubModel{}
	var out []*hubModel
	for _, f := range files {
		if f.Type != "file" || !strings.HasSuffix(strings.ToLower(f.Path), ".gguf") {
			continue
		}
		base := path.Base(f.Path)
		key, name, count := f.Path, base[:len(base)-len(".gguf")], 1
		if prefix, _, n, ok := splitName(base); ok {
			key, name, count = fmt.Sprintf("%s/%s/%d", path.Dir(f.Path), prefix, n), prefix, n
		}
		m := byKey[key]
		if m == nil {
			m = &hubModel{name: name, quant: quantOf(name), count: count}
			byKey[key] = m
			out = append(out, m)
		}
		m.parts = append(m.parts, f)
	}
	for _, m := range out {
		sort.Slice(m.parts, func(i, j int) bool { return m.parts[i].Path < m.parts[j].Path })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].parts[0].Path < out[j].parts[0].Path })
	return out
}

// isProjector says whether a model file is a vision projector (mmproj),
// not a language model of its own.
func isProjector(m *hubModel) bool {
	return strings.HasPrefix(strings.ToLower(path.Base(m.parts[0].Path)), "mmproj")
}

// selectModel picks the model r names from the repository's files.
func selectModel(r *hubRef, files []hubFile) (*hubModel, error) {
	models := hubModels(files)
	var m *hubModel
	switch {
	case r.file != "":
		for _, c := range models {
			for _, p := range c.parts {
				if p.Path == r.file {
					m = c
				}
			}
		}
		if m == nil {
			return nil, &HTTPError{URL: r.resolveURL(r.file), Code: http.StatusNotFound,
				Message: fmt.Sprintf("%s has no file %s at revision %s%s", r.id(), r.file, r.rev, availableQuants(r, models))}
		}
	case r.quant != "":
		tag := strings.ToLower(r.quant)
		var found []*hubModel
		for _, c := range models {
			stem := strings.ToLower(c.name)
			if isProjector(c) {
				continue
			}
			if strings.EqualFold(c.quant, r.quant) || stem == tag || strings.HasSuffix(stem, "-"+tag) ||
				strings.HasSuffix(stem, "_"+tag) || strings.HasSuffix(stem, "."+tag) {
				found = append(found, c)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("%s at revision %s has no .gguf file for quantization %q%s", r.id(), r.rev, r.quant, availableQuants(r, models))
		case 1:
			m = found[0]
		default:
			var names []string
			for _, c := range found {
				names = append(names, c.parts[0].Path)
			}
			return nil, fmt.Errorf("quantization %q of %s is ambiguous: it matches %s; name the file: hf.co/%s/%s",
				r.quant, r.id(), strings.Join(names, ", "), r.id(), found[0].parts[0].Path)
		}
	default:
		var lms []*hubModel
		for _, c := range models {
			if !isProjector(c) {
				lms = append(lms, c)
			}
		}
		if len(lms) != 1 {
			if len(lms) == 0 {
				return nil, fmt.Errorf("%s has no .gguf file at revision %s: asi1d serves GGUF models only", r.id(), r.rev)
			}
			return nil, fmt.Errorf("%s holds %d models: name one by its quantization%s", r.id(), len(lms), availableQuants(r, models))
		}
		m = lms[0]
	}
	if !m.complete() {
		return nil, fmt.Errorf("%s is split in %d parts but %s at revision %s lacks %s", m.name, m.count, r.id(), r.rev, strings.Join(m.missing(), ", "))
	}
	return m, nil
}

// availableQuants says which quantizations the repository has, for a
// refusal; "" when it has none.
func availableQuants(r *hubRef, models []*hubModel) string {
	seen := map[string]bool{}
	var qs []string
	for _, m := range models {
		if !isProjector(m) && !seen[m.quant] {
			seen[m.quant] = true
			qs = append(qs, m.quant)
		}
	}
	if len(qs) == 0 {
		return ": it has no .gguf files"
	}
	return fmt.Sprintf(": the quantizations available are %s (pull one with hf.co/%s:%s)", strings.Join(qs, ", "), r.id(), qs[0])
}

// hubAdvice explains an HTTP refusal from the hub: what to do about a
// private or gated repository, a missing repository, file or revision.
func hubAdvice(err error, r *hubRef, tokenSet bool) error {
	var he *HTTPError
	if !errors.As(err, &he) {
		return err
	}
	switch he.Code {
	case http.StatusUnauthorized:
		if tokenSet {
			return fmt.Errorf("%w: the hub did not accept %s, or %s does not exist: check the token and the name", err, EnvHubToken, r.id())
		}
		return fmt.Errorf("%w: %s is private, gated or does not exist: set %s to an access token that can read it (and accept the model's licence at %s)",
			err, r.id(), EnvHubToken, r.page())
	case http.StatusForbidden:
		if tokenSet {
			return fmt.Errorf("%w: the token in %s may not read %s: accept the model's licence at %s with its account, or use a token with read access",
				err, EnvHubToken, r.id(), r.page())
		}
		return fmt.Errorf("%w: %s is gated: accept the model's licence at %s and set %s to an access token of that account",
			err, r.id(), r.page(), EnvHubToken)
	case http.StatusNotFound:
		return fmt.Errorf("%w: check the repository %s and the revision %q", err, r.id(), r.rev)
	}
	return err
}
