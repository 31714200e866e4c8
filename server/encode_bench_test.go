package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/asi1d/asi1d/engine/scheduler"
)

// The encoding hot path of chat answers, without HTTP or the scheduler:
// one server-sent event of a stream written through sseWriter (the text
// chunk of nearly every token, a chunk with logprobs, an error event), and
// one non-streamed answer built and encoded. BenchmarkServerPerToken
// measures the whole server; these isolate what the wire types cost.

// discardWriter is an http.ResponseWriter that drops what it is given.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// benchJob is a request of the benchmarks: its chunks carry "usage": null.
func benchJob(logprobs bool) *chatJob {
	return &chatJob{id: "id_kKg27rnGyfH4NknTL", created: 1767225600, model: "asi1-mini", fp: "fp_3f2a9c",
		req: &ChatRequest{Stream: true, IncludeUsage: true, Logprobs: logprobs}}
}

// benchWriter is an sseWriter that discards, framed for a's chunks.
func benchWriter(a *answer) *sseWriter {
	c, _ := gin.CreateTestContext(&discardWriter{h: http.Header{}})
	w := &sseWriter{w: c.Writer, rc: http.NewResponseController(c.Writer), timeout: 0}
	w.frame(a.base())
	return w
}

func BenchmarkEncodeChunk(b *testing.B) {
	for _, tc := range []struct {
		name string
		p    func(a *answer) part
	}{
		{"text", func(*answer) part { return part{kind: partText, text: " upon"} }},
		{"thought", func(*answer) part { return part{kind: partThought, text: " upon"} }},
		{"logprobs", func(a *answer) part {
			ev := scheduler.Event{Fragments: []scheduler.Fragment{{Text: " upon"}},
				Logprobs: []scheduler.TokenLogprob{{Text: []byte(" upon"), Logprob: -0.25,
					Top: []scheduler.Alternative{{Text: []byte(" upon"), Logprob: -0.25}, {Text: []byte(" a"), Logprob: -2}}}}}
			ps := a.chunks(ev, nil)
			return ps[len(ps)-1]
		}},
		{"finish", func(a *answer) part {
			ps := a.chunks(scheduler.Event{Done: true, Finish: scheduler.FinishStop, Usage: scheduler.Usage{PromptTokens: 12, CompletionTokens: 30}}, nil)
			return ps[len(ps)-2] // the finish chunk; the last is the usage chunk
		}},
		{"error", func(*answer) part {
			return part{kind: partError, err: newError(CodeOverloaded, "", "The server is overloaded: too many requests are waiting; retry later")}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			a := newAnswer(benchJob(tc.name == "logprobs"))
			w := benchWriter(a)
			p := tc.p(a)
			if p.kind == partChunk && len(p.ch.Choices) == 0 {
				b.Fatal("not a choice chunk")
			}
			b.ReportAllocs()
			for b.Loop() {
				w.part(&p)
			}
			if w.err != nil {
				b.Fatal(w.err)
			}
		})
	}
}

// BenchmarkEncodeCompletion is a non-streamed answer of 30 tokens, built
// from its final event and encoded.
func BenchmarkEncodeCompletion(b *testing.B) {
	for _, logprobs := range []bool{false, true} {
		name := "plain"
		if logprobs {
			name = "logprobs"
		}
		b.Run(name, func(b *testing.B) {
			j := benchJob(logprobs)
			j.req.Stream, j.req.IncludeUsage = false, false
			a := newAnswer(j)
			for range 30 {
				a.add(scheduler.Event{Fragments: []scheduler.Fragment{{Text: " upon"}},
					Logprobs: []scheduler.TokenLogprob{{Text: []byte(" upon"), Logprob: -0.25}}})
			}
			ev := scheduler.Event{Done: true, Finish: scheduler.FinishStop, Usage: scheduler.Usage{PromptTokens: 12, CompletionTokens: 30}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(a.completion(ev)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeError is a 4xx answer written by WriteError.
func BenchmarkEncodeError(b *testing.B) {
	e := badRequest(CodeInvalidValue, "temperature", "temperature must be in [0, 2], got 3")
	rec := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rec.Body.Reset()
		c, _ := gin.CreateTestContext(rec)
		WriteError(c, e)
	}
}
