package server

import (
	"encoding/json"
	"testing"
)

// The hand-framed text chunks are byte for byte what encoding/json makes of
// the chunk struct.
func TestTextChunkMatchesMarshal(t *testing.T) {
	texts := []string{"", "hello", " <b>&amp;</b> ", "quote\" back\\slash", "tab\tnl\ncr\r\x00\x1f\u2028\u2029", "\xff\xfebad utf8 \xe2\x82", "日本語 🚀"}
	for _, usage := range []bool{false, true} {
		base := chunk{ID: "id_abc", Object: "chat.completion.chunk", Created: 1767225600, Model: "asi1-mini\"x", SystemFingerprint: "fp_1"}
		if usage {
			base.Usage = rawNull
		}
		var w sseWriter
		w.frame(base)
		for _, text := range texts {
			for _, thought := range []bool{false, true} {
				if thought && text == "" {
					continue // reasoning fragments are never empty (omitempty would drop it)
				}
				ch := base
				tx := text
				if thought {
					ch.Thought = &tx
					ch.Choices = []chunkChoice{{Delta: delta{ReasoningContent: tx}}}
				} else {
					ch.Choices = []chunkChoice{{Delta: delta{Content: &tx}}}
				}
				want, err := json.Marshal(ch)
				if err != nil {
					t.Fatal(err)
				}
				got, err := w.appendTextChunk(nil, text, thought)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != "data: "+string(want)+"\n\n" {
					t.Errorf("usage %v thought %v text %q:\n got %s\nwant data: %s", usage, thought, text, got, want)
				}
			}
		}
	}
}
