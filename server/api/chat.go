package api

import (
	"encoding/json"
	"strings"
)

// Wire types of POST /v1/chat/completions (shared/ASI1-API.md sections 3,
// 5 and 7). The response types encode byte for byte as the server writes
// them (testdata/*.json are captured server output; see api_test.go): field
// order, omitempty and null-versus-absent are part of the contract.

// ChatPath is the chat endpoint's path.
const ChatPath = "/v1/chat/completions"

// Object names of chat answers.
const (
	ObjectChatCompletion = "chat.completion"
	ObjectChatChunk      = "chat.completion.chunk"
)

// Finish reasons of a choice.
const (
	FinishStop      = "stop"
	FinishLength    = "length"
	FinishToolCalls = "tool_calls"
)

// Message roles.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// ChatCompletionRequest is a chat request as a client sends it. Nil
// pointers and empty values are left out, so the server's defaults apply
// (temperature 0 is meaningful: set it through a pointer).
type ChatCompletionRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`

	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	// MaxTokens and MaxCompletionTokens: 0 is left out (no limit).
	MaxTokens           int `json:"max_tokens,omitempty"`
	MaxCompletionTokens int `json:"max_completion_tokens,omitempty"`

	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`

	Stop             []string `json:"stop,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
	N                *int     `json:"n,omitempty"`
	// LogitBias maps token ids (decimal strings) to a bias in [-100, 100].
	LogitBias map[string]float64 `json:"logit_bias,omitempty"`

	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs *int `json:"top_logprobs,omitempty"`

	ResponseFormat    *ResponseFormat `json:"response_format,omitempty"`
	Tools             []Tool          `json:"tools,omitempty"`
	ToolChoice        *ToolChoice     `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`

	User string `json:"user,omitempty"`
	// ASI1 fields: accepted by asi1d, with no effect.
	WebSearch    bool   `json:"web_search,omitempty"`
	AgentAddress string `json:"agent_address,omitempty"`
}

// StreamOptions is stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Message is one message of a request's conversation, and the message of
// a non-streamed answer.
type Message struct {
	Role string `json:"role"`
	// Content is the text; null only in an answer that made tool calls.
	// The server also accepts an array of text parts, which this client
	// type does not send.
	Content *string `json:"content"`
	// ReasoningContent is the reasoning of an answer (asi1d, llama.cpp,
	// DeepSeek); Reasoning is the same under vLLM's newer name (read, never
	// written by asi1d).
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	Reasoning        string     `json:"reasoning,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID is required on a tool message.
	ToolCallID string `json:"tool_call_id,omitempty"`
	Name       string `json:"name,omitempty"`
}

// Text returns a message's content, "" when null.
func (m *Message) Text() string {
	if m.Content == nil {
		return ""
	}
	return *m.Content
}

// NewMessage returns a message with text content.
func NewMessage(role, content string) Message {
	return Message{Role: role, Content: &content}
}

// ToolCall is one complete tool call of an answer's message (and of an
// assistant message sent back in a conversation).
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function of a tool call; Arguments is JSON text.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolCallDelta is one item of a chunk's delta.tool_calls: the first delta
// of a call has its id, type and name; later ones only argument fragments.
type ToolCallDelta struct {
	Index    int           `json:"index"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function FunctionDelta `json:"function"`
}

// FunctionDelta is the function part of a ToolCallDelta.
type FunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Tool is one item of a request's tools: a function.
type Tool struct {
	Type     string             `json:"type"` // "function"
	Function FunctionDefinition `json:"function"`
}

// FunctionDefinition declares a function a model may call. Parameters is
// a JSON Schema object.
type FunctionDefinition struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

// NewFunctionTool returns a function tool.
func NewFunctionTool(name, description string, parameters json.RawMessage) Tool {
	return Tool{Type: "function", Function: FunctionDefinition{Name: name, Description: description, Parameters: parameters}}
}

// ToolChoice is tool_choice: a mode ("none", "auto", "required") or, with
// Function set, {"type":"function","function":{"name":Function}}.
type ToolChoice struct {
	Mode     string
	Function string
}

type namedToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// MarshalJSON writes the string or the object form.
func (c ToolChoice) MarshalJSON() ([]byte, error) {
	if c.Function == "" {
		return json.Marshal(c.Mode)
	}
	n := namedToolChoice{Type: "function"}
	n.Function.Name = c.Function
	return json.Marshal(n)
}

// UnmarshalJSON reads the string or the object form.
func (c *ToolChoice) UnmarshalJSON(b []byte) error {
	*c = ToolChoice{}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &c.Mode)
	}
	var n namedToolChoice
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	c.Function = n.Function.Name
	return nil
}

// ResponseFormat is response_format: Type "text", "json_object" or
// "json_schema" (with JSONSchema).
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

// ChatCompletion is a non-streamed answer (contract section 5).
type ChatCompletion struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Created           int64  `json:"created"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	// The ASI1 envelope: executable_data [], conversation_id null,
	// thought (one element per reasoning block), tool_thought [].
	ExecutableData []any    `json:"executable_data"`
	ConversationID *string  `json:"conversation_id"`
	Thought        []string `json:"thought"`
	ToolThought    []string `json:"tool_thought"`
	Choices        []Choice `json:"choices"`
	Usage          Usage    `json:"usage"`
}

// Choice is one choice of a ChatCompletion.
type Choice struct {
	Index        int       `json:"index"`
	Message      Message   `json:"message"`
	Logprobs     *Logprobs `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

// Usage is the token accounting of an answer.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	// PromptTokensDetails.CachedTokens is the prompt tokens served from
	// the prefix cache.
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails is usage.prompt_tokens_details.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// CompletionTokensDetails is usage.completion_tokens_details.
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// CachedTokens is usage.prompt_tokens_details.cached_tokens, 0 when absent.
func (u *Usage) CachedTokens() int {
	if u == nil || u.PromptTokensDetails == nil {
		return 0
	}
	return u.PromptTokensDetails.CachedTokens
}

// Logprobs is a choice's logprobs.
type Logprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is the log probability of one generated token.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// TopLogprob is one of the most likely tokens at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// ChatCompletionChunk is one event of a streamed answer (contract section
// 7). The raw fields are set only on the chunks that carry them: the role
// chunk's ASI1 envelope (executable_data [], conversation_id null,
// tool_thought []), a reasoning chunk's thought (a JSON string), the first
// tool-call chunk's tool_thought, and "usage": null on every chunk but the
// usage chunk with include_usage. Read them with ThoughtText,
// ToolThoughtText and UsageStats.
type ChatCompletionChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	ExecutableData    json.RawMessage `json:"executable_data,omitempty"`
	ConversationID    json.RawMessage `json:"conversation_id,omitempty"`
	ToolThought       json.RawMessage `json:"tool_thought,omitempty"`
	Thought           json.RawMessage `json:"thought,omitempty"`
	Choices           []ChunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

// ChunkChoice is one choice of a chunk.
type ChunkChoice struct {
	Index        int       `json:"index"`
	Delta        Delta     `json:"delta"`
	Logprobs     *Logprobs `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// Delta is what a chunk adds to the answer.
type Delta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	Reasoning        string          `json:"reasoning,omitempty"` // vLLM's newer name; never written by asi1d
	ToolCalls        []ToolCallDelta `json:"tool_calls,omitempty"`
}

// Text returns the delta's content, "" when absent.
func (d *Delta) Text() string {
	if d.Content == nil {
		return ""
	}
	return *d.Content
}

// Raw JSON values of the chunk envelope.
var (
	RawEmptyArray = json.RawMessage("[]")
	RawNull       = json.RawMessage("null")
)

// RawString returns s as a JSON string, for the raw fields of a chunk.
func RawString(s string) json.RawMessage {
	return AppendQuoted(nil, s)
}

// ThoughtText returns the chunk's reasoning: the ASI1 top-level thought
// (a string; an array of strings is joined with "\n\n"), else the first
// choice's delta.reasoning_content or delta.reasoning.
func (c *ChatCompletionChunk) ThoughtText() string {
	if t := Texts(c.Thought); t != "" {
		return t
	}
	if len(c.Choices) > 0 {
		d := &c.Choices[0].Delta
		return d.ReasoningContent + d.Reasoning
	}
	return ""
}

// ToolThoughtText returns the chunk's tool_thought as text ("" for []).
func (c *ChatCompletionChunk) ToolThoughtText() string { return Texts(c.ToolThought) }

// UsageStats decodes the chunk's usage: nil when absent or null.
func (c *ChatCompletionChunk) UsageStats() (*Usage, error) {
	if len(c.Usage) == 0 || string(c.Usage) == "null" {
		return nil, nil
	}
	var u Usage
	if err := json.Unmarshal(c.Usage, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Texts reads a raw JSON string or array of strings as text (the array
// joined with "\n\n"); anything else is "".
func Texts(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var a []string
	if json.Unmarshal(raw, &a) == nil {
		return strings.Join(a, "\n\n")
	}
	return ""
}
