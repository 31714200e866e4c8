package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/llamacpp"
	"github.com/asi1d/asi1d/models"
	"github.com/asi1d/asi1d/models/synth"
	"github.com/asi1d/asi1d/server/api"
)

// startModel is startOn for a model that must have reasoning tags.
func startModel(t *testing.T, path string, parallel, stepTokens int) (*env, *llamacpp.Backend) {
	t.Helper()
	e, be := startOn(t, path, parallel, stepTokens)
	if e.model.Tags.Open == "" {
		t.Fatalf("no reasoning tags detected (special tokens %v)", be.Info().SpecialTokens)
	}
	return e, be
}

// Synthetic tiny models of every weight type and template load in
// llama.cpp with the metadata we wrote, tokenize, and decode to finite
// logits.
func TestSynthModelsLoad(t *testing.T) {
	for _, typ := range []string{synth.TypeF16, synth.TypeQ8_0, synth.TypeQ4_0} {
		for _, tmpl := range []string{"", synth.TemplateChatMLThink, synth.TemplateLlama3} {
			t.Run(typ+"/"+tmpl, func(t *testing.T) {
				o := synth.Options{Preset: "tiny", Type: typ, Template: tmpl, Seed: 42}
				path := filepath.Join(t.TempDir(), "tiny.gguf")
				if err := synth.WriteFile(path, o); err != nil {
					t.Fatal(err)
				}
				be, err := llamacpp.Open(path, llamacpp.Options{CtxSize: 512, Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer be.Close()
				info := be.Info()
				if info.Arch != "llama" || info.Name != "synth-tiny" || info.NVocab != 1024 || info.NCtxTrain != 2048 {
					t.Fatalf("info %+v", info)
				}
				if info.Params != uint64(o.Params()) {
					t.Errorf("llama.cpp counts %d parameters, synth %d", info.Params, o.Params())
				}
				piece := func(tok engine.Token) string { return string(be.Piece(tok)) }
				switch tmpl {
				case "":
					if piece(info.EOS) != "</s>" || piece(info.BOS) != "<s>" || !info.AddBOS || info.ChatTemplate != "" {
						t.Errorf("eos %q bos %q add_bos %v template %q", piece(info.EOS), piece(info.BOS), info.AddBOS, info.ChatTemplate)
					}
				case synth.TemplateChatMLThink:
					if piece(info.EOS) != "<|im_end|>" || info.AddBOS || !strings.Contains(info.ChatTemplate, "<tool_call>") {
						t.Errorf("eos %q add_bos %v template %.40q", piece(info.EOS), info.AddBOS, info.ChatTemplate)
					}
					for _, s := range []string{"<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_start|>", "<|im_end|>"} {
						if _, ok := info.SpecialTokens[s]; !ok {
							t.Errorf("special tokens lack %s: %v", s, info.SpecialTokens)
						}
					}
					if !be.IsEOG(info.SpecialTokens["<|im_end|>"]) {
						t.Error("<|im_end|> does not end generation")
					}
				case synth.TemplateLlama3:
					if piece(info.EOS) != "<|eot_id|>" || piece(info.BOS) != "<|begin_of_text|>" || info.ChatTemplate == "" {
						t.Errorf("eos %q bos %q", piece(info.EOS), piece(info.BOS))
					}
				}

				toks, err := be.Tokenize("Hello world", false, false)
				if err != nil {
					t.Fatal(err)
				}
				var text strings.Builder
				for _, tok := range toks {
					text.Write(be.Piece(tok))
				}
				if text.String() != " Hello world" {
					t.Errorf("tokens %v detokenize to %q", toks, text.String())
				}
				// Greedy decoding for a few steps: finite logits.
				pos := int32(0)
				batch := make([]engine.BatchEntry, len(toks))
				for i, tok := range toks {
					batch[i] = engine.BatchEntry{Token: tok, Pos: pos, Logits: i == len(toks)-1}
					pos++
				}
				for step := range 4 {
					if err := be.Decode(batch); err != nil {
						t.Fatal(err)
					}
					row := be.Logits(len(batch) - 1)
					best := 0
					for i, l := range row {
						if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
							t.Fatalf("step %d: logit %d is %v", step, i, l)
						}
						if l > row[best] {
							best = i
						}
					}
					batch = []engine.BatchEntry{{Token: engine.Token(best), Pos: pos, Logits: true}}
					pos++
				}
			})
		}
	}
}

// Larger presets load and decode to finite logits. Opt-in (they take
// seconds to minutes on a CPU): ASI1D_SYNTH_LARGE="small:q8_0 1b:q4_0".
func TestSynthLargeModelsLoad(t *testing.T) {
	spec := os.Getenv("ASI1D_SYNTH_LARGE")
	if spec == "" {
		t.Skip("set ASI1D_SYNTH_LARGE, e.g. \"small:q8_0 1b:q4_0\"")
	}
	for _, s := range strings.Fields(spec) {
		preset, typ, _ := strings.Cut(s, ":")
		t.Run(s, func(t *testing.T) {
			o := synth.Options{Preset: preset, Type: typ, Template: synth.TemplateChatMLThink}
			path := filepath.Join(t.TempDir(), "m.gguf")
			t0 := time.Now()
			if err := synth.WriteFile(path, o); err != nil {
				t.Fatal(err)
			}
			wrote := time.Since(t0)
			be, err := llamacpp.Open(path, llamacpp.Options{CtxSize: 512})
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			loaded := time.Since(t0) - wrote
			if info := be.Info(); info.Params != uint64(o.Params()) {
				t.Errorf("llama.cpp counts %d parameters, synth %d", info.Params, o.Params())
			}
			toks, err := be.Tokenize("<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n", false, true)
			if err != nil {
				t.Fatal(err)
			}
			batch := make([]engine.BatchEntry, len(toks))
			for i, tok := range toks {
				batch[i] = engine.BatchEntry{Token: tok, Pos: int32(i), Logits: i == len(toks)-1}
			}
			t1 := time.Now()
			var out []string
			for step := range 4 {
				if err := be.Decode(batch); err != nil {
					t.Fatal(err)
				}
				row := be.Logits(len(batch) - 1)
				best := 0
				for i, l := range row {
					if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
						t.Fatalf("step %d: logit %d is %v", step, i, l)
					}
					if l > row[best] {
						best = i
					}
				}
				out = append(out, string(be.Piece(engine.Token(best))))
				batch = []engine.BatchEntry{{Token: engine.Token(best), Pos: int32(len(toks) + step), Logits: true}}
			}
			t.Logf("%s: wrote %v, loaded %v, prompt of %d tokens + 4 steps %v: %q", s, wrote, loaded, len(toks), time.Since(t1), out)
		})
	}
}

// scriptedThought is the chain the scripted model follows after the
// generation prompt's last token (the newline after "assistant").
var scriptedThought = []string{"<0x0A>", "<think>", "▁so", "▁let", "▁me", "▁think", "</think>",
	"▁the", "▁answer", "▁is", "▁yes", "<|im_end|>"}

// A reasoning model end to end: the scripted synth model writes
// "<think> so let me think</think> the answer is yes<|im_end|>", and the
// server splits it into thought and content, streamed and not.
func TestReasoningEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "think.gguf")
	o := synth.Options{Preset: "tiny", Type: synth.TypeQ8_0, Template: synth.TemplateChatMLThink, Script: scriptedThought}
	if err := synth.WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
	e, be := startModel(t, path, 2, 64)

	// The generation prompt ends with the chain's first token.
	tmpl, err := models.ParseTemplate(be.Info().ChatTemplate, models.TemplateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := tmpl.Render(models.RenderInput{Messages: []models.Message{{Role: "user", Content: "Why?", HasContent: true}}, AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"; prompt != want {
		t.Fatalf("prompt %q, want %q", prompt, want)
	}
	toks, _ := be.Tokenize(prompt, false, true)
	if last := string(be.Piece(toks[len(toks)-1])); last != "\n" {
		t.Fatalf("the prompt ends with %q", last)
	}

	const wantThought, wantContent = "so let me think", "the answer is yes"
	c := reasoningComplete(t, e.url, chatBody("Why?", 50, false))
	ch := c.Choices[0]
	if len(c.Thought) != 1 || c.Thought[0] != wantThought || ch.Message.ReasoningContent != wantThought {
		t.Errorf("thought %q reasoning_content %q, want %q", c.Thought, ch.Message.ReasoningContent, wantThought)
	}
	if ch.Message.Content == nil || *ch.Message.Content != wantContent || ch.FinishReason != "stop" || c.Usage.CompletionTokens != len(scriptedThought)-1 {
		t.Errorf("content %v finish %s tokens %d", ch.Message.Content, ch.FinishReason, c.Usage.CompletionTokens)
	}

	thought, reasoning, content, finish := reasoningStream(t, e.url, chatBody("Why?", 50, true))
	if thought != wantThought || reasoning != wantThought || content != wantContent || finish != "stop" {
		t.Errorf("streamed: thought %q reasoning_content %q content %q finish %s", thought, reasoning, content, finish)
	}

	// Cut inside the thought: the open block is reasoning, content is empty.
	c = reasoningComplete(t, e.url, chatBody("Why?", 3, false))
	ch = c.Choices[0]
	if len(c.Thought) != 1 || c.Thought[0] != "so let" || ch.Message.Content == nil || *ch.Message.Content != "" || ch.FinishReason != "length" {
		t.Errorf("cut: thought %q content %v finish %s", c.Thought, ch.Message.Content, ch.FinishReason)
	}
	thought, reasoning, content, finish = reasoningStream(t, e.url, chatBody("Why?", 3, true))
	if thought != "so let" || reasoning != "so let" || content != "" || finish != "length" {
		t.Errorf("cut, streamed: thought %q reasoning_content %q content %q finish %s", thought, reasoning, content, finish)
	}
}

func reasoningComplete(t *testing.T, url string, body map[string]any) *api.ChatCompletion {
	t.Helper()
	resp := post(t, url, body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var c api.ChatCompletion
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<think>", "</think>"} {
		if c.Choices[0].Message.Content != nil && strings.Contains(*c.Choices[0].Message.Content, s) ||
			strings.Contains(c.Choices[0].Message.ReasoningContent, s) {
			t.Errorf("tag %s in the message: %s", s, b)
		}
	}
	return &c
}

// reasoningStream reads a streamed completion and returns the concatenated
// top-level thought strings, delta.reasoning_content and delta.content,
// and the finish reason. Every reasoning chunk must carry both fields
// alike; no chunk may carry a tag.
func reasoningStream(t *testing.T, url string, body map[string]any) (thought, reasoning, content, finish string) {
	t.Helper()
	resp := post(t, url, body)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	sse := api.NewSSEReader(resp.Body)
	for {
		ev, err := sse.Next()
		if err != nil {
			t.Fatalf("stream ended without [DONE]: %v", err)
		}
		if ev.IsDone() {
			break
		}
		data := ev.Data
		if bytes.Contains(data, []byte("<think>")) || bytes.Contains(data, []byte("</think>")) {
			t.Errorf("a chunk carries a tag: %s", data)
		}
		chunk, err := api.DecodeChunk(data)
		if err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		if len(chunk.Choices) == 0 {
			continue
		}
		d := chunk.Choices[0].Delta
		// thought, when present, must be a JSON string (null: absent).
		var chunkThought *string
		if len(chunk.Thought) > 0 {
			if err := json.Unmarshal(chunk.Thought, &chunkThought); err != nil {
				t.Fatalf("chunk %s: thought: %v", data, err)
			}
		}
		if chunkThought != nil {
			if *chunkThought != d.ReasoningContent || d.Content != nil {
				t.Errorf("reasoning chunk: thought %q, chunk %s", *chunkThought, data)
			}
			thought += *chunkThought
		} else if d.ReasoningContent != "" {
			t.Errorf("reasoning_content without thought: %s", data)
		}
		reasoning += d.ReasoningContent
		if d.Content != nil {
			content += *d.Content
		}
		if f := chunk.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	return thought, reasoning, content, finish
}

// The synth chat templates render as the models they imitate do.
func TestSynthTemplatesRender(t *testing.T) {
	src, ok := synth.ChatTemplate(synth.TemplateChatMLThink)
	if !ok {
		t.Fatal("no chatml-think template")
	}
	tmpl, err := models.ParseTemplate(src, models.TemplateOptions{BOSToken: "<s>", EOSToken: "<|im_end|>"})
	if err != nil {
		t.Fatal(err)
	}
	tool := json.RawMessage(`{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}`)
	msgs := []models.Message{
		{Role: "system", Content: "Be brief.", HasContent: true},
		{Role: "user", Content: "Weather in Paris?", HasContent: true},
		{Role: "assistant", ReasoningContent: "\nI should call the tool.\n", ToolCalls: []models.ToolCall{{ID: "c1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Role: "tool", Content: "sunny", HasContent: true, ToolCallID: "c1"},
	}
	got, err := tmpl.Render(models.RenderInput{Messages: msgs, Tools: []json.RawMessage{tool}, AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
		"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
		`{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}` +
		"\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
		"<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
		"<|im_start|>assistant\n<think>\nI should call the tool.\n</think>\n\n" +
		"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n" +
		"<|im_start|>assistant\n"
	if got != want {
		t.Errorf("chatml-think with tools:\n got %q\nwant %q", got, want)
	}
	// History before the last user message loses its reasoning (also when
	// written inline in the content); enable_thinking=false closes an empty
	// block.
	msgs = []models.Message{
		{Role: "user", Content: "Hi", HasContent: true},
		{Role: "assistant", Content: "<think>\nhmm\n</think>\n\nHello!", HasContent: true},
		{Role: "user", Content: "Bye", HasContent: true},
	}
	got, err = tmpl.Render(models.RenderInput{Messages: msgs, AddGenerationPrompt: true, Extra: map[string]any{"enable_thinking": false}})
	if err != nil {
		t.Fatal(err)
	}
	want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n" +
		"<|im_start|>assistant\n<think>\n\n</think>\n\n"
	if got != want {
		t.Errorf("chatml-think history:\n got %q\nwant %q", got, want)
	}
	if open, close, inThought := models.DetectThoughtTags(src, nil); open != "<think>" || close != "</think>" || inThought {
		t.Errorf("DetectThoughtTags: %q %q %v", open, close, inThought)
	}

	src, _ = synth.ChatTemplate(synth.TemplateLlama3)
	tmpl, err = models.ParseTemplate(src, models.TemplateOptions{BOSToken: "<|begin_of_text|>", EOSToken: "<|eot_id|>"})
	if err != nil {
		t.Fatal(err)
	}
	got, err = tmpl.Render(models.RenderInput{Messages: []models.Message{
		{Role: "system", Content: "Be brief.", HasContent: true}, {Role: "user", Content: " Hi ", HasContent: true},
	}, AddGenerationPrompt: true})
	want = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
	if err != nil || got != want {
		t.Errorf("llama3: %v\n got %q\nwant %q", err, got, want)
	}
}
