package scheduler

import (
	"errors"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/sampler"
)

// Errors returned by Submit.
var (
	// ErrQueueFull: the waiting queue is at its capacity.
	ErrQueueFull = errors.New("scheduler: waiting queue is full")
	// ErrDraining: the scheduler is shutting down and admits nothing new.
	ErrDraining = errors.New("scheduler: draining")
	// ErrClosed: the loop has stopped.
	ErrClosed = errors.New("scheduler: closed")
	// ErrShutdown ends sequences still running when the drain timeout passes.
	ErrShutdown = errors.New("scheduler: server shutting down")
	// ErrGrammarDeadEnd ends a constrained request whose grammar allows no
	// token the sampler may draw (for example, only end-of-generation
	// tokens remain and logit_bias banned them).
	ErrGrammarDeadEnd = errors.New("scheduler: the grammar allows no token that may be sampled")
)

// FinishReason tells why a sequence ended.
type FinishReason string

// Finish reasons. Stop and Length reach clients; Cancelled and Error are
// internal (the client is gone, or the server failed the request).
const (
	FinishStop      FinishReason = "stop"
	FinishLength    FinishReason = "length"
	FinishCancelled FinishReason = "cancelled"
	FinishError     FinishReason = "error"
)

// Fragment is a piece of generated text: reasoning (Thought) or answer.
type Fragment struct {
	Thought bool
	Block   int // index of the reasoning block, for Thought fragments
	Text    string
}

// Splitter separates reasoning from the answer in streamed text. One per
// request, owned by the loop. See models.ThoughtParser.
type Splitter interface {
	Push(text string) []Fragment
	Flush() []Fragment
}

// Request is one generation job.
type Request struct {
	// Prompt is the tokenized prompt; it must fit the per-sequence context
	// with room for at least one generated token.
	Prompt []engine.Token
	// MaxTokens bounds generated tokens; <= 0 means until the context ends.
	MaxTokens int
	// Reserve is the completion tokens whose KV cells a shared pool sets
	// aside when the request is admitted (the client's max_tokens); 0:
	// DefaultReserve. A request may generate past it while the pool has
	// room (see Scheduler's doc).
	Reserve  int
	Sampling sampler.Params
	// Stop strings end generation; they match answer text only, and never
	// reach the output.
	Stop []string
	// Splitter, when set, separates reasoning from the answer.
	Splitter Splitter
	// Logprobs asks for each generated token's log-probability and the
	// TopLogprobs most likely alternatives.
	Logprobs    bool
	TopLogprobs int
	// SessionID prefers the slot that served the same session last.
	SessionID string
	// Grammar, when set, constrains every sampled token. Once Submit has
	// accepted the request the scheduler owns it and closes it when the
	// request ends; when Submit fails the caller still owns it.
	Grammar engine.Grammar
	// GrammarTriggers, when set, make the grammar lazy: sampling is free
	// until one of these tokens is drawn; the grammar accepts it and
	// constrains every token after it (a tool call after free text).
	GrammarTriggers []engine.Token
	// Markers are the control tokens whose text the Splitter or the
	// caller's parsers read as markup (a reasoning tag, a tool-call
	// marker). The text of every other control token (engine.Backend's
	// IsControl) is dropped: it never reaches the output.
	Markers []engine.Token
}

// TokenLogprob is one generated token with its log-probability.
type TokenLogprob struct {
	Token   engine.Token
	Text    []byte
	Logprob float32
	Top     []Alternative
}

// Alternative is a likely token at one position.
type Alternative struct {
	Token   engine.Token
	Text    []byte
	Logprob float32
}

// Usage counts a request's tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int // prompt tokens whose KV was reused
}

// Event is what a Stream delivers: everything that happened since the last
// Next, coalesced.
type Event struct {
	// Started is set on the first event, when the request left the queue
	// and its prompt started processing.
	Started   bool
	Fragments []Fragment
	Logprobs  []TokenLogprob
	// Done marks the final event; Finish, Usage and Err are set then.
	Done   bool
	Finish FinishReason
	Err    error
	Usage  Usage
	// Timings, filled on the final event.
	Queued    time.Duration // submit to admission
	FirstTok  time.Duration // submit to first generated token
	Generated time.Duration // first to last generated token
	// Gaps are the times between consecutive generated tokens, as the
	// loop produced them (CompletionTokens-1 of them).
	Gaps []time.Duration
}

// Stats is a snapshot of the scheduler's counters. Safe to read at any time.
type Stats struct {
	Running, Waiting int
	Slots            int
	KVCells, KVUsed  int // KV cells in all, and cells holding tokens (running and cached)
	// KVReserved is the cells of a shared pool that the running requests
	// hold (what they use, or their prompt and Reserve when more).
	KVReserved          int
	PromptTokens        uint64
	GeneratedTokens     uint64
	PrefixQueriedTokens uint64
	PrefixHitTokens     uint64
	Steps               uint64
	StepTokens          uint64
	Finished            map[FinishReason]uint64
	// Session states (Options.Sessions): saved and restored, and the
	// prompt tokens restored instead of prefilled.
	SessionsSaved, SessionsRestored, SessionRestoredTokens uint64
	// Embeddings: jobs waiting, inputs and tokens embedded, passes run.
	EmbedWaiting                          int
	EmbedInputs, EmbedTokens, EmbedPasses uint64
	Draining                              bool
	CtxPerSeq, StepLimit                  int
}
