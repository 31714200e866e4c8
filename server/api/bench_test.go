package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The server's current chunk encoding (server/response.go's chunk types
// and server/chat.go's sseWriter.frame and appendTextChunk, copied as they
// are), to compare with this package's on the hot path: one chunk.

type srvChunk struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	Created           int64            `json:"created"`
	Model             string           `json:"model"`
	SystemFingerprint string           `json:"system_fingerprint"`
	ExecutableData    json.RawMessage  `json:"executable_data,omitempty"`
	ConversationID    json.RawMessage  `json:"conversation_id,omitempty"`
	ToolThought       json.RawMessage  `json:"tool_thought,omitempty"`
	Thought           *string          `json:"thought,omitempty"`
	Choices           []srvChunkChoice `json:"choices"`
	Usage             json.RawMessage  `json:"usage,omitempty"`
}

type srvChunkChoice struct {
	Index        int       `json:"index"`
	Delta        srvDelta  `json:"delta"`
	Logprobs     *Logprobs `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type srvDelta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCallDelta `json:"tool_calls,omitempty"`
}

type srvWriter struct{ head, tail []byte }

func (w *srvWriter) frame(base srvChunk) {
	b, _ := json.Marshal(base)
	i := bytes.Index(b, []byte(`"choices":null`))
	w.head = append([]byte("data: "), b[:i]...)
	w.tail = append(b[i+len(`"choices":null`):], "\n\n"...)
}

func (w *srvWriter) appendTextChunk(b []byte, text string, thought bool) ([]byte, error) {
	q, err := json.Marshal(text)
	if err != nil {
		return b, err
	}
	b = append(b, w.head...)
	if thought {
		b = append(b, `"thought":`...)
		b = append(b, q...)
		b = append(b, `,"choices":[{"index":0,"delta":{"reasoning_content":`...)
	} else {
		b = append(b, `"choices":[{"index":0,"delta":{"content":`...)
	}
	b = append(b, q...)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	return append(b, w.tail...), nil
}

func (w *srvWriter) event(buf []byte, v any) []byte {
	b, _ := json.Marshal(v)
	return append(append(append(buf[:0], "data: "...), b...), "\n\n"...)
}

var benchTexts = map[string]string{"token": " upon", "long": "Once upon a time, there was a little girl named Lily <3"}

// BenchmarkChunkText is the chunk of nearly every token: a content delta.
func BenchmarkChunkText(b *testing.B) {
	for name, text := range benchTexts {
		b.Run("server/"+name, func(b *testing.B) {
			var w srvWriter
			w.frame(srvChunk{ID: "id_kKg27rnGyfH4NknTL", Object: ObjectChatChunk, Created: 1767225600, Model: "asi1-mini", SystemFingerprint: "fp_3f2a9c", Usage: RawNull})
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = w.appendTextChunk(buf[:0], text, false)
			}
		})
		b.Run("api/"+name, func(b *testing.B) {
			enc := NewChunkEncoder(ChatCompletionChunk{ID: "id_kKg27rnGyfH4NknTL", Object: ObjectChatChunk, Created: 1767225600, Model: "asi1-mini", SystemFingerprint: "fp_3f2a9c", Usage: RawNull})
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = enc.AppendText(buf[:0], text, false)
			}
		})
	}
}

// BenchmarkChunkStruct is a chunk encoded through encoding/json: a content
// delta with its logprobs (every token of a logprobs request).
func BenchmarkChunkStruct(b *testing.B) {
	lp := &Logprobs{Content: []TokenLogprob{{Token: " upon", Logprob: -0.25, Bytes: []int{32, 117, 112, 111, 110}, TopLogprobs: []TopLogprob{}}}}
	text := " upon"
	b.Run("server", func(b *testing.B) {
		var w srvWriter
		ch := srvChunk{ID: "id_kKg27rnGyfH4NknTL", Object: ObjectChatChunk, Created: 1767225600, Model: "asi1-mini", SystemFingerprint: "fp_3f2a9c",
			Choices: []srvChunkChoice{{Delta: srvDelta{Content: &text}, Logprobs: lp}}}
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf = w.event(buf, &ch)
		}
	})
	b.Run("api", func(b *testing.B) {
		ch := ChatCompletionChunk{ID: "id_kKg27rnGyfH4NknTL", Object: ObjectChatChunk, Created: 1767225600, Model: "asi1-mini", SystemFingerprint: "fp_3f2a9c",
			Choices: []ChunkChoice{{Delta: Delta{Content: &text}, Logprobs: lp}}}
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = AppendJSONEvent(buf[:0], "", &ch)
		}
	})
}

// The copied server encoding and this package's write the same bytes (so
// the benchmark compares like with like).
func TestBenchEncodingsAgree(t *testing.T) {
	var w srvWriter
	w.frame(srvChunk{ID: "id_1", Object: ObjectChatChunk, Created: 1, Model: "m", SystemFingerprint: "fp", Usage: RawNull})
	enc := NewChunkEncoder(ChatCompletionChunk{ID: "id_1", Object: ObjectChatChunk, Created: 1, Model: "m", SystemFingerprint: "fp", Usage: RawNull})
	for _, text := range benchTexts {
		for _, thought := range []bool{false, true} {
			want, _ := w.appendTextChunk(nil, text, thought)
			if got := enc.AppendText(nil, text, thought); !bytes.Equal(got, want) {
				t.Errorf("%q %v:\n got %s\nwant %s", text, thought, got, want)
			}
		}
	}
}
