package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asi1d/asi1d/server/api"
)

// Reading a streamed answer: its events, chunk times and usage.
// readStream reads server-sent events until [DONE].

func (g *gen) readStream(body io.Reader, r *RequestResult) {
	sr := api.NewSSEReader(body)
	for {
		ev, err := sr.Next()
		if err != nil {
			if r.ErrorKind == "" {
				r.ErrorKind, r.Error = ErrTruncated, "stream ended without [DONE]"
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					r.Error = err.Error()
				}
			}
			return
		}
		if g.event(ev.Data, time.Now(), r) {
			break
		}
	}
	if !r.HasUsage {
		r.CompletionTokens = r.Chunks
	}
	g.finishTiming(r)
}

// event handles one event's data; it reports [DONE].
func (g *gen) event(data []byte, now time.Time, r *RequestResult) bool {
	if string(data) == api.DoneData {
		return true
	}
	if c, ok := scanChunk(data); ok && !r.keepText {
		if c.text {
			r.chunk(now)
		}
		if c.finish != "" {
			r.Finish = c.finish
		}
		return false
	}
	ch, err := api.DecodeChunk(data)
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		if r.ErrorKind == "" {
			r.ErrorKind, r.Error = ErrStream, ae.Detail.Message
		}
		return false
	case err != nil:
		if r.ErrorKind == "" {
			r.ErrorKind, r.Error = ErrBadChunk, err.Error()
		}
		return false
	}
	if u, err := ch.UsageStats(); err != nil {
		if r.ErrorKind == "" {
			r.ErrorKind, r.Error = ErrBadChunk, fmt.Sprintf("usage: %v", err)
		}
	} else if u != nil {
		r.HasUsage = true
		r.PromptTokens, r.CompletionTokens, r.CachedTokens = u.PromptTokens, u.CompletionTokens, u.CachedTokens()
	}
	for _, c := range ch.Choices {
		text := c.Delta.Text()
		if text != "" || c.Delta.ReasoningContent != "" || c.Delta.Reasoning != "" {
			r.chunk(now)
		}
		if r.keepText {
			r.content = append(r.content, text...)
		}
		if c.FinishReason != nil {
			r.Finish = *c.FinishReason
		}
	}
	return false
}

// chunk records the arrival of a chunk with text.
func (r *RequestResult) chunk(now time.Time) {
	if r.first.IsZero() {
		r.first = now
		if r.onFirst != nil {
			r.onFirst(now)
		}
	} else {
		r.gaps = append(r.gaps, now.Sub(r.last))
	}
	r.last = now
	r.Chunks++
}

// scanned is what the fast path reads from a chunk.
type scanned struct {
	text   bool   // a non-empty content or reasoning delta
	finish string // finish_reason, "" when null
}

// scanChunk reads the common chunk (one choice, a text delta, no usage, no
// error) without decoding the JSON, which costs several microseconds a
// chunk: the client shares the CPU with the server in bench compare. It
// relies on a JSON property: a quote inside a string is escaped, so a key
// such as "content": can only appear as a key. It declines (ok false) every
// chunk it is not sure of; json.Unmarshal then reads it.
func scanChunk(data []byte) (c scanned, ok bool) {
	if bytes.Contains(data, []byte(`"usage":{`)) || bytes.Contains(data, []byte(`"error"`)) ||
		bytes.Count(data, []byte(`"delta":`)) != 1 || bytes.Count(data, []byte(`"finish_reason":`)) != 1 {
		return c, false
	}
	for _, key := range [][]byte{[]byte(`"content":`), []byte(`"reasoning_content":`), []byte(`"reasoning":`)} {
		switch v := valueAfter(data, key); {
		case v == nil, bytes.HasPrefix(v, []byte("null")), bytes.HasPrefix(v, []byte(`""`)):
		case v[0] == '"':
			c.text = true
		default:
			return c, false
		}
	}
	switch v := valueAfter(data, []byte(`"finish_reason":`)); {
	case bytes.HasPrefix(v, []byte("null")):
	case len(v) > 1 && v[0] == '"':
		end := bytes.IndexByte(v[1:], '"')
		if end < 0 || bytes.IndexByte(v[1:1+end], '\\') >= 0 {
			return c, false
		}
		c.finish = string(v[1 : 1+end])
	default:
		return c, false
	}
	return c, true
}

// valueAfter returns data after the first occurrence of key and any
// whitespace; nil when key is absent.
func valueAfter(data, key []byte) []byte {
	i := bytes.Index(data, key)
	if i < 0 {
		return nil
	}
	v := data[i+len(key):]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '\n' || v[0] == '\r') {
		v = v[1:]
	}
	return v
}

func (g *gen) finishTiming(r *RequestResult) {
	if r.first.IsZero() {
		return
	}
	r.TTFT = ms(r.first.Sub(r.start))
	if n := r.CompletionTokens; n > 1 && r.last.After(r.first) {
		span := r.last.Sub(r.first)
		r.ITL = ms(span) / float64(n-1)
		r.StreamTokS = float64(n-1) / span.Seconds()
	}
}
