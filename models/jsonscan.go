package models

import (
	"bytes"
	"encoding/json"
)

// compactToolArgs returns the compacted JSON object of arguments: raw itself,
// or, unless objectOnly, the JSON object held by the JSON string raw, or {}
// for null.
func compactToolArgs(raw []byte, objectOnly bool) (string, bool) {
	raw = bytes.Trim(raw, toolSpace)
	if !objectOnly {
		switch {
		case string(raw) == "null":
			return "{}", true
		case len(raw) > 0 && raw[0] == '"':
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", false
			}
			raw = bytes.Trim([]byte(s), toolSpace)
		}
	}
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return "", false
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "", false
	}
	return b.String(), true
}

// jsonScanner checks a JSON value byte by byte, as it streams, and finds
// where it ends. It accepts what encoding/json's Valid accepts (strings are
// not checked for valid UTF-8), nesting at most maxJSONDepth deep. A value
// that is a bare number only ends at the byte after it, which is not part of
// the value: callers start with "{" or "[".
//
// Why not encoding/json's Decoder: it cannot resume. A Decode that reaches
// the end of the text mid-value returns io.ErrUnexpectedEOF, and the error
// is sticky, so telling "not finished yet" from "impossible" at each Push
// means decoding the whole value again from its start: quadratic in the
// call's length. Measured (BenchmarkToolCallHermes*, 4-byte tokens): a
// typical call 6x slower, 4 KB of arguments 100x (20 ms, 7.8 MB allocated),
// 32 KB 640x (1.4 s, 363 MB), where this scanner stays linear. The
// scanner's verdicts are checked against json.Valid by TestJSONScanner and
// FuzzToolJSONScanner; the complete value is then decoded by encoding/json
// (validateArray, callFromJSON, compactToolArgs).
type jsonScanner struct {
	stack []byte // open containers: '{' or '['
	state jsonState
	key   bool   // the string being scanned is an object key
	lit   string // jsLit: the rest of true, false or null
	hex   int    // jsHex: hex digits still expected
	done  bool   // the value is complete; no byte may follow
}

type jsonState int

const (
	jsValue    jsonState = iota // a value, after optional whitespace
	jsArrFirst                  // after "[": a value or "]"
	jsObjFirst                  // after "{": a key or "}"
	jsObjKey                    // after "," in an object: a key
	jsColon                     // after a key: ":"
	jsAfter                     // after a value in a container: "," or the close
	jsString                    // inside a string
	jsEsc                       // after a backslash in a string
	jsHex                       // in the hex digits of \u
	jsLit                       // inside true, false or null
	jsNumMinus                  // after "-": a digit
	jsNumZero                   // after a leading 0
	jsNumInt                    // in the integer digits
	jsNumDot                    // after ".": a digit
	jsNumFrac                   // in the fraction digits
	jsNumE                      // after "e": sign or digit
	jsNumESign                  // after the exponent sign: a digit
	jsNumExp                    // in the exponent digits
)

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// step consumes c and reports whether the text is still a JSON value prefix.
func (s *jsonScanner) step(c byte) bool {
	if s.done {
		return false
	}
	space := c == ' ' || c == '\t' || c == '\n' || c == '\r'
	digit := '0' <= c && c <= '9'
	for {
		switch s.state {
		case jsValue, jsArrFirst:
			switch {
			case space:
			case c == ']' && s.state == jsArrFirst:
				return s.close(c)
			case c == '{' || c == '[':
				if len(s.stack) >= maxJSONDepth {
					return false
				}
				s.stack = append(s.stack, c)
				s.state = jsObjFirst
				if c == '[' {
					s.state = jsArrFirst
				}
			case c == '"':
				s.state, s.key = jsString, false
			case c == '-':
				s.state = jsNumMinus
			case c == '0':
				s.state = jsNumZero
			case digit:
				s.state = jsNumInt
			case c == 't':
				s.state, s.lit = jsLit, "rue"
			case c == 'f':
				s.state, s.lit = jsLit, "alse"
			case c == 'n':
				s.state, s.lit = jsLit, "ull"
			default:
				return false
			}
			return true
		case jsObjFirst, jsObjKey:
			switch {
			case space:
			case c == '}' && s.state == jsObjFirst:
				return s.close(c)
			case c == '"':
				s.state, s.key = jsString, true
			default:
				return false
			}
			return true
		case jsColon:
			switch {
			case space:
			case c == ':':
				s.state = jsValue
			default:
				return false
			}
			return true
		case jsAfter:
			switch {
			case space:
			case c == ',':
				s.state = jsValue
				if s.stack[len(s.stack)-1] == '{' {
					s.state = jsObjKey
				}
			case c == '}' || c == ']':
				return s.close(c)
			default:
				return false
			}
			return true
		case jsString:
			switch {
			case c == '"':
				if s.key {
					s.state = jsColon
				} else {
					s.valueEnd()
				}
			case c == '\\':
				s.state = jsEsc
			case c < 0x20:
				return false
			}
			return true
		case jsEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.state = jsString
			case 'u':
				s.state, s.hex = jsHex, 4
			default:
				return false
			}
			return true
		case jsHex:
			if !(digit || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
			if s.hex--; s.hex == 0 {
				s.state = jsString
			}
			return true
		case jsLit:
			if c != s.lit[0] {
				return false
			}
			if s.lit = s.lit[1:]; s.lit == "" {
				s.valueEnd()
			}
			return true
		case jsNumMinus:
			switch {
			case c == '0':
				s.state = jsNumZero
			case digit:
				s.state = jsNumInt
			default:
				return false
			}
			return true
		case jsNumDot, jsNumESign:
			if !digit {
				return false
			}
			s.state++ // jsNumFrac or jsNumExp
			return true
		case jsNumE:
			if c == '+' || c == '-' {
				s.state = jsNumESign
				return true
			}
			if !digit {
				return false
			}
			s.state = jsNumExp
			return true
		case jsNumZero, jsNumInt, jsNumFrac, jsNumExp:
			switch {
			case digit && s.state != jsNumZero:
				return true
			case c == '.' && (s.state == jsNumZero || s.state == jsNumInt):
				s.state = jsNumDot
				return true
			case (c == 'e' || c == 'E') && s.state != jsNumExp:
				s.state = jsNumE
				return true
			}
			// The number ended before c; c comes after the value.
			if len(s.stack) == 0 {
				s.done = true
				return false
			}
			s.state = jsAfter
			continue
		}
		return false
	}
}

// close closes the innermost container with c, which must match it.
func (s *jsonScanner) close(c byte) bool {
	n := len(s.stack)
	if n == 0 || s.stack[n-1] != c-2 { // '{' == '}'-2, '[' == ']'-2
		return false
	}
	s.stack = s.stack[:n-1]
	s.valueEnd()
	return true
}

// valueEnd records the end of a value.
func (s *jsonScanner) valueEnd() {
	if len(s.stack) == 0 {
		s.done = true
	} else {
		s.state = jsAfter
	}
}
