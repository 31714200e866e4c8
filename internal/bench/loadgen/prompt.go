package loadgen

import (
	"fmt"
	"strings"
)

// words is the vocabulary of the synthetic prompts: common English words,
// most of them one token in real BPE vocabularies.
var words = strings.Fields(`the a little girl boy dog cat bird tree house park ball red big small happy sad
day night sun moon water cake toy box car friend mom dad play run jump look see find give take make
went saw said was had liked loved wanted smiled walked found gave took made came ran helped laughed
and but so then with on in under over near far to from very too all one two three some many`)

// Text returns a deterministic text of n words. The word sequence is the
// same for every call: prompts differ only by their Prefix.
func Text(n int) string {
	var b strings.Builder
	b.Grow(n * 6)
	x := uint32(2463534242)
	for i := range n {
		// xorshift32: a fixed pseudo-random walk over the vocabulary.
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[x%uint32(len(words))])
	}
	return b.String()
}

// Prefix is what makes the prompt of request i distinct. Its length does not
// depend on i (below a million), so every prompt has about the same number of
// tokens; it comes first so that prompts share no long prefix in a server's
// KV cache.
func Prefix(i int) string { return fmt.Sprintf("Story %06d. ", i) }

// Prompt returns the prompt of request i: Prefix(i) followed by Text(n).
func Prompt(i, n int) string { return Prefix(i) + Text(n) }

// Index ranges that keep warm-up and calibration prompts apart from the
// measured ones (0, 1, 2, ...).
const (
	warmupBase = 900000
	probeBase  = 990000
)
