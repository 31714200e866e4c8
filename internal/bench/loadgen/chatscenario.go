package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/asi1d/asi1d/server/api"
)

// The chat scenario: multi-turn conversations and their prefix reuse.
// ChatConfig describes RunChat.

type ChatConfig struct {
	ScenarioConfig
	Turns        int `json:"turns"`
	SystemTokens int `json:"system_tokens"` // the system message (0: none)
	TurnTokens   int `json:"turn_tokens"`   // each user message
	MaxTokens    int `json:"max_tokens"`    // each answer
	// Evict requests with distinct EvictTokens prompts, all at once, push
	// the chat out of the server's prefix cache before the cold request
	// (use at least the server's --parallel).
	Evict          int `json:"evict"`
	EvictTokens    int `json:"evict_tokens"`
	EvictMaxTokens int `json:"evict_max_tokens"`
	// SessionID is sent as x-session-id with the chat's requests ("": none).
	SessionID string `json:"session_id,omitempty"`
	// Slack is how many tokens a turn may process beyond those it added
	// (re-tokenization where the answer meets the next message) and still
	// count as reusing its history.
	Slack int `json:"slack"`
}

func (c *ChatConfig) normalize() error {
	switch {
	case c.Turns < 2:
		return errors.New("chat: at least 2 turns")
	case c.TurnTokens <= 0 || c.MaxTokens <= 0 || c.SystemTokens < 0:
		return errors.New("chat: turn tokens and max tokens must be positive")
	case c.Evict < 0 || c.Slack < 0 || (c.Evict > 0 && (c.EvictTokens <= 0 || c.EvictMaxTokens <= 0)):
		return errors.New("chat: bad eviction or slack")
	}
	return nil
}

// MetricDelta is the change of the server's counters over one request.
type MetricDelta struct {
	Queried float64 `json:"prefix_queried_tokens"`
	Hit     float64 `json:"prefix_hit_tokens"`
	// Processed is Queried - Hit: prompt tokens the server computed.
	Processed    float64 `json:"processed_tokens"`
	PromptTokens float64 `json:"prompt_tokens"` // asi1_prompt_tokens_total
}

func metricDelta(before, after Metrics) *MetricDelta {
	if before == nil || after == nil {
		return nil
	}
	d := &MetricDelta{
		Queried:      after.Sum(MetricPrefixQueried) - before.Sum(MetricPrefixQueried),
		Hit:          after.Sum(MetricPrefixHit) - before.Sum(MetricPrefixHit),
		PromptTokens: after.Sum(MetricPromptTokens) - before.Sum(MetricPromptTokens),
	}
	d.Processed = d.Queried - d.Hit
	return d
}

// ChatTurn is one request of the chat.
type ChatTurn struct {
	Turn             int     `json:"turn"` // 0: the cold request
	PromptTokens     int     `json:"prompt_tokens"`
	CachedTokens     int     `json:"cached_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	TTFTMs           float64 `json:"ttft_ms"`
	E2EMs            float64 `json:"e2e_ms"`
	Finish           string  `json:"finish_reason"`
	// Added is the prompt tokens added since the previous turn (the
	// previous answer, the new message, their template); turn 1: all.
	Added int `json:"added_tokens"`
	// Processed is PromptTokens - CachedTokens: what the server computed.
	Processed int `json:"processed_tokens"`
	// Extra is Processed - Added (negative: the previous answer's KV was
	// reused as well).
	Extra   int          `json:"extra_tokens"`
	Metrics *MetricDelta `json:"metrics,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// ChatReport is RunChat's outcome.
type ChatReport struct {
	Config      ChatConfig `json:"config"`
	SystemWords int        `json:"system_words"`
	TurnWords   int        `json:"turn_words"`
	Metrics     bool       `json:"metrics"` // the server's counters were read
	Turns       []ChatTurn `json:"turns"`
	Cold        ChatTurn   `json:"cold"`
	EvictFailed int        `json:"evict_failed"`
	// ReuseOK: every turn after the first processed at most Added + Slack
	// tokens (by usage, and by the counters when read).
	ReuseOK bool `json:"reuse_ok"`
	// TTFTRatio is the last turn's TTFT over the cold request's (target <= 0.2).
	TTFTRatio     float64  `json:"ttft_ratio"`
	TTFTTargetMet bool     `json:"ttft_target_met"`
	Warnings      []string `json:"warnings,omitempty"`
}

// ChatTarget bounds ChatReport.TTFTRatio.
const ChatTarget = 0.2

// RunChat runs the prefix-reuse scenario: Turns turns, each resending the
// whole history (system message, user messages, the model's answers) plus a
// new user message, one request at a time; the server's metrics are scraped
// before and after each. Then Evict distinct requests at once, and a cold
// request with exactly the last turn's messages.
func RunChat(ctx context.Context, c ChatConfig) (*ChatReport, error) {
	if err := c.normalize(); err != nil {
		return nil, err
	}
	g, release, err := newScenarioGen(&c.ScenarioConfig, max(c.Evict, 1)+2)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &ChatReport{Config: c}
	if c.SystemTokens > 0 {
		if rep.SystemWords, err = g.wordsFor(ctx, &c.ScenarioConfig, c.SystemTokens); err != nil {
			return nil, err
		}
	}
	if rep.TurnWords, err = g.wordsFor(ctx, &c.ScenarioConfig, c.TurnTokens); err != nil {
		return nil, err
	}
	murl := c.metricsURL()
	scrape := func() Metrics {
		if murl == "" {
			return nil
		}
		m, err := g.scrape(ctx, murl)
		if err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("metrics not read (%v): usage only", err))
			murl = ""
			return nil
		}
		return m
	}
	var hdr http.Header
	if c.SessionID != "" {
		hdr = http.Header{"X-Session-Id": {c.SessionID}}
	}
	send := func(turn int, msgs []api.Message, maxTokens int) (ChatTurn, string) {
		before := scrape()
		r := g.doBody(ctx, g.chatBody(msgs, maxTokens, true), reqOpts{header: hdr, keepText: true})
		after := scrape()
		t := ChatTurn{Turn: turn, PromptTokens: r.PromptTokens, CachedTokens: r.CachedTokens, CompletionTokens: r.CompletionTokens,
			E2EMs: r.E2E, Finish: r.Finish, Metrics: metricDelta(before, after)}
		if d, ok := ttftOf(&r); ok {
			t.TTFTMs = ms(d)
		}
		if r.ErrorKind != "" {
			t.Error = r.ErrorKind + ": " + r.Error
		} else if !r.HasUsage {
			t.Error = "no usage in the stream"
		}
		t.Processed = t.PromptTokens - t.CachedTokens
		return t, string(r.content)
	}

	// A session-specific start keeps this chat's prefix apart from other
	// prompts (which start with "Story").
	var msgs []api.Message
	if c.SystemTokens > 0 {
		msgs = append(msgs, api.NewMessage(api.RoleSystem, "You are a storyteller. "+Text(rep.SystemWords)))
	}
	prev := 0
	var last []api.Message
	for turn := 1; turn <= c.Turns; turn++ {
		msgs = append(msgs, api.NewMessage(api.RoleUser, fmt.Sprintf("Question %d. ", turn)+Text(rep.TurnWords)))
		last = slices.Clone(msgs)
		t, answer := send(turn, msgs, c.MaxTokens)
		t.Added = t.PromptTokens - prev
		t.Extra = t.Processed - t.Added
		prev = t.PromptTokens
		rep.Turns = append(rep.Turns, t)
		c.logf("chat: turn %d: prompt %d, cached %d, ttft %.1f ms", turn, t.PromptTokens, t.CachedTokens, t.TTFTMs)
		if t.Error != "" {
			return rep, fmt.Errorf("chat turn %d: %s", turn, t.Error)
		}
		msgs = append(msgs, api.NewMessage(api.RoleAssistant, answer))
	}
	rep.Metrics = murl != ""

	if c.Evict > 0 {
		c.logf("chat: evicting with %d requests", c.Evict)
		var (
			wg     sync.WaitGroup
			failed atomic.Int64
		)
		evictWords := c.EvictTokens
		for i := range c.Evict {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := g.do(ctx, Prompt(evictBase+i, evictWords), c.EvictMaxTokens)
				if r.ErrorKind != "" {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		rep.EvictFailed = int(failed.Load())
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Cold, _ = send(0, last, c.MaxTokens)
	rep.Cold.Added = rep.Cold.PromptTokens
	rep.Cold.Extra = rep.Cold.Processed - rep.Cold.Added
	c.logf("chat: cold: prompt %d, cached %d, ttft %.1f ms", rep.Cold.PromptTokens, rep.Cold.CachedTokens, rep.Cold.TTFTMs)
	if rep.Cold.Error != "" {
		return rep, fmt.Errorf("chat cold request: %s", rep.Cold.Error)
	}
	rep.chatVerdicts()
	return rep, nil
}

func (rep *ChatReport) chatVerdicts() {
	c := rep.Config
	warn := func(format string, args ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, args...)) }
	rep.ReuseOK = true
	for _, t := range rep.Turns[1:] {
		if t.Extra > c.Slack || (t.Metrics != nil && t.Metrics.Processed > float64(t.Added+c.Slack)) {
			rep.ReuseOK = false
		}
		if t.Metrics != nil && t.Metrics.Hit != float64(t.CachedTokens) {
			warn("turn %d: usage says %d cached tokens, the prefix-cache counters %g", t.Turn, t.CachedTokens, t.Metrics.Hit)
		}
	}
	last := rep.Turns[len(rep.Turns)-1]
	rep.TTFTRatio = ratio(last.TTFTMs, rep.Cold.TTFTMs)
	rep.TTFTTargetMet = last.TTFTMs > 0 && rep.Cold.TTFTMs > 0 && rep.TTFTRatio <= ChatTarget
	if rep.Cold.PromptTokens != last.PromptTokens {
		warn("the cold request's prompt has %d tokens, the last turn's %d", rep.Cold.PromptTokens, last.PromptTokens)
	}
	if rep.Cold.CachedTokens > max(16, rep.Cold.PromptTokens/10) {
		warn("the cold request was not cold: %d of %d tokens cached (raise --evict to at least the server's --parallel)",
			rep.Cold.CachedTokens, rep.Cold.PromptTokens)
	}
	if rep.EvictFailed > 0 {
		warn("%d of %d evicting requests failed", rep.EvictFailed, c.Evict)
	}
	for _, t := range append(slices.Clone(rep.Turns), rep.Cold) {
		if t.TTFTMs == 0 {
			warn("turn %d: no content token, no TTFT (ban EOS with --logit-bias)", t.Turn)
		}
	}
	if last.PromptTokens > 0 {
		// What a perfect cache can reach if TTFT were proportional to the
		// prompt tokens computed.
		if floor := float64(last.Added) / float64(last.PromptTokens); floor > ChatTarget {
			warn("the last turn adds %d of its %d prompt tokens (%.2f): with TTFT proportional to the tokens computed the ratio cannot reach %g; raise --system-tokens",
				last.Added, last.PromptTokens, floor, ChatTarget)
		}
	}
}

// WriteText prints the report for a person.
func (rep *ChatReport) WriteText(w io.Writer) {
	c := rep.Config
	src := "usage and /metrics"
	if !rep.Metrics {
		src = "usage only"
	}
	fmt.Fprintf(w, "chat        %s (model %s): %d turns, system ~%d tokens (%d words), user ~%d tokens (%d words), max_tokens %d; %s\n",
		c.URL, c.Model, c.Turns, c.SystemTokens, rep.SystemWords, c.TurnTokens, rep.TurnWords, c.MaxTokens, src)
	fmt.Fprintf(w, "%5s %7s %7s %7s %9s %7s %9s %9s %9s %9s %7s\n",
		"turn", "prompt", "cached", "added", "processed", "extra", "m.queried", "m.hit", "m.process", "ttft ms", "answer")
	row := func(name string, t ChatTurn) {
		q, h, p := "-", "-", "-"
		if t.Metrics != nil {
			q, h, p = fmt.Sprint(t.Metrics.Queried), fmt.Sprint(t.Metrics.Hit), fmt.Sprint(t.Metrics.Processed)
		}
		fmt.Fprintf(w, "%5s %7d %7d %7d %9d %7d %9s %9s %9s %9.1f %7d\n",
			name, t.PromptTokens, t.CachedTokens, t.Added, t.Processed, t.Extra, q, h, p, t.TTFTMs, t.CompletionTokens)
	}
	for _, t := range rep.Turns {
		row(strconv.Itoa(t.Turn), t)
	}
	row("cold", rep.Cold)
	fmt.Fprintf(w, "reuse       turns 2..%d processed only the tokens they added (slack %d): %v\n", c.Turns, c.Slack, rep.ReuseOK)
	last := rep.Turns[len(rep.Turns)-1]
	fmt.Fprintf(w, "ttft        turn %d / cold = %.1f / %.1f ms = %.3f (target <= %g): %s\n",
		last.Turn, last.TTFTMs, rep.Cold.TTFTMs, rep.TTFTRatio, ChatTarget, verdict(rep.TTFTTargetMet))
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "warning     %s\n", s)
	}
}
