package api

// Wire types of POST /v1/completions, OpenAI's legacy text completions:
// plain text in and out, no chat template (docs/API.md, "Text
// completions"). A streamed answer is a series of Completion objects, each
// carrying the new text of one choice, then a usage object when
// stream_options.include_usage is set, then data: [DONE].

// CompletionsPath is the text completions endpoint's path.
const CompletionsPath = "/v1/completions"

// ObjectTextCompletion is the object name of a text completion and of each
// event of its stream.
const ObjectTextCompletion = "text_completion"

// CompletionRequest is a text completion request as a client sends it. Nil
// pointers and empty values are left out, so the server's defaults apply.
type CompletionRequest struct {
	Model string `json:"model"`
	// Prompt is a string, an array of strings (a batch), an array of token
	// ids, or an array of arrays of token ids.
	Prompt any `json:"prompt"`
	// Suffix asks for fill-in-the-middle: the model writes what goes
	// between Prompt and Suffix (models with FIM tokens only).
	Suffix string `json:"suffix,omitempty"`
	// MaxTokens: nil is the default, 16.
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	// N is the choices per prompt; BestOf must be absent or equal to N.
	N      *int `json:"n,omitempty"`
	BestOf *int `json:"best_of,omitempty"`

	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`

	// Logprobs asks for the log-probability of each token and of this many
	// most likely alternatives (0 to 5).
	Logprobs *int `json:"logprobs,omitempty"`
	// Echo puts the prompt before the completion in text.
	Echo bool `json:"echo,omitempty"`

	Stop             []string           `json:"stop,omitempty"`
	Seed             *int64             `json:"seed,omitempty"`
	PresencePenalty  *float64           `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64           `json:"frequency_penalty,omitempty"`
	LogitBias        map[string]float64 `json:"logit_bias,omitempty"`
	User             string             `json:"user,omitempty"`
}

// Completion is a text completion, and each event of its stream: there
// every choice carries the text generated since the last event of that
// choice, and FinishReason is set on its last one. The usage event of a
// stream has no choices.
type Completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []CompletionChoice `json:"choices"`
	// Usage is set on a whole answer and on a stream's usage event.
	Usage *Usage `json:"usage,omitempty"`
}

// CompletionChoice is one choice. Index is i*n+k for the k-th choice of
// prompt i.
type CompletionChoice struct {
	Text     string              `json:"text"`
	Index    int                 `json:"index"`
	Logprobs *CompletionLogprobs `json:"logprobs"`
	// FinishReason is "stop" or "length"; null in a stream's events before
	// the choice's last.
	FinishReason *string `json:"finish_reason"`
}

// CompletionLogprobs is the legacy logprobs shape: one entry per token in
// each list. TextOffset is the offset of each token in the choice's text,
// in Unicode code points (the echoed prompt included).
type CompletionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// Text is the choice's text of a whole answer, choices in index order.
func (c *Completion) Text(i int) string {
	for _, ch := range c.Choices {
		if ch.Index == i {
			return ch.Text
		}
	}
	return ""
}
