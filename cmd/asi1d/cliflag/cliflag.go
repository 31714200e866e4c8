// Package cliflag gives asi1d's commands the same manners over the
// standard library's flag package: short aliases (-m for --model), single
// and double dashes alike, one-line errors that name the flag, the value and
// what is accepted (`--ctx "abc": want an integer`), an unknown flag
// answered in one line with the closest known name and a pointer to -h, a
// short grouped help (-h) and a long one (--help-all), and each flag's
// environment variable read with the same checks.
//
// It stays on package flag rather than github.com/spf13/pflag because
// asi1d's flags are documented and scripted with single dashes (-model) as
// well as double ones, and llama.cpp's users know two-letter short forms
// such as -np and -ngl: pflag takes neither.
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrHelp is returned by Parse after it printed the help.
var ErrHelp = flag.ErrHelp

// Set is a command's flag set. Define flags on its embedded FlagSet as
// usual, then aliases and groups, then call Parse.
type Set struct {
	*flag.FlagSet
	// Cmd is the command as users type it, e.g. "asi1d serve".
	Cmd string
	// Header is printed before the flags by the help (usage line, text).
	Header string
	// Footer is printed after the flags by the help.
	Footer string
	// Env names the environment variable of a flag; nil: flags have none.
	Env func(flag string) string

	aliases map[string]string   // alias -> flag name
	short   map[string][]string // flag name -> its aliases
	groups  []Group
	texts   map[string]string // flag name -> one-line help
	args    map[string]string // flag name -> value placeholder
	helpAll bool
	bad     *ValueError
}

// Group is a titled list of flag names shown together in the help.
type Group struct {
	Title string
	Flags []string
}

// New returns an empty Set for cmd ("asi1d serve").
func New(cmd string) *Set {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	s := &Set{FlagSet: fs, Cmd: cmd, aliases: map[string]string{}, short: map[string][]string{},
		texts: map[string]string{}, args: map[string]string{}}
	fs.BoolVar(&s.helpAll, "help-all", false, "every flag with its whole description")
	return s
}

// Alias makes -alias (or --alias) another name of the defined flag name.
func (s *Set) Alias(alias, name string) {
	f := s.Lookup(name)
	if f == nil {
		panic("cliflag: alias " + alias + " of undefined flag " + name)
	}
	s.Var(f.Value, alias, "alias of --"+name)
	s.aliases[alias] = name
	s.short[name] = append(s.short[name], alias)
}

// Groups sets the sections of the help. Flags in no group are listed last
// under "Other".
func (s *Set) Groups(gs ...Group) { s.groups = gs }

// Help sets the one-line help of a flag and the placeholder of its value
// (arg may be "": the flag's type decides).
func (s *Set) Help(name, arg, text string) {
	if arg != "" {
		s.args[name] = arg
	}
	if text != "" {
		s.texts[name] = text
	}
}

// canonical returns the flag name behind a name or alias.
func (s *Set) canonical(name string) string {
	if n, ok := s.aliases[name]; ok {
		return n
	}
	return name
}

// Parse parses args, then the environment variables (through getenv; nil
// or a nil Env: none) of the flags not given on the command line. -h,
// --help and --help-all print the help to out and return ErrHelp. Any
// other error is one line, without the command name.
func (s *Set) Parse(args []string, getenv func(string) string, out io.Writer) error {
	wrap(s.FlagSet, &s.bad)
	if err := s.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.PrintHelp(out, false)
			return ErrHelp
		}
		return s.explain(err)
	}
	if s.helpAll {
		s.PrintHelp(out, true)
		return ErrHelp
	}
	if getenv == nil || s.Env == nil {
		return nil
	}
	set := map[string]bool{}
	s.Visit(func(f *flag.Flag) { set[s.canonical(f.Name)] = true })
	var errs []error
	s.VisitAll(func(f *flag.Flag) {
		if _, alias := s.aliases[f.Name]; alias || f.Name == "help-all" || set[f.Name] {
			return
		}
		name := s.Env(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		vals := []string{v}
		if isList(f.Value) {
			vals = vals[:0]
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					vals = append(vals, p)
				}
			}
		}
		for _, x := range vals {
			if err := unwrap(f.Value).Set(x); err != nil {
				errs = append(errs, &ValueError{Name: name, Value: v, Want: want(f.Value, err)})
				return
			}
		}
	})
	return errors.Join(errs...)
}

// ValueError is a value a flag or its environment variable refused.
type ValueError struct {
	Name  string // "--ctx" or "ASI1D_CTX"
	Value string
	Want  string // "an integer", "one of a, b"
}

func (e *ValueError) Error() string {
	if strings.HasPrefix(e.Name, "-") {
		return fmt.Sprintf("%s %q: want %s", e.Name, e.Value, e.Want)
	}
	return fmt.Sprintf("%s=%q: want %s", e.Name, e.Value, e.Want)
}

// Dashed writes a flag name as users mostly type it: -m, --model.
func Dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// explain turns a flag package error into one line.
func (s *Set) explain(err error) error {
	if s.bad != nil {
		e := s.bad
		s.bad = nil
		if _, alias := s.aliases[strings.TrimLeft(e.Name, "-")]; alias {
			e.Name = "-" + strings.TrimLeft(e.Name, "-")
		}
		return e
	}
	return explainErr(s.FlagSet, err, s.names())
}

func (s *Set) names() []string {
	var names []string
	s.VisitAll(func(f *flag.Flag) {
		if f.Name != "help-all" {
			names = append(names, f.Name)
		}
	})
	return names
}

func explainErr(fs *flag.FlagSet, err error, names []string) error {
	msg := err.Error()
	hint := fmt.Sprintf("(see %s -h)", fs.Name())
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if m := Closest(name, names); m != "" {
			return fmt.Errorf("unknown flag %s: did you mean %s? %s", Dashed(name), Dashed(m), hint)
		}
		return fmt.Errorf("unknown flag %s %s", Dashed(name), hint)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("%s needs a value %s", Dashed(name), hint)
	}
	return fmt.Errorf("%s %s", msg, hint)
}

// Parse parses a plain flag set with the same error manners as Set.Parse
// (one line, the value's want, the closest flag, the hint; the flag
// package's own message and usage dump are kept off its output). -h calls
// the set's Usage, and Parse returns flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	var bad *ValueError
	wrap(fs, &bad)
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		}
		return err
	case bad != nil:
		return bad
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return explainErr(fs, err, names)
}

// checked wraps a flag's value to record what it refused.
type checked struct {
	flag.Value
	name string
	bad  **ValueError
}

func (c *checked) Set(v string) error {
	err := c.Value.Set(v)
	if err != nil {
		*c.bad = &ValueError{Name: Dashed(c.name), Value: v, Want: want(c.Value, err)}
	}
	return err
}

// String is safe on a zero checked: flag.PrintDefaults makes one (through
// reflection) to learn whether a default is its type's zero value.
func (c *checked) String() string {
	if c == nil || c.Value == nil {
		return ""
	}
	return c.Value.String()
}

func (c *checked) IsBoolFlag() bool {
	b, ok := c.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (c *checked) Get() any {
	if g, ok := c.Value.(flag.Getter); ok {
		return g.Get()
	}
	return c.Value.String()
}

func wrap(fs *flag.FlagSet, bad **ValueError) {
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(*checked); !ok {
			f.Value = &checked{Value: f.Value, name: f.Name, bad: bad}
		}
	})
}

func unwrap(v flag.Value) flag.Value {
	if c, ok := v.(*checked); ok {
		return c.Value
	}
	return v
}

// Wanter is a flag value that says what it accepts ("one of a, b").
type Wanter interface{ Want() string }

// Lister is a repeatable flag value; its environment variable is split at
// commas.
type Lister interface{ IsList() bool }

func isList(v flag.Value) bool {
	l, ok := unwrap(v).(Lister)
	return ok && l.IsList()
}

// want says what a flag value accepts.
func want(v flag.Value, err error) string {
	v = unwrap(v)
	if w, ok := v.(Wanter); ok {
		return w.Want()
	}
	if g, ok := v.(flag.Getter); ok {
		switch g.Get().(type) {
		case int, int64:
			return "an integer"
		case uint, uint64:
			return "a whole number, 0 or more"
		case float64:
			return "a number"
		case bool:
			return "true or false"
		case time.Duration:
			return "a duration such as 500ms, 30s, 5m or 1h30m"
		}
	}
	return err.Error()
}

// Closest returns the name among names nearest to typed (a typo, another
// case), or "" when none is near enough.
func Closest(typed string, names []string) string {
	best, bestD := "", 1<<30
	lt := strings.ToLower(typed)
	for _, n := range names {
		d := distance(lt, strings.ToLower(n))
		if d < bestD || d == bestD && len(n) > len(best) {
			best, bestD = n, d
		}
	}
	if bestD <= 2 && bestD*2 < len(typed) {
		return best
	}
	return ""
}

// distance is the Levenshtein edit distance of a and b (bytes).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Enum is a string flag that accepts one of allowed (case-insensitive,
// stored as written in allowed).
type Enum struct {
	p       *string
	allowed []string
}

// NewEnum sets *p to def and returns the flag value.
func NewEnum(p *string, def string, allowed ...string) *Enum {
	*p = def
	return &Enum{p: p, allowed: allowed}
}

func (e *Enum) String() string {
	if e == nil || e.p == nil {
		return ""
	}
	return *e.p
}

func (e *Enum) Set(v string) error {
	for _, a := range e.allowed {
		if strings.EqualFold(strings.TrimSpace(v), a) {
			*e.p = a
			return nil
		}
	}
	return errors.New("want " + e.Want())
}

func (e *Enum) Want() string { return "one of " + strings.Join(e.allowed, ", ") }

func (e *Enum) Get() any { return *e.p }
