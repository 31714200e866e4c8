package models

import (
	"fmt"
	"sync"
)

// A stringFormat is a JSON Schema format that asi1d enforces with its own
// automaton (the converter of llama.cpp knows only dates, times and UUIDs).
// The regular expression, fully anchored, is what the grammar accepts: a
// subset of the valid values where the standard is wider, chosen so that
// the common validators (ajv-formats, pydantic, zod's own patterns) accept
// every answer. maxLen caps the length of an answer; it is what keeps
// length limits of the standard (a hostname's 253 characters, a label's 63)
// true without counting in the grammar.
type stringFormat struct {
	re     string
	maxLen int // -1: no cap
}

const (
	hostLabel = `[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?`
	dec8      = `(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])`
	ipv4Re    = dec8 + `\.` + dec8 + `\.` + dec8 + `\.` + dec8
	h16       = `[0-9A-Fa-f]{1,4}`
	// uriChar is an unreserved or sub-delims character of RFC 3986, or a
	// percent-encoded octet; pchar adds ":" and "@".
	uriChar = `(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})`
	pchar   = `(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})`
)

// ipv6Re is RFC 4291's text form (RFC 3986's IPv6address) without an
// embedded IPv4 address: eight groups, or fewer around one "::".
var ipv6Re = func() string {
	alts := []string{`(?:` + h16 + `:){7}` + h16}
	// k groups before "::", at most 7-k after (k = 0..7).
	for k := 0; k <= 7; k++ {
		before := ""
		if k > 0 {
			before = fmt.Sprintf(`(?:%s:){%d}%s`, h16, k-1, h16)
		}
		after := ""
		if m := 7 - k; m > 0 {
			after = fmt.Sprintf(`(?:%s(?::%s){0,%d})?`, h16, h16, m-1)
		}
		alts = append(alts, before+`::`+after)
	}
	s := alts[0]
	for _, a := range alts[1:] {
		s += "|" + a
	}
	return `(?:` + s + `)`
}()

var stringFormats = map[string]stringFormat{
	// A dot-atom local part of letters, digits, "_", "+" and "-", "@", and a
	// domain of RFC 1123 labels with at least one dot and a top-level label
	// of two or more letters; 64 characters in all at most, which keeps the
	// local part within RFC 5321's 64 and the domain within 63.
	"email": {re: `^[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@(?:` + hostLabel + `\.)+[A-Za-z]{2,}$`, maxLen: 64},
	// RFC 1123 labels separated by dots, 63 characters in all at most, so
	// that every label is within 63 and the name within 253.
	"hostname": {re: `^` + hostLabel + `(?:\.` + hostLabel + `)*$`, maxLen: 63},
	// Dotted decimal, each octet 0-255 without leading zeros.
	"ipv4": {re: `^` + ipv4Re + `$`, maxLen: -1},
	"ipv6": {re: `^` + ipv6Re + `$`, maxLen: -1},
	// pydantic's IPvAnyAddress: either of the two.
	"ipvanyaddress": {re: `^(?:` + ipv4Re + `|` + ipv6Re + `)$`, maxLen: -1},
	// RFC 3986 URI: scheme ":" hier-part ["?" query] ["#" fragment], the
	// authority's host being a registered name or an IPv4 address (IP
	// literals in brackets are not written) and the hier-part not empty
	// (ajv-formats, like most validators, refuses "scheme:" alone).
	"uri": {re: `^[A-Za-z][A-Za-z0-9+.-]*:` +
		`(?://(?:` + `(?:` + uriChar + `|:)*@)?` + `(?:` + ipv4Re + `|` + uriChar + `*)` + `(?::[0-9]*)?` + `(?:/` + pchar + `*)*` +
		`|/(?:` + pchar + `+(?:/` + pchar + `*)*)?` +
		`|` + pchar + `+(?:/` + pchar + `*)*)` +
		`(?:\?(?:` + pchar + `|[/?])*)?(?:#(?:` + pchar + `|[/?])*)?$`, maxLen: -1},
}

// uriLengthCap bounds the window of a uri with maxLength: the automaton
// paired with every count up to maxLength would otherwise be too large, and
// a shorter cap keeps every answer valid.
const uriLengthCap = 512

var (
	formatDFAs   = map[string]*dfa{}
	formatDFAsMu sync.Mutex
)

// formatDFA returns the automaton of a format in stringFormats, built once.
func formatDFA(name string) (*dfa, error) {
	formatDFAsMu.Lock()
	defer formatDFAsMu.Unlock()
	if d, ok := formatDFAs[name]; ok {
		return d, nil
	}
	f, ok := stringFormats[name]
	if !ok {
		return nil, fmt.Errorf("unknown format %q", name)
	}
	d, err := compileDFA(f.re)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	formatDFAs[name] = d
	return d, nil
}
