package api

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The golden samples in testdata are the server's own output: the
// encodings of server/answer_test.go's answer cases by the server's code
// (stream_*.sse, completion_*.json), its model list and error bodies, and
// answers of `asi1d serve` over stories260K (served_*). Every one must
// decode into the api types and encode back to the same bytes: the field
// names, their order, omitempty and null-versus-absent all match, so the
// server can switch its encoding to this package without a byte changing.

func goldenFiles(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/%s (%v)", pattern, err)
	}
	return files
}

func readGolden(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// reencode decodes b into a new T and encodes it again.
func reencode[T any](t *testing.T, b []byte) []byte {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // every field the server writes has a home
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
	out, err := json.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGoldenCompletions(t *testing.T) {
	for _, f := range goldenFiles(t, "*completion_*.json") {
		want := readGolden(t, f)
		if got := reencode[ChatCompletion](t, want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", f, got, want)
		}
	}
}

func TestGoldenModels(t *testing.T) {
	for _, f := range goldenFiles(t, "*models_*.json") {
		want := readGolden(t, f)
		if got := reencode[ModelList](t, want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", f, got, want)
		}
		var l ModelList
		_ = json.Unmarshal(want, &l)
		for _, m := range l.Data {
			b, _ := json.Marshal(m)
			if got := reencode[Model](t, b); !bytes.Equal(got, b) {
				t.Errorf("%s: model %s:\n got %s\nwant %s", f, m.ID, got, b)
			}
		}
	}
}

func TestGoldenErrors(t *testing.T) {
	for _, f := range goldenFiles(t, "*error_*.json") {
		want := readGolden(t, f)
		if got := reencode[ErrorBody](t, want); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", f, got, want)
		}
		if d, ok := ParseErrorBody(want); !ok || d.Message == "" || d.Type == "" {
			t.Errorf("%s: ParseErrorBody %+v %v", f, d, ok)
		}
	}
}

// Every event of a golden stream reads back through SSEReader and encodes
// again (AppendJSONEvent) to the same bytes; the text chunks also come out
// of ChunkEncoder.AppendText byte for byte.
func TestGoldenStreams(t *testing.T) {
	for _, f := range goldenFiles(t, "*stream_*.sse") {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := NewSSEReader(bytes.NewReader(raw))
		var out []byte
		var enc *ChunkEncoder
		texts := 0
		for {
			ev, err := r.Next()
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if ev.IsDone() {
				out = append(out, DoneEvent...)
				break
			}
			if bytes.HasPrefix(ev.Data, []byte(`{"error"`)) {
				out = AppendEvent(out, "", reencode[ErrorBody](t, ev.Data))
				continue
			}
			var ch ChatCompletionChunk
			if err := json.Unmarshal(ev.Data, &ch); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = AppendEvent(out, "", reencode[ChatCompletionChunk](t, ev.Data))
			if enc == nil {
				base := ch
				base.ExecutableData, base.ConversationID, base.ToolThought, base.Thought = nil, nil, nil, nil
				if len(ch.Usage) > 0 {
					base.Usage = RawNull
				}
				enc = NewChunkEncoder(base)
			}
			if text, thought, ok := textChunk(&ch); ok {
				texts++
				if got := enc.AppendText(nil, text, thought); string(got) != "data: "+string(ev.Data)+"\n\n" {
					t.Errorf("%s: AppendText(%q, %v):\n got %s\nwant data: %s", f, text, thought, got, ev.Data)
				}
			}
		}
		if _, err := r.Next(); err.Error() != "EOF" {
			t.Errorf("%s: after [DONE]: %v", f, err)
		}
		if !bytes.Equal(out, raw) {
			t.Errorf("%s: re-encoded stream differs:\n got %s\nwant %s", f, out, raw)
		}
		if strings.Contains(f, "plain_content") && texts == 0 {
			t.Errorf("%s: no text chunk checked", f)
		}
	}
}

// textChunk reports whether ch is a plain text chunk (what the server
// frames by hand): one choice with only content or reasoning.
func textChunk(ch *ChatCompletionChunk) (text string, thought, ok bool) {
	if len(ch.Choices) != 1 || ch.ExecutableData != nil || ch.ToolThought != nil {
		return "", false, false
	}
	c := ch.Choices[0]
	if c.Logprobs != nil || c.FinishReason != nil || c.Delta.Role != "" || c.Delta.ToolCalls != nil {
		return "", false, false
	}
	if c.Delta.Content != nil && ch.Thought == nil && c.Delta.ReasoningContent == "" {
		return *c.Delta.Content, false, true
	}
	if c.Delta.Content == nil && ch.Thought != nil && c.Delta.ReasoningContent == Texts(ch.Thought) {
		return c.Delta.ReasoningContent, true, true
	}
	return "", false, false
}

// The golden stream reads as the client sees it: ChatStream's chunks, the
// reasoning, the tool calls and the usage.
func TestGoldenStreamThroughChatStream(t *testing.T) {
	raw := readGolden(t, filepath.Join("testdata", "stream_tool_call_after_reasoning.sse"))
	s := newTestStream(string(raw) + "\n")
	var thought, args, finish string
	var toolThought []string
	for c, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		thought += c.ThoughtText()
		if tt := c.ToolThoughtText(); tt != "" {
			toolThought = append(toolThought, tt)
		}
		for _, tc := range c.Choices[0].Delta.ToolCalls {
			args += tc.Function.Arguments
		}
		if f := c.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	if thought != "need f" || args != `{"x":1}` || finish != FinishToolCalls || !reflect.DeepEqual(toolThought, []string{"need f"}) {
		t.Errorf("thought %q args %q finish %q tool_thought %q", thought, args, finish, toolThought)
	}
}
