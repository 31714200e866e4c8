package models

import (
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// gbnfMatch runs the right-linear rules that dfa.gbnf writes over s: a
// small interpreter of exactly that form (alternatives of "" or a class
// followed by a rule), so that the emitted text itself is tested, not only
// the automaton behind it.
func gbnfMatch(t *testing.T, rules []string, prefix, s string) bool {
	t.Helper()
	type alt struct {
		class string
		next  string
	}
	parsed := map[string][]alt{}
	for _, r := range rules {
		name, body, ok := strings.Cut(r, " ::= ")
		if !ok {
			t.Fatalf("bad rule %q", r)
		}
		for _, a := range strings.Split(body, " | ") {
			if a == `""` {
				parsed[name] = append(parsed[name], alt{})
				continue
			}
			class, next, ok := strings.Cut(a, " ")
			if !ok {
				t.Fatalf("bad alternative %q in %q", a, r)
			}
			parsed[name] = append(parsed[name], alt{class, next})
		}
	}
	inClass := func(class string, c byte) bool {
		body := strings.TrimSuffix(strings.TrimPrefix(class, "["), "]")
		var chars []byte
		var dash []bool // a '-' before this char makes a range
		for i := 0; i < len(body); {
			if body[i] == '-' {
				dash[len(dash)-1] = true
				i++
				continue
			}
			if body[i] == '\\' {
				v, err := strconv.ParseUint(body[i+2:i+4], 16, 8)
				if err != nil {
					t.Fatalf("bad escape in %q", class)
				}
				chars, dash = append(chars, byte(v)), append(dash, false)
				i += 4
				continue
			}
			chars, dash = append(chars, body[i]), append(dash, false)
			i++
		}
		for i := 0; i < len(chars); i++ {
			if dash[i] && i+1 < len(chars) {
				if c >= chars[i] && c <= chars[i+1] {
					return true
				}
				i++
				continue
			}
			if c == chars[i] {
				return true
			}
		}
		return false
	}
	cur := prefix + "-0"
	for i := 0; i < len(s); i++ {
		next := ""
		for _, a := range parsed[cur] {
			if a.class != "" && inClass(a.class, s[i]) {
				if next != "" {
					t.Fatalf("rule %s is not deterministic on %q", cur, s[i])
				}
				next = a.next
			}
		}
		if next == "" {
			return false
		}
		if _, ok := parsed[next]; !ok {
			t.Fatalf("rule %s refers to undefined %s", cur, next)
		}
		cur = next
	}
	for _, a := range parsed[cur] {
		if a.class == "" {
			return true
		}
	}
	return false
}

var formatExamples = map[string]struct{ valid, wrong []string }{
	"email": {
		[]string{"a@b.co", "first.last+tag@mail.example.com", "x_y-z@a-b.io", "A1@B2.example.ORG"},
		[]string{"a@b", "a@b.c", ".a@b.co", "a..b@c.de", "a.@b.co", "a@-b.co", "a@b-.co", "a@b.c0", "a b@c.de", "@b.co", "a@b.co.", "a'b@c.de",
			strings.Repeat("a", 60) + "@b.co", "ü@b.co"},
	},
	"hostname": {
		[]string{"a", "example.com", "x-1.a2.b3", "A--B", strings.Repeat("a", 63), strings.Repeat("ab.", 20) + "abc"},
		[]string{"", "-a", "a-", "a..b", ".a", "a.", "a_b", strings.Repeat("a", 64), "a b"},
	},
	"ipv4": {
		[]string{"0.0.0.0", "255.255.255.255", "192.168.1.10", "10.0.99.249", "1.20.199.250"},
		[]string{"256.1.1.1", "1.1.1", "01.1.1.1", "1.1.1.1.1", "1.1.1.300", "1..1.1", "1.1.1.1 ", "a.b.c.d"},
	},
	"ipv6": {
		[]string{"::", "::1", "1::", "fe80::1:2", "2001:db8:0:0:0:0:2:1", "2001:DB8::8:800:200C:417A", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", "1::8"},
		[]string{":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1", "1:2:3:4:5:6:7:8::", "::1.2.3.4", "1:2:3:4:5:6:7:8:", ":1::"},
	},
	"ipvanyaddress": {
		[]string{"10.0.0.1", "::1", "fe80::a"},
		[]string{"10.0.0", "::g", "256.0.0.1"},
	},
	"uri": {
		[]string{"https://example.com/a/b?x=1&y=%20#top", "mailto:a@b.co", "urn:isbn:0451450523", "file:///etc/hosts", "http://user:pw@10.0.0.1:8080/", "a+b.c-d:/x", "h://", "s:x?#"},
		[]string{"example.com", "1http://a", "http://a b", "http:", "http://a/%zz", "http://a/#x#y", "http://[::1]/", "http://a/<b>", "s:?x", `http://a/"`, "http://a\\b"},
	},
}

// Each format's automaton and the grammar written from it accept the valid
// examples and refuse the invalid ones.
func TestFormatExamples(t *testing.T) {
	for name, ex := range formatExamples {
		d, err := formatDFA(name)
		if err != nil {
			t.Fatal(err)
		}
		rules, ok, err := d.gbnf("f", 0, stringFormats[name].maxLen)
		if err != nil || !ok {
			t.Fatalf("%s: gbnf: %v %v", name, ok, err)
		}
		for _, v := range ex.valid {
			if !d.matches(v) || !gbnfMatch(t, rules, "f", v) {
				t.Errorf("%s refuses %q (automaton %v)", name, v, d.matches(v))
			}
		}
		for _, v := range ex.wrong {
			// Past the format's cap only the grammar refuses.
			if gbnfMatch(t, rules, "f", v) || d.matches(v) && (stringFormats[name].maxLen < 0 || len(v) <= stringFormats[name].maxLen) {
				t.Errorf("%s accepts %q (automaton %v)", name, v, d.matches(v))
			}
		}
	}
}

// The automata agree with Go's regexp on the same expressions, over random
// strings built from the characters that matter to each.
func TestFormatDFAsAgreeWithRegexp(t *testing.T) {
	alphabets := map[string]string{
		"email":         "ab.@-_+Z9",
		"hostname":      "a-.9Z",
		"ipv4":          "0125.9",
		"ipv6":          "0:1fF.g",
		"ipvanyaddress": "0:125.f",
		"uri":           "a:/?#@%1f.[] x",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for name, alpha := range alphabets {
		d, _ := formatDFA(name)
		re := regexp.MustCompile(stringFormats[name].re)
		ex := formatExamples[name]
		seeds := append(append([]string{}, ex.valid...), ex.wrong...)
		for i := 0; i < 20000; i++ {
			var s string
			if i%2 == 0 {
				// Mutate an example: the interesting strings are near them.
				b := []byte(seeds[r.IntN(len(seeds))])
				for range 1 + r.IntN(3) {
					if len(b) > 0 && r.IntN(2) == 0 {
						b[r.IntN(len(b))] = alpha[r.IntN(len(alpha))]
					} else {
						p := r.IntN(len(b) + 1)
						b = append(b[:p], append([]byte{alpha[r.IntN(len(alpha))]}, b[p:]...)...)
					}
				}
				s = string(b)
			} else {
				b := make([]byte, r.IntN(16))
				for j := range b {
					b[j] = alpha[r.IntN(len(alpha))]
				}
				s = string(b)
			}
			want := re.MatchString(s) && !strings.ContainsAny(s, " \"\\")
			if max := stringFormats[name].maxLen; max >= 0 && len(s) > max {
				want = false // the cap is applied by the grammar, not the automaton
				if d.matches(s) != re.MatchString(s) {
					t.Fatalf("%s: automaton %v, regexp %v on %q", name, d.matches(s), re.MatchString(s), s)
				}
				continue
			}
			if d.matches(s) != want {
				t.Fatalf("%s: automaton %v, regexp %v on %q", name, d.matches(s), want, s)
			}
		}
	}
}

// Patterns follow JSON Schema's search semantics: unanchored parts match
// anywhere.
func TestCompileDFAPatternSemantics(t *testing.T) {
	for _, c := range []struct {
		pattern string
		yes, no []string
	}{
		{`^a+$`, []string{"a", "aaa"}, []string{"", "ba", "ab"}},
		{`a`, []string{"a", "xax", "bba"}, []string{"", "b"}},
		{`^ab`, []string{"ab", "abc"}, []string{"cab"}},
		{`c$`, []string{"c", "abc"}, []string{"ca"}},
		{`^a|b$`, []string{"ax", "xb"}, []string{"xa", "bx"}},
		{`^\d{3}$`, []string{"123"}, []string{"12", "1234", "12a"}},
	} {
		d, err := compileDFA(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.yes {
			if !d.matches(s) {
				t.Errorf("%s refuses %q", c.pattern, s)
			}
		}
		for _, s := range c.no {
			if d.matches(s) {
				t.Errorf("%s accepts %q", c.pattern, s)
			}
		}
	}
	for _, p := range []string{`^(?!\.)a$`, `(a)\1`, `\bword`} {
		if _, err := compileDFA(p); err == nil {
			t.Errorf("compileDFA(%s) succeeded, want an error", p)
		}
	}
}

// The length window is exact: lengths outside it are refused, inside kept.
func TestGBNFLengthWindow(t *testing.T) {
	d, _ := compileDFA(`^[a-c]+$`)
	rules, ok, err := d.gbnf("w", 2, 4)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	for s, want := range map[string]bool{"a": false, "ab": true, "abc": true, "abca": true, "abcab": false, "ad": false} {
		if got := gbnfMatch(t, rules, "w", s); got != want {
			t.Errorf("window [2,4] on %q: %v, want %v", s, got, want)
		}
	}
	rules, ok, _ = d.gbnf("w", 3, -1)
	if !ok || gbnfMatch(t, rules, "w", "ab") || !gbnfMatch(t, rules, "w", strings.Repeat("c", 100)) {
		t.Error("window [3,inf) wrong")
	}
	if _, ok, _ := d.gbnf("w", 5, 4); ok {
		t.Error("an empty window reports ok")
	}
}

// Number ranges, checked against exact rational arithmetic on random
// decimal texts, and on texts that a JSON reader turns into doubles.
func TestNumberRangeExact(t *testing.T) {
	ranges := []struct{ lo, hi string }{
		{"0", "1"}, {"-90", "90"}, {"0.01", "10000"}, {"-273.15", ""}, {"", "-0.5"}, {"(0", ""}, {"(0", "0.5)"},
		{"(-2.5", "3)"}, {"-0.05", "0.3)"}, {"1.25", "1.5"}, {"(0", "1.5"}, {"", "0)"}, {"99999.5", "100000"},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, rg := range ranges {
		var lows, highs []*decBound
		var lo, hi *big.Rat
		loEx, hiEx := strings.HasPrefix(rg.lo, "("), strings.HasSuffix(rg.hi, ")")
		if s := strings.TrimPrefix(rg.lo, "("); s != "" {
			b, err := parseDecBound(json.Number(s), loEx)
			if err != nil {
				t.Fatal(err)
			}
			lows, lo = append(lows, b), rat(s)
		}
		if s := strings.TrimSuffix(rg.hi, ")"); s != "" {
			b, err := parseDecBound(json.Number(s), hiEx)
			if err != nil {
				t.Fatal(err)
			}
			highs, hi = append(highs, b), rat(s)
		}
		d, err := numberRangeDFA(lows, highs)
		if err != nil {
			t.Fatalf("%v: %v", rg, err)
		}
		rules, ok, err := d.gbnf("n", 0, -1)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		in := func(x *big.Rat) bool {
			if lo != nil && (x.Cmp(lo) < 0 || loEx && x.Cmp(lo) == 0) {
				return false
			}
			return hi == nil || x.Cmp(hi) < 0 || !hiEx && x.Cmp(hi) == 0
		}
		k := 0
		for _, b := range append(lows, highs...) {
			k = max(k, b.intDigits())
		}
		accepted := 0
		for i := 0; i < 4000; i++ {
			s := randomDecimal(r, lo, hi)
			x, isNum := new(big.Rat).SetString(s)
			want := isNum && in(x) && numberTextShape(s, 15-k)
			got := d.matches(s)
			if got != want {
				t.Fatalf("range %v on %s: automaton %v, want %v", rg, s, got, want)
			}
			if gbnfMatch(t, rules, "n", s) != got {
				t.Fatalf("range %v on %s: grammar and automaton disagree", rg, s)
			}
			if got {
				accepted++
				// As a double, too, the answer stays in the range.
				f, _ := strconv.ParseFloat(s, 64)
				fx := new(big.Rat)
				fx.SetFloat64(f)
				var flo, fhi *big.Rat
				if lo != nil {
					lf, _ := lo.Float64()
					flo = new(big.Rat).SetFloat64(lf)
				}
				if hi != nil {
					hf, _ := hi.Float64()
					fhi = new(big.Rat).SetFloat64(hf)
				}
				if flo != nil && (fx.Cmp(flo) < 0 || loEx && fx.Cmp(flo) == 0) || fhi != nil && (fx.Cmp(fhi) > 0 || hiEx && fx.Cmp(fhi) == 0) {
					t.Fatalf("range %v: %s is in range but not as the double %v", rg, s, f)
				}
			}
		}
		if accepted < 100 {
			t.Errorf("range %v: only %d of the random numbers accepted", rg, accepted)
		}
	}
}

// numberTextShape is what the number grammar writes: no exponent, no "-0",
// no leading zeros, at most 15 digits before the point and at most fracs
// after it.
func numberTextShape(s string, fracs int) bool {
	if !regexp.MustCompile(`^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?$`).MatchString(s) {
		return false
	}
	if strings.HasPrefix(s, "-") && rat(s).Sign() == 0 {
		return false
	}
	_, frac, _ := strings.Cut(s, ".")
	return len(frac) <= fracs
}

func rat(s string) *big.Rat {
	x, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return x
}

// randomDecimal writes a number text near the bounds, or anywhere, in
// shapes valid and not.
func randomDecimal(r *rand.Rand, lo, hi *big.Rat) string {
	var base *big.Rat
	switch {
	case r.IntN(3) == 0 && lo != nil:
		base = lo
	case r.IntN(2) == 0 && hi != nil:
		base = hi
	default:
		base = big.NewRat(int64(r.IntN(2001)-1000), int64(1+r.IntN(8)))
	}
	delta := new(big.Rat).SetFrac64(int64(r.IntN(21)-10), int64(1)<<uint(r.IntN(12)))
	if r.IntN(4) == 0 {
		delta.SetInt64(0)
	}
	x := new(big.Rat).Add(base, delta)
	s := x.FloatString(r.IntN(17))
	switch r.IntN(12) {
	case 0:
		s += "0"
	case 1:
		s = strings.Replace(s, "-0.", "-.", 1)
	case 2:
		s = "0" + s
	}
	if s == "-0" && r.IntN(2) == 0 {
		s = "0"
	}
	return s
}
