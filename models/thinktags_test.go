package models

import (
	"encoding/json"
	"testing"
)

// tmplDeepSeekR1Style is an abridged DeepSeek-R1(-Distill) template: its
// generation prompt opens the thought.
const tmplDeepSeekR1Style = `{% set ns = namespace(system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{{ '<｜User｜>' + message['content'] }}{%- endif %}{%- if message['role'] == 'assistant' %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}{%- endfor -%}{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\n' }}{% endif %}`

// tmplQwQStyle is a ChatML template whose generation prompt opens the
// thought, as QwQ-32B's does.
const tmplQwQStyle = `{%- for message in messages %}{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n<think>\n' }}{%- endif %}`

func TestDetectThoughtTags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		template  string
		special   map[string]bool
		open      string
		close     string
		startOpen bool
	}{
		{"qwen3 template", tmplQwen3, nil, "<think>", "</think>", false},
		{"deepseek-r1 style", tmplDeepSeekR1Style, nil, "<think>", "</think>", true},
		{"qwq style", tmplQwQStyle, map[string]bool{"<think>": true, "</think>": true}, "<think>", "</think>", true},
		{"llama 3.1", tmplLlama31, map[string]bool{"<|eot_id|>": true}, "", "", false},
		{"gemma 3", tmplGemma3, nil, "", "", false},
		{"vocabulary only, no template", "", map[string]bool{"<think>": true, "</think>": true}, "<think>", "</think>", false},
		{"vocabulary only, plain template", tmplQwen25, map[string]bool{"<think>": true, "</think>": true}, "<think>", "</think>", false},
		{"only the open token", tmplQwen25, map[string]bool{"<think>": true}, "", "", false},
		{"unparsable template mentioning think", "{% if %}<think>", nil, "<think>", "</think>", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open, close, start := DetectThoughtTags(tc.template, tc.special)
			if open != tc.open || close != tc.close || start != tc.startOpen {
				t.Errorf("DetectThoughtTags = %q, %q, %v; want %q, %q, %v", open, close, start, tc.open, tc.close, tc.startOpen)
			}
		})
	}
}

func TestPromptOpensThought(t *testing.T) {
	for _, tc := range []struct {
		prompt, open string
		want         bool
	}{
		{"<|im_start|>assistant\n<think>\n", "<think>", true},
		{"<|im_start|>assistant\n<think>", "<think>", true},
		{"<think> \t\r\n", "<think>", true},
		{"<|im_start|>assistant\n<think>\n\n</think>\n\n", "<think>", false},
		{"<|im_start|>assistant\n", "<think>", false},
		{"", "<think>", false},
		{"anything", "", false},
	} {
		if got := PromptOpensThought(tc.prompt, tc.open); got != tc.want {
			t.Errorf("PromptOpensThought(%q, %q) = %v, want %v", tc.prompt, tc.open, got, tc.want)
		}
	}

	// With a real template, enable_thinking decides it per request.
	tmpl, err := ParseTemplate(tmplQwen3, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "user", Content: "Hi", HasContent: true}}
	for _, tc := range []struct {
		extra map[string]any
		want  bool
	}{
		{nil, false},
		{map[string]any{"enable_thinking": json.RawMessage("false")}, false},
	} {
		p, err := tmpl.Render(RenderInput{Messages: msgs, AddGenerationPrompt: true, Extra: tc.extra})
		if err != nil {
			t.Fatal(err)
		}
		if got := PromptOpensThought(p, "<think>"); got != tc.want {
			t.Errorf("PromptOpensThought(%q) = %v, want %v", p, got, tc.want)
		}
	}
	tmpl, err = ParseTemplate(tmplQwQStyle, TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := tmpl.Render(RenderInput{Messages: msgs, AddGenerationPrompt: true})
	if err != nil || !PromptOpensThought(p, "<think>") {
		t.Errorf("QwQ-style prompt %q, %v: want it to open a thought", p, err)
	}
}
