package api

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricsPath is where the server publishes its Prometheus metrics
// (contract section 8).
const MetricsPath = "/metrics"

// Sample is one sample of a Prometheus scrape. A histogram gives its
// NAME_bucket (label le), NAME_sum and NAME_count samples.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Series is the sample's name and labels as the text format writes them,
// labels sorted by name: `asi1_requests_total{endpoint="/v1/models",status="200"}`.
func (s Sample) Series() string {
	if len(s.Labels) == 0 {
		return s.Name
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(s.Name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		labelEscaper.WriteString(&b, s.Labels[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// labelEscaper escapes a label value as the text format does.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Metrics is a scrape of Prometheus metrics.
type Metrics []Sample

// ParseMetrics reads the Prometheus text exposition format with
// prometheus/common's parser. Input without a single sample is an error.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	slices.Sort(names)
	var out Metrics
	for _, n := range names {
		vec, err := expfmt.ExtractSamples(&expfmt.DecodeOptions{Timestamp: model.Earliest}, fams[n])
		if err != nil {
			return nil, fmt.Errorf("parse metrics: %w", err)
		}
		for _, s := range vec {
			labels := make(map[string]string, len(s.Metric))
			name := ""
			for k, v := range s.Metric {
				if k == model.MetricNameLabel {
					name = string(v)
					continue
				}
				labels[string(k)] = string(v)
			}
			out = append(out, Sample{Name: name, Labels: labels, Value: float64(s.Value)})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("parse metrics: no metric samples")
	}
	return out, nil
}

// Sum is the sum of the samples named name whose labels include every
// key, value pair of match ("endpoint", "/v1/models", ...); 0 when none.
func (m Metrics) Sum(name string, match ...string) float64 {
	sum := 0.0
	for i := range m {
		if m[i].Name == name && m[i].has(match) {
			sum += m[i].Value
		}
	}
	return sum
}

// Get returns the value of the sample whose Series is series, and whether
// there is one.
func (m Metrics) Get(series string) (float64, bool) {
	for i := range m {
		if m[i].Series() == series {
			return m[i].Value, true
		}
	}
	return 0, false
}

func (s *Sample) has(match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		if s.Labels[match[i]] != match[i+1] {
			return false
		}
	}
	return true
}
