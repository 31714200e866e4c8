package e2e

// POST /v1/responses on the real engine, through the official OpenAI SDK
// for Go: the same greedy text as chat completions on the reference model
// (no chat template) and on a synthetic model with one, json_schema
// through the grammar, and a tool-call round trip rendered by a real
// template.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/models/synth"
	"github.com/asi1d/asi1d/server/api"
)

func responseParams(input string, maxTokens int64) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model:           "asi1-mini",
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String(input)},
		Temperature:     openai.Float(0),
		MaxOutputTokens: openai.Int(maxTokens),
	}
}

// streamedResponse reads a streamed response to its last event.
func streamedResponse(t *testing.T, client openai.Client, p responses.ResponseNewParams) (responses.Response, string) {
	t.Helper()
	st := client.Responses.NewStreaming(context.Background(), p)
	var deltas strings.Builder
	var final responses.Response
	for st.Next() {
		ev := st.Current()
		switch ev.Type {
		case "response.output_text.delta":
			deltas.WriteString(ev.Delta)
		case "response.completed", "response.incomplete":
			final = ev.Response
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	return final, deltas.String()
}

func TestResponsesSameAsChatOnReference(t *testing.T) {
	e := start(t, 2, 64)
	client := sdkClient(e.url)
	ctx := context.Background()
	r, err := client.Responses.New(ctx, responseParams(testmodel.ReferencePrompt, 64))
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != testmodel.ReferenceText {
		t.Errorf("responses:\n got %q\nwant %q", r.OutputText(), testmodel.ReferenceText)
	}
	if r.Status != "incomplete" || r.IncompleteDetails.Reason != "max_output_tokens" || r.Usage.OutputTokens != 64 ||
		r.Usage.InputTokens != int64(len(testmodel.ReferenceTokens)) {
		t.Errorf("status %q reason %q usage %+v", r.Status, r.IncompleteDetails.Reason, r.Usage)
	}
	c, err := client.Chat.Completions.New(ctx, referenceParams())
	if err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Message.Content != r.OutputText() {
		t.Errorf("chat %q, responses %q", c.Choices[0].Message.Content, r.OutputText())
	}
	final, deltas := streamedResponse(t, client, responseParams(testmodel.ReferencePrompt, 64))
	if deltas != testmodel.ReferenceText || final.OutputText() != testmodel.ReferenceText || final.Status != "incomplete" {
		t.Errorf("streamed: deltas %q, final %q (%s)", deltas, final.OutputText(), final.Status)
	}
}

// On a model with a chat template, the same messages give the same
// greedy answer and reasoning through both endpoints.
func TestResponsesSameAsChatWithTemplate(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{synth.TemplateChatMLThink, synth.TemplateLlama3} {
		t.Run(tmpl, func(t *testing.T) {
			e, _ := startOnCtx(t, randomModel(t, tmpl), 1, 0, 1024)
			client := sdkClient(e.url)
			ctx := context.Background()
			p := responseParams("Tell me a story.", 48)
			p.Instructions = openai.String("You are terse.")
			r, err := client.Responses.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model: "asi1-mini", Temperature: openai.Float(0), MaxTokens: openai.Int(48),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are terse."), openai.UserMessage("Tell me a story.")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.OutputText(), c.Choices[0].Message.Content; got != want {
				t.Errorf("responses %q, chat %q", got, want)
			}
			var chatReasoning api.ChatCompletion
			_ = json.Unmarshal([]byte(c.RawJSON()), &chatReasoning)
			var reasoning []string
			for _, it := range r.Output {
				if it.Type == "reasoning" {
					for _, p := range it.AsReasoning().Content {
						reasoning = append(reasoning, strings.TrimSpace(p.Text))
					}
				}
			}
			if got, want := strings.Join(reasoning, "\n\n"), chatReasoning.Choices[0].Message.ReasoningContent; strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("reasoning: responses %q, chat %q", got, want)
			}
			final, deltas := streamedResponse(t, client, p)
			if final.OutputText() != r.OutputText() || deltas != r.OutputText() {
				t.Errorf("streamed %q (deltas %q), plain %q", final.OutputText(), deltas, r.OutputText())
			}
		})
	}
}

// text.format json_schema constrains the answer through chat's grammar.
func TestResponsesJSONSchema(t *testing.T) {
	e, _ := startOnCtx(t, randomModel(t, synth.TemplateChatMLThink), 1, 0, 2048)
	client := sdkClient(e.url)
	s := compileSchema(t, orderSchema)
	var schema map[string]any
	if err := json.Unmarshal([]byte(orderSchema), &schema); err != nil {
		t.Fatal(err)
	}
	for seed := range 3 {
		p := responseParams("An order, please.", 600)
		p.Temperature = openai.Float(1)
		p.Text = responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigParamOfJSONSchema("order", schema)}
		var text string
		if seed%2 == 0 {
			r, err := client.Responses.New(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "completed" || r.Text.Format.Type != "json_schema" {
				t.Fatalf("status %q format %q", r.Status, r.Text.Format.Type)
			}
			text = r.OutputText()
		} else {
			final, deltas := streamedResponse(t, client, p)
			if final.OutputText() != deltas {
				t.Fatalf("final %q, deltas %q", final.OutputText(), deltas)
			}
			text = deltas
		}
		validate(t, s, text)
	}
}

// A forced call on a real template, its output sent back both ways: the
// template renders the assistant's call and the tool's output.
func TestResponsesToolRoundTripOnTemplate(t *testing.T) {
	e, _ := startOnCtx(t, randomModel(t, synth.TemplateChatMLThink), 1, 0, 2048)
	client := sdkClient(e.url)
	ctx := context.Background()
	var params map[string]any
	if err := json.Unmarshal([]byte(weatherParams), &params); err != nil {
		t.Fatal(err)
	}
	p := responseParams("Weather in Oslo?", 300)
	p.Tools = []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", params, true)}
	p.ToolChoice = responses.ResponseNewParamsToolChoiceUnion{OfToolChoiceMode: openai.Opt(responses.ToolChoiceOptionsRequired)}
	r1, err := client.Responses.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var call responses.ResponseFunctionToolCall
	for _, it := range r1.Output {
		if it.Type == "function_call" {
			call = it.AsFunctionCall()
			break
		}
	}
	if call.Name != "get_weather" || call.CallID == "" {
		t.Fatalf("no call: %s", r1.RawJSON())
	}
	validate(t, compileSchema(t, weatherParams), call.Arguments)
	out := responses.ResponseInputItemParamOfFunctionCallOutput(`{"temp": 3}`)
	out.OfFunctionCallOutput.CallID = openai.String(call.CallID)

	p2 := responseParams("", 8)
	p2.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{out}}
	p2.PreviousResponseID = openai.String(r1.ID)
	r2, err := client.Responses.New(ctx, p2)
	if err != nil {
		t.Fatal(err)
	}
	p3 := responseParams("", 8)
	p3.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("Weather in Oslo?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
		out,
	}}
	r3, err := client.Responses.New(ctx, p3)
	if err != nil {
		t.Fatal(err)
	}
	// Greedy: the same conversation, however it was sent, the same answer
	// (r1 had no reasoning item here: a forced call's grammar leaves none).
	if r2.OutputText() != r3.OutputText() || r2.Usage.InputTokens != r3.Usage.InputTokens {
		t.Errorf("previous_response_id: %q (%d input tokens); full input: %q (%d)", r2.OutputText(), r2.Usage.InputTokens, r3.OutputText(), r3.Usage.InputTokens)
	}
}
