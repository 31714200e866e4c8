package llamacpp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/models"
)

// loweredGrammar builds the grammar of schema as the server does: lowered,
// converted by llama.cpp, spliced, parsed.
func loweredGrammar(t *testing.T, b *llamacpp.Backend, schema string) string {
	t.Helper()
	if err := models.CheckSchema([]byte(schema)); err != nil {
		t.Fatalf("CheckSchema: %v", err)
	}
	low, err := models.LowerSchema([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	gbnf, err := b.SchemaGrammar(low.Schema, "")
	if err != nil {
		t.Fatal(err)
	}
	if gbnf, err = low.Splice(gbnf); err != nil {
		t.Fatal(err)
	}
	return gbnf
}

// grammarAccepts feeds text through a fresh grammar one character token at
// a time and reports whether the grammar takes all of it and may end there.
func grammarAccepts(t *testing.T, b *llamacpp.Backend, gbnf, text string) bool {
	t.Helper()
	g, err := b.NewGrammar(gbnf)
	if err != nil {
		t.Fatalf("%v\n%s", err, gbnf)
	}
	defer g.Close()
	for i := 0; i < len(text); i++ {
		tok := charToken(t, b, text[i])
		if !g.Allows(tok) {
			return false
		}
		if err := g.Accept(tok); err != nil {
			t.Fatal(err)
		}
	}
	return g.Allows(b.Info().EOG[0])
}

// charToken finds a token whose text is the one byte c (the test model
// has byte tokens).
func charToken(t *testing.T, b *llamacpp.Backend, c byte) engine.Token {
	t.Helper()
	for tok := range b.Info().NVocab {
		if p := b.Piece(engine.Token(tok)); len(p) == 1 && p[0] == c {
			return engine.Token(tok)
		}
	}
	t.Fatalf("no token for %q", c)
	return 0
}

// The lowered formats and number ranges, through llama.cpp's own grammar
// engine: each valid text is accepted whole, each invalid one is not.
func TestLoweredGrammarsAcceptExactly(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256, Threads: 1})
	if len(b.Info().EOG) == 0 {
		t.Fatal("the test model has no end-of-generation token")
	}
	cases := []struct {
		schema       string
		valid, wrong []string
	}{
		{`{"type":"string","format":"email"}`,
			[]string{`"a@b.co"`, `"first.last+tag@mail.example.com"`, `"x_y-z@a-b.io"`},
			[]string{`"a@b"`, `"a@b.c"`, `".a@b.co"`, `"a..b@c.de"`, `"a.@b.co"`, `"a@-b.co"`, `"a@b-.co"`, `"a@b.c0"`, `"a b@c.de"`, `"@b.co"`, `"a@b.co."`,
				`"` + strings.Repeat("a", 60) + `@b.co"`}},
		{`{"type":"string","format":"hostname"}`,
			[]string{`"a"`, `"example.com"`, `"x-1.a2.b3"`, `"` + strings.Repeat("a", 63) + `"`},
			[]string{`""`, `"-a"`, `"a-"`, `"a..b"`, `".a"`, `"a."`, `"a_b"`, `"` + strings.Repeat("a", 64) + `"`}},
		{`{"type":"string","format":"ipv4"}`,
			[]string{`"0.0.0.0"`, `"255.255.255.255"`, `"192.168.1.10"`, `"10.0.99.249"`},
			[]string{`"256.1.1.1"`, `"1.1.1"`, `"01.1.1.1"`, `"1.1.1.1.1"`, `"1.1.1.300"`, `"1..1.1"`}},
		{`{"type":"string","format":"ipv6"}`,
			[]string{`"::"`, `"::1"`, `"1::"`, `"fe80::1:2"`, `"2001:db8:0:0:0:0:2:1"`, `"2001:DB8::8:800:200C:417A"`, `"1:2:3:4:5:6:7::"`, `"::2:3:4:5:6:7:8"`},
			[]string{`":"`, `":::"`, `"1::2::3"`, `"1:2:3:4:5:6:7:8:9"`, `"1:2:3:4:5:6:7"`, `"12345::"`, `"g::1"`, `"1:2:3:4:5:6:7:8::"`, `"::1.2.3.4"`}},
		{`{"type":"string","format":"uri"}`,
			[]string{`"https://example.com/a/b?x=1&y=%20#top"`, `"mailto:a@b.co"`, `"urn:isbn:0451450523"`, `"file:///etc/hosts"`, `"http://user:pw@10.0.0.1:8080/"`},
			[]string{`"example.com"`, `"1http://a"`, `"http://a b"`, `"http:"`, `"http://a/%zz"`, `"http://a/#x#y"`, `"http://[::1]/"`}},
		{`{"type":"string","format":"email","maxLength":8,"minLength":7}`,
			[]string{`"ab@c.de"`, `"abc@d.ef"`},
			[]string{`"a@b.co"`, `"abcd@e.fg"`}},
		{`{"type":"string","format":"hostname","pattern":"^(?=.{1,253}$)[a-z.]+$"}`, // lookahead: the format alone
			[]string{`"a.b"`, `"A1"`},
			[]string{`"a_b"`}},
		{`{"type":"string","format":"ipv4","pattern":"^10\\."}`,
			[]string{`"10.1.2.3"`},
			[]string{`"11.1.2.3"`}},
		{`{"type":"string","pattern":"^[a-z]+$","maxLength":3}`,
			[]string{`"a"`, `"abc"`},
			[]string{`""`, `"abcd"`, `"aB"`}},
		{`{"type":"number","minimum":0,"maximum":1}`,
			[]string{`0`, `1`, `0.5`, `1.0`, `0.00000000000001`, `0.99999999999999`},
			[]string{`-0`, `-0.1`, `1.01`, `2`, `1e0`, `01`, `0.`, `0.123456789012345`}},
		{`{"type":"number","exclusiveMinimum":-2.5,"exclusiveMaximum":3}`,
			[]string{`-2.4999`, `-2`, `0`, `2.99`, `-0.5`},
			[]string{`-2.5`, `-2.50`, `3`, `3.0`, `-3`, `-0`}},
		{`{"type":"number","minimum":-273.15}`,
			[]string{`-273.15`, `-273.1`, `-1`, `0`, `123456789012345`},
			[]string{`-273.16`, `-274`, `-273.151`, `1234567890123456`}},
	}
	for _, c := range cases {
		gbnf := loweredGrammar(t, b, c.schema)
		for _, v := range c.valid {
			if !grammarAccepts(t, b, gbnf, v) {
				t.Errorf("%s: grammar refuses %s", c.schema, v)
			}
		}
		for _, v := range c.wrong {
			if grammarAccepts(t, b, gbnf, v) {
				t.Errorf("%s: grammar accepts %s", c.schema, v)
			}
		}
	}
}

// Every fixture (zod 4 and pydantic 2 output) builds a grammar that
// llama.cpp parses.
func TestLoweredFixturesBuild(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256, Threads: 1})
	files, err := filepath.Glob("../../models/testdata/schemas/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		gbnf := loweredGrammar(t, b, string(raw))
		g, err := b.NewGrammar(gbnf)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		g.Close()
	}
}
