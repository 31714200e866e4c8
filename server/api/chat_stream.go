package api

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// ChunkEncoder writes the chunks of one chat stream as server-sent events.
// The text chunks (nearly every token of an answer) are framed by hand
// around the stream's fixed fields, byte for byte as encoding/json would
// write the ChatCompletionChunk, without reflection or allocation; every
// other chunk goes through encoding/json.
type ChunkEncoder struct {
	// head and tail frame a text chunk around its "choices".
	head, tail []byte
}

// NewChunkEncoder prepares the text chunks of a stream whose chunks all
// share base's id, object, created, model, system_fingerprint and usage
// (RawNull with include_usage). base's Choices and other raw fields must
// be unset.
func NewChunkEncoder(base ChatCompletionChunk) *ChunkEncoder {
	base.Choices = nil
	b, _ := json.Marshal(base) // plain strings and raw JSON: cannot fail
	i := bytes.Index(b, []byte(`"choices":null`))
	e := &ChunkEncoder{}
	e.head = append([]byte(dataPrefix), b[:i]...)
	e.tail = append(b[i+len(`"choices":null`):], "\n\n"...)
	return e
}

// AppendText appends the event of a content chunk, or with thought of a
// reasoning chunk ("thought" and delta.reasoning_content): the bytes that
// AppendEvent(b, "", chunk) writes for that chunk. A reasoning fragment is
// never empty (omitempty would drop it from the delta).
func (e *ChunkEncoder) AppendText(b []byte, text string, thought bool) []byte {
	b = append(b, e.head...)
	if thought {
		b = append(b, `"thought":`...)
		b = AppendQuoted(b, text)
		b = append(b, `,"choices":[{"index":0,"delta":{"reasoning_content":`...)
	} else {
		b = append(b, `"choices":[{"index":0,"delta":{"content":`...)
	}
	b = AppendQuoted(b, text)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	return append(b, e.tail...)
}

const hexDigits = "0123456789abcdef"

// AppendQuoted appends s as a JSON string exactly as encoding/json writes
// it: HTML characters (<, >, &) escaped, U+2028 and U+2029 escaped, and
// each invalid UTF-8 byte replaced by \ufffd.
func AppendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
