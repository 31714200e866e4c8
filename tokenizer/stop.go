package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// StopMatcher finds stop strings in streamed text and holds back any tail that
// could still become one, so stop text never reaches the client.
//
// Which match wins: the stop string that completes first in the text, that
// is, the match whose end is earliest; when several matches end at the same
// byte, the one that starts first (the longest) wins. Output is the text
// before the winning match. This rule, unlike "the match that starts first",
// can be decided the moment a stop string completes, so generation ends at
// once and the result does not depend on how the text was split into Push
// calls. Both rules give the same output unless one stop string contains
// another strictly inside it (stops "abc" and "b" on "abc" give "a" here).
// A stop string that is a prefix of another ("ab" and "abc") ends the stream
// as soon as the shorter one completes; the output is the same either way.
//
// Boundaries: text and stop strings are expected to be valid UTF-8 (text as
// Detokenizer produces it). Then every string Push or Flush returns starts and
// ends on a character boundary, even when Push is given a character split over
// two calls: an incomplete character at the end of the text is held back like
// a partial stop string.
//
// Cost: each Push scans only the held-back tail (shorter than the longest stop
// string, plus at most 3 bytes) and the new text, never the whole output.
//
// A StopMatcher belongs to one request and is not safe for concurrent use.
type StopMatcher struct {
	stops   []string
	maxLen  int    // length of the longest stop string
	held    string // tail that may still become a stop string
	stopped bool
	matched string
}

// NewStopMatcher returns a matcher for the given stop strings. Empty strings
// are ignored; with no non-empty stop strings (nil included) Push returns its
// text unchanged and never stops. The slice is copied.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s == "" {
			continue
		}
		m.stops = append(m.stops, s)
		m.maxLen = max(m.maxLen, len(s))
	}
	return m
}

// Push consumes the next piece of generated text. It returns the text that is
// safe to emit now and whether a stop string has completed. When one
// completes, out is the remaining text before the winning match (see
// StopMatcher), stopped is true, and the stop string and everything after it
// are dropped. Once stopped, every later Push returns "", true. A tail that
// is a proper prefix of some stop string (or an incomplete UTF-8 character)
// is held back until later text decides it. Not safe for concurrent use.
func (m *StopMatcher) Push(text string) (out string, stopped bool) {
	if m.stopped {
		return "", true
	}
	if len(m.stops) == 0 {
		return text, false
	}
	buf := m.held + text
	// The held tail contains no complete match (it would have stopped us), and
	// every match that can complete now starts inside it or in text, so one
	// search per stop string over buf finds the earliest-ending match.
	start, end := -1, 0
	for _, s := range m.stops {
		i := strings.Index(buf, s)
		if i < 0 {
			continue
		}
		if e := i + len(s); start < 0 || e < end || (e == end && i < start) {
			start, end, m.matched = i, e, s
		}
	}
	if start >= 0 {
		m.stopped, m.held = true, ""
		return buf[:start], true
	}
	h := m.holdFrom(buf)
	// Clone so a small held tail does not pin a large text in memory.
	m.held = strings.Clone(buf[h:])
	return buf[:h], false
}

// holdFrom returns the earliest position from which buf must be held back:
// the start of the longest suffix that is a proper prefix of a stop string,
// moved back over an incomplete trailing character.
func (m *StopMatcher) holdFrom(buf string) int {
	h := len(buf)
	for q := max(0, len(buf)-m.maxLen+1); q < len(buf); q++ {
		if m.isPrefix(buf[q:]) {
			h = q
			break
		}
	}
	return h - IncompleteUTF8Tail(buf[:h])
}

// isPrefix reports whether tail is a proper prefix of some stop string.
func (m *StopMatcher) isPrefix(tail string) bool {
	for _, s := range m.stops {
		if len(tail) < len(s) && s[:len(tail)] == tail {
			return true
		}
	}
	return false
}

// Flush ends a stream that did not stop: it returns the held-back tail (empty
// once stopped) and forgets it. Not safe for concurrent use.
func (m *StopMatcher) Flush() string {
	if m.stopped {
		return ""
	}
	s := m.held
	m.held = ""
	return s
}

// Stopped reports whether a stop string has completed. Not safe for
// concurrent use.
func (m *StopMatcher) Stopped() bool { return m.stopped }

// Matched returns the stop string that ended the stream (the winner under the
// rule in StopMatcher), or "" if none has. Not safe for concurrent use.
func (m *StopMatcher) Matched() string { return m.matched }

// IncompleteUTF8Tail returns the length of an incomplete UTF-8 character
// at the end of s: a lead byte followed by fewer continuation bytes than it
// needs (0 to 3). Invalid bytes are not incomplete: waiting would not fix
// them. Streaming parsers (this matcher, models' reasoning and tool-call
// parsers) hold such a tail back until the character is whole.
func IncompleteUTF8Tail(s string) int {
	for i := len(s) - 1; i >= 0 && i >= len(s)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(s[i]) {
			if utf8.FullRuneInString(s[i:]) {
				return 0
			}
			return len(s) - i
		}
	}
	return 0
}
