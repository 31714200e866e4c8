package models

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse-time preparation of a chat template's source for the library.
//
// prepareSource does, on the source text, what Python Jinja2's lexer does
// under transformers' settings, and hands the library a source on which
// the library's own whitespace handling has nothing left to do:
//
//   - newlines are normalized to "\n" and one trailing newline is dropped
//     (keep_trailing_newline=False);
//   - whitespace control is applied exactly as Jinja2's lexer applies it:
//     "-" markers strip all whitespace on their side, "+" markers keep it,
//     lstrip_blocks strips the indentation before {% and {# tags that start
//     a line, trim_blocks removes the newline after %} and #}. The library
//     does this too, but looks past adjacent tags for text to trim (for
//     `A: {{ x }}{%- endif %}` it strips the space after "A:"), which
//     changes real prompts (GLM's "Reasoning Effort: Max");
//   - markers are removed and comments dropped, and every text run is
//     written so that the library's lstrip_blocks/trim_blocks defaults,
//     which it cannot be told to skip, find nothing to strip: a run's
//     leading newlines and its trailing line indentation are emitted as
//     {{ "..." }} expressions instead of text;
//   - the tag rewrites below (rewriteTag, rewriteForFilter) are applied.
//
// A template with a {% raw %} block, or one that does not lex, only gets
// the newline normalization and the tag rewrites (rewriteTags), and the
// library's whitespace handling.
func prepareSource(src string) string {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	src = strings.TrimSuffix(src, "\n")
	toks, ok := lexTemplate(src)
	if !ok {
		return rewriteTags(src)
	}
	applyWhitespaceControl(toks)

	var out strings.Builder
	out.Grow(len(src) + len(src)/8)
	var text strings.Builder // pending text, merged across dropped comments
	flush := func() {
		writeProtectedText(&out, text.String())
		text.Reset()
	}
	for _, t := range toks {
		switch t.kind {
		case tokText:
			text.WriteString(t.text)
		case tokComment:
		case tokVar:
			flush()
			code, _ := rewriteTag(t.text)
			out.WriteString("{{")
			out.WriteString(code)
			out.WriteString("}}")
		case tokBlock:
			flush()
			code, _ := rewriteTag(t.text)
			code, _ = rewriteForFilter(code)
			out.WriteString("{%")
			out.WriteString(code)
			out.WriteString("%}")
		}
	}
	flush()
	return out.String()
}

type tokKind uint8

const (
	tokText tokKind = iota
	tokVar
	tokBlock
	tokComment
)

// templateTok is a piece of template source: text, or a tag whose text is
// the code between the delimiters and the whitespace-control signs.
type templateTok struct {
	kind         tokKind
	text         string
	lsign, rsign byte // '-', '+' or 0
}

// lexTemplate splits src into text and tags as Jinja2's lexer does (tags
// end at the first closer outside string literals, like the library's
// scanner). ok is false for an unterminated tag or a raw block.
func lexTemplate(src string) (toks []templateTok, ok bool) {
	pos := 0
	for pos < len(src) {
		idx := -1
		for i := pos; i+1 < len(src); i++ {
			if src[i] == '{' && (src[i+1] == '{' || src[i+1] == '%' || src[i+1] == '#') {
				idx = i
				break
			}
		}
		if idx < 0 {
			toks = append(toks, templateTok{kind: tokText, text: src[pos:]})
			break
		}
		if idx > pos {
			toks = append(toks, templateTok{kind: tokText, text: src[pos:idx]})
		}
		t := templateTok{}
		var closer string
		switch src[idx+1] {
		case '{':
			t.kind, closer = tokVar, "}}"
		case '%':
			t.kind, closer = tokBlock, "%}"
		default:
			t.kind, closer = tokComment, "#}"
		}
		p := idx + 2
		if p < len(src) && (src[p] == '-' || src[p] == '+') {
			t.lsign = src[p]
			p++
		}
		var end int
		if t.kind == tokComment {
			end = strings.Index(src[p:], closer)
			if end >= 0 {
				end += p
			}
		} else {
			end = findCloser(src, p, closer)
		}
		if end < 0 {
			return nil, false
		}
		code := src[p:end]
		if n := len(code); n > 0 && (code[n-1] == '-' || code[n-1] == '+' && t.kind != tokVar) {
			t.rsign = code[n-1]
			code = code[:n-1]
		}
		t.text = code
		if t.kind == tokBlock {
			if f := strings.Fields(code); len(f) > 0 && (f[0] == "raw" || f[0] == "endraw") {
				return nil, false
			}
		}
		toks = append(toks, t)
		pos = end + len(closer)
	}
	return toks, true
}

// applyWhitespaceControl edits the text tokens as Jinja2's lexer does with
// trim_blocks=True and lstrip_blocks=True.
func applyWhitespaceControl(toks []templateTok) {
	lineStarting := true // whether the previous lexer match ended a line
	for i := range toks {
		t := &toks[i]
		if t.kind == tokText {
			continue
		}
		var prev *templateTok
		if i > 0 && toks[i-1].kind == tokText {
			prev = &toks[i-1]
		}
		// Left of the tag: the text before it.
		if prev != nil {
			switch {
			case t.lsign == '-':
				prev.text = strings.TrimRightFunc(prev.text, isPySpace)
			case t.lsign != '+' && t.kind != tokVar:
				l := strings.LastIndexByte(prev.text, '\n') + 1
				if (l > 0 || lineStarting) && strings.TrimLeftFunc(prev.text[l:], isPySpace) == "" {
					prev.text = prev.text[:l]
				}
			}
		}
		// Right of the tag: the text after it.
		lineStarting = false
		if i+1 < len(toks) && toks[i+1].kind == tokText {
			next := &toks[i+1]
			switch {
			case t.rsign == '-':
				trimmed := strings.TrimLeftFunc(next.text, isPySpace)
				lineStarting = strings.HasSuffix(next.text[:len(next.text)-len(trimmed)], "\n")
				next.text = trimmed
			case t.rsign != '+' && t.kind != tokVar && strings.HasPrefix(next.text, "\n"):
				next.text = next.text[1:]
				lineStarting = true
			}
		}
	}
}

// isPySpace reports whether Python's str.isspace holds for r (what
// str.strip and the re module's \s use).
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

// writeProtectedText writes a text run so that the library's
// lstrip_blocks/trim_blocks defaults cannot change it: leading newlines and
// trailing spaces or tabs that start a line (or the run) are written as
// string expressions. A trailing "{" is written as an expression too, so
// that it cannot merge with the next tag's opener.
func writeProtectedText(out *strings.Builder, s string) {
	if s == "" {
		return
	}
	lead := len(s) - len(strings.TrimLeft(s, "\n"))
	if lead > 0 {
		out.WriteString(`{{ "`)
		out.WriteString(strings.Repeat(`\n`, lead))
		out.WriteString(`" }}`)
		s = s[lead:]
	}
	// A text run ending in "{" would make a tag opener with the next tag
	// ("{" + "{%" reads as "{{" + "%"): write that brace as an expression.
	brace := strings.HasSuffix(s, "{")
	if brace {
		s = s[:len(s)-1]
	}
	body := strings.TrimRight(s, " \t")
	indent := s[len(body):]
	if body != "" && !strings.HasSuffix(body, "\n") {
		body, indent = s, ""
	}
	out.WriteString(body)
	if indent != "" {
		out.WriteString(`{{ "`)
		out.WriteString(strings.ReplaceAll(indent, "\t", `\t`))
		out.WriteString(`" }}`)
	}
	if brace {
		out.WriteString(`{{ "{" }}`)
	}
}

// rewriteTags applies rewriteTag to every {{ }} and {% %} tag and
// rewriteForFilter to for tags, leaving text, comments and whitespace
// control alone (the fallback of prepareSource).
func rewriteTags(src string) string {
	if !strings.Contains(src, "tojson") && !strings.Contains(src, "for") {
		return src
	}
	var out strings.Builder
	i := 0
	last := 0
	for i < len(src)-1 {
		if src[i] != '{' {
			i++
			continue
		}
		var closer string
		switch src[i+1] {
		case '{':
			closer = "}}"
		case '%':
			closer = "%}"
		case '#':
			end := strings.Index(src[i+2:], "#}")
			if end < 0 {
				i = len(src)
			} else {
				i += 2 + end + 2
			}
			continue
		default:
			i++
			continue
		}
		start := i + 2
		if start < len(src) && (src[start] == '-' || src[start] == '+') {
			start++
		}
		end := findCloser(src, start, closer)
		if end < 0 {
			break // unterminated tag: leave the rest to the parser
		}
		inner := src[start:end]
		// A trailing trim marker belongs to the closer.
		trimEnd := len(inner)
		if trimEnd > 0 && (inner[trimEnd-1] == '-' || inner[trimEnd-1] == '+') {
			trimEnd--
		}
		code, changed := rewriteTag(inner[:trimEnd])
		if closer == "%}" {
			var forChanged bool
			code, forChanged = rewriteForFilter(code)
			changed = changed || forChanged
		}
		if rewritten := code; changed {
			out.WriteString(src[last:start])
			out.WriteString(rewritten)
			last = start + trimEnd
		}
		i = end + len(closer)
	}
	if last == 0 {
		return src
	}
	out.WriteString(src[last:])
	return out.String()
}

// findCloser returns the index of closer in src at or after i, skipping
// string literals, or -1.
func findCloser(src string, i int, closer string) int {
	for i < len(src) {
		c := src[i]
		if c == '\'' || c == '"' {
			i = skipString(src, i)
			continue
		}
		if strings.HasPrefix(src[i:], closer) {
			return i
		}
		i++
	}
	return -1
}

// skipString returns the index just past the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	i++
	for i < len(s) && s[i] != q {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i+1, len(s))
}

// rewriteTag rewrites every `OPERAND | tojson` and
// `OPERAND | tojson(ARGS)` filter application in one tag's code
// into `__asi1d_tojson(OPERAND)` / `__asi1d_tojson(OPERAND, ARGS)`, because
// the library's filters cannot be replaced and its tojson differs from
// transformers' (see the package comment). OPERAND is what the filter
// binds to in Jinja: a postfix chain (names, literals, attribute access,
// subscripts, calls, parenthesized expressions) plus any filters before
// tojson in the same chain. An application whose operand cannot be
// delimited is left to the library's tojson.
func rewriteTag(code string) (string, bool) {
	changed := false
	i := 0
	for i < len(code) {
		c := code[i]
		if c == '\'' || c == '"' {
			i = skipString(code, i)
			continue
		}
		if c != '|' {
			i++
			continue
		}
		// A filter: | name [ (args) ]
		j := i + 1
		for j < len(code) && isSpace(code[j]) {
			j++
		}
		if !strings.HasPrefix(code[j:], "tojson") || (j+6 < len(code) && isIdentByte(code[j+6])) {
			i++
			continue
		}
		filterEnd := j + 6
		args := ""
		k := filterEnd
		for k < len(code) && isSpace(code[k]) {
			k++
		}
		if k < len(code) && code[k] == '(' {
			close := matchForward(code, k)
			if close < 0 {
				i++
				continue
			}
			args = strings.TrimSpace(code[k+1 : close])
			filterEnd = close + 1
		}
		opStart := operandStart(code, i)
		if opStart < 0 {
			i = filterEnd
			continue
		}
		operand := strings.TrimSpace(code[opStart:i])
		repl := tojsonFunc + "(" + operand
		if args != "" {
			repl += ", " + args
		}
		repl += ")"
		code = code[:opStart] + repl + code[filterEnd:]
		i = opStart + len(tojsonFunc) + 1 + len(operand)
		changed = true
	}
	return code, changed
}

// operandStart returns where the operand of the filter whose '|' is at
// pipe begins, or -1 if it cannot be delimited.
func operandStart(code string, pipe int) int {
	j := pipe
	for {
		for j > 0 && isSpace(code[j-1]) {
			j--
		}
		s := postfixStart(code, j)
		if s < 0 {
			return -1
		}
		// An earlier filter in the same chain (x | f | tojson) is part of
		// the operand.
		k := s
		for k > 0 && isSpace(code[k-1]) {
			k--
		}
		if k > 0 && code[k-1] == '|' {
			j = k - 1
			continue
		}
		return s
	}
}

// postfixStart returns the start of the postfix expression (primary with
// attribute, subscript and call suffixes) that ends at end, or -1.
func postfixStart(code string, end int) int {
	j := end
	if j == 0 {
		return -1
	}
	for {
		if j == 0 {
			return -1
		}
		c := code[j-1]
		switch {
		case c == ')' || c == ']' || c == '}':
			open := matchBackward(code, j-1)
			if open < 0 {
				return -1
			}
			j = open
			// A call or subscript continues to its left; a bare group or
			// literal is a primary.
			if j > 0 && (isIdentByte(code[j-1]) || code[j-1] == ')' || code[j-1] == ']' || code[j-1] == '\'' || code[j-1] == '"') && c != '}' {
				continue
			}
			return j
		case c == '\'' || c == '"':
			k := j - 2
			for k >= 0 && !(code[k] == c && !escaped(code, k)) {
				k--
			}
			if k < 0 {
				return -1
			}
			return k
		case isIdentByte(c):
			for j > 0 && isIdentByte(code[j-1]) {
				j--
			}
			if j > 0 && code[j-1] == '.' {
				j--
				continue
			}
			return j
		default:
			return -1
		}
	}
}

// escaped reports whether code[k] is preceded by an odd number of
// backslashes.
func escaped(code string, k int) bool {
	n := 0
	for k > 0 && code[k-1] == '\\' {
		n++
		k--
	}
	return n%2 == 1
}

// matchForward returns the index of the bracket closing the one at open.
func matchForward(code string, open int) int {
	depth := 0
	for i := open; i < len(code); {
		switch c := code[i]; c {
		case '\'', '"':
			i = skipString(code, i)
			continue
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return -1
}

// matchBackward returns the index of the bracket opening the one at close.
func matchBackward(code string, close int) int {
	depth := 0
	for i := close; i >= 0; i-- {
		switch c := code[i]; c {
		case '\'', '"':
			if i == close {
				continue
			}
			k := i - 1
			for k >= 0 && !(code[k] == c && !escaped(code, k)) {
				k--
			}
			if k < 0 {
				return -1
			}
			i = k
		case ')', ']', '}':
			depth++
		case '(', '[', '{':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= utf8.RuneSelf
}

// rewriteForFilter rewrites the condition of `for K, V in ITER if COND` so
// that it reads the item the library binds to V: K becomes V[0] and V
// becomes V[1] (identifiers only, not attributes, keyword arguments or
// string contents).
func rewriteForFilter(code string) (string, bool) {
	lead := len(code) - len(strings.TrimLeft(code, " \t\r\n"))
	rest := code[lead:]
	if !strings.HasPrefix(rest, "for") || len(rest) < 4 || !isSpace(rest[3]) {
		return code, false
	}
	inIdx := findTopKeyword(rest, "in", 3)
	if inIdx < 0 {
		return code, false
	}
	vars := strings.Split(rest[3:inIdx], ",")
	if len(vars) != 2 {
		return code, false
	}
	k, v := strings.TrimSpace(vars[0]), strings.TrimSpace(vars[1])
	if !isIdentifier(k) || !isIdentifier(v) {
		return code, false
	}
	ifIdx := findTopKeyword(rest, "if", inIdx+2)
	if ifIdx < 0 {
		return code, false
	}
	condStart := ifIdx + 2
	condEnd := len(rest)
	if r := findTopKeyword(rest, "recursive", condStart); r >= 0 {
		condEnd = r
	}
	cond := rest[condStart:condEnd]
	var b strings.Builder
	changed := false
	for i := 0; i < len(cond); {
		c := cond[i]
		if c == '\'' || c == '"' {
			j := skipString(cond, i)
			b.WriteString(cond[i:j])
			i = j
			continue
		}
		if !isIdentByte(c) {
			b.WriteByte(c)
			i++
			continue
		}
		j := i
		for j < len(cond) && isIdentByte(cond[j]) {
			j++
		}
		word := cond[i:j]
		p := i - 1
		for p >= 0 && isSpace(cond[p]) {
			p--
		}
		n := j
		for n < len(cond) && isSpace(cond[n]) {
			n++
		}
		isAttr := p >= 0 && cond[p] == '.'
		isKwarg := n < len(cond) && cond[n] == '=' && (n+1 >= len(cond) || cond[n+1] != '=')
		switch {
		case isAttr || isKwarg:
			b.WriteString(word)
		case word == k:
			b.WriteString(v + "[0]")
			changed = true
		case word == v:
			b.WriteString(v + "[1]")
			changed = true
		default:
			b.WriteString(word)
		}
		i = j
	}
	if !changed {
		return code, false
	}
	return code[:lead] + rest[:condStart] + b.String() + rest[condEnd:], true
}

// findTopKeyword returns the index of keyword kw at bracket depth 0 and
// outside strings in s, searching from from, or -1.
func findTopKeyword(s, kw string, from int) int {
	depth := 0
	for i := from; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			i = skipString(s, i)
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], kw) &&
			(i == 0 || !isIdentByte(s[i-1])) && (i+len(kw) >= len(s) || !isIdentByte(s[i+len(kw)])):
			return i
		}
		i++
	}
	return -1
}

func isIdentifier(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}
