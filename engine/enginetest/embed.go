package enginetest

import (
	"fmt"
	"math"
	"time"

	"github.com/asi1d/asi1d/engine"
)

// Embedding shape of the fake: EmbedDim dimensions, EmbedSeqs inputs a pass.
const (
	EmbedDim  = 16
	EmbedSeqs = 8
)

var _ engine.Embedder = (*Fake)(nil)

// EmbedLimits implements engine.Embedder: inputs up to the per-sequence
// context, NBatch tokens and EmbedSeqs inputs a pass, mean pooling.
func (f *Fake) EmbedLimits() (engine.EmbedLimits, error) {
	return engine.EmbedLimits{Dim: EmbedDim, Pooling: engine.PoolMean, MaxTokens: f.info.NCtxSeq,
		NBatch: f.info.NBatch, NSeq: EmbedSeqs}, nil
}

// TokenVector is the fake's state of token t: fixed numbers of t alone.
func TokenVector(t engine.Token) []float32 {
	v := make([]float32, EmbedDim)
	for k := range v {
		v[k] = float32(math.Sin(float64(t)*0.37*float64(k+1) + float64(k)))
	}
	return v
}

// Embed implements engine.Embedder: the mean of TokenVector over each
// input, so a vector depends on its input alone, not on the batch. Inputs
// out of EmbedLimits are an error, so that a scheduler that breaks them
// fails tests. FailEmbed, when set, is consulted first; StepDelay applies.
func (f *Fake) Embed(inputs [][]engine.Token) ([][]float32, error) {
	if f.StepDelay > 0 {
		time.Sleep(f.StepDelay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, engine.ErrClosed
	}
	if f.FailEmbed != nil {
		if err := f.FailEmbed(inputs); err != nil {
			return nil, err
		}
	}
	l, _ := f.EmbedLimits()
	if len(inputs) == 0 || len(inputs) > l.NSeq {
		return nil, fmt.Errorf("fake: embed %d inputs, want 1 to %d", len(inputs), l.NSeq)
	}
	total := 0
	out := make([][]float32, len(inputs))
	for i, in := range inputs {
		if len(in) == 0 || len(in) > l.MaxTokens {
			return nil, fmt.Errorf("fake: embed input %d of %d tokens, want 1 to %d", i, len(in), l.MaxTokens)
		}
		total += len(in)
		v := make([]float32, EmbedDim)
		for _, t := range in {
			for k, x := range TokenVector(t) {
				v[k] += x / float32(len(in))
			}
		}
		out[i] = v
	}
	if total > l.NBatch {
		return nil, fmt.Errorf("fake: embed %d tokens, more than n_batch %d", total, l.NBatch)
	}
	f.stats.Embeds++
	f.stats.EmbedInputs += len(inputs)
	f.stats.Passes = append(f.stats.Passes, 'E')
	return out, nil
}
