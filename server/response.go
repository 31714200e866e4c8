package server

import (
	"encoding/json"

	"github.com/asi1d/asi1d/models"
)

// Wire types of chat completions (contract sections 5 and 7).

type completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint"`
	ExecutableData    []any    `json:"executable_data"`
	ConversationID    *string  `json:"conversation_id"`
	Thought           []string `json:"thought"`
	ToolThought       []string `json:"tool_thought"`
	Choices           []choice `json:"choices"`
	Usage             usage    `json:"usage"`
}

type choice struct {
	Index        int       `json:"index"`
	Message      message   `json:"message"`
	Logprobs     *logprobs `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

type message struct {
	Role             string     `json:"role"`
	Content          *string    `json:"content"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCall `json:"tool_calls,omitempty"`
}

// finishToolCalls is the finish_reason of an answer that made tool calls.
const finishToolCalls = "tool_calls"

type toolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// deltaToolCall is one item of delta.tool_calls: the first delta of a call
// has id, type and name; later ones only argument fragments.
type deltaToolCall struct {
	Index    int           `json:"index"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function deltaFunction `json:"function"`
}

type deltaFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

func wireToolCalls(calls []models.ToolCall) []toolCall {
	out := make([]toolCall, len(calls))
	for i, c := range calls {
		out[i] = toolCall{ID: c.ID, Type: "function", Function: functionCall{Name: c.Name, Arguments: c.Arguments}}
	}
	return out
}

func wireDeltaCall(d *models.ToolCallDelta) deltaToolCall {
	out := deltaToolCall{Index: d.Index, ID: d.ID, Function: deltaFunction{Name: d.Name, Arguments: d.Arguments}}
	if d.ID != "" {
		out.Type = "function"
	}
	return out
}

type usage struct {
	PromptTokens        int            `json:"prompt_tokens"`
	CompletionTokens    int            `json:"completion_tokens"`
	TotalTokens         int            `json:"total_tokens"`
	PromptTokensDetails *promptDetails `json:"prompt_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type logprobs struct {
	Content []tokenLogprob `json:"content"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// chunk is one server-sent event of a stream. The raw fields are set only
// on the chunks that carry them (the role chunk's ASI1 envelope, "usage":
// null with include_usage).
type chunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	ExecutableData    json.RawMessage `json:"executable_data,omitempty"`
	ConversationID    json.RawMessage `json:"conversation_id,omitempty"`
	ToolThought       json.RawMessage `json:"tool_thought,omitempty"`
	Thought           *string         `json:"thought,omitempty"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        delta     `json:"delta"`
	Logprobs     *logprobs `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type delta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	ToolCalls        []deltaToolCall `json:"tool_calls,omitempty"`
}

var (
	rawEmptyArray = json.RawMessage("[]")
	rawNull       = json.RawMessage("null")
)
