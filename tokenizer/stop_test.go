package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// refStop is the whole-text reference: the match that ends first wins, and at
// the same end the one that starts first. It checks every end position
// against every stop string, independently of StopMatcher's search.
func refStop(text string, stops []string) (out, matched string, stopped bool) {
	for e := 1; e <= len(text); e++ {
		best := -1
		for _, s := range stops {
			if s != "" && len(s) <= e && text[e-len(s):e] == s && (best < 0 || e-len(s) < best) {
				best, matched = e-len(s), s
			}
		}
		if best >= 0 {
			return text[:best], matched, true
		}
	}
	return text, "", false
}

type stopRun struct {
	outs    []string // one per Push, then Flush
	stopped bool
	matched string
}

func runStop(stops, pieces []string) stopRun {
	m := NewStopMatcher(stops)
	var r stopRun
	for _, p := range pieces {
		out, stopped := m.Push(p)
		r.outs = append(r.outs, out)
		r.stopped = stopped
	}
	r.outs = append(r.outs, m.Flush())
	r.matched = m.Matched()
	return r
}

func TestStopMatcher(t *testing.T) {
	tests := []struct {
		name    string
		stops   []string
		pieces  []string
		want    []string // one per Push, then Flush
		stopped bool
		matched string
	}{
		{"no stops", nil, []string{"a</s>", "b"}, []string{"a</s>", "b", ""}, false, ""},
		{"only empty stops", []string{""}, []string{"abc"}, []string{"abc", ""}, false, ""},
		{"empty stop ignored", []string{"", "x"}, []string{"abxc"}, []string{"ab", ""}, true, "x"},
		{"whole in one push", []string{"</s>"}, []string{"Hello</s>world"}, []string{"Hello", ""}, true, "</s>"},
		{"stop at start", []string{"</s>"}, []string{"</s>"}, []string{"", ""}, true, "</s>"},
		{"split over pushes", []string{"</s>"}, []string{"Hel", "lo <", "/", "s> more"},
			[]string{"Hel", "lo ", "", "", ""}, true, "</s>"},
		{"one byte at a time", []string{"END"}, []string{"a", "E", "N", "D", "b"},
			[]string{"a", "", "", "", "", ""}, true, "END"},
		{"false alarm released", []string{"</s>"}, []string{"a<", "/b"}, []string{"a", "</b", ""}, false, ""},
		{"partial released at flush", []string{"</s>"}, []string{"abc</"}, []string{"abc", "</"}, false, ""},
		{"push after stop", []string{"x"}, []string{"axb", "more"}, []string{"a", "", ""}, true, "x"},
		{"overlapping ab bc: bc", []string{"ab", "bc"}, []string{"xbc"}, []string{"x", ""}, true, "bc"},
		{"overlapping ab bc: ab first", []string{"ab", "bc"}, []string{"xa", "bc"}, []string{"x", "", ""}, true, "ab"},
		{"prefix of another", []string{"abc", "ab"}, []string{"xa", "bc"}, []string{"x", "", ""}, true, "ab"},
		{"longer one not completed", []string{"abc", "abd"}, []string{"xab", "e"}, []string{"x", "abe", ""}, false, ""},
		{"same end: longest", []string{"bc", "abc"}, []string{"xa", "b", "c"}, []string{"x", "", "", ""}, true, "abc"},
		{"infix completes first", []string{"abc", "b"}, []string{"abc"}, []string{"a", ""}, true, "b"},
		{"self-overlapping stop", []string{"aab"}, []string{"a", "a", "a", "b"}, []string{"", "", "a", "", ""}, true, "aab"},
		{"multi-byte stop", []string{"中文"}, []string{"我中", "文字"}, []string{"我", "", ""}, true, "中文"},
		{"multi-byte stop split inside char", []string{"é!"}, []string{"caf\xc3", "\xa9", "!"},
			[]string{"caf", "", "", ""}, true, "é!"},
		{"char split without stop", []string{"x"}, []string{"\xe4\xb8", "\xad"}, []string{"", "中", ""}, false, ""},
		{"emoji split", []string{"x"}, []string{"a\xf0\x9f", "\x98", "\x80b"}, []string{"a", "", "😀b", ""}, false, ""},
		{"emoji stop", []string{"😀"}, []string{"hi \xf0\x9f\x98", "\x80 there"}, []string{"hi ", "", ""}, true, "😀"},
		{"emoji vs stop sharing lead bytes", []string{"😀"}, []string{"\xf0\x9f\x98", "\x81"}, []string{"", "😁", ""}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStop(tt.stops, tt.pieces)
			if !slices.Equal(r.outs, tt.want) || r.stopped != tt.stopped || r.matched != tt.matched {
				t.Fatalf("got %q stopped=%v matched=%q, want %q stopped=%v matched=%q",
					r.outs, r.stopped, r.matched, tt.want, tt.stopped, tt.matched)
			}
			out, matched, stopped := refStop(strings.Join(tt.pieces, ""), tt.stops)
			if got := strings.Join(r.outs, ""); got != out || stopped != r.stopped || matched != r.matched {
				t.Fatalf("reference %q stopped=%v matched=%q, got %q", out, stopped, matched, got)
			}
		})
	}
}

// checkStopSplit pushes pieces and checks the invariants shared by the tests
// and the fuzz target.
func checkStopSplit(t *testing.T, stops, pieces []string) {
	t.Helper()
	text := strings.Join(pieces, "")
	wantOut, wantMatched, wantStopped := refStop(text, stops)
	valid := utf8.ValidString(text)
	for _, s := range stops {
		valid = valid && utf8.ValidString(s)
	}
	m := NewStopMatcher(stops)
	var got strings.Builder
	stopped := false
	for _, p := range pieces {
		out, st := m.Push(p)
		if stopped && (out != "" || !st) {
			t.Fatalf("Push after stop = %q, %v", out, st)
		}
		stopped = st
		got.WriteString(out)
		checkStopOut(t, out, stops, valid)
		if limit := m.maxLen - 1 + utf8.UTFMax - 1; len(m.held) > max(limit, 0) {
			t.Fatalf("holds %d bytes (%q), limit %d", len(m.held), m.held, limit)
		}
	}
	out := m.Flush()
	checkStopOut(t, out, stops, valid)
	got.WriteString(out)
	if got.String() != wantOut || stopped != wantStopped || m.Matched() != wantMatched || m.Stopped() != stopped {
		t.Fatalf("pieces %q stops %q: got %q stopped=%v matched=%q, want %q stopped=%v matched=%q",
			pieces, stops, got.String(), stopped, m.Matched(), wantOut, wantStopped, wantMatched)
	}
	checkStopOut(t, got.String(), stops, valid)
}

func checkStopOut(t *testing.T, out string, stops []string, valid bool) {
	t.Helper()
	for _, s := range stops {
		if s != "" && strings.Contains(out, s) {
			t.Fatalf("output %q contains stop string %q", out, s)
		}
	}
	if valid && !utf8.ValidString(out) {
		t.Fatalf("output %q cuts a UTF-8 character", out)
	}
}

// TestStopMatcherEverySplit cuts each text at every pair of byte offsets,
// which splits every stop string and every multi-byte character at every
// possible offset, and also pushes it one byte at a time.
func TestStopMatcherEverySplit(t *testing.T) {
	tests := []struct {
		text  string
		stops []string
	}{
		{"Hello</s>world", []string{"</s>"}},
		{"xxabcab", []string{"ab", "bc"}},
		{"xabcd", []string{"abcd", "bc"}},
		{"xabcd", []string{"abc", "abcd"}},
		{"aaaab", []string{"aab"}},
		{"café au lait", []string{"é a"}},
		{"我爱中文和中国", []string{"中国", "中文字"}},
		{"say 😀 now 😁", []string{"😁", "😀x"}},
		{"no stop here é中😀", []string{"STOP", "中x"}},
		{"\n\nUser: hi", []string{"\n\nUser:", "\nUser"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			for i := 0; i <= len(tt.text); i++ {
				for j := i; j <= len(tt.text); j++ {
					checkStopSplit(t, tt.stops, []string{tt.text[:i], tt.text[i:j], tt.text[j:]})
				}
			}
			checkStopSplit(t, tt.stops, strings.Split(tt.text, ""))
			var bytewise []string
			for i := range len(tt.text) {
				bytewise = append(bytewise, tt.text[i:i+1])
			}
			checkStopSplit(t, tt.stops, bytewise)
		})
	}
}

// TestStopMatcherBoundedHold checks that the held tail does not grow with the
// length of the output, which bounds the work done per Push.
func TestStopMatcherBoundedHold(t *testing.T) {
	m := NewStopMatcher([]string{"</answer>", "<<<<"})
	for i := range 100000 {
		piece := "tok <"
		if i%3 == 0 {
			piece = "</answer"
		}
		if out, stopped := m.Push(piece); stopped {
			t.Fatalf("stopped at %d with %q", i, out)
		}
		if len(m.held) > len("</answer>")-1 {
			t.Fatalf("push %d: holds %d bytes", i, len(m.held))
		}
	}
}

// TestDetokenizerThenStop runs byte-fallback pieces through a Detokenizer and
// a StopMatcher, as the generation loop does.
func TestDetokenizerThenStop(t *testing.T) {
	pieces := []string{"答", "案", "\xe6", "\x98\xaf", "4", "2", "\xe3\x80", "\x82", "\xe7\xbb", "\x93\xe6\x9d\x9f", "了"}
	var d Detokenizer
	m := NewStopMatcher([]string{"。结束"})
	var got strings.Builder
	for _, p := range pieces {
		out, stopped := m.Push(d.Add([]byte(p)))
		got.WriteString(out)
		if stopped {
			break
		}
	}
	if got.String() != "答案是42" || !m.Stopped() {
		t.Fatalf("got %q stopped=%v", got.String(), m.Stopped())
	}
}

func FuzzStopMatcher(f *testing.F) {
	f.Add("Hello</s>world", "</s>", "", "", []byte{3, 4, 1})
	f.Add("xxabcab", "ab", "bc", "", []byte{1, 1, 1, 1})
	f.Add("xabcd", "abcd", "bc", "abc", []byte{2, 2})
	f.Add("aaaab", "aab", "", "", []byte{1, 1, 1})
	f.Add("我爱中文和中国😀", "中国", "中文字", "😀", []byte{1, 2, 3, 5, 7})
	f.Fuzz(func(t *testing.T, text, s1, s2, s3 string, cuts []byte) {
		checkStopSplit(t, []string{s1, s2, s3}, splitByCuts(text, cuts))
	})
}

func BenchmarkStopMatcher(b *testing.B) {
	m := NewStopMatcher([]string{"</answer>", "\n\nUser:", "<|im_end|>", "STOP"})
	b.ReportAllocs()
	for b.Loop() {
		if _, stopped := m.Push(" token<"); stopped {
			b.Fatal("stopped")
		}
	}
}
