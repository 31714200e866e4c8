package llamacpp_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
)

// constrained decodes greedily under g: the drawn token is checked first and
// the row masked only when the grammar refuses it, as the scheduler does.
func constrained(t *testing.T, b engine.Backend, g engine.Grammar, prompt []engine.Token, n int) (string, bool) {
	t.Helper()
	batch := make([]engine.BatchEntry, len(prompt))
	for i, tok := range prompt {
		batch[i] = engine.BatchEntry{Token: tok, Pos: int32(i), Logits: i == len(prompt)-1}
	}
	if err := b.Decode(batch); err != nil {
		t.Fatal(err)
	}
	last, pos := len(batch)-1, int32(len(prompt))
	var out []engine.Token
	for range n {
		row := b.Logits(last)
		tok := argmax(row)
		if !g.Allows(tok) {
			g.Mask(row)
			tok = argmax(row)
			if math.IsInf(float64(row[tok]), -1) {
				t.Fatalf("grammar allows no token after %q", text(b, out))
			}
		}
		if b.IsEOG(tok) {
			return text(b, out), true
		}
		if err := g.Accept(tok); err != nil {
			t.Fatal(err)
		}
		out = append(out, tok)
		if err := b.Decode([]engine.BatchEntry{{Token: tok, Pos: pos, Logits: true}}); err != nil {
			t.Fatal(err)
		}
		pos++
		last = 0
	}
	return text(b, out), false
}

func TestSchemaGrammarConstrainsOutput(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256, Threads: 1})
	prompt, err := b.Tokenize(testmodel.ReferencePrompt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"object","properties":{"mood":{"enum":["happy","sad"]},"n":{"type":"integer","minimum":1,"maximum":9},"tags":{"type":"array","items":{"type":"string","maxLength":3},"maxItems":2}},"required":["mood","n","tags"],"additionalProperties":false}`
	gbnf, err := b.SchemaGrammar([]byte(schema), "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.NewGrammar(gbnf)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	out, ended := constrained(t, b, g, prompt, 200)
	if !ended {
		t.Fatalf("no end of generation within 200 tokens: %q", out)
	}
	var v struct {
		Mood string   `json:"mood"`
		N    int      `json:"n"`
		Tags []string `json:"tags"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("output %q does not parse: %v", out, err)
	}
	if (v.Mood != "happy" && v.Mood != "sad") || v.N < 1 || v.N > 9 || len(v.Tags) > 2 {
		t.Fatalf("output %q breaks the schema", out)
	}
	for _, s := range v.Tags {
		if len([]rune(s)) > 3 {
			t.Fatalf("tag %q longer than maxLength 3 in %q", s, out)
		}
	}
	g.Close()
	g.Close() // twice is safe
}

func TestGrammarWrappedRoot(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256, Threads: 1})
	gbnf, err := b.SchemaGrammar([]byte(`{"enum":["yes","no"]}`), `"<" VALUE ">"`)
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.NewGrammar(gbnf)
	if err != nil {
		t.Fatalf("%v\n%s", err, gbnf)
	}
	defer g.Close()
	prompt, _ := b.Tokenize("Once upon a time", true, false)
	out, ended := constrained(t, b, g, prompt, 50)
	// The schema's value may be followed by whitespace (llama.cpp's "space").
	if got := strings.ReplaceAll(out, " ", ""); !ended || (got != `<"yes">` && got != `<"no">`) {
		t.Fatalf("output %q (ended %v), want <\"yes\"> or <\"no\">", out, ended)
	}
}

func TestGrammarErrors(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256, Threads: 1})
	for _, schema := range []string{`{"type":`, `{"type":"string","pattern":"abc"}`, `{"$ref":"#/$defs/missing"}`} {
		if g, err := b.SchemaGrammar([]byte(schema), ""); err == nil {
			t.Errorf("SchemaGrammar(%s) = %q, want an error", schema, g)
		}
	}
	if _, err := b.NewGrammar(`root ::= "unterminated`); err == nil {
		t.Error("NewGrammar accepted a broken grammar")
	}
	g, err := b.NewGrammar(`root ::= "a"`)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	toks, _ := b.Tokenize("z", false, false)
	if g.Allows(toks[len(toks)-1]) {
		t.Fatal("grammar allows a token it cannot match")
	}
	// Accepting a refused token is an error, not a crash.
	if err := g.Accept(toks[len(toks)-1]); err == nil {
		t.Fatal("Accept of a refused token succeeded")
	}
}

// AllowsEach agrees with Allows token by token, at the start of a JSON value
// and inside a string.
func TestGrammarAllowsEach(t *testing.T) {
	b := open(t, llamacpp.Options{CtxSize: 256, Threads: 1})
	gbnf, err := b.SchemaGrammar([]byte(`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.NewGrammar(gbnf)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n := b.Info().NVocab
	all := make([]engine.Token, n)
	for i := range all {
		all[i] = engine.Token(i)
	}
	check := func(state string) {
		ok := make([]bool, n)
		g.AllowsEach(all, ok)
		allowed := 0
		for i, tok := range all {
			if ok[i] != g.Allows(tok) {
				t.Fatalf("%s: token %d (%q): AllowsEach %v, Allows %v", state, tok, b.Piece(tok), ok[i], !ok[i])
			}
			if ok[i] {
				allowed++
			}
		}
		if allowed == 0 || allowed == n {
			t.Fatalf("%s: %d of %d tokens allowed", state, allowed, n)
		}
	}
	check("start")
	for _, piece := range []string{"{", `"`, "a", `"`, ":", `"`} {
		tok := engine.Token(-1)
		for i := range n {
			if string(b.Piece(engine.Token(i))) == piece {
				tok = engine.Token(i)
				break
			}
		}
		if err := g.Accept(tok); err != nil {
			t.Fatalf("accept %q: %v", piece, err)
		}
	}
	check("in-string")
}
