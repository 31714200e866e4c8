package models

import (
	"errors"
	"testing"
)

func TestCheckSchemaAccepts(t *testing.T) {
	for _, s := range []string{
		`{}`,
		`true`,
		`{"type":"object"}`,
		`{"type":"object","properties":{"name":{"type":"string","maxLength":20,"description":"who"},"age":{"type":"integer","minimum":0,"maximum":150},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3},"kind":{"const":"x"}},"required":["name"],"additionalProperties":false,"title":"Person"}`,
		`{"type":["string","null"]}`,
		`{"anyOf":[{"type":"string"},{"type":"integer","exclusiveMinimum":3}]}`,
		`{"$defs":{"p":{"type":"object","properties":{"x":{"type":"number"}}}},"type":"object","properties":{"a":{"$ref":"#/$defs/p","description":"ref with annotation"}}}`,
		`{"type":"string","pattern":"^[a-z]+$"}`,
		`{"type":"string","format":"date-time"}`,
		`{"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}]}`,
		`{"type":"object","additionalProperties":{"type":"integer"}}`,
		`{"type":"string","pattern":"abc"}`,
		`{"type":"string","pattern":"^\\d{5}$","maxLength":5,"minLength":5}`,
		`{"type":"string","format":"email","title":"e","description":"d","default":"a@b.co","examples":["a@b.co"],"$comment":"c","readOnly":true,"writeOnly":false,"deprecated":false}`,
		`{"type":"string","format":"hostname","pattern":"^(?=.{1,253}\\.?$)[a-z0-9.-]+$"}`,
		`{"type":"string","format":"uri","minLength":1,"maxLength":2083}`,
		`{"type":"string","format":"ipv6"}`,
		`{"type":"string","format":"ipvanyaddress"}`,
		`{"type":"number","minimum":0,"maximum":1}`,
		`{"type":"number","exclusiveMinimum":-273.15,"exclusiveMaximum":1e3}`,
		`{"anyOf":[{"type":"number","exclusiveMinimum":0,"maximum":0.5},{"type":"null"}],"default":null}`,
	} {
		if err := CheckSchema([]byte(s)); err != nil {
			t.Errorf("CheckSchema(%s) = %v, want nil", s, err)
		}
	}
}

func TestCheckSchemaRefuses(t *testing.T) {
	for _, c := range []struct{ schema, path, keyword string }{
		{`{"type":"object","properties":{"a":{"not":{"type":"string"}}}}`, "/properties/a", "not"},
		{`{"type":"number","minimum":true}`, "/minimum", "minimum"},
		{`{"type":"number","minimum":0.1234567890123456}`, "/minimum", "minimum"},
		{`{"type":"number","minimum":1e20}`, "/minimum", "minimum"},
		{`{"type":"number","minimum":2,"maximum":1}`, "", "minimum"},
		{`{"type":["number","null"],"minimum":1}`, "", "minimum"},
		{`{"type":"string","format":"idn-email"}`, "/format", "format"},
		{`{"type":"string","format":"email","pattern":"^x@y$"}`, "/pattern", "pattern"},
		{`{"type":"string","pattern":"^(?!a)b$","maxLength":3}`, "", "maxLength"},
		{`{"type":"string","pattern":"(?=a)"}`, "/pattern", "pattern"},
		{`{"type":"integer","multipleOf":2}`, "", "multipleOf"},
		{`{"type":"array","items":{"type":"string"},"uniqueItems":true}`, "", "uniqueItems"},
		{`{"type":"object","patternProperties":{"^x":{}}}`, "", "patternProperties"},
		{`{"if":{"type":"string"},"then":{"maxLength":2}}`, "", "if"},
		{`{"$ref":"https://example.com/x.json"}`, "", "$ref"},
		{`{"$ref":"#"}`, "", "$ref"},
		{`{"$ref":"#/$defs/missing"}`, "", "$ref"},
		{`{"anyOf":[{"type":"string"}],"maxLength":3,"type":"string"}`, "", "anyOf"},
		{`{"allOf":[{"type":"string"}]}`, "", "allOf"},
		{`{"type":"object","required":["a"]}`, "/required", "required"},
		{`{"type":"strin"}`, "/type", "type"},
		{`{"maxLength":3}`, "", "maxLength"},
		{`{"type":"array","maxItems":3}`, "", "maxItems"},
		{`false`, "", ""},
		{`{"type":`, "", ""},
	} {
		err := CheckSchema([]byte(c.schema))
		var se *SchemaError
		if !errors.As(err, &se) {
			t.Errorf("CheckSchema(%s) = %v, want a *SchemaError", c.schema, err)
			continue
		}
		if se.Path != c.path || se.Keyword != c.keyword {
			t.Errorf("CheckSchema(%s) = path %q keyword %q (%v), want path %q keyword %q", c.schema, se.Path, se.Keyword, err, c.path, c.keyword)
		}
	}
}
