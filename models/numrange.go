package models

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// Bounds on a "number" (not an integer) are enforced exactly by an
// automaton of the decimal texts in the range, built from a regular
// expression: no exponent, at most numIntDigits digits before the point
// and at most 15-K after it, K being the count of integer digits of the
// largest bound. Each answer then has at most 15 significant digits near
// a bound, so that reading it as a double (ajv, Python, JavaScript) keeps
// its order with the bound: an exclusive bound holds after parsing too,
// not only in decimal. A bound needs at most 15 significant digits and a
// magnitude below 10^15.
const (
	numSigDigits  = 15
	numIntDigits  = 15
	maxBoundFracs = 30
)

// decBound is a bound of a number range as a decimal: Int has no leading
// zeros ("0" for zero), Frac no trailing zeros.
type decBound struct {
	Neg       bool
	Int, Frac string
	Exclusive bool
}

// parseDecBound reads a JSON Schema bound; errors name what is wrong with
// the value.
func parseDecBound(v any, exclusive bool) (*decBound, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("must be a number")
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil, fmt.Errorf("must be a number")
	}
	b := &decBound{Neg: r.Sign() < 0, Exclusive: exclusive}
	r.Abs(r)
	digits := -1
	ten := big.NewInt(10)
	scaled := new(big.Rat).Set(r)
	for k := 0; k <= maxBoundFracs; k++ {
		if scaled.IsInt() {
			digits = k
			break
		}
		scaled.Mul(scaled, new(big.Rat).SetInt(ten))
	}
	if digits < 0 {
		return nil, fmt.Errorf("%s has too many decimals to enforce", n)
	}
	s := r.FloatString(digits)
	b.Int, b.Frac, _ = strings.Cut(s, ".")
	b.Frac = strings.TrimRight(b.Frac, "0")
	if len(b.Int) > numIntDigits {
		return nil, fmt.Errorf("%s is beyond what is enforced (magnitude below 1e15)", n)
	}
	sig := strings.TrimLeft(b.Int+b.Frac, "0")
	if len(sig) > numSigDigits {
		return nil, fmt.Errorf("%s has more than %d significant digits, more than is enforced", n, numSigDigits)
	}
	if b.Int == "0" && b.Frac == "" {
		b.Neg = false
	}
	return b, nil
}

func (b *decBound) intDigits() int {
	if b == nil || b.Int == "0" {
		return 0
	}
	return len(b.Int)
}

// numberRangeDFA returns the automaton of the JSON number texts x with
// lo <= x for each of lows and x <= hi for each of highs (< where the bound
// is exclusive). It errors when no text fits.
func numberRangeDFA(lows, highs []*decBound) (*dfa, error) {
	k := 0
	for _, b := range append(append([]*decBound{}, lows...), highs...) {
		k = max(k, b.intDigits())
	}
	fracs := numSigDigits - k
	n := numRegex{fracs: fracs}
	all := `^(?:-` + n.magPositive() + `|` + n.magAny() + `)$`
	d, err := compileDFA(all)
	if err != nil {
		return nil, err
	}
	var res []string
	for _, lo := range lows {
		res = append(res, n.atLeast(lo))
	}
	for _, hi := range highs {
		res = append(res, n.atMost(hi))
	}
	for _, re := range res {
		bd, err := compileDFA(`^(?:` + re + `)$`)
		if err != nil {
			return nil, err
		}
		if d, err = d.intersect(bd); err != nil {
			return nil, err
		}
	}
	if d.empty() {
		return nil, fmt.Errorf("no number with at most %d decimals lies in the range", fracs)
	}
	return d, nil
}

// numRegex writes regular expressions over number texts: a magnitude is
// an integer part of at most numIntDigits digits without leading zeros and
// an optional fraction of 1 to fracs digits. "-0" is never written.
type numRegex struct{ fracs int }

const never = `[^\x00-\x{10FFFF}]` // matches nothing

func alt(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != never {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return never
	}
	return `(?:` + strings.Join(keep, `|`) + `)`
}

func reps(class string, lo, hi int) string {
	if hi < lo {
		return never
	}
	if hi == 0 {
		return ""
	}
	return fmt.Sprintf(`%s{%d,%d}`, class, lo, hi)
}

func (n numRegex) intAny() string {
	return `(?:0|[1-9]` + reps(`[0-9]`, 0, numIntDigits-1) + `)`
}

// fracAny is an optional fraction.
func (n numRegex) fracAny() string {
	if n.fracs <= 0 {
		return ""
	}
	return `(?:\.` + reps(`[0-9]`, 1, n.fracs) + `)?`
}

func (n numRegex) magAny() string { return n.intAny() + n.fracAny() }

// magPositive is a magnitude above zero.
func (n numRegex) magPositive() string {
	return alt(`[1-9]`+reps(`[0-9]`, 0, numIntDigits-1)+n.fracAny(), `0`+n.fracAbove("", true))
}

// intAbove is the integers above I (same length and greater, or longer).
func (n numRegex) intAbove(I string) string {
	var parts []string
	for i := 0; i < len(I); i++ {
		if I[i] < '9' {
			parts = append(parts, I[:i]+fmt.Sprintf(`[%c-9]`, I[i]+1)+reps(`[0-9]`, len(I)-i-1, len(I)-i-1))
		}
	}
	if len(I) < numIntDigits {
		parts = append(parts, `[1-9]`+reps(`[0-9]`, len(I), numIntDigits-1))
	}
	return alt(parts...)
}

// intBelow is the integers below I.
func (n numRegex) intBelow(I string) string {
	var parts []string
	if len(I) > 1 {
		parts = append(parts, `0`, `[1-9]`+reps(`[0-9]`, 0, len(I)-2))
	}
	for i := 0; i < len(I); i++ {
		low := byte('0')
		if i == 0 && len(I) > 1 {
			low = '1'
		}
		if I[i] > low {
			parts = append(parts, I[:i]+fmt.Sprintf(`[%c-%c]`, low, I[i]-1)+reps(`[0-9]`, len(I)-i-1, len(I)-i-1))
		}
	}
	return alt(parts...)
}

// fracAbove is the fractions f (an optional "." and digits) with 0.f >= 0.d
// (> when strict).
func (n numRegex) fracAbove(d string, strict bool) string {
	if n.fracs <= 0 {
		if d == "" && !strict {
			return ""
		}
		return never
	}
	var parts []string
	if d == "" && !strict {
		parts = append(parts, "") // no fraction is 0 >= 0
	}
	for i := 0; i < len(d) && i < n.fracs; i++ {
		if d[i] < '9' {
			parts = append(parts, `\.`+d[:i]+fmt.Sprintf(`[%c-9]`, d[i]+1)+reps(`[0-9]`, 0, n.fracs-i-1))
		}
	}
	if len(d) <= n.fracs {
		if !strict {
			if d != "" {
				parts = append(parts, `\.`+d+reps(`[0-9]`, 0, n.fracs-len(d)))
			} else {
				parts = append(parts, `\.`+reps(`[0-9]`, 1, n.fracs))
			}
		} else {
			// d followed by digits with a nonzero one among them.
			for z := 0; len(d)+z+1 <= n.fracs; z++ {
				parts = append(parts, `\.`+d+strings.Repeat("0", z)+`[1-9]`+reps(`[0-9]`, 0, n.fracs-len(d)-z-1))
			}
		}
	}
	return alt(parts...)
}

// fracBelow is the fractions f with 0.f <= 0.d (< when strict).
func (n numRegex) fracBelow(d string, strict bool) string {
	var parts []string
	if d != "" || !strict {
		parts = append(parts, "") // no fraction is 0
	}
	if n.fracs <= 0 {
		return alt(parts...)
	}
	for i := 0; i < len(d) && i < n.fracs; i++ {
		if i > 0 {
			parts = append(parts, `\.`+d[:i]) // a proper prefix is smaller
		}
		if d[i] > '0' {
			parts = append(parts, `\.`+d[:i]+fmt.Sprintf(`[0-%c]`, d[i]-1)+reps(`[0-9]`, 0, n.fracs-i-1))
		}
	}
	if !strict && len(d) <= n.fracs {
		if d == "" {
			parts = append(parts, `\.`+reps(`0`, 1, n.fracs))
		} else {
			parts = append(parts, `\.`+d+reps(`0`, 0, n.fracs-len(d)))
		}
	}
	return alt(parts...)
}

// magAtLeast is the magnitudes m >= b (> when strict), b's sign ignored.
func (n numRegex) magAtLeast(b *decBound, strict bool) string {
	return alt(n.intAbove(b.Int)+n.fracAny(), b.Int+n.fracAbove(b.Frac, strict))
}

// magAtMost is the magnitudes m <= b (< when strict).
func (n numRegex) magAtMost(b *decBound, strict bool) string {
	return alt(n.intBelow(b.Int)+n.fracAny(), b.Int+n.fracBelow(b.Frac, strict))
}

// atLeast is the numbers x >= lo (> when exclusive).
func (n numRegex) atLeast(lo *decBound) string {
	if !lo.Neg {
		return n.magAtLeast(lo, lo.Exclusive)
	}
	// Every magnitude, or a negative one not beyond |lo|.
	return alt(n.magAny(), `-`+n.magAtMost(lo, lo.Exclusive))
}

// atMost is the numbers x <= hi (< when exclusive).
func (n numRegex) atMost(hi *decBound) string {
	if hi.Neg {
		return `-` + n.magAtLeast(hi, hi.Exclusive)
	}
	return alt(`-`+n.magAny(), n.magAtMost(hi, hi.Exclusive))
}
