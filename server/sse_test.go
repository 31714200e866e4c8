package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/server/api"
)

// The hand-framed text chunks that sseWriter writes are byte for byte what
// encoding/json makes of the chunk struct.
func TestTextChunkMatchesMarshal(t *testing.T) {
	texts := []string{"", "hello", " <b>&amp;</b> ", "quote\" back\\slash", "tab\tnl\ncr\r\x00\x1f\u2028\u2029", "\xff\xfebad utf8 \xe2\x82", "日本語 🚀"}
	for _, usage := range []bool{false, true} {
		base := api.ChatCompletionChunk{ID: "id_abc", Object: api.ObjectChatChunk, Created: 1767225600, Model: "asi1-mini\"x", SystemFingerprint: "fp_1"}
		if usage {
			base.Usage = api.RawNull
		}
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		w := &sseWriter{w: c.Writer, rc: http.NewResponseController(c.Writer)}
		w.frame(base)
		for _, text := range texts {
			for _, thought := range []bool{false, true} {
				if thought && text == "" {
					continue // reasoning fragments are never empty (omitempty would drop it)
				}
				ch := base
				tx := text
				if thought {
					ch.Thought = api.RawString(tx)
					ch.Choices = []api.ChunkChoice{{Delta: api.Delta{ReasoningContent: tx}}}
				} else {
					ch.Choices = []api.ChunkChoice{{Delta: api.Delta{Content: &tx}}}
				}
				want, err := json.Marshal(ch)
				if err != nil {
					t.Fatal(err)
				}
				rec.Body.Reset()
				kind := partText
				if thought {
					kind = partThought
				}
				w.part(&part{kind: kind, text: text})
				if w.err != nil {
					t.Fatal(w.err)
				}
				if got := rec.Body.String(); got != "data: "+string(want)+"\n\n" {
					t.Errorf("usage %v thought %v text %q:\n got %s\nwant data: %s", usage, thought, text, got, want)
				}
			}
		}
	}
}
