package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LoweredSchema is a JSON Schema in which the parts that llama.cpp's
// converter does not enforce (the formats in stringFormats, a pattern with
// minLength/maxLength, bounds on a number) stand replaced by placeholder
// constants, with the GBNF rules that enforce them. Convert Schema with the
// converter, then pass its grammar through Splice.
type LoweredSchema struct {
	Schema []byte
	parts  []loweredPart
}

type loweredPart struct {
	literal string // the placeholder as the converter writes it
	expr    string // what replaces it
	rules   []string
}

// LowerSchema lowers schema (which must have passed CheckSchema, or be
// checked by it). Errors are *SchemaError. Property order is kept.
func LowerSchema(schema []byte) (*LoweredSchema, error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	root, err := decodeOrdered(dec)
	if err != nil {
		return nil, &SchemaError{Reason: "not valid JSON: " + err.Error()}
	}
	nonce := "asi1dlow"
	for bytes.Contains(schema, []byte(nonce)) {
		nonce += "x"
	}
	l := &lowerer{nonce: nonce}
	root, err = l.visit(root, "")
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("lowering the schema: %w", err)
	}
	return &LoweredSchema{Schema: out, parts: l.parts}, nil
}

// Splice replaces the placeholders in a grammar converted from l.Schema by
// the rules that enforce what they stand for.
func (l *LoweredSchema) Splice(gbnf string) (string, error) {
	if len(l.parts) == 0 {
		return gbnf, nil
	}
	var b strings.Builder
	for _, p := range l.parts {
		if !strings.Contains(gbnf, p.literal) {
			return "", fmt.Errorf("lowered schema: the converter's grammar lacks the placeholder %s", p.literal)
		}
		gbnf = strings.ReplaceAll(gbnf, p.literal, p.expr)
		for _, r := range p.rules {
			b.WriteString(r)
			b.WriteByte('\n')
		}
	}
	if !strings.HasSuffix(gbnf, "\n") {
		gbnf += "\n"
	}
	return gbnf + b.String(), nil
}

type lowerer struct {
	nonce string
	parts []loweredPart
}

// schemaChildren are the keywords whose values hold subschemas: in a map
// of names (true), or as one schema or an array of them (false).
var schemaChildren = map[string]bool{
	"properties": true, "$defs": true, "definitions": true,
	"items": false, "prefixItems": false, "additionalProperties": false, "anyOf": false, "oneOf": false,
}

func (l *lowerer) visit(v any, path string) (any, error) {
	s, ok := v.(oobject)
	if !ok {
		return v, nil
	}
	for i := range s {
		k := s[i].key
		named, ok := schemaChildren[k]
		if !ok {
			continue
		}
		p := path + "/" + escapePointer(k)
		var err error
		switch c := s[i].val.(type) {
		case oobject:
			if named {
				for j := range c {
					if c[j].val, err = l.visit(c[j].val, p+"/"+escapePointer(c[j].key)); err != nil {
						return nil, err
					}
				}
			} else if s[i].val, err = l.visit(c, p); err != nil {
				return nil, err
			}
		case []any:
			if !named {
				for j := range c {
					if c[j], err = l.visit(c[j], p+"/"+strconv.Itoa(j)); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return l.lower(s, path)
}

// lower replaces s by a placeholder when the converter would not enforce
// all of it.
func (l *lowerer) lower(s oobject, path string) (any, error) {
	typ, _ := s.get("type")
	_, hasEnum := s.get("enum")
	_, hasConst := s.get("const")
	if hasEnum || hasConst {
		return s, nil // the converter writes the listed values
	}
	isString := typ == nil || typ == "string"
	format, _ := s.get("format")
	pattern, hasPattern := s.get("pattern")
	minLen, hasMin := s.get("minLength")
	maxLen, hasMax := s.get("maxLength")
	if f, ok := format.(string); ok && isString {
		if _, ours := stringFormats[f]; ours {
			d, err := formatDFA(f)
			if err != nil {
				return nil, err
			}
			if p, ok := pattern.(string); ok {
				// A pattern RE2 reads (no lookaround) is enforced as well;
				// one it cannot read is left to the format (docs/API.md).
				if pd, perr := compileDFA(p); perr == nil {
					if d, err = d.intersect(pd); err != nil {
						return nil, &SchemaError{Path: path + "/pattern", Keyword: "pattern", Reason: "together with format " + f + ": " + err.Error()}
					}
					if d.empty() {
						return nil, &SchemaError{Path: path + "/pattern", Keyword: "pattern", Reason: "no " + f + " matches it"}
					}
				}
			}
			return l.lowerString(d, path, f, minLen, maxLen, stringFormats[f].maxLen)
		}
	}
	if p, ok := pattern.(string); ok && hasPattern && isString {
		// Patterns are read here rather than by the converter, which knows
		// neither \d, \w, \s nor unanchored patterns, nor lengths beside
		// a pattern. One RE2 cannot read is left to the converter, unless
		// a length needs enforcing too.
		d, err := compileDFA(p)
		if err == nil {
			return l.lowerString(d, path, "pattern", minLen, maxLen, -1)
		}
		if hasMin || hasMax {
			kw := "maxLength"
			if !hasMax {
				kw = "minLength"
			}
			return nil, &SchemaError{Path: path, Keyword: kw, Reason: "a length beside a pattern is enforced only when the pattern has no lookaround or backreference: " + err.Error()}
		}
	}
	if typ == "number" {
		var lows, highs []*decBound
		for _, k := range []string{"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"} {
			v, ok := s.get(k)
			if !ok {
				continue
			}
			b, err := parseDecBound(v, strings.HasPrefix(k, "exclusive"))
			if err != nil {
				return nil, &SchemaError{Path: path + "/" + k, Keyword: k, Reason: err.Error()}
			}
			if strings.HasSuffix(k, "inimum") {
				lows = append(lows, b)
			} else {
				highs = append(highs, b)
			}
		}
		if len(lows)+len(highs) == 0 {
			return s, nil
		}
		d, err := numberRangeDFA(lows, highs)
		if err != nil {
			return nil, &SchemaError{Path: path, Keyword: "minimum", Reason: err.Error()}
		}
		return l.place(d, path, 0, -1, false, "number")
	}
	return s, nil
}

// lowerString places a string automaton within the window of minLength and
// maxLength (capped at formatMax when that is not negative).
func (l *lowerer) lowerString(d *dfa, path, what string, minV, maxV any, formatMax int) (any, error) {
	lo, hi := 0, formatMax
	if minV != nil {
		n, err := nonNegInt(minV)
		if err != nil {
			return nil, &SchemaError{Path: path + "/minLength", Keyword: "minLength", Reason: err.Error()}
		}
		lo = int(min(n, 1<<20))
	}
	if maxV != nil {
		n, err := nonNegInt(maxV)
		if err != nil {
			return nil, &SchemaError{Path: path + "/maxLength", Keyword: "maxLength", Reason: err.Error()}
		}
		if hi < 0 || int64(hi) > n {
			hi = int(min(n, 1<<20))
		}
	}
	// A long window over a large automaton would make a grammar too large
	// to build per request; a shorter one keeps every answer valid.
	if hi >= 0 && len(d.next)*(hi+1) > maxGrammarRules {
		hi = max(maxGrammarRules/len(d.next)-1, lo)
	}
	return l.place(d, path, lo, hi, true, what)
}

func (l *lowerer) place(d *dfa, path string, lo, hi int, quoted bool, what string) (any, error) {
	i := len(l.parts)
	prefix := l.nonce + "r" + strconv.Itoa(i)
	rules, ok, err := d.gbnf(prefix, lo, hi)
	if err != nil {
		return nil, &SchemaError{Path: path, Keyword: "maxLength", Reason: what + " within this length: " + err.Error()}
	}
	if !ok {
		kw := "minLength"
		if what == "number" {
			kw = "minimum"
		}
		return nil, &SchemaError{Path: path, Keyword: kw, Reason: fmt.Sprintf("no %s fits the bounds", what)}
	}
	marker := l.nonce + "p" + strconv.Itoa(i)
	expr := "( " + prefix + "-0 )"
	if quoted {
		expr = `( "\"" ` + prefix + `-0 "\"" )`
	}
	l.parts = append(l.parts, loweredPart{literal: `"\"` + marker + `\""`, expr: expr, rules: rules})
	return oobject{{"const", marker}}, nil
}

// oobject is a JSON object that keeps the order of its members, which is
// the order the converter writes properties in.
type oobject []omember

type omember struct {
	key string
	val any
}

func (o oobject) get(k string) (any, bool) {
	for _, m := range o {
		if m.key == k {
			return m.val, true
		}
	}
	return nil, false
}

func (o oobject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeOrdered reads one JSON value, objects as oobject, numbers as
// json.Number (the decoder must UseNumber).
func decodeOrdered(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := t.(type) {
	case json.Delim:
		switch d {
		case '{':
			o := oobject{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, omember{kt.(string), v})
			}
			_, err := dec.Token()
			return o, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		return nil, errors.New("unexpected delimiter")
	}
	return t, nil
}
