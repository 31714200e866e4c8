package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/renameio/v2"
)

// ManifestFile is the manifest's name in the models directory.
const ManifestFile = "models.json"

// Sampling holds a model's default sampling parameters: each one set here
// applies when a request leaves it out.
type Sampling struct {
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"top_p,omitempty"`
	TopK          *int     `json:"top_k,omitempty"`
	MinP          *float64 `json:"min_p,omitempty"`
	RepeatPenalty *float64 `json:"repeat_penalty,omitempty"`
}

// ModelConfig is one model's entry in the manifest. Every field is
// optional.
type ModelConfig struct {
	// File is the GGUF file, relative to the models directory or
	// absolute; "" means "<id>.gguf".
	File string `json:"file,omitempty"`
	// SHA256 pins the file's checksum (hex); Verify refuses a file that
	// no longer matches it.
	SHA256  string   `json:"sha256,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	// Ctx is the total KV cells (as serve --ctx); 0: serve's default.
	Ctx int `json:"ctx,omitempty"`
	// Parallel is the sequences decoded together (serve --parallel).
	Parallel int `json:"parallel,omitempty"`
	// GPULayers is the layers offloaded to the GPU (serve --gpu-layers).
	GPULayers *int `json:"gpu_layers,omitempty"`
	// ChatTemplate replaces the chat template in the GGUF.
	ChatTemplate string    `json:"chat_template,omitempty"`
	Sampling     *Sampling `json:"sampling,omitempty"`
	// Preload loads the model when the server starts.
	Preload bool `json:"preload,omitempty"`
}

// Manifest is the content of ManifestFile: settings per model id.
type Manifest struct {
	Models map[string]*ModelConfig `json:"models"`
}

// ReadManifest reads dir/models.json. A missing file is an empty manifest
// and no error; JSON that does not parse, an unknown field or a value of
// the wrong type is an error that names the file and the line.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Manifest{Models: map[string]*ModelConfig{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := decodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}

// decodeManifest decodes strictly: unknown fields and trailing data are
// errors, which say on which line they are.
func decodeManifest(data []byte) (*Manifest, error) {
	m := &Manifest{}
	if len(bytes.TrimSpace(data)) == 0 {
		m.Models = map[string]*ModelConfig{}
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		off := dec.InputOffset()
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("unexpected end of file (an unclosed { or [?)")
		default:
			// The decoder reports an unknown field at the end of the
			// object; find the key itself.
			if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
				if i := unknownFieldRe(f).FindIndex(data); i != nil {
					off = int64(i[0])
				}
			}
		}
		return nil, fmt.Errorf("line %d: %w", lineAt(data, off), err)
	}
	if dec.More() {
		return nil, fmt.Errorf("line %d: unexpected data after the top-level object", lineAt(data, dec.InputOffset()))
	}
	if m.Models == nil {
		m.Models = map[string]*ModelConfig{}
	}
	for id, c := range m.Models {
		if c == nil {
			m.Models[id] = &ModelConfig{}
		}
	}
	return m, nil
}

// unknownFieldRe matches key (quoted, as in the decoder's message) used as
// an object key.
func unknownFieldRe(quoted string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(quoted) + `\s*:`)
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = max(0, min(off, int64(len(data))))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// WriteManifest writes m to dir/models.json atomically (a temporary file
// renamed over the old one), indented, in a stable order (models sorted by
// id).
func WriteManifest(dir string, m *Manifest) error {
	if m.Models == nil {
		m = &Manifest{Models: map[string]*ModelConfig{}}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	data = append(data, '\n')
	// renameio: a temporary file in dir, synced, renamed over the old one.
	return renameio.WriteFile(filepath.Join(dir, ManifestFile), data, 0o644, renameio.WithTempDir(dir))
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// normalizeSHA256 checks that s is 64 hex digits and lowercases it.
func normalizeSHA256(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !hexSHA256.MatchString(s) {
		return "", fmt.Errorf("sha256 %q is not 64 hex digits", s)
	}
	return strings.ToLower(s), nil
}

// ValidID reports whether s can be a model id or alias: 1 to 128
// characters, none of them a space, a control character, '/' or '\'.
// (Ids appear in URL paths such as /v1/models/{id}.)
func ValidID(s string) error {
	if s == "" {
		return errors.New("empty model id")
	}
	if len(s) > 128 {
		return fmt.Errorf("model id %.20q... is longer than 128 bytes", s)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' {
			return fmt.Errorf("model id %q contains %q (ids may not contain spaces, control characters, / or \\)", s, r)
		}
	}
	if s == "." || s == ".." {
		return fmt.Errorf("model id %q is not allowed", s)
	}
	return nil
}

// Validate checks c's values: a sha256 of 64 hex digits,
// valid aliases, non-negative sizes and sampling values in range.
func (c *ModelConfig) Validate() error {
	if c.SHA256 != "" {
		if _, err := normalizeSHA256(c.SHA256); err != nil {
			return err
		}
	}
	for _, a := range c.Aliases {
		if err := ValidID(a); err != nil {
			return fmt.Errorf("alias: %w", err)
		}
	}
	if c.Ctx < 0 {
		return fmt.Errorf("ctx %d is negative", c.Ctx)
	}
	if c.Parallel < 0 {
		return fmt.Errorf("parallel %d is negative", c.Parallel)
	}
	if c.Ctx > 0 && c.Parallel > c.Ctx {
		return fmt.Errorf("parallel %d is more than ctx %d", c.Parallel, c.Ctx)
	}
	if c.GPULayers != nil && *c.GPULayers < 0 {
		return fmt.Errorf("gpu_layers %d is negative", *c.GPULayers)
	}
	if s := c.Sampling; s != nil {
		if v := s.Temperature; v != nil && (*v < 0 || *v > 2) {
			return fmt.Errorf("sampling.temperature %g is outside [0, 2]", *v)
		}
		if v := s.TopP; v != nil && (*v < 0 || *v > 1) {
			return fmt.Errorf("sampling.top_p %g is outside [0, 1]", *v)
		}
		if v := s.MinP; v != nil && (*v < 0 || *v > 1) {
			return fmt.Errorf("sampling.min_p %g is outside [0, 1]", *v)
		}
		if v := s.TopK; v != nil && *v < 0 {
			return fmt.Errorf("sampling.top_k %d is negative", *v)
		}
		if v := s.RepeatPenalty; v != nil && *v <= 0 {
			return fmt.Errorf("sampling.repeat_penalty %g must be positive", *v)
		}
	}
	return nil
}
