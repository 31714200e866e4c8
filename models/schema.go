package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// SchemaError names the first part of a JSON Schema that grammar-constrained
// sampling cannot enforce. Path is a JSON Pointer into the schema.
type SchemaError struct {
	Path    string
	Keyword string
	Reason  string
}

func (e *SchemaError) Error() string {
	at := e.Path
	if at == "" {
		at = "/"
	}
	if e.Keyword != "" {
		return fmt.Sprintf("JSON Schema keyword %q at %s is not supported: %s", e.Keyword, at, e.Reason)
	}
	return fmt.Sprintf("JSON Schema at %s is not supported: %s", at, e.Reason)
}

// Keywords the grammar converter (llama.cpp's json-schema-to-grammar)
// enforces, and annotations that carry no constraint. Everything else is
// refused by CheckSchema, because the converter would silently ignore it and
// the output could then break the schema.
var (
	schemaAnnotations = map[string]bool{
		"title": true, "description": true, "default": true, "examples": true, "$schema": true,
		"$id": true, "$comment": true, "deprecated": true, "readOnly": true, "writeOnly": true,
		"$defs": true, "definitions": true,
	}
	schemaTypes       = map[string]bool{"object": true, "array": true, "string": true, "number": true, "integer": true, "boolean": true, "null": true}
	schemaFormats     = map[string]bool{"date": true, "time": true, "date-time": true, "uuid": true, "uuid1": true, "uuid2": true, "uuid3": true, "uuid4": true, "uuid5": true}
	schemaAlternation = []string{"anyOf", "oneOf"}
)

// CheckSchema reports the first feature of a JSON Schema that the grammar
// cannot enforce, as a *SchemaError; nil means every constraint in it will
// hold for the output. Supported: type (one or a list), properties,
// required, additionalProperties (boolean or schema), items, prefixItems,
// minItems, maxItems, enum, const, anyOf/oneOf (alone, oneOf acting as
// anyOf), local $ref into $defs/definitions, string minLength/maxLength,
// pattern (any that RE2 reads, otherwise anchored ^...$),
// format date/time/date-time/uuid (llama.cpp's converter) and
// email/hostname/ipv4/ipv6/uri (LowerSchema), and integer and number
// minimum/maximum/exclusiveMinimum/exclusiveMaximum. Annotations (title,
// description, default, examples, ...) are ignored.
func CheckSchema(schema []byte) error {
	var root any
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return &SchemaError{Reason: "not valid JSON: " + err.Error()}
	}
	c := schemaChecker{root: root}
	if err := c.check(root, ""); err != nil {
		return err
	}
	// What LowerSchema enforces with its own automata (formats, number
	// bounds, lengths beside a pattern) is refused here when it cannot be.
	_, err := LowerSchema(schema)
	return err
}

type schemaChecker struct{ root any }

func (c *schemaChecker) check(v any, path string) error {
	switch s := v.(type) {
	case bool:
		if !s {
			return &SchemaError{Path: path, Reason: "the schema false matches nothing"}
		}
		return nil
	case map[string]any:
		return c.object(s, path)
	default:
		return &SchemaError{Path: path, Reason: "a schema must be an object or a boolean"}
	}
}

func (c *schemaChecker) object(s map[string]any, path string) error {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	types, err := schemaTypeList(s["type"], path)
	if err != nil {
		return err
	}
	has := func(t string) bool { return len(types) == 0 || contains(types, t) }
	only := func(t string) bool { return len(types) == 1 && types[0] == t }

	constraint := 0 // keywords that the alternation and $ref branches would ignore
	for _, k := range keys {
		v := s[k]
		p := path + "/" + escapePointer(k)
		switch {
		case schemaAnnotations[k]:
			if k == "$defs" || k == "definitions" {
				defs, ok := v.(map[string]any)
				if !ok {
					return &SchemaError{Path: p, Keyword: k, Reason: "must be an object"}
				}
				for _, name := range sortedKeys(defs) {
					if err := c.check(defs[name], p+"/"+escapePointer(name)); err != nil {
						return err
					}
				}
			}
		case k == "type":
		case k == "$ref":
			ref, ok := v.(string)
			if !ok || !strings.HasPrefix(ref, "#/") && ref != "#" {
				return &SchemaError{Path: path, Keyword: k, Reason: "only local references (#/...) are supported"}
			}
			if ref == "#" {
				return &SchemaError{Path: path, Keyword: k, Reason: "a reference to the whole schema (recursion through #) is not supported"}
			}
		case k == "anyOf" || k == "oneOf":
			alts, ok := v.([]any)
			if !ok || len(alts) == 0 {
				return &SchemaError{Path: p, Keyword: k, Reason: "must be a non-empty array"}
			}
			for i, a := range alts {
				if err := c.check(a, p+"/"+strconv.Itoa(i)); err != nil {
					return err
				}
			}
		case k == "properties":
			if !has("object") {
				return &SchemaError{Path: p, Keyword: k, Reason: "properties on a non-object type"}
			}
			props, ok := v.(map[string]any)
			if !ok {
				return &SchemaError{Path: p, Keyword: k, Reason: "must be an object"}
			}
			for _, name := range sortedKeys(props) {
				if err := c.check(props[name], p+"/"+escapePointer(name)); err != nil {
					return err
				}
			}
			constraint++
		case k == "required":
			list, ok := v.([]any)
			if !ok {
				return &SchemaError{Path: p, Keyword: k, Reason: "must be an array of property names"}
			}
			props, _ := s["properties"].(map[string]any)
			for _, r := range list {
				name, ok := r.(string)
				if !ok {
					return &SchemaError{Path: p, Keyword: k, Reason: "must be an array of property names"}
				}
				if _, declared := props[name]; !declared {
					return &SchemaError{Path: p, Keyword: k, Reason: fmt.Sprintf("required property %q is not declared in properties", name)}
				}
			}
			constraint++
		case k == "additionalProperties":
			if _, ok := v.(bool); !ok {
				if err := c.check(v, p); err != nil {
					return err
				}
			}
			constraint++
		case k == "items" || k == "prefixItems":
			if !has("array") {
				return &SchemaError{Path: p, Keyword: k, Reason: k + " on a non-array type"}
			}
			if list, ok := v.([]any); ok {
				for i, it := range list {
					if err := c.check(it, p+"/"+strconv.Itoa(i)); err != nil {
						return err
					}
				}
			} else if err := c.check(v, p); err != nil {
				return err
			}
			if k == "prefixItems" && s["items"] != nil {
				return &SchemaError{Path: path, Keyword: "items", Reason: "items together with prefixItems is not supported"}
			}
			constraint++
		case k == "minItems" || k == "maxItems" || k == "minLength" || k == "maxLength":
			if _, err := nonNegInt(v); err != nil {
				return &SchemaError{Path: p, Keyword: k, Reason: err.Error()}
			}
			if (k == "minLength" || k == "maxLength") && !only("string") {
				return &SchemaError{Path: path, Keyword: k, Reason: `needs "type": "string"`}
			}
			if (k == "minItems" || k == "maxItems") && s["items"] == nil {
				return &SchemaError{Path: path, Keyword: k, Reason: "needs items"}
			}
			constraint++
		case k == "minimum" || k == "maximum" || k == "exclusiveMinimum" || k == "exclusiveMaximum":
			if _, isBool := v.(bool); isBool {
				return &SchemaError{Path: p, Keyword: k, Reason: "must be a number (the boolean form of draft 4 is not supported)"}
			}
			switch {
			case only("integer"):
				n, ok := v.(json.Number)
				if _, err := strconv.ParseInt(string(n), 10, 64); !ok || err != nil {
					return &SchemaError{Path: p, Keyword: k, Reason: "must be an integer"}
				}
			case only("number"):
				// Checked with the number's range (LowerSchema).
			default:
				return &SchemaError{Path: path, Keyword: k, Reason: `bounds are enforced only with "type": "integer" or "type": "number"`}
			}
			constraint++
		case k == "enum":
			if list, ok := v.([]any); !ok || len(list) == 0 {
				return &SchemaError{Path: p, Keyword: k, Reason: "must be a non-empty array"}
			}
			constraint++
		case k == "const":
			constraint++
		case k == "pattern":
			pat, ok := v.(string)
			if !ok || !only("string") {
				return &SchemaError{Path: path, Keyword: k, Reason: `needs a string and "type": "string"`}
			}
			// A pattern RE2 reads, or one beside a format of
			// stringFormats, is enforced by LowerSchema with search
			// semantics; the converter needs the others anchored.
			f, _ := s["format"].(string)
			_, lowered := stringFormats[f]
			if !lowered {
				_, err := compileDFA(pat)
				lowered = err == nil
			}
			if !lowered && (!strings.HasPrefix(pat, "^") || !strings.HasSuffix(pat, "$")) {
				return &SchemaError{Path: p, Keyword: k, Reason: "the pattern must be anchored: start with ^ and end with $"}
			}
			constraint++
		case k == "format":
			f, ok := v.(string)
			if _, ours := stringFormats[f]; !ok || !schemaFormats[f] && !ours {
				return &SchemaError{Path: p, Keyword: k, Reason: fmt.Sprintf("format %v is not enforced (supported: date, time, date-time, uuid, email, hostname, ipv4, ipv6, ipvanyaddress, uri)", v)}
			}
			constraint++
		default:
			return &SchemaError{Path: path, Keyword: k, Reason: "the grammar cannot enforce it"}
		}
	}
	if _, ok := s["$ref"]; ok && (constraint > 0 || s["anyOf"] != nil || s["oneOf"] != nil || s["type"] != nil) {
		return &SchemaError{Path: path, Keyword: "$ref", Reason: "$ref next to other constraints is not supported"}
	}
	for _, k := range schemaAlternation {
		if _, ok := s[k]; ok && (constraint > 0 || s["type"] != nil) {
			return &SchemaError{Path: path, Keyword: k, Reason: k + " next to other constraints is not supported: move them into each alternative"}
		}
	}
	if s["anyOf"] != nil && s["oneOf"] != nil {
		return &SchemaError{Path: path, Keyword: "oneOf", Reason: "anyOf together with oneOf is not supported"}
	}
	if len(types) > 1 && constraint > 0 {
		return &SchemaError{Path: path, Keyword: "type", Reason: "a list of types next to other constraints is not supported: use anyOf"}
	}
	if ref, ok := s["$ref"].(string); ok {
		if _, err := c.resolve(ref); err != nil {
			return &SchemaError{Path: path, Keyword: "$ref", Reason: err.Error()}
		}
	}
	return nil
}

// resolve follows a local JSON Pointer reference.
func (c *schemaChecker) resolve(ref string) (any, error) {
	cur := c.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %s does not resolve", ref)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("reference %s does not resolve", ref)
		}
	}
	return cur, nil
}

func schemaTypeList(v any, path string) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		if !schemaTypes[t] {
			return nil, &SchemaError{Path: path + "/type", Keyword: "type", Reason: fmt.Sprintf("unknown type %q", t)}
		}
		return []string{t}, nil
	case []any:
		var out []string
		for _, x := range t {
			s, ok := x.(string)
			if !ok || !schemaTypes[s] {
				return nil, &SchemaError{Path: path + "/type", Keyword: "type", Reason: fmt.Sprintf("unknown type %v", x)}
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, &SchemaError{Path: path + "/type", Keyword: "type", Reason: "empty list of types"}
		}
		return out, nil
	}
	return nil, &SchemaError{Path: path + "/type", Keyword: "type", Reason: "must be a string or an array of strings"}
}

func nonNegInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("must be a non-negative integer")
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < 0 {
		return 0, fmt.Errorf("must be a non-negative integer")
	}
	return i, nil
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
