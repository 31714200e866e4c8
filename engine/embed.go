package engine

import (
	"errors"
	"math"
)

// Pooling is how an embedding is made of a sequence's token states.
type Pooling string

// Poolings llama.cpp knows that give one vector per sequence.
const (
	PoolMean Pooling = "mean" // the mean of every token's state
	PoolCLS  Pooling = "cls"  // the first token's state (BERT's [CLS])
	PoolLast Pooling = "last" // the last token's state (decoder embedders)
)

// ErrNoEmbeddings is returned by a backend that cannot compute embeddings
// of its model (a reranker, whose pooling gives a score).
var ErrNoEmbeddings = errors.New("engine: the model gives no embeddings")

// EmbedLimits are what one Embed call may carry and what it returns. They
// are known once the model is loaded, before the embedding context exists.
type EmbedLimits struct {
	Dim     int     // length of each vector (the model's n_embd)
	Pooling Pooling // the model's own pooling type, or mean for a chat model
	// MaxTokens is the most tokens of one input; NBatch the most tokens of
	// one call, all inputs together; NSeq the most inputs of one call.
	MaxTokens, NBatch, NSeq int
}

// Embedder is an optional interface of a Backend that computes embeddings,
// in a context of its own (the chat context's KV cache is not touched).
// Like Decode, Embed is for the scheduler loop's goroutine only.
type Embedder interface {
	EmbedLimits() (EmbedLimits, error)
	// Embed returns one pooled vector per input, not normalised, computed
	// in one pass: the inputs must be within EmbedLimits (non-empty, at
	// most MaxTokens each, NBatch in all, NSeq of them).
	Embed(inputs [][]Token) ([][]float32, error)
}

// Normalize scales v to unit L2 length in place and returns it; a zero
// vector is left as it is.
func Normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return v
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return v
}
