package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// detokenize feeds pieces to a fresh Detokenizer and returns every Add output
// followed by the Flush output.
func detokenize(pieces [][]byte) []string {
	var d Detokenizer
	var outs []string
	for _, p := range pieces {
		outs = append(outs, d.Add(p))
	}
	return append(outs, d.Flush())
}

func TestDetokenizer(t *testing.T) {
	const fffd = "\uFFFD"
	tests := []struct {
		name   string
		pieces []string
		want   []string // one per Add, then Flush
	}{
		{"empty", nil, []string{""}},
		{"empty piece", []string{""}, []string{"", ""}},
		{"ascii", []string{"Hello", ", ", "world"}, []string{"Hello", ", ", "world", ""}},
		{"whole chars", []string{"é", "中", "😀"}, []string{"é", "中", "😀", ""}},
		{"2-byte split", []string{"caf\xc3", "\xa9!"}, []string{"caf", "é!", ""}},
		{"3-byte byte fallback", []string{"\xe4", "\xb8", "\xad"}, []string{"", "", "中", ""}},
		{"4-byte byte fallback", []string{"\xf0", "\x9f", "\x98", "\x80"}, []string{"", "", "", "😀", ""}},
		{"4-byte 1+3", []string{"a\xf0", "\x9f\x98\x80b"}, []string{"a", "😀b", ""}},
		{"completed and new partial", []string{"\xe4\xb8", "\xad\xe6", "\x96\x87"}, []string{"", "中", "文", ""}},
		{"0xFF at once", []string{"a\xffb"}, []string{"a" + fffd + "b", ""}},
		{"lone continuation at once", []string{"\x80", "x"}, []string{fffd, "x", ""}},
		{"invalid lead C0 at once", []string{"\xc0"}, []string{fffd, ""}},
		{"overlong prefix at once", []string{"\xe0\x80"}, []string{fffd, ""}},
		{"surrogate prefix at once", []string{"\xed\xa0"}, []string{fffd, ""}},
		{"above U+10FFFF at once", []string{"\xf4\x90"}, []string{fffd, ""}},
		{"valid prefixes held", []string{"\xe0\xa0", "\x80"}, []string{"", "\u0800", ""}},
		{"run of invalid is one U+FFFD", []string{"\xff\xfe\x80"}, []string{fffd, ""}},
		{"run across pieces", []string{"\xff", "\xfe", "ok"}, []string{fffd, "", "ok", ""}},
		{"partial then invalid", []string{"\xe4\xb8", "a"}, []string{"", fffd + "a", ""}},
		{"partial joins invalid run", []string{"\xff\xe4\xb8", "\xff"}, []string{fffd, "", ""}},
		{"partial then new lead", []string{"\xe4", "\xe4\xb8\xad"}, []string{"", fffd + "中", ""}},
		{"incomplete at end", []string{"ab\xe4\xb8"}, []string{"ab", fffd}},
		{"incomplete at end after invalid run", []string{"\xff\xe4\xb8"}, []string{fffd, ""}},
		{"literal U+FFFD breaks a run", []string{"\xff", fffd, "\xff"}, []string{fffd, fffd, fffd, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pieces [][]byte
			for _, p := range tt.pieces {
				pieces = append(pieces, []byte(p))
			}
			got := detokenize(pieces)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("outputs %q, want %q", got, tt.want)
			}
			all := strings.Join(tt.pieces, "")
			if joined, ref := strings.Join(got, ""), strings.ToValidUTF8(all, fffd); joined != ref {
				t.Fatalf("joined %q, want ToValidUTF8 %q", joined, ref)
			}
		})
	}
}

// TestDetokenizerEverySplit cuts multi-byte text at every pair of byte offsets
// (so each character is split at every possible offset) and checks that each
// output is valid UTF-8 and that the joined output is the text itself.
func TestDetokenizerEverySplit(t *testing.T) {
	for _, text := range []string{"é", "中", "😀", "aé中😀b", "😀😀", "x\xffé\xe4\xb8", "中\xf0\x9f"} {
		t.Run(text, func(t *testing.T) {
			want := strings.ToValidUTF8(text, "\uFFFD")
			for i := 0; i <= len(text); i++ {
				for j := i; j <= len(text); j++ {
					pieces := [][]byte{[]byte(text[:i]), []byte(text[i:j]), []byte(text[j:])}
					outs := detokenize(pieces)
					for _, o := range outs {
						if !utf8.ValidString(o) {
							t.Fatalf("cuts %d,%d: output %q is not valid UTF-8", i, j, o)
						}
					}
					if got := strings.Join(outs, ""); got != want {
						t.Fatalf("cuts %d,%d: got %q, want %q", i, j, got, want)
					}
				}
			}
			var pieces [][]byte // byte by byte
			for i := range len(text) {
				pieces = append(pieces, []byte{text[i]})
			}
			if got := strings.Join(detokenize(pieces), ""); got != want {
				t.Fatalf("byte by byte: got %q, want %q", got, want)
			}
		})
	}
}

func TestDetokenizerFlushResets(t *testing.T) {
	var d Detokenizer
	d.Add([]byte("\xff"))
	d.Add([]byte("\xe4"))
	if got := d.Flush(); got != "" {
		t.Fatalf("Flush = %q, want \"\" (continues the invalid run)", got)
	}
	// A new stream starts clean: its first invalid byte gets its own U+FFFD.
	if got := d.Add([]byte("\xff")); got != "\uFFFD" {
		t.Fatalf("after Flush, Add = %q, want U+FFFD", got)
	}
	if got := d.Flush(); got != "" {
		t.Fatalf("second Flush = %q", got)
	}
}

func TestDetokenizerDoesNotRetainPiece(t *testing.T) {
	var d Detokenizer
	p := []byte("ab\xe4\xb8")
	got := d.Add(p)
	copy(p, "zzzz")
	if got != "ab" {
		t.Fatalf("Add = %q", got)
	}
	if got := d.Add([]byte("\xad")); got != "中" {
		t.Fatalf("Add = %q, want 中 (held bytes must be copied)", got)
	}
}

// splitByCuts splits s into pieces whose lengths come from cuts (each byte
// modulo 8, so empty pieces happen); the rest of s is the last piece.
func splitByCuts(s string, cuts []byte) []string {
	var pieces []string
	for _, c := range cuts {
		n := min(int(c%8), len(s))
		pieces = append(pieces, s[:n])
		s = s[n:]
	}
	return append(pieces, s)
}

func FuzzDetokenizer(f *testing.F) {
	f.Add([]byte("hello"), []byte{1, 2})
	f.Add([]byte("aé中😀b"), []byte{1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte("\xff\xfe\xe4\xb8a\xf0\x9f\x98"), []byte{3, 0, 2})
	f.Add([]byte("\xe0\x80\xed\xa0\xf4\x90\xc0\x80"), []byte{1, 3, 5})
	f.Fuzz(func(t *testing.T, data []byte, cuts []byte) {
		var d Detokenizer
		var got strings.Builder
		consumed := 0
		for _, p := range splitByCuts(string(data), cuts) {
			out := d.Add([]byte(p))
			consumed += len(p)
			if !utf8.ValidString(out) {
				t.Fatalf("Add returned invalid UTF-8 %q", out)
			}
			got.WriteString(out)
			if d.n > utf8.UTFMax-1 {
				t.Fatalf("holds %d bytes", d.n)
			}
			held := data[consumed-d.n : consumed]
			if d.n > 0 && utf8.FullRune(held) {
				t.Fatalf("holds %q, which can already be decided", held)
			}
			// Everything but the held tail has been emitted already.
			if want := strings.ToValidUTF8(string(data[:consumed-d.n]), "\uFFFD"); got.String() != want {
				t.Fatalf("after %d bytes: emitted %q, want %q", consumed, got.String(), want)
			}
		}
		got.WriteString(d.Flush())
		if want := strings.ToValidUTF8(string(data), "\uFFFD"); got.String() != want {
			t.Fatalf("joined %q, want %q", got.String(), want)
		}
	})
}
