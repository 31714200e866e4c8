package server

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Request decoding is a table of field rules per endpoint applied by one
// engine (apply) on top of the strict reader (request_json.go). A row
// names a member of a JSON object, the JSON type it takes, whether it is
// required, the checks on its value and what it sets; the engine answers
// every violation with the endpoint's 400 naming the member's JSON path:
//
//	absent or null, required   missing_required  "P is required"
//	wrong JSON type            invalid_type      "P must be <want>, got <type>"
//	fraction for an integer    invalid_type      "P must be an integer, got <raw>"
//	integer beyond int64       invalid_value     "P is out of range for a 64-bit integer, got <raw>"
//	number outside [lo, hi]    invalid_value     "P must be between lo and hi, got <raw>"
//	"" or [] where empty says  invalid_value     "P <empty>"
//	then the row's valid (a value rule: enum, minimum) and check (a rule
//	that reads what earlier rows set), then set, then the sub-table of an
//	object member.
//
// Rows are applied in table order and the first violation wins, so a
// table's order is the order in which a body's errors are reported. A
// null member is an absent one. Members no row names are ignored.

// jsonType is the JSON type a row takes.
type jsonType int

const (
	// tAny takes any JSON type: the row's check reads v.raw (a member
	// with several shapes, such as stop's string or array).
	tAny jsonType = iota
	tString
	tBool
	// tNumber is a float in [lo, hi].
	tNumber
	// tInt is an integer that fits int64 (no fraction; "2.0" and "1e3" are integers).
	tInt
	tObject
	tArray
)

// field is one row of a decoding table whose rows set a *T.
type field[T any] struct {
	// name is the member's name; the param of its errors is the object's path, ".", name.
	name string
	// typ is the JSON type the member must have; want overrides its
	// wording in the invalid_type message ("a JSON Schema object").
	typ  jsonType
	want string
	// required: absent or null is missing_required. requiredIf makes it
	// so when it returns true.
	required   bool
	requiredIf func(*T) bool
	// when skips the row unless it returns true (a member read only in
	// some shapes, such as an assistant message's tool_calls).
	when func(*T) bool
	// lo and hi bound a tNumber.
	lo, hi float64
	// empty, when set, refuses "" and [] with "P <empty>".
	empty string
	// valid is a rule on the value alone; check a rule that may read what
	// earlier rows set in the target. Both run before set.
	valid func(v val, at loc) *APIError
	check func(dst *T, v val, at loc) *APIError
	// set stores the value.
	set func(dst *T, v val)
	// sub is the table of a tObject member's own members, applied to the
	// same target after set.
	sub []field[T]
}

// val is a member's value as its row's type reads it; raw is always set.
type val struct {
	raw json.RawMessage
	str string
	b   bool
	num float64
	i   int64
	obj jsonObject
	arr []json.RawMessage
}

// loc is where a member sits: the path of its object ("" at the top) and
// its name. Its String is the param of the member's errors, built only
// when an error needs it.
type loc struct{ obj, name string }

func (l loc) String() string {
	if l.obj == "" {
		return l.name
	}
	return l.obj + "." + l.name
}

// apply checks the members of o, the object at path obj, against table
// in order and sets dst.
func apply[T any](o jsonObject, obj string, table []field[T], dst *T) *APIError {
	for i := range table {
		f := &table[i]
		if f.when != nil && !f.when(dst) {
			continue
		}
		at := loc{obj, f.name}
		raw, ok := o.present(f.name)
		if !ok {
			if f.required || f.requiredIf != nil && f.requiredIf(dst) {
				return errMissing(at.String())
			}
			continue
		}
		v, aerr := read(raw, f.typ, f.want, f.lo, f.hi, at)
		if aerr != nil {
			return aerr
		}
		if f.empty != "" && (f.typ == tString && v.str == "" || f.typ == tArray && len(v.arr) == 0) {
			return badRequest(CodeInvalidValue, at.String(), "%s %s", at, f.empty)
		}
		if f.valid != nil {
			if aerr := f.valid(v, at); aerr != nil {
				return aerr
			}
		}
		if f.check != nil {
			if aerr := f.check(dst, v, at); aerr != nil {
				return aerr
			}
		}
		if f.set != nil {
			f.set(dst, v)
		}
		if f.sub != nil {
			if aerr := apply(v.obj, at.String(), f.sub, dst); aerr != nil {
				return aerr
			}
		}
	}
	return nil
}

// wants are the invalid_type wordings of each type.
var wants = [...]string{tString: "a string", tBool: "a boolean", tNumber: "a number", tInt: "an integer", tObject: "an object", tArray: "an array"}

// read reads raw as typ with the strict reader's rules.
func read(raw json.RawMessage, typ jsonType, want string, lo, hi float64, at loc) (val, *APIError) {
	v := val{raw: raw}
	if typ == tAny {
		return v, nil
	}
	if want == "" {
		want = wants[typ]
	}
	ok := true
	switch typ {
	case tString:
		v.str, ok = stringValue(raw)
	case tBool:
		v.b, ok = boolValue(raw)
	case tNumber:
		v.num, ok = numberValue(raw)
		if ok && (math.IsNaN(v.num) || v.num < lo || v.num > hi) {
			return v, badRequest(CodeInvalidValue, at.String(), "%s must be between %s and %s, got %s", at, fmtNum(lo), fmtNum(hi), shownRaw(raw))
		}
	case tInt:
		if kindOf(raw) != kindNumber {
			ok = false
			break
		}
		var res intResult
		v.i, res = parseJSONInt(string(trimJSONSpace(raw)))
		switch res {
		case intFractional:
			return v, badRequest(CodeInvalidType, at.String(), "%s must be an integer, got %s", at, shownRaw(raw))
		case intOverflow:
			return v, badRequest(CodeInvalidValue, at.String(), "%s is out of range for a 64-bit integer, got %s", at, shownRaw(raw))
		}
	case tObject:
		v.obj, ok = objectValue(raw)
	case tArray:
		v.arr, ok = arrayValue(raw)
	}
	if !ok {
		return v, errType(at.String(), want, raw)
	}
	return v, nil
}

// Value rules shared by the tables.

// atLeast is an integer minimum: "P must be at least n, got v".
func atLeast(n int64) func(val, loc) *APIError {
	return func(v val, at loc) *APIError {
		if v.i < n {
			return badRequest(CodeInvalidValue, at.String(), "%s must be at least %d, got %d", at, n, v.i)
		}
		return nil
	}
}

// within bounds an integer: "P must be between lo and hi, got <raw>".
func within(lo, hi int64) func(val, loc) *APIError {
	return func(v val, at loc) *APIError {
		if v.i < lo || v.i > hi {
			return badRequest(CodeInvalidValue, at.String(), "%s must be between %d and %d, got %s", at, lo, hi, shownRaw(v.raw))
		}
		return nil
	}
}

// enum is the set of a string member's values: the served ones, and
// those known but not served (unsupported_value with unsupportedMsg, %s
// the quoted value; every other value when allOthers). Any other value is
// invalid_value: `P must be "a", got "x"` for one value, `P must be "a" or
// "b", got "x"` for two, `P must be one of a, b, c; got "x"` for more.
type enum struct {
	values         []string
	unsupported    []string
	allOthers      bool
	unsupportedMsg string
}

func (e enum) valid(v val, at loc) *APIError {
	if slices.Contains(e.values, v.str) {
		return nil
	}
	if e.allOthers || slices.Contains(e.unsupported, v.str) {
		return badRequest(CodeUnsupportedValue, at.String(), e.unsupportedMsg, quotedStr(v.str))
	}
	var must string
	switch len(e.values) {
	case 1:
		must = fmt.Sprintf("%q", e.values[0])
	case 2:
		must = fmt.Sprintf("%q or %q", e.values[0], e.values[1])
	default:
		return badRequest(CodeInvalidValue, at.String(), "%s must be one of %s; got %s", at, strings.Join(e.values, ", "), quotedStr(v.str))
	}
	return badRequest(CodeInvalidValue, at.String(), "%s must be %s, got %s", at, must, quotedStr(v.str))
}

// rawCopy is a member's JSON text, trimmed, in memory of its own.
func rawCopy(raw json.RawMessage) json.RawMessage {
	return append(json.RawMessage(nil), trimJSONSpace(raw)...)
}

// objects applies table to each item of items, an array of objects at
// path, into out[i].
func objects[T any](items []json.RawMessage, path string, table []field[T], out []T) *APIError {
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		o, aerr := asObject(item, p)
		if aerr != nil {
			return aerr
		}
		if aerr := apply(o, p, table, &out[i]); aerr != nil {
			return aerr
		}
	}
	return nil
}
