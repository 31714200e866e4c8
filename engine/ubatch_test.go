package engine_test

import (
	"testing"

	"github.com/asi1d/asi1d/engine"
)

func TestUbatches(t *testing.T) {
	seqs := func(ids ...engine.SeqID) []engine.BatchEntry {
		var b []engine.BatchEntry
		for _, s := range ids {
			b = append(b, engine.BatchEntry{Seq: s})
		}
		return b
	}
	for _, c := range []struct {
		name  string
		batch []engine.BatchEntry
		want  int
		whole bool
	}{
		{"empty", nil, 0, true},
		{"one token", seqs(3), 1, true},
		{"one prompt", seqs(2, 2, 2, 2), 1, true},
		{"contiguous decode", seqs(0, 1, 2, 3, 4, 5, 6, 7), 1, true},
		{"one gap", seqs(0, 1, 2, 3, 5, 6, 7, 8), 2, true},
		{"strided", seqs(0, 2, 4, 6), 4, true},
		// The run continues only forward in the scan: 0 then 1; 2 was
		// passed over before 1 joined.
		{"out of order", seqs(0, 2, 1), 2, true},
		{"descending", seqs(2, 1, 0), 3, true},
		// Equal shares: 2 tokens of 0 and 1 in the first part, the rest
		// of 1 in a second.
		{"unequal run", seqs(0, 0, 1, 1, 1, 1), 2, false},
		{"equal run", seqs(0, 0, 0, 1, 1, 1), 1, true},
		// Decode tokens then a prompt chunk of the next sequence: one
		// token of each, then the chunk's rest.
		// Runs in descending order stay apart, each whole.
		{"runs descending", seqs(3, 3, 1, 2), 2, true},
		{"runs ascending", seqs(1, 2, 3, 3), 2, false},
		{"decode plus chunk", seqs(0, 1, 2, 2, 2), 2, false},
	} {
		if got, whole := engine.Ubatches(c.batch); got != c.want || whole != c.whole {
			t.Errorf("%s: %d parts (whole %v), want %d (%v)", c.name, got, whole, c.want, c.whole)
		}
	}
}
