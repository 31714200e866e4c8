package models

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
)

// A dfa is a deterministic automaton over dfaAlphabet, the characters a
// lowered string or number may contain: printable ASCII without '"' and
// '\', so that every accepted text can stand inside a JSON string as it is.
// State 0 is the start; next[s][c] is -1 where there is no transition.
type dfa struct {
	next   [][dfaChars]int32
	accept []bool
}

const (
	dfaFirst = 0x20
	dfaChars = 0x7f - dfaFirst // 0x20..0x7e
	// maxDFAStates bounds subset construction and products, so that a hostile
	// pattern costs a 400, not the server's memory.
	maxDFAStates = 4096
	// maxGrammarRules bounds the rules of a length-windowed automaton.
	maxGrammarRules = 20000
)

func dfaAllowed(c byte) bool { return c >= dfaFirst && c < dfaFirst+dfaChars && c != '"' && c != '\\' }

var errTooComplex = errors.New("the automaton it needs is too large")

// compileDFA builds the automaton of the strings that JSON Schema's pattern
// semantics accept: a match anywhere in the string (patterns are not
// implicitly anchored), with ^ and $ at its ends. It refuses what RE2 does not
// parse (lookaround, backreferences) and word boundaries.
func compileDFA(pattern string) (*dfa, error) {
	re, err := syntax.Parse(`(?s:.*)(?:`+pattern+`)(?s:.*)`, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	for _, in := range prog.Inst {
		if in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&(syntax.EmptyWordBoundary|syntax.EmptyNoWordBoundary) != 0 {
			return nil, errors.New(`word boundaries (\b, \B) are not supported`)
		}
	}
	// closure adds pc and what it reaches without reading, following ^
	// only at the start and never $ (see final).
	var closure func(set map[uint32]bool, pc uint32, start bool)
	closure = func(set map[uint32]bool, pc uint32, start bool) {
		if set[pc] {
			return
		}
		set[pc] = true
		in := prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			closure(set, in.Out, start)
			closure(set, in.Arg, start)
		case syntax.InstCapture, syntax.InstNop:
			closure(set, in.Out, start)
		case syntax.InstEmptyWidth:
			op := syntax.EmptyOp(in.Arg)
			if op&(syntax.EmptyEndText|syntax.EmptyEndLine) != 0 {
				return // followed by final
			}
			if start || op&(syntax.EmptyBeginText|syntax.EmptyBeginLine) == 0 {
				closure(set, in.Out, start)
			}
		}
	}
	var final func(pc uint32, seen map[uint32]bool) bool
	final = func(pc uint32, seen map[uint32]bool) bool {
		if seen[pc] {
			return false
		}
		seen[pc] = true
		in := prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			return true
		case syntax.InstAlt, syntax.InstAltMatch:
			return final(in.Out, seen) || final(in.Arg, seen)
		case syntax.InstCapture, syntax.InstNop:
			return final(in.Out, seen)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&(syntax.EmptyBeginText|syntax.EmptyBeginLine) != 0 {
				return false // the set holding it was made after the start
			}
			return final(in.Out, seen)
		}
		return false
	}
	key := func(set map[uint32]bool) string {
		pcs := make([]int, 0, len(set))
		for pc := range set {
			pcs = append(pcs, int(pc))
		}
		sort.Ints(pcs)
		var b strings.Builder
		for _, pc := range pcs {
			b.WriteString(strconv.Itoa(pc))
			b.WriteByte(',')
		}
		return b.String()
	}
	d := &dfa{}
	index := map[string]int32{}
	var sets []map[uint32]bool
	add := func(set map[uint32]bool, start bool) (int32, error) {
		k := key(set)
		if start {
			k = "^" + k // ^ may still hold in the start state only
		}
		if i, ok := index[k]; ok {
			return i, nil
		}
		if len(sets) >= maxDFAStates {
			return 0, errTooComplex
		}
		i := int32(len(sets))
		index[k] = i
		sets = append(sets, set)
		acc := false
		for pc := range set {
			if final(pc, map[uint32]bool{}) {
				acc = true
				break
			}
		}
		var row [dfaChars]int32
		for c := range row {
			row[c] = -1
		}
		d.next = append(d.next, row)
		d.accept = append(d.accept, acc)
		return i, nil
	}
	start := map[uint32]bool{}
	closure(start, uint32(prog.Start), true)
	if _, err := add(start, true); err != nil {
		return nil, err
	}
	for s := 0; s < len(sets); s++ {
		for c := 0; c < dfaChars; c++ {
			ch := byte(c + dfaFirst)
			if !dfaAllowed(ch) {
				continue
			}
			next := map[uint32]bool{}
			for pc := range sets[s] {
				in := prog.Inst[pc]
				switch in.Op {
				case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
					if in.MatchRune(rune(ch)) {
						closure(next, in.Out, false)
					}
				}
			}
			if len(next) == 0 {
				continue
			}
			t, err := add(next, false)
			if err != nil {
				return nil, err
			}
			d.next[s][c] = t
		}
	}
	return d.trim().minimize(), nil
}

// trim drops the states from which no accepting state is reachable (a
// grammar must never lead the sampler where it cannot finish) and those not
// reachable from the start. An empty language leaves one state that accepts
// nothing.
func (d *dfa) trim() *dfa {
	n := len(d.next)
	live := make([]bool, n)
	for s := range d.accept {
		live[s] = d.accept[s]
	}
	for changed := true; changed; {
		changed = false
		for s := 0; s < n; s++ {
			if live[s] {
				continue
			}
			for _, t := range d.next[s] {
				if t >= 0 && live[t] {
					live[s], changed = true, true
					break
				}
			}
		}
	}
	if !live[0] {
		return &dfa{next: [][dfaChars]int32{emptyRow()}, accept: []bool{false}}
	}
	newIndex := make([]int32, n)
	for i := range newIndex {
		newIndex[i] = -1
	}
	order := []int{0}
	newIndex[0] = 0
	for i := 0; i < len(order); i++ {
		for _, t := range d.next[order[i]] {
			if t >= 0 && live[t] && newIndex[t] < 0 {
				newIndex[t] = int32(len(order))
				order = append(order, int(t))
			}
		}
	}
	out := &dfa{next: make([][dfaChars]int32, len(order)), accept: make([]bool, len(order))}
	for i, s := range order {
		out.accept[i] = d.accept[s]
		for c, t := range d.next[s] {
			out.next[i][c] = -1
			if t >= 0 && live[t] {
				out.next[i][c] = newIndex[t]
			}
		}
	}
	return out
}

func emptyRow() [dfaChars]int32 {
	var row [dfaChars]int32
	for c := range row {
		row[c] = -1
	}
	return row
}

// minimize merges equivalent states (Moore's partition refinement); the
// automaton must be trimmed.
func (d *dfa) minimize() *dfa {
	n := len(d.next)
	class := make([]int32, n)
	for s := range class {
		if d.accept[s] {
			class[s] = 1
		}
	}
	for {
		sig := map[string]int32{}
		next := make([]int32, n)
		for s := 0; s < n; s++ {
			var b strings.Builder
			b.WriteString(strconv.Itoa(int(class[s])))
			for _, t := range d.next[s] {
				b.WriteByte(',')
				if t >= 0 {
					b.WriteString(strconv.Itoa(int(class[t])))
				}
			}
			k := b.String()
			id, ok := sig[k]
			if !ok {
				id = int32(len(sig))
				sig[k] = id
			}
			next[s] = id
		}
		same := len(sig) == countClasses(class)
		class = next
		if same {
			break
		}
	}
	// Renumber so that the start's class is 0.
	renum := map[int32]int32{class[0]: 0}
	for s := 0; s < n; s++ {
		if _, ok := renum[class[s]]; !ok {
			renum[class[s]] = int32(len(renum))
		}
	}
	out := &dfa{next: make([][dfaChars]int32, len(renum)), accept: make([]bool, len(renum))}
	for s := 0; s < n; s++ {
		i := renum[class[s]]
		out.accept[i] = d.accept[s]
		for c, t := range d.next[s] {
			out.next[i][c] = -1
			if t >= 0 {
				out.next[i][c] = renum[class[t]]
			}
		}
	}
	return out
}

func countClasses(class []int32) int {
	seen := map[int32]bool{}
	for _, c := range class {
		seen[c] = true
	}
	return len(seen)
}

// intersect returns the automaton of the strings both accept.
func (d *dfa) intersect(o *dfa) (*dfa, error) {
	type pair struct{ a, b int32 }
	index := map[pair]int32{{0, 0}: 0}
	order := []pair{{0, 0}}
	out := &dfa{}
	for i := 0; i < len(order); i++ {
		p := order[i]
		row := emptyRow()
		for c := 0; c < dfaChars; c++ {
			ta, tb := d.next[p.a][c], o.next[p.b][c]
			if ta < 0 || tb < 0 {
				continue
			}
			q := pair{ta, tb}
			j, ok := index[q]
			if !ok {
				if len(order) >= maxDFAStates {
					return nil, errTooComplex
				}
				j = int32(len(order))
				index[q] = j
				order = append(order, q)
			}
			row[c] = j
		}
		out.next = append(out.next, row)
		out.accept = append(out.accept, d.accept[p.a] && o.accept[p.b])
	}
	return out.trim().minimize(), nil
}

// empty reports whether the automaton accepts nothing.
func (d *dfa) empty() bool { return len(d.next) == 1 && !d.accept[0] && d.next[0] == emptyRow() }

// matches runs the automaton over s (for tests).
func (d *dfa) matches(s string) bool {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		if !dfaAllowed(s[i]) {
			return false
		}
		if st = d.next[st][s[i]-dfaFirst]; st < 0 {
			return false
		}
	}
	return d.accept[st]
}

// gbnf writes the automaton as right-linear GBNF rules named prefix-N, the
// root being prefix-0, restricted to texts of minLen to maxLen characters
// (maxLen < 0: no upper bound). Each rule is one state of the automaton
// paired with a count of the characters read (capped at minLen when there
// is no upper bound); the rules that cannot reach an end within the window
// are left out. ok is false when no text fits the window.
func (d *dfa) gbnf(prefix string, minLen, maxLen int) (rules []string, ok bool, err error) {
	type node struct{ s, n int32 }
	capN := func(n int) int32 {
		if maxLen < 0 && n > minLen {
			return int32(minLen)
		}
		return int32(n)
	}
	// Build the product graph forwards from the start.
	index := map[node]int{{0, 0}: 0}
	nodes := []node{{0, 0}}
	type edge struct {
		c  byte
		to int
	}
	var edges [][]edge
	for i := 0; i < len(nodes); i++ {
		nd := nodes[i]
		var es []edge
		if maxLen < 0 || int(nd.n) < maxLen {
			for c := 0; c < dfaChars; c++ {
				t := d.next[nd.s][c]
				if t < 0 {
					continue
				}
				m := node{t, capN(int(nd.n) + 1)}
				j, seen := index[m]
				if !seen {
					if len(nodes) >= maxGrammarRules {
						return nil, false, errTooComplex
					}
					j = len(nodes)
					index[m] = j
					nodes = append(nodes, m)
				}
				es = append(es, edge{byte(c + dfaFirst), j})
			}
		}
		edges = append(edges, es)
	}
	final := func(i int) bool { return d.accept[nodes[i].s] && int(nodes[i].n) >= minLen }
	live := make([]bool, len(nodes))
	for i := range nodes {
		live[i] = final(i)
	}
	for changed := true; changed; {
		changed = false
		for i := range nodes {
			if live[i] {
				continue
			}
			for _, e := range edges[i] {
				if live[e.to] {
					live[i], changed = true, true
					break
				}
			}
		}
	}
	if !live[0] {
		return nil, false, nil
	}
	for i := range nodes {
		if !live[i] {
			continue
		}
		var alts []string
		if final(i) {
			alts = append(alts, `""`)
		}
		// Group the characters by target, in order of first appearance.
		var targets []int
		byTarget := map[int][]byte{}
		for _, e := range edges[i] {
			if !live[e.to] {
				continue
			}
			if _, seen := byTarget[e.to]; !seen {
				targets = append(targets, e.to)
			}
			byTarget[e.to] = append(byTarget[e.to], e.c)
		}
		for _, t := range targets {
			alts = append(alts, gbnfClass(byTarget[t])+" "+prefix+"-"+strconv.Itoa(t))
		}
		rules = append(rules, fmt.Sprintf("%s-%d ::= %s", prefix, i, strings.Join(alts, " | ")))
	}
	return rules, true, nil
}

// gbnfClass writes a GBNF character class of the sorted characters cs,
// merging runs into ranges; every character but letters and digits is
// written as \xHH.
func gbnfClass(cs []byte) string {
	esc := func(c byte) string {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return string(c)
		}
		return fmt.Sprintf(`\x%02X`, c)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(cs); {
		j := i
		for j+1 < len(cs) && cs[j+1] == cs[j]+1 {
			j++
		}
		b.WriteString(esc(cs[i]))
		if j > i {
			if j > i+1 {
				b.WriteByte('-')
			}
			b.WriteString(esc(cs[j]))
		}
		i = j + 1
	}
	b.WriteByte(']')
	return b.String()
}
