package api

import (
	"testing"
)

// The chat stream's encoding hot path, one chunk at a time. The server
// writes its chunks with these (server/encode_bench_test.go measures them
// through the server's writer).

var benchTexts = map[string]string{"token": " upon", "long": "Once upon a time, there was a little girl named Lily <3"}

// BenchmarkChunkText is the chunk of nearly every token: a content delta.
func BenchmarkChunkText(b *testing.B) {
	for name, text := range benchTexts {
		b.Run(name, func(b *testing.B) {
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
	ch := ChatCompletionChunk{ID: "id_kKg27rnGyfH4NknTL", Object: ObjectChatChunk, Created: 1767225600, Model: "asi1-mini", SystemFingerprint: "fp_3f2a9c",
		Choices: []ChunkChoice{{Delta: Delta{Content: &text}, Logprobs: lp}}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendJSONEvent(buf[:0], "", &ch)
	}
}
