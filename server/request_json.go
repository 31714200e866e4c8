package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The strict JSON reader under request decoding: the body's shape and depth,
// the kinds of values, and the typed reads that answer a wrong type with an
// error naming the field.
// decodeBody checks that body is one JSON object no deeper than maxJSONDepth
// and returns its members.

func decodeBody(body []byte) (jsonObject, *APIError) {
	trimmed := trimJSONSpace(body)
	if len(trimmed) == 0 {
		return nil, badRequest(CodeInvalidJSON, "", "request body is empty; expected a JSON object")
	}
	if jsonTooDeep(trimmed, maxJSONDepth) {
		return nil, badRequest(CodeInvalidJSON, "", "request body nests JSON deeper than %d levels", maxJSONDepth)
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return nil, badRequest(CodeInvalidJSON, "", "request body must be a JSON object, got %s", kindName(kindOf(trimmed)))
		}
		return nil, invalidJSON(json.Unmarshal(trimmed, new(json.RawMessage)))
	}
	var top jsonObject
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return nil, invalidJSON(err)
	}
	return top, nil
}

// invalidJSON describes a syntax error of the whole body.
func invalidJSON(err error) *APIError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest(CodeInvalidJSON, "", "request body is not valid JSON: %s (at byte offset %d)", se.Error(), se.Offset)
	}
	if err == nil {
		err = errors.New("unexpected input")
	}
	return badRequest(CodeInvalidJSON, "", "request body is not valid JSON: %s", err.Error())
}

// trimJSONSpace removes JSON insignificant whitespace (RFC 8259: space, tab,
// LF, CR) from both ends; other Unicode spaces are not JSON whitespace.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// jsonTooDeep reports whether b nests arrays/objects deeper than limit. It
// only tracks strings and brackets, so on invalid JSON its answer is a guess;
// either way the body is then rejected as invalid_json.
func jsonTooDeep(b []byte, limit int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// jsonKind is the JSON type of a raw value.
type jsonKind int

const (
	kindInvalid jsonKind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

// kindOf classifies a raw JSON value (already known to be valid) by its first byte.
func kindOf(raw []byte) jsonKind {
	raw = trimJSONSpace(raw)
	if len(raw) == 0 {
		return kindInvalid
	}
	switch c := raw[0]; {
	case c == 'n':
		return kindNull
	case c == 't' || c == 'f':
		return kindBool
	case c == '"':
		return kindString
	case c == '[':
		return kindArray
	case c == '{':
		return kindObject
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber
	}
	return kindInvalid
}

// kindName names a JSON type for messages.
func kindName(k jsonKind) string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindArray:
		return "array"
	case kindObject:
		return "object"
	}
	return "invalid JSON"
}

// present returns the member key of o when it is present and not null.
func (o jsonObject) present(key string) (json.RawMessage, bool) {
	raw, ok := o[key]
	if !ok || kindOf(raw) == kindNull {
		return nil, false
	}
	return raw, true
}

// shownRaw renders a raw value for an error message, truncated.
func shownRaw(raw []byte) string {
	const maxLen = 40
	s := string(trimJSONSpace(raw))
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// quotedStr renders a string value for an error message, truncated.
func quotedStr(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}

func errType(path, want string, raw []byte) *APIError {
	return badRequest(CodeInvalidType, path, "%s must be %s, got %s", path, want, kindName(kindOf(raw)))
}

func errMissing(path string) *APIError {
	return badRequest(CodeMissingRequired, path, "%s is required", path)
}

// The typed reads: each reports false when raw is not of its JSON type.

// stringValue decodes a JSON string. A string without escapes and with
// valid UTF-8 is its own bytes; any other goes through encoding/json
// (escapes, and U+FFFD for each invalid byte).
func stringValue(raw []byte) (string, bool) {
	raw = trimJSONSpace(raw)
	if kindOf(raw) != kindString {
		return "", false
	}
	if len(raw) >= 2 {
		if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner), true
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func boolValue(raw []byte) (bool, bool) {
	switch string(trimJSONSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// numberValue decodes a JSON number; one too large for float64 is ±Inf.
func numberValue(raw []byte) (float64, bool) {
	if kindOf(raw) != kindNumber {
		return 0, false
	}
	x, err := strconv.ParseFloat(string(trimJSONSpace(raw)), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return x, true
}

func objectValue(raw []byte) (jsonObject, bool) {
	if kindOf(raw) != kindObject {
		return nil, false
	}
	var o jsonObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, false
	}
	return o, true
}

func arrayValue(raw []byte) ([]json.RawMessage, bool) {
	if kindOf(raw) != kindArray {
		return nil, false
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, false
	}
	return a, true
}

// asString, asObject and asArray are the typed reads with the
// invalid_type error naming path, for the members a table row does not
// read (array items, members of several shapes).
func asString(raw []byte, path string) (string, *APIError) {
	s, ok := stringValue(raw)
	if !ok {
		return "", errType(path, "a string", raw)
	}
	return s, nil
}

func asObject(raw []byte, path string) (jsonObject, *APIError) {
	o, ok := objectValue(raw)
	if !ok {
		return nil, errType(path, "an object", raw)
	}
	return o, nil
}

func asArray(raw []byte, path string) ([]json.RawMessage, *APIError) {
	a, ok := arrayValue(raw)
	if !ok {
		return nil, errType(path, "an array", raw)
	}
	return a, nil
}

func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// intResult classifies a JSON number as an integer.
type intResult int

const (
	intOK intResult = iota
	intFractional
	intOverflow
)

// parseJSONInt converts a valid JSON number literal to an int64 exactly,
// without float rounding and without big allocations for huge exponents.
func parseJSONInt(s string) (int64, intResult) {
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	intPart, rest := s, ""
	if i := strings.IndexAny(s, ".eE"); i >= 0 {
		intPart, rest = s[:i], s[i:]
	}
	frac := ""
	if strings.HasPrefix(rest, ".") {
		rest = rest[1:]
		j := strings.IndexAny(rest, "eE")
		if j < 0 {
			j = len(rest)
		}
		frac, rest = rest[:j], rest[j:]
	}
	expNeg, expDigits := false, ""
	if rest != "" { // "e..." or "E..."
		rest = rest[1:]
		if strings.HasPrefix(rest, "-") {
			expNeg, rest = true, rest[1:]
		} else if strings.HasPrefix(rest, "+") {
			rest = rest[1:]
		}
		expDigits = strings.TrimLeft(rest, "0")
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	sig := strings.TrimRight(digits, "0")
	if sig == "" {
		return 0, intOK
	}
	// value = sig * 10^e10, e10 = exp - len(frac) + trailing zeros.
	if len(expDigits) > 9 {
		if expNeg {
			return 0, intFractional
		}
		return 0, intOverflow
	}
	exp := 0
	if expDigits != "" {
		exp, _ = strconv.Atoi(expDigits)
	}
	if expNeg {
		exp = -exp
	}
	e10 := exp - len(frac) + (len(digits) - len(sig))
	if e10 < 0 {
		return 0, intFractional
	}
	if len(sig)+e10 > 19 {
		return 0, intOverflow
	}
	lit := sig + strings.Repeat("0", e10)
	if neg {
		lit = "-" + lit
	}
	v, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return 0, intOverflow
	}
	return v, intOK
}

// asInt decodes a JSON integer: invalid_type for non-numbers and fractional
// numbers, invalid_value for integers outside int64.
func asInt(raw []byte, path string) (int64, *APIError) {
	if kindOf(raw) != kindNumber {
		return 0, errType(path, "an integer", raw)
	}
	v, res := parseJSONInt(string(trimJSONSpace(raw)))
	switch res {
	case intFractional:
		return 0, badRequest(CodeInvalidType, path, "%s must be an integer, got %s", path, shownRaw(raw))
	case intOverflow:
		return 0, badRequest(CodeInvalidValue, path, "%s is out of range for a 64-bit integer, got %s", path, shownRaw(raw))
	}
	return v, nil
}
