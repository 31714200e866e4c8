package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every fixture (real zod 4 output, pydantic 2 output written by hand)
// passes CheckSchema and lowers.
func TestSchemaFixturesAccepted(t *testing.T) {
	files, err := filepath.Glob("testdata/schemas/*.json")
	if err != nil || len(files) < 6 {
		t.Fatalf("fixtures: %v (%d)", err, len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSchema(raw); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		low, err := LowerSchema(raw)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if len(low.parts) == 0 {
			t.Errorf("%s: nothing lowered", filepath.Base(f))
		}
	}
}

// Lowering keeps property order and annotations elsewhere, replaces only
// what it enforces, and Splice puts the rules in place of the placeholders.
func TestLowerSchemaAndSplice(t *testing.T) {
	schema := `{"type":"object","properties":{"z":{"type":"string","format":"email","title":"Z"},"a":{"type":"integer","minimum":1},"m":{"type":"number","maximum":2},"asi1dlow":{"type":"string"}},"required":["z"]}`
	low, err := LowerSchema([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	got := string(low.Schema)
	want := `{"type":"object","properties":{"z":{"const":"asi1dlowxp0"},"a":{"type":"integer","minimum":1},"m":{"const":"asi1dlowxp1"},"asi1dlow":{"type":"string"}},"required":["z"]}`
	if got != want {
		t.Fatalf("lowered\n%s\nwant\n%s", got, want)
	}
	// A grammar as the converter writes placeholders.
	gbnf := "root ::= z-kv m-kv\nz ::= \"\\\"asi1dlowxp0\\\"\" space\nm ::= \"\\\"asi1dlowxp1\\\"\" space\n"
	out, err := low.Splice(gbnf)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`z ::= ( "\"" asi1dlowxr0-0 "\"" ) space`, `m ::= ( asi1dlowxr1-0 ) space`, "\nasi1dlowxr0-0 ::= ", "\nasi1dlowxr1-0 ::= "} {
		if !strings.Contains(out, s) {
			t.Errorf("spliced grammar lacks %q:\n%s", s, out)
		}
	}
	if _, err := low.Splice("root ::= \"x\"\n"); err == nil {
		t.Error("Splice without the placeholders succeeded")
	}
	// Nothing to lower: the schema is unchanged.
	plain := `{"type":"object","properties":{"b":{"type":"boolean"},"a":{"enum":["x"]}}}`
	low, err = LowerSchema([]byte(plain))
	if err != nil || string(low.Schema) != plain || len(low.parts) != 0 {
		t.Fatalf("plain schema: %v %s", err, low.Schema)
	}
}
