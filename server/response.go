package server

import (
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/server/api"
)

// The wire types of chat completions (contract sections 5 and 7) are
// server/api's: ChatCompletion, ChatCompletionChunk and what they hold.
// This file turns the models package's tool calls into them.

func wireToolCalls(calls []models.ToolCall) []api.ToolCall {
	out := make([]api.ToolCall, len(calls))
	for i, c := range calls {
		out[i] = api.ToolCall{ID: c.ID, Type: "function", Function: api.FunctionCall{Name: c.Name, Arguments: c.Arguments}}
	}
	return out
}

// wireDeltaCall is one item of delta.tool_calls: the first delta of a call
// has id, type and name; later ones only argument fragments.
func wireDeltaCall(d *models.ToolCallDelta) api.ToolCallDelta {
	out := api.ToolCallDelta{Index: d.Index, ID: d.ID, Function: api.FunctionDelta{Name: d.Name, Arguments: d.Arguments}}
	if d.ID != "" {
		out.Type = "function"
	}
	return out
}
