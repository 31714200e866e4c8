package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "target      %s (model %s), %d streams, prompt ~%d tokens (%d words), max_tokens %d, temperature %g\n",
		r.URL, r.Model, r.Concurrency, r.PromptTokens, r.PromptWords, r.MaxTokens, r.Temperature)
	fmt.Fprintf(w, "requests    %d: %d ok, %d failed, %d cancelled in %.2f s\n", r.Requests, r.Succeeded, r.Failed, r.Cancelled, r.WallSeconds)
	fmt.Fprintf(w, "tokens      prompt %.1f mean (%d cached in all), output %d (%.1f mean), finish %s\n",
		r.PromptTokensMean, r.CachedTokensTotal, r.OutputTokens, r.OutputTokensMean, counts(r.FinishReason))
	fmt.Fprintf(w, "throughput  %.1f tok/s output, %.1f tok/s decode, %.2f tokens per chunk\n", r.OutputTokS, r.DecodeTokS, r.TokensPerChunk)
	fmt.Fprintf(w, "client cpu  %.2f s, %.1f µs per output token (this process)\n", r.ProcessCPUSeconds, r.CPUPerToken)
	fmt.Fprintf(w, "per stream  min %.1f, max %.1f, mean %.1f tok/s; fairness (min/max) %.3f\n",
		r.StreamTokSMin, r.StreamTokSMax, r.StreamTokSMean, r.Fairness)
	fmt.Fprintf(w, "%-12s %9s %9s %9s %9s %9s %9s\n", "ms", "p50", "p90", "p99", "mean", "min", "max")
	for _, row := range []struct {
		name string
		d    Dist
	}{{"ttft", r.TTFT}, {"itl", r.ITL}, {"chunk gap", r.ChunkGap}, {"e2e", r.E2E}} {
		fmt.Fprintf(w, "%-12s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", row.name, row.d.P50, row.d.P90, row.d.P99, row.d.Mean, row.d.Min, row.d.Max)
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors      %s\n", counts(r.Errors))
		for _, res := range r.Results {
			if res.ErrorKind != "" && res.ErrorKind != ErrCancelled {
				fmt.Fprintf(w, "first error request %d: %s: %.300s\n", res.Index, res.ErrorKind, res.Error)
				break
			}
		}
	}
	if r.MissingUsage > 0 {
		fmt.Fprintf(w, "warning     %d streams had no usage chunk: their tokens are counted as chunks\n", r.MissingUsage)
	}
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
