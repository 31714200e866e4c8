package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/asi1d/asi1d/server/api"
)

// Calibration: the prompt length in words that gives the wanted number of
// prompt tokens, read from the server's own usage.
// calibrate finds how many words of Text make PromptTokens prompt tokens,
// from usage.prompt_tokens of non-streamed probes with max_tokens 1.

func (g *gen) calibrate(ctx context.Context) (int, error) {
	return g.calibrateFrom(ctx, g.cfg.PromptTokens)
}

// calibrateFrom is calibrate with a first probe of start words.
func (g *gen) calibrateFrom(ctx context.Context, start int) (int, error) {
	want := g.cfg.PromptTokens
	probes := 0
	probe := func(words int) (int, error) {
		probes++
		body := g.body(Prompt(probeBase+probes, words), 1, false)
		resp, err := g.post(ctx, body, nil)
		if err != nil {
			return 0, fmt.Errorf("calibration probe: %w", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var c api.ChatCompletion
		// A field of another server's answer with a type of its own is no
		// reason to fail: only usage is read.
		var te *json.UnmarshalTypeError
		if err := json.Unmarshal(b, &c); (err != nil && !errors.As(err, &te)) || c.Usage.PromptTokens <= 0 {
			return 0, fmt.Errorf("calibration probe: no usage.prompt_tokens in %.200s", b)
		}
		return c.Usage.PromptTokens, nil
	}
	// Two points give the overhead (prefix, template) and tokens per word.
	w1 := max(start, 2)
	t1, err := probe(w1)
	if err != nil {
		return 0, err
	}
	w0 := max(w1/2, 1)
	t0, err := probe(w0)
	if err != nil {
		return 0, err
	}
	best, bestErr := w1, abs(t1-want)
	if d := abs(t0 - want); d < bestErr {
		best, bestErr = w0, d
	}
	slope := float64(t1-t0) / float64(w1-w0)
	if slope <= 0 {
		return best, nil
	}
	w := w1
	t := t1
	for range 4 {
		if bestErr == 0 {
			break
		}
		nw := max(1, w+int(math.Round(float64(want-t)/slope)))
		if nw == w {
			nw = w + sign(want-t)*1
			if nw < 1 {
				break
			}
		}
		w = nw
		t, err = probe(w)
		if err != nil {
			return 0, err
		}
		if d := abs(t - want); d < bestErr {
			best, bestErr = w, d
		}
	}
	return best, nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
