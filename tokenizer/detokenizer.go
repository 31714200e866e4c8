// Package tokenizer turns sampled token pieces into text that is safe to
// stream: an incremental UTF-8-safe Detokenizer and a StopMatcher that holds
// back text that could still become a stop string.
//
// Nothing in this package is safe for concurrent use: each request owns its
// own Detokenizer and StopMatcher, used by one goroutine at a time.
package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// replacement is what an invalid byte sequence becomes (U+FFFD).
const replacement = "\uFFFD"

// Detokenizer assembles the byte pieces of sampled tokens into valid UTF-8
// text. Byte-fallback tokens split a character over several pieces (for
// example "中" as <0xE4><0xB8><0xAD>), so a piece on its own is not always
// printable; the Detokenizer holds back an incomplete trailing sequence until
// the next piece completes it.
//
// The exact rule: for every stream (the pieces added since the zero value or
// since the last Flush), the concatenation of all strings returned by Add and
// the final Flush equals
//
//	strings.ToValidUTF8(string(allBytes), "\uFFFD")
//
// that is, valid characters pass through unchanged and each maximal run of
// invalid bytes becomes a single U+FFFD, even when the run spans pieces. An
// incomplete sequence at the very end counts as invalid. Bytes are held back
// only while they are a proper prefix of a valid UTF-8 encoding (at most 3
// bytes, as utf8.FullRune judges); bytes that can never become valid (0xFF, a
// continuation byte without a lead byte, an overlong or surrogate prefix such
// as 0xE0 0x80 or 0xED 0xA0) are replaced at once. After each Add the text
// returned so far equals the rule above applied to all bytes except the
// held-back tail.
//
// The zero value is ready to use. A Detokenizer belongs to one request and is
// not safe for concurrent use.
type Detokenizer struct {
	pending [utf8.UTFMax - 1]byte // incomplete but still valid prefix of a character
	n       int                   // bytes used in pending
	invalid bool                  // the last output came from an invalid run (U+FFFD written)
}

// Add appends the bytes of the next token piece and returns the text that is
// now complete: never half a UTF-8 character, and always valid UTF-8. An
// incomplete trailing sequence (at most 3 bytes) is kept until a later piece
// completes it or shows it invalid. The piece is not retained. Not safe for
// concurrent use.
func (d *Detokenizer) Add(piece []byte) string {
	if d.n == 0 && utf8.Valid(piece) {
		// Fast path: the common case of a piece made of whole characters.
		if len(piece) > 0 {
			d.invalid = false
		}
		return string(piece)
	}
	buf := piece
	if d.n > 0 {
		buf = make([]byte, 0, d.n+len(piece))
		buf = append(buf, d.pending[:d.n]...)
		buf = append(buf, piece...)
		d.n = 0
	}
	var sb strings.Builder
	sb.Grow(len(buf) + len(replacement))
	for i := 0; i < len(buf); {
		if c := buf[i]; c < utf8.RuneSelf {
			sb.WriteByte(c)
			d.invalid = false
			i++
			continue
		}
		r, size := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(buf[i:]) {
				// A valid prefix cut by the end of the piece: wait for the rest.
				// FullRune is false only for fewer than UTFMax bytes, so this fits.
				d.n = copy(d.pending[:], buf[i:])
				break
			}
			if !d.invalid {
				sb.WriteString(replacement)
				d.invalid = true
			}
			i++
			continue
		}
		sb.Write(buf[i : i+size])
		d.invalid = false
		i += size
	}
	return sb.String()
}

// Flush ends the stream: it returns what is still held back, which is an
// incomplete sequence and so becomes U+FFFD (or nothing, when it continues a
// run of invalid bytes already replaced), and resets the Detokenizer to its
// zero value so it could start a new stream. Not safe for concurrent use.
func (d *Detokenizer) Flush() string {
	var s string
	if d.n > 0 && !d.invalid {
		s = replacement
	}
	*d = Detokenizer{}
	return s
}
