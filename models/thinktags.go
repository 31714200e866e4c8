package models

import "strings"

// DetectThoughtTags decides from a model's chat template and vocabulary,
// not from a list of model names, whether the model writes reasoning
// between tags, and which. The tags are <think> and </think> when the
// vocabulary has both as special tokens, or when the template mentions
// <think> or </think>; otherwise open and close are empty.
//
// startInThought reports whether a prompt rendered with
// add_generation_prompt=true already ends with the open tag (DeepSeek-R1,
// QwQ), so the model's output starts inside a thought. It is found by
// rendering a one-message probe conversation; a template that does not
// parse or render gives false. Callers that render the real prompt can ask
// PromptOpensThought of it instead, which also sees the effect of
// per-request variables such as enable_thinking.
func DetectThoughtTags(template string, specialTokens map[string]bool) (open, close string, startInThought bool) {
	if !(specialTokens["<think>"] && specialTokens["</think>"]) &&
		!strings.Contains(template, "<think>") && !strings.Contains(template, "</think>") {
		return "", "", false
	}
	open, close = "<think>", "</think>"
	if strings.TrimSpace(template) == "" {
		return open, close, false
	}
	t, err := ParseTemplate(template, TemplateOptions{})
	if err != nil {
		return open, close, false
	}
	prompt, err := t.Render(RenderInput{
		Messages:            []Message{{Role: "user", Content: "Hello", HasContent: true}},
		AddGenerationPrompt: true,
	})
	if err != nil {
		return open, close, false
	}
	return open, close, PromptOpensThought(prompt, open)
}

// PromptOpensThought reports whether the rendered prompt ends with the
// open tag, ignoring trailing whitespace: the model's output then starts
// inside a thought. An empty open tag gives false.
func PromptOpensThought(prompt, open string) bool {
	if open == "" {
		return false
	}
	return strings.HasSuffix(strings.TrimRight(prompt, " \t\r\n"), open)
}
