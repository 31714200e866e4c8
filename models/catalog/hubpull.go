package catalog

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/asi1d/asi1d/models/gguf"
)

// pullHub downloads the model r names from the hub into the catalog in
// dir. The file list comes from the hub's tree listing; each file from its
// resolve URL, which for a large (LFS) file redirects to the hub's storage
// host: that redirect is followed, without the token. Every file is
// checked against the hub's own checksum: the sha256 of the listing's
// lfs.oid (and the redirect's X-Linked-Etag, which must agree), or for a
// small file kept in git, its git blob id. A mismatch deletes what was
// downloaded and leaves nothing in the catalog; an interruption keeps the
// .partial files, and the next pull resumes them. A split model's parts
// are all fetched and checked, then installed together as one model whose
// file is the first part.
func pullHub(ctx context.Context, dir string, r *hubRef, o PullOptions) (*Entry, error) {
	client := pullClient(o.Client, true)
	header := http.Header{}
	if o.HubToken != "" {
		header.Set("Authorization", "Bearer "+o.HubToken)
	}
	files, err := listHub(ctx, client, r, header)
	if err != nil {
		return nil, hubAdvice(err, r, o.HubToken != "")
	}
	m, err := selectModel(r, files)
	if err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = m.name
	}
	if err := ValidID(name); err != nil {
		return nil, fmt.Errorf("%w: give --name ID", err)
	}
	if o.SHA256 != "" {
		given, err := normalizeSHA256(o.SHA256)
		if err != nil {
			return nil, fmt.Errorf("--sha256: %w", err)
		}
		if hub := m.parts[0].sha256(); hub != "" && hub != given {
			return nil, fmt.Errorf("--sha256 %s is not the hub's sha256 of %s (%s): check the value, or leave --sha256 out to trust the hub's", given, m.parts[0].Path, hub)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	existing, err := existingModel(dir, name)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return sameHubModel(dir, existing, m)
	}

	// Where each part goes.
	dsts := []string{filepath.Join(dir, name+".gguf")}
	if m.count > 1 {
		dsts = dsts[:0]
		for i := range m.count {
			dsts = append(dsts, filepath.Join(dir, splitPart(name, i+1, m.count)))
		}
	}
	removeAll := func() {
		for _, d := range dsts {
			removePartial(d + partialSuffix)
		}
	}
	sums := make([]string, len(m.parts))
	for i, part := range m.parts {
		label := "pull " + name
		if m.count > 1 {
			label = fmt.Sprintf("pull %s (part %d/%d)", name, i+1, m.count)
		}
		u, err := url.Parse(r.resolveURL(part.Path))
		if err != nil {
			return nil, err
		}
		want := part.sha256()
		key := want
		if key == "" {
			key = "git:" + part.OID
		}
		f := &fetch{client: client, url: u, header: header, partial: dsts[i] + partialSuffix, label: label, want: key, progress: o.Progress}
		sum, err := download(ctx, f)
		if err != nil {
			return nil, hubAdvice(err, r, o.HubToken != "")
		}
		if err := checkHubFile(f.partial, part, sum, f.linked, o.SHA256, i == 0); err != nil {
			removeAll()
			return nil, fmt.Errorf("%w: the download was deleted", err)
		}
		sums[i] = sum
	}
	if m.count == 1 {
		e, err := install(dir, name, dsts[0]+partialSuffix, sums[0], nil)
		os.Remove(dsts[0] + partialSuffix + metaSuffix)
		return e, err
	}
	e, err := installSplit(dir, name, dsts, sums[0])
	if err != nil {
		removeAll()
	}
	return e, err
}

// checkHubFile checks a downloaded file against what the hub says of it:
// the listing's sha256 (an LFS file), the redirect's X-Linked-Etag, or the
// git blob id (a file kept in git); and, for the first part, --sha256.
func checkHubFile(file string, part hubFile, sum, linked, given string, first bool) error {
	want := part.sha256()
	if linked != "" && want != "" && linked != want {
		return fmt.Errorf("the hub contradicts itself about %s: its listing says sha256 %s, its download link %s", part.Path, want, linked)
	}
	if want != "" && sum != want {
		return &ChecksumError{Path: part.Path, Want: want, Got: sum}
	}
	if first && given != "" {
		if g, _ := normalizeSHA256(given); g != sum {
			return &ChecksumError{Path: part.Path, Want: g, Got: sum}
		}
	}
	if want == "" {
		if part.OID == "" {
			return fmt.Errorf("the hub gives no checksum of %s (neither an LFS sha256 nor a git blob id)", part.Path)
		}
		got, err := gitBlobID(file)
		if err != nil {
			return err
		}
		if got != part.OID {
			return fmt.Errorf("checksum mismatch for %s: git blob id is %s, the hub's is %s", part.Path, got, part.OID)
		}
	}
	return nil
}

// gitBlobID is git's id of the file's content: sha1("blob SIZE\0" +
// content).
func gitBlobID(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha1.New()
	io.WriteString(h, "blob "+strconv.FormatInt(fi.Size(), 10)+"\x00")
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sameHubModel answers a pull under an id that exists: the same files
// (every part's checksum the hub's) pin the sha256 and return the entry;
// anything else is refused.
func sameHubModel(dir string, e *Entry, m *hubModel) (*Entry, error) {
	refuse := fmt.Errorf("model %q already exists (%s) with other content than %s: remove it first (asi1d models rm %s) or choose another --name",
		e.ID, e.Path, m.parts[0].Path, e.ID)
	local := splitParts(e.Path)
	if len(local) != len(m.parts) {
		return nil, refuse
	}
	first := ""
	for i, p := range local {
		sum, err := hashFile(p)
		if err != nil {
			return nil, refuse
		}
		if err := checkHubFile(p, m.parts[i], sum, "", "", false); err != nil {
			return nil, refuse
		}
		if i == 0 {
			first = sum
		}
	}
	return install(dir, e.ID, "", first, e)
}

// installSplit moves the downloaded parts (dsts[i] + partialSuffix) to
// dsts after checking their headers (the metadata in the first part; the
// others' structure), and records the model in the manifest: its file is
// the first part, its sha256 the first part's.
func installSplit(dir, name string, dsts []string, sum string) (*Entry, error) {
	if _, err := ReadFacts(dsts[0] + partialSuffix); err != nil {
		return nil, err
	}
	for _, d := range dsts[1:] {
		if err := checkPartHeader(d + partialSuffix); err != nil {
			return nil, err
		}
	}
	unlock, err := lockManifest(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if man.Models[name] != nil {
		return nil, fmt.Errorf("model %q appeared in the manifest during the pull: pull again", name)
	}
	// The later parts first: a scan in between sees no first part
	// without its others.
	for i := len(dsts) - 1; i >= 0; i-- {
		if err := os.Rename(dsts[i]+partialSuffix, dsts[i]); err != nil {
			for _, d := range dsts[i+1:] {
				os.Remove(d)
			}
			return nil, err
		}
		os.Remove(dsts[i] + partialSuffix + metaSuffix)
	}
	cfg := &ModelConfig{File: filepath.Base(dsts[0]), SHA256: sum}
	man.Models[name] = cfg
	if err := WriteManifest(dir, man); err != nil {
		for _, d := range dsts {
			os.Remove(d)
		}
		return nil, fmt.Errorf("record sha256 in the manifest: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	e := newEntry(abs, name, cfg)
	return e, e.Err
}

// checkPartHeader checks a later part of a split: a GGUF whose header and
// tensors fit the file (its metadata is the first part's).
func checkPartHeader(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := gguf.Read(f, fi.Size(), gguf.Options{}); err != nil {
		return fmt.Errorf("%s: %w", path.Base(file), err)
	}
	return nil
}
