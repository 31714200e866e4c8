package cliflag

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// helpWidth is the width the short help keeps each line within.
const helpWidth = 100

// PrintHelp writes the help: the header, then the flags group by group,
// one line each (all: each with its whole description, wrapped), then the
// footer.
func (s *Set) PrintHelp(w io.Writer, all bool) {
	fmt.Fprint(w, s.Header)
	if s.Header != "" && !strings.HasSuffix(s.Header, "\n\n") {
		fmt.Fprintln(w)
	}
	listed := map[string]bool{}
	groups := append([]Group(nil), s.groups...)
	var other []string
	s.VisitAll(func(f *flag.Flag) {
		if _, alias := s.aliases[f.Name]; !alias && f.Name != "help-all" {
			other = append(other, f.Name)
		}
	})
	for _, g := range groups {
		for _, n := range g.Flags {
			listed[n] = true
		}
	}
	var rest []string
	for _, n := range other {
		if !listed[n] {
			rest = append(rest, n)
		}
	}
	if len(rest) > 0 {
		title := "Other"
		if len(groups) == 0 {
			title = "Flags"
		}
		groups = append(groups, Group{Title: title, Flags: rest})
	}
	// The names column is as wide as the widest names.
	col := 0
	for _, g := range groups {
		for _, n := range g.Flags {
			if f := s.Lookup(n); f != nil {
				col = max(col, len(s.names1(f)))
			}
		}
	}
	col = min(col, 34)
	for _, g := range groups {
		fmt.Fprintf(w, "%s:\n", g.Title)
		for _, n := range g.Flags {
			f := s.Lookup(n)
			if f == nil {
				continue
			}
			s.printFlag(w, f, col, all)
		}
		fmt.Fprintln(w)
	}
	if s.Footer != "" {
		fmt.Fprint(w, s.Footer)
	} else if !all {
		fmt.Fprintf(w, "%s --help-all describes every flag in full.\n", s.Cmd)
	}
}

// names1 is a flag's names and value placeholder: "-m, --model FILE".
func (s *Set) names1(f *flag.Flag) string {
	var b strings.Builder
	for _, a := range s.short[f.Name] {
		b.WriteString("-" + a + ", ")
	}
	b.WriteString("--" + f.Name)
	if arg := s.argName(f); arg != "" {
		b.WriteString(" " + arg)
	}
	return b.String()
}

func (s *Set) argName(f *flag.Flag) string {
	if a, ok := s.args[f.Name]; ok {
		return a
	}
	c := &checked{Value: unwrap(f.Value)}
	if c.IsBoolFlag() {
		return ""
	}
	if g, ok := unwrap(f.Value).(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64, uint, uint64:
			return "N"
		case float64:
			return "X"
		case time.Duration:
			return "DURATION"
		}
	}
	if _, ok := unwrap(f.Value).(*Enum); ok {
		return "WORD"
	}
	return "VALUE"
}

func (s *Set) printFlag(w io.Writer, f *flag.Flag, col int, all bool) {
	names := s.names1(f)
	def := ""
	if !zeroDefault(f) {
		def = " (default " + f.DefValue + ")"
	}
	if all {
		text := f.Usage + def
		if s.Env != nil {
			text += "; env " + s.Env(f.Name)
		}
		fmt.Fprintf(w, "  %s\n", names)
		for _, line := range wrapText(text, helpWidth-6) {
			fmt.Fprintf(w, "      %s\n", line)
		}
		return
	}
	text, ok := s.texts[f.Name]
	if !ok {
		text = shorten(f.Usage)
	}
	pad := col
	if len(names) > col {
		pad = len(names)
	}
	room := helpWidth - 4 - pad - len(def)
	if len(text) > room && room > 10 {
		text = text[:room-3] + "..."
	}
	fmt.Fprintf(w, "  %-*s  %s%s\n", pad, names, text, def)
}

// zeroDefault tells whether a flag's default is nothing worth showing.
func zeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// shorten cuts a flag's description at its first clause.
func shorten(u string) string {
	for _, sep := range []string{"; ", " (", ": "} {
		if i := strings.Index(u, sep); i >= 12 {
			u = u[:i]
		}
	}
	return u
}

func wrapText(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
