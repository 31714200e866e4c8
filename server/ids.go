package server

import (
	"crypto/rand"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewCompletionID returns "id_" and 17 characters from [A-Za-z0-9], drawn
// from crypto/rand without modulo bias (the seed's format).
func NewCompletionID() string {
	return "id_" + randomString(17)
}

// newCallID returns an OpenAI-style tool call id, "call_" and 24 characters.
func newCallID() string { return "call_" + randomString(24) }

func randomString(n int) string {
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("crypto/rand failed: " + err.Error()) // never on Linux since Go 1.24
		}
		for _, b := range buf {
			// 248 = 4*62: bytes at or above it would bias the draw.
			if b < 248 && len(out) < n {
				out = append(out, idAlphabet[b%62])
			}
		}
	}
	return string(out)
}
