package api

import "encoding/json"

// Wire types of POST /v1/responses, OpenAI's Responses API as asi1d
// serves it (docs/API.md, "Responses"). One struct per wire object, with
// the members of every variant: the "type" member says which are set.
// Members that OpenAI always sends are always written (null when empty).

// ResponsesPath is the Responses endpoint's path.
const ResponsesPath = "/v1/responses"

// ObjectResponse is the object of a response.
const ObjectResponse = "response"

// Statuses of a response and of its output items.
const (
	ResponseCompleted  = "completed"
	ResponseIncomplete = "incomplete"
	ResponseInProgress = "in_progress"
	ResponseFailed     = "failed"
)

// Types of output items and of their content parts.
const (
	ItemMessage            = "message"
	ItemFunctionCall       = "function_call"
	ItemFunctionCallOutput = "function_call_output"
	ItemReasoning          = "reasoning"
	PartInputText          = "input_text"
	PartOutputText         = "output_text"
	PartReasoningText      = "reasoning_text"
)

// Event types of a streamed response, in the order they come.
const (
	EventResponseCreated    = "response.created"
	EventResponseInProgress = "response.in_progress"
	EventItemAdded          = "response.output_item.added"
	EventPartAdded          = "response.content_part.added"
	EventTextDelta          = "response.output_text.delta"
	EventTextDone           = "response.output_text.done"
	EventReasoningDelta     = "response.reasoning_text.delta"
	EventReasoningDone      = "response.reasoning_text.done"
	EventPartDone           = "response.content_part.done"
	EventArgumentsDelta     = "response.function_call_arguments.delta"
	EventArgumentsDone      = "response.function_call_arguments.done"
	EventItemDone           = "response.output_item.done"
	EventResponseCompleted  = "response.completed"
	EventResponseIncomplete = "response.incomplete"
	EventResponseFailed     = "response.failed"
	EventError              = "error"
)

// ResponseRequest is a Responses request as a client sends it. Input is a
// string or a list of items (InputItem); nil pointers and empty values
// are left out, so the server's defaults apply.
type ResponseRequest struct {
	Model              string            `json:"model"`
	Input              any               `json:"input"`
	Instructions       string            `json:"instructions,omitempty"`
	Tools              []ResponseTool    `json:"tools,omitempty"`
	ToolChoice         any               `json:"tool_choice,omitempty"`
	Text               *ResponseText     `json:"text,omitempty"`
	MaxOutputTokens    int               `json:"max_output_tokens,omitempty"`
	Temperature        *float64          `json:"temperature,omitempty"`
	TopP               *float64          `json:"top_p,omitempty"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	Store              *bool             `json:"store,omitempty"`
	PreviousResponseID string            `json:"previous_response_id,omitempty"`
	Stream             bool              `json:"stream,omitempty"`
}

// InputItem is one item of a request's input list: a message (Role and
// Content), a function_call, or a function_call_output.
type InputItem struct {
	Type string `json:"type,omitempty"`
	// message: Content is a string or a list of ContentPart.
	Role    string `json:"role,omitempty"`
	Content any    `json:"content,omitempty"`
	// function_call and function_call_output.
	CallID    string `json:"call_id,omitempty"`
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	Output    string `json:"output,omitempty"`
}

// ResponseTool is a function tool of a request, echoed in the response.
type ResponseTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict"`
}

// ResponseText is the text member: the output's format.
type ResponseText struct {
	Format ResponseFormatText `json:"format"`
}

// ResponseFormatText is text.format: text, json_object or json_schema
// (with Name, Schema, Strict).
type ResponseFormatText struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Response is the answer of POST /v1/responses, and the response member
// of the stream's response.* events.
type Response struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Error              *ResponseError     `json:"error"`
	IncompleteDetails  *IncompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int64             `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []OutputItem       `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          ReasoningConfig    `json:"reasoning"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               ResponseText       `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []ResponseTool     `json:"tools"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *ResponseUsage     `json:"usage"`
	User               *string            `json:"user"`
	Metadata           map[string]string  `json:"metadata"`
}

// OutputText joins the text of the response's output_text parts.
func (r *Response) OutputText() string {
	var s string
	for _, it := range r.Output {
		if it.Type != ItemMessage {
			continue
		}
		for _, p := range it.Content {
			if p.Type == PartOutputText {
				s += p.Text
			}
		}
	}
	return s
}

// ResponseError is the error of a failed response.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response is incomplete.
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// ReasoningConfig is the reasoning member; asi1d writes nulls.
type ReasoningConfig struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// ResponseUsage counts a response's tokens.
type ResponseUsage struct {
	InputTokens         int                `json:"input_tokens"`
	InputTokensDetails  InputTokensDetails `json:"input_tokens_details"`
	OutputTokens        int                `json:"output_tokens"`
	OutputTokensDetails OutputTokenDetails `json:"output_tokens_details"`
	TotalTokens         int                `json:"total_tokens"`
}

// InputTokensDetails: prompt tokens found in the cache.
type InputTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// OutputTokenDetails: generated tokens of reasoning.
type OutputTokenDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// OutputItem is one item of a response's output: a message (Role,
// Content of output_text parts), a function_call (CallID, Name,
// Arguments) or a reasoning item (Summary, empty, and Content of one
// reasoning_text part: the model's thought).
type OutputItem struct {
	Type    string         `json:"type"`
	ID      string         `json:"id"`
	Status  string         `json:"status,omitempty"`
	Role    string         `json:"role,omitempty"`
	Summary *[]ContentPart `json:"summary,omitempty"`
	Content []ContentPart  `json:"content,omitempty"`
	// function_call
	CallID    string  `json:"call_id,omitempty"`
	Name      string  `json:"name,omitempty"`
	Arguments *string `json:"arguments,omitempty"`
}

// ContentPart is a part of an item's content: output_text (Annotations
// and Logprobs are always empty lists) or reasoning_text.
type ContentPart struct {
	Type        string             `json:"type"`
	Text        string             `json:"text"`
	Annotations *[]json.RawMessage `json:"annotations,omitempty"`
	Logprobs    *[]json.RawMessage `json:"logprobs,omitempty"`
}

// ResponseEvent is one event of a streamed response; its Type is also the
// event's "event:" name. Members not of the type are left out.
type ResponseEvent struct {
	Type           string             `json:"type"`
	SequenceNumber int64              `json:"sequence_number"`
	Response       *Response          `json:"response,omitempty"`
	OutputIndex    *int               `json:"output_index,omitempty"`
	ItemID         string             `json:"item_id,omitempty"`
	ContentIndex   *int               `json:"content_index,omitempty"`
	Item           *OutputItem        `json:"item,omitempty"`
	Part           *ContentPart       `json:"part,omitempty"`
	Delta          *string            `json:"delta,omitempty"`
	Text           *string            `json:"text,omitempty"`
	Arguments      *string            `json:"arguments,omitempty"`
	Name           string             `json:"name,omitempty"`
	Logprobs       *[]json.RawMessage `json:"logprobs,omitempty"`
	// error events: the contract's code and message; param null when "".
	Code    string  `json:"code,omitempty"`
	Message string  `json:"message,omitempty"`
	Param   *string `json:"param,omitempty"`
}
