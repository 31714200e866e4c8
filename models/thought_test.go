package models

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var thinkTags = ThoughtTags{Open: "<think>", Close: "</think>"}

// refThought is the whole-output reference, written independently of the
// streaming parser: it walks the text byte by byte, acting on the tag that
// starts at each position (the expected one first), and trims whole blocks at
// the end. It returns merged fragments (see mergeFragments).
func refThought(text string, tags ThoughtTags, startInThought bool) []Fragment {
	if tags.Open == "" || tags.Close == "" {
		if text == "" {
			return nil
		}
		return []Fragment{{Text: text}}
	}
	var res []Fragment
	var block, content strings.Builder
	blocks := 0
	endBlock := func() {
		if b := strings.Trim(block.String(), thoughtSpace); b != "" {
			res = append(res, Fragment{Thought: true, Text: b, Block: blocks})
			blocks++
		}
		block.Reset()
	}
	endContent := func() {
		if content.Len() > 0 {
			res = append(res, Fragment{Text: content.String()})
		}
		content.Reset()
	}
	in, afterClose := startInThought, false
	for i := 0; i < len(text); {
		expected, other := tags.Open, tags.Close
		if in {
			expected, other = tags.Close, tags.Open
		}
		switch {
		case strings.HasPrefix(text[i:], expected):
			i += len(expected)
			if in {
				endBlock()
				afterClose = true
			} else {
				endContent()
			}
			in = !in
		case strings.HasPrefix(text[i:], other):
			i += len(other)
			if !in {
				afterClose = true // a stray close is dropped
			}
		default:
			c := text[i]
			i++
			if in {
				block.WriteByte(c)
			} else if !afterClose || !strings.ContainsRune(thoughtSpace, rune(c)) {
				afterClose = false
				content.WriteByte(c)
			}
		}
	}
	if in {
		endBlock()
	} else {
		endContent()
	}
	return mergeFragments(res)
}

// mergeFragments joins neighbouring fragments of the same kind and block, so
// results of different splits can be compared.
func mergeFragments(fs []Fragment) []Fragment {
	var res []Fragment
	for _, f := range fs {
		if n := len(res); n > 0 && res[n-1].Thought == f.Thought && res[n-1].Block == f.Block {
			res[n-1].Text += f.Text
			continue
		}
		res = append(res, f)
	}
	return res
}

// fmtFrags formats fragments for failure messages: T<block>"text" for
// reasoning, C"text" for content.
func fmtFrags(fs []Fragment) string {
	var b strings.Builder
	b.WriteString("[")
	for i, f := range fs {
		if i > 0 {
			b.WriteString(" ")
		}
		if f.Thought {
			fmt.Fprintf(&b, "T%d%q", f.Block, f.Text)
		} else {
			fmt.Fprintf(&b, "C%q", f.Text)
		}
	}
	b.WriteString("]")
	return b.String()
}

// parseThought pushes pieces and returns the fragments of each Push, the
// fragments of Flush last, and the parser.
func parseThought(tags ThoughtTags, start bool, pieces []string) ([][]Fragment, *ThoughtParser) {
	p := NewThoughtParser(tags, start)
	var calls [][]Fragment
	for _, s := range pieces {
		calls = append(calls, p.Push(s))
	}
	return append(calls, p.Flush()), p
}

// checkThoughtSplit pushes pieces and checks every invariant against the
// reference on the whole text.
func checkThoughtSplit(t *testing.T, tags ThoughtTags, start bool, pieces []string) {
	t.Helper()
	text := strings.Join(pieces, "")
	calls, p := parseThought(tags, start, pieces)
	enabled := tags.Open != "" && tags.Close != ""
	valid := utf8.ValidString(text) && utf8.ValidString(tags.Open) && utf8.ValidString(tags.Close)
	var all []Fragment
	for _, c := range calls {
		for _, f := range c {
			if f.Text == "" {
				t.Fatalf("pieces %q: empty fragment", pieces)
			}
			if enabled && (strings.Contains(f.Text, tags.Open) || strings.Contains(f.Text, tags.Close)) {
				t.Fatalf("pieces %q: fragment %q contains a tag", pieces, f.Text)
			}
			if !f.Thought && f.Block != 0 {
				t.Fatalf("content fragment with Block %d", f.Block)
			}
			if enabled && valid && !utf8.ValidString(f.Text) {
				t.Fatalf("pieces %q: fragment %q cuts a UTF-8 character", pieces, f.Text)
			}
		}
		all = append(all, c...)
	}
	got, want := mergeFragments(all), refThought(text, tags, start)
	if !slices.Equal(got, want) {
		t.Fatalf("tags %q start=%v pieces %q:\n got %s\nwant %s", tags, start, pieces, fmtFrags(got), fmtFrags(want))
	}
	var wantThoughts []string
	for _, f := range want {
		if f.Thought {
			wantThoughts = append(wantThoughts, f.Text)
		}
	}
	if th := p.Thoughts(); !slices.Equal(th, wantThoughts) {
		t.Fatalf("pieces %q: Thoughts %q, want %q", pieces, th, wantThoughts)
	}
}

func TestThoughtParser(t *testing.T) {
	const qwen = "<think>\nThe user greets me.\n\nAnswer briefly.\n</think>\n\nHello!"
	tests := []struct {
		name   string
		tags   ThoughtTags
		start  bool
		pieces []string
		want   []Fragment // merged
	}{
		{"no tags: everything content", ThoughtTags{}, false, []string{"<think>a</think>", " b"},
			[]Fragment{{Text: "<think>a</think> b"}}},
		{"no tags ignores start", ThoughtTags{}, true, []string{"x</think>"}, []Fragment{{Text: "x</think>"}}},
		{"no close tag disables", ThoughtTags{Open: "<think>"}, false, []string{"<think>x"}, []Fragment{{Text: "<think>x"}}},
		{"plain content", thinkTags, false, []string{"Hello ", "world \n"}, []Fragment{{Text: "Hello world \n"}}},
		{"qwen3", thinkTags, false, []string{qwen}, []Fragment{
			{Thought: true, Text: "The user greets me.\n\nAnswer briefly."}, {Text: "Hello!"}}},
		{"start in thought", thinkTags, true, []string{"\nreason\n</think>\n\nanswer"},
			[]Fragment{{Thought: true, Text: "reason"}, {Text: "answer"}}},
		{"start in thought, model repeats open", thinkTags, true, []string{"<think>\nreason</think>ok"},
			[]Fragment{{Thought: true, Text: "reason"}, {Text: "ok"}}},
		{"unclosed block is reasoning", thinkTags, false, []string{"<think>\nstill thinking \n"},
			[]Fragment{{Thought: true, Text: "still thinking"}}},
		{"start in thought, never closed", thinkTags, true, []string{"abc"}, []Fragment{{Thought: true, Text: "abc"}}},
		{"several blocks", thinkTags, false, []string{"<think>a</think>x<think>b</think>y"}, []Fragment{
			{Thought: true, Text: "a"}, {Text: "x"}, {Thought: true, Text: "b", Block: 1}, {Text: "y"}}},
		{"empty block dropped and not numbered", thinkTags, false, []string{"<think> \n</think>a<think>b</think>c"},
			[]Fragment{{Text: "a"}, {Thought: true, Text: "b"}, {Text: "c"}}},
		{"qwen3 no-think output", thinkTags, false, []string{"<think>\n\n</think>\n\nHello"}, []Fragment{{Text: "Hello"}}},
		{"content before block kept as is", thinkTags, false, []string{" Hi <think>r</think> there"},
			[]Fragment{{Text: " Hi "}, {Thought: true, Text: "r"}, {Text: "there"}}},
		{"whitespace inside block kept", thinkTags, false, []string{"<think>a\n\nb  </think>"},
			[]Fragment{{Thought: true, Text: "a\n\nb"}}},
		{"only whitespace after close", thinkTags, false, []string{"<think>a</think>\n\n"}, []Fragment{{Thought: true, Text: "a"}}},
		{"less-than is text", thinkTags, false, []string{"a < b and a<b"}, []Fragment{{Text: "a < b and a<b"}}},
		{"<thinking> is text", thinkTags, false, []string{"<thinking>x</thinking>"}, []Fragment{{Text: "<thinking>x</thinking>"}}},
		{"</thinking> in a block is text", thinkTags, true, []string{"x</thinking>y</think>z"},
			[]Fragment{{Thought: true, Text: "x</thinking>y"}, {Text: "z"}}},
		{"partial open at end is content", thinkTags, false, []string{"answer <thi"}, []Fragment{{Text: "answer <thi"}}},
		{"partial close at end is reasoning", thinkTags, false, []string{"<think>abc</thi"},
			[]Fragment{{Thought: true, Text: "abc</thi"}}},
		{"stray close in content dropped", thinkTags, false, []string{"oops</think>\n answer"},
			[]Fragment{{Text: "oopsanswer"}}},
		{"open inside block dropped", thinkTags, false, []string{"<think>a<think>b</think>c"},
			[]Fragment{{Thought: true, Text: "ab"}, {Text: "c"}}},
		{"unicode space is not trimmed", thinkTags, false, []string{"<think>\u00a0x</think>\u3000y"},
			[]Fragment{{Thought: true, Text: "\u00a0x"}, {Text: "\u3000y"}}},
		{"multi-byte tags", ThoughtTags{"◁think▷", "◁/think▷"}, false, []string{"◁think▷思考◁/think▷答案"},
			[]Fragment{{Thought: true, Text: "思考"}, {Text: "答案"}}},
		{"bracket tags", ThoughtTags{"[THINK]", "[/THINK]"}, false, []string{"[THINK]x[/THINK]y"},
			[]Fragment{{Thought: true, Text: "x"}, {Text: "y"}}},
		{"toggle tag", ThoughtTags{"§", "§"}, false, []string{"a§b§c§d"},
			[]Fragment{{Text: "a"}, {Thought: true, Text: "b"}, {Text: "c"}, {Thought: true, Text: "d", Block: 1}}},
		{"emoji and CJK around tags", thinkTags, false, []string{"😀<think>中文😀</think>é"},
			[]Fragment{{Text: "😀"}, {Thought: true, Text: "中文😀"}, {Text: "é"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, _ := parseThought(tt.tags, tt.start, tt.pieces)
			var all []Fragment
			for _, c := range calls {
				all = append(all, c...)
			}
			if got := mergeFragments(all); !slices.Equal(got, tt.want) {
				t.Fatalf("got %s, want %s", fmtFrags(got), fmtFrags(tt.want))
			}
			checkThoughtSplit(t, tt.tags, tt.start, tt.pieces)
			// Every split: each tag and each character cut at every offset.
			text := strings.Join(tt.pieces, "")
			for i := 0; i <= len(text); i++ {
				for j := i; j <= len(text); j++ {
					checkThoughtSplit(t, tt.tags, tt.start, []string{text[:i], text[i:j], text[j:]})
				}
			}
			var bytewise []string
			for i := range len(text) {
				bytewise = append(bytewise, text[i:i+1])
			}
			checkThoughtSplit(t, tt.tags, tt.start, bytewise)
		})
	}
}

// TestThoughtParserStreaming checks what each call returns: what is held
// back and when it is released.
func TestThoughtParserStreaming(t *testing.T) {
	type step struct {
		push string // "" with flush set means Flush
		want []Fragment
	}
	tests := []struct {
		name  string
		tags  ThoughtTags
		start bool
		steps []step
		flush []Fragment
	}{
		{"tag split", thinkTags, false, []step{
			{"<th", nil},
			{"ink>x", []Fragment{{Thought: true, Text: "x"}}},
			{"</", nil},
			{"think>\n", nil},
			{"\nHello", []Fragment{{Text: "Hello"}}},
		}, nil},
		{"false alarm released", thinkTags, false, []step{
			{"a<", []Fragment{{Text: "a"}}},
			{"b", []Fragment{{Text: "<b"}}},
		}, nil},
		{"trailing whitespace waits for text", thinkTags, true, []step{
			{"x\n", []Fragment{{Thought: true, Text: "x"}}},
			{"\ny", []Fragment{{Thought: true, Text: "\n\ny"}}},
			{" \n", nil},
			{"</think>", nil},
			{"\n\n", nil},
			{" ok ", []Fragment{{Text: "ok "}}},
		}, nil},
		{"held partial tag at flush", thinkTags, false, []step{
			{"x <thi", []Fragment{{Text: "x "}}},
		}, []Fragment{{Text: "<thi"}}},
		{"unclosed block trailing whitespace dropped", thinkTags, false, []step{
			{"<think>a \n", []Fragment{{Thought: true, Text: "a"}}},
		}, nil},
		{"split character held", thinkTags, false, []step{
			{"a\xe4\xb8", []Fragment{{Text: "a"}}},
			{"\xad", []Fragment{{Text: "中"}}},
		}, nil},
		{"disabled passes through", ThoughtTags{}, false, []step{
			{"<th", []Fragment{{Text: "<th"}}},
			{"", nil},
			{"a\xe4", []Fragment{{Text: "a\xe4"}}},
		}, nil},
		{"second block index", thinkTags, false, []step{
			{"<think>a</think>b<think>", []Fragment{{Thought: true, Text: "a"}, {Text: "b"}}},
			{"c", []Fragment{{Thought: true, Text: "c", Block: 1}}},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewThoughtParser(tt.tags, tt.start)
			for i, s := range tt.steps {
				if got := p.Push(s.push); !slices.Equal(got, s.want) {
					t.Fatalf("step %d Push(%q) = %s, want %s", i, s.push, fmtFrags(got), fmtFrags(s.want))
				}
			}
			if got := p.Flush(); !slices.Equal(got, tt.flush) {
				t.Fatalf("Flush = %s, want %s", fmtFrags(got), fmtFrags(tt.flush))
			}
		})
	}
}

// TestThoughtParserOverlappingTags covers tag pairs where one tag is a prefix
// or an infix of the other: the tag starting first wins, the expected one at
// the same start, however the output is split.
func TestThoughtParserOverlappingTags(t *testing.T) {
	cases := []struct {
		tags ThoughtTags
		text string
	}{
		{ThoughtTags{"<a", "<ab"}, "x<ab<a<ab y<a"},
		{ThoughtTags{"<ab", "<a"}, "x<ab<a<ab y<a"},
		{ThoughtTags{"b", "xaby"}, "xab xaby b q xab"},
		{ThoughtTags{"aa", "a"}, "aaaa b aaa"},
	}
	for _, c := range cases {
		for _, start := range []bool{false, true} {
			for i := 0; i <= len(c.text); i++ {
				for j := i; j <= len(c.text); j++ {
					checkThoughtSplit(t, c.tags, start, []string{c.text[:i], c.text[i:j], c.text[j:]})
				}
			}
		}
	}
}

// thoughtCuts splits s into pieces whose lengths come from cuts (each byte
// modulo 8, so empty pieces happen); the rest of s is the last piece.
func thoughtCuts(s string, cuts []byte) []string {
	var pieces []string
	for _, c := range cuts {
		n := min(int(c%8), len(s))
		pieces = append(pieces, s[:n])
		s = s[n:]
	}
	return append(pieces, s)
}

func FuzzThoughtParser(f *testing.F) {
	f.Add("<think>\nreason\n</think>\n\nanswer", "<think>", "</think>", false, []byte{3, 5, 7, 1})
	f.Add("reason</think> answer <think>b", "<think>", "</think>", true, []byte{2, 2, 2})
	f.Add("a<thinking>b</thi", "<think>", "</think>", false, []byte{1, 6})
	f.Add("◁think▷思考◁/think▷答案", "◁think▷", "◁/think▷", false, []byte{1, 1, 1, 4})
	f.Add("x<ab<a<ab y<a", "<ab", "<a", false, []byte{1, 2})
	f.Add("a§b§c", "§", "§", true, []byte{1})
	f.Add("no tags", "", "", false, []byte{2})
	f.Fuzz(func(t *testing.T, text, open, close string, start bool, cuts []byte) {
		checkThoughtSplit(t, ThoughtTags{open, close}, start, thoughtCuts(text, cuts))
	})
}

func BenchmarkThoughtParser(b *testing.B) {
	pieces := strings.SplitAfter("<think>\nThe user asks for a < b, so I answer.\n</think>\n\nYes, a < b.", " ")
	b.ReportAllocs()
	for b.Loop() {
		p := NewThoughtParser(thinkTags, false)
		for _, s := range pieces {
			p.Push(s)
		}
		p.Flush()
	}
}

// A constrained answer reads the Close of a block the prompt opened and no
// tag after it: a JSON string may spell "<think>" or "</think>" as text.
func TestThoughtParserConstrain(t *testing.T) {
	for _, c := range []struct {
		start bool
		text  string
		want  []Fragment
	}{
		{false, `{"a": "<think>x</think>y"}`, []Fragment{{Text: `{"a": "<think>x</think>y"}`}}},
		{true, "</think>\n\n{\"a\": \"<think>x</think>\"}", []Fragment{{Text: `{"a": "<think>x</think>"}`}}},
		{true, "plan</think>{\"a\": \"</think>\"}", []Fragment{{Thought: true, Text: "plan"}, {Text: `{"a": "</think>"}`}}},
	} {
		for _, pieces := range [][]string{{c.text}, strings.Split(c.text, "")} {
			p := NewThoughtParser(thinkTags, c.start)
			p.Constrain()
			var got []Fragment
			for _, s := range pieces {
				got = append(got, p.Push(s)...)
			}
			got = mergeFragments(append(got, p.Flush()...))
			if !slices.Equal(got, c.want) {
				t.Errorf("%q in %d pieces: got %s, want %s", c.text, len(pieces), fmtFrags(got), fmtFrags(c.want))
			}
		}
	}
}
