package server_test

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/server/api"
)

// POST /v1/completions through the whole server on the fake engine, with
// the official OpenAI SDK for Go.

func sdkFor(url string) openai.Client {
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("unused"),
		option.WithMaxRetries(0), option.WithRequestTimeout(time.Minute))
}

func textParams(prompt string, maxTokens int64) openai.CompletionNewParams {
	return openai.CompletionNewParams{
		Model:       "asi1-mini",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(maxTokens),
		Temperature: openai.Float(0),
	}
}

var completionIDRe = regexp.MustCompile(`^id_[A-Za-z0-9]{17}$`)

func TestCompletionsSDK(t *testing.T) {
	e := ctStart(t, ctConfig{})
	client := sdkFor(e.url)
	ctx := context.Background()

	plain, err := client.Completions.New(ctx, textParams("hi", 8))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Object != "text_completion" || !completionIDRe.MatchString(plain.ID) || plain.Model != "asi1-mini" ||
		plain.SystemFingerprint == "" || plain.Created == 0 {
		t.Fatalf("envelope: %s", plain.RawJSON())
	}
	if len(plain.Choices) != 1 || plain.Choices[0].Index != 0 || plain.Choices[0].FinishReason != "length" {
		t.Fatalf("choices: %s", plain.RawJSON())
	}
	want := plain.Choices[0].Text
	if want == "" || plain.Usage.PromptTokens != 3 || plain.Usage.CompletionTokens != 8 || plain.Usage.TotalTokens != 11 {
		t.Fatalf("text %q, usage %+v", want, plain.Usage)
	}

	t.Run("same text as chat", func(t *testing.T) {
		// The fake has no chat template: chat renders one user message as
		// its plain text (models.RenderPlain), so both see the same prompt.
		c, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "asi1-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			Temperature: openai.Float(0), MaxTokens: openai.Int(8),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Choices[0].Message.Content; got != want {
			t.Fatalf("chat %q, completions %q", got, want)
		}
	})

	t.Run("default max_tokens is 16", func(t *testing.T) {
		p := textParams("hi", 0)
		p.MaxTokens = openai.CompletionNewParams{}.MaxTokens
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Usage.CompletionTokens != 16 || c.Choices[0].FinishReason != "length" {
			t.Fatalf("usage %+v finish %s", c.Usage, c.Choices[0].FinishReason)
		}
	})

	t.Run("streamed", func(t *testing.T) {
		p := textParams("hi", 8)
		p.StreamOptions.IncludeUsage = openai.Bool(true)
		st := client.Completions.NewStreaming(ctx, p)
		var text strings.Builder
		finish, events, usageEvents := "", 0, 0
		for st.Next() {
			ev := st.Current()
			events++
			if ev.Object != "text_completion" || ev.ID == "" {
				t.Fatalf("event: %s", ev.RawJSON())
			}
			for _, ch := range ev.Choices {
				text.WriteString(ch.Text)
				if ch.FinishReason != "" {
					finish = string(ch.FinishReason)
				}
			}
			if len(ev.Choices) == 0 {
				usageEvents++
				if ev.Usage.CompletionTokens != 8 || ev.Usage.PromptTokens != 3 {
					t.Fatalf("usage event: %s", ev.RawJSON())
				}
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		if text.String() != want || finish != "length" || usageEvents != 1 || events < 2 {
			t.Fatalf("streamed %q finish %q, %d events (%d usage); want %q", text.String(), finish, events, usageEvents, want)
		}
	})

	t.Run("token ids", func(t *testing.T) {
		p := textParams("", 8)
		p.Prompt = openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: []int64{int64(enginetest.BOS),
			enginetest.ByteBase + 'h', enginetest.ByteBase + 'i'}}
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Text != want {
			t.Fatalf("token prompt %q, text prompt %q", c.Choices[0].Text, want)
		}
	})

	t.Run("batch and n", func(t *testing.T) {
		single := map[string]string{"hi": want}
		one, err := client.Completions.New(ctx, textParams("ok", 8))
		if err != nil {
			t.Fatal(err)
		}
		single["ok"] = one.Choices[0].Text
		p := textParams("", 8)
		p.Prompt = openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"hi", "ok"}}
		p.N = openai.Int(2)
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Choices) != 4 {
			t.Fatalf("%d choices", len(c.Choices))
		}
		// Choices of prompt i come at indexes i*n..i*n+n-1.
		for i, ch := range c.Choices {
			prompt := []string{"hi", "ok"}[i/2]
			if ch.Index != int64(i) || ch.Text != single[prompt] {
				t.Errorf("choice %d (index %d): %q, want %q (prompt %q)", i, ch.Index, ch.Text, single[prompt], prompt)
			}
		}
		if c.Usage.PromptTokens != 6 || c.Usage.CompletionTokens != 32 {
			t.Errorf("usage %+v", c.Usage)
		}
	})

	t.Run("echo", func(t *testing.T) {
		p := textParams("hi", 8)
		p.Echo = openai.Bool(true)
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].Text != "hi"+want {
			t.Fatalf("echo %q, want %q", c.Choices[0].Text, "hi"+want)
		}
	})

	t.Run("stop", func(t *testing.T) {
		cut := utf8.RuneLen([]rune(want)[0]) + 1 // past the first character
		stop := want[cut : cut+1]
		p := textParams("hi", 8)
		p.Stop = openai.CompletionNewParamsStopUnion{OfString: openai.String(stop)}
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Choices[0].FinishReason != "stop" || !strings.HasPrefix(want, c.Choices[0].Text) ||
			strings.Contains(c.Choices[0].Text, stop) {
			t.Fatalf("stop %q: %q finish %s (whole %q)", stop, c.Choices[0].Text, c.Choices[0].FinishReason, want)
		}
	})

	t.Run("logprobs", func(t *testing.T) {
		p := textParams("hi", 8)
		p.Logprobs = openai.Int(2)
		c, err := client.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		lp := c.Choices[0].Logprobs
		if len(lp.Tokens) != 8 || len(lp.TokenLogprobs) != 8 || len(lp.TopLogprobs) != 8 || len(lp.TextOffset) != 8 {
			t.Fatalf("logprobs: %s", c.Choices[0].RawJSON())
		}
		if strings.Join(lp.Tokens, "") != c.Choices[0].Text {
			t.Errorf("tokens %q, text %q", lp.Tokens, c.Choices[0].Text)
		}
		off := 0
		for i := range lp.Tokens {
			if lp.TextOffset[i] != int64(off) || lp.TokenLogprobs[i] > 0 || len(lp.TopLogprobs[i]) == 0 || len(lp.TopLogprobs[i]) > 2 {
				t.Fatalf("token %d: %s", i, c.Choices[0].RawJSON())
			}
			off += utf8.RuneCountInString(lp.Tokens[i])
		}
	})
}

// The fill-in-the-middle prompt is BOS, FIM prefix, the prompt, FIM
// suffix, the suffix, FIM middle.
func TestCompletionsSuffixFIM(t *testing.T) {
	e := ctStart(t, ctConfig{setup: func(f *enginetest.Fake) {
		f.SetSpecial(enginetest.Special2, "<PRE>", true)
		f.SetSpecial(enginetest.Special3, "<SUF>", true)
		f.SetFIM(enginetest.Special2, enginetest.Special3, enginetest.ByteBase) // the NUL byte as <MID>
	}})
	client := sdkFor(e.url)
	p := textParams("ab", 4)
	p.Suffix = openai.String("c")
	c, err := client.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Usage.PromptTokens != 7 || c.Usage.CompletionTokens != 4 {
		t.Fatalf("usage %+v, want 7 prompt tokens (BOS PRE a b SUF c MID)", c.Usage)
	}
	plain, err := client.Completions.New(context.Background(), textParams("ab", 4))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Usage.PromptTokens != 3 {
		t.Fatalf("without suffix: usage %+v", plain.Usage)
	}
}

// A client that leaves mid-stream frees its slot.
func TestCompletionsCancelFreesSlot(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 1, stepDelay: 5 * time.Millisecond})
	client := sdkFor(e.url)
	ctx, cancel := context.WithCancel(context.Background())
	st := client.Completions.NewStreaming(ctx, textParams("hi", 200))
	if !st.Next() {
		t.Fatalf("no event: %v", st.Err())
	}
	if e.sched.Stats().Running != 1 {
		t.Fatalf("stats %+v, want one running", e.sched.Stats())
	}
	cancel()
	_ = st.Close()
	ctWait(t, "the slot to come free", func() bool { st := e.sched.Stats(); return st.Running == 0 && st.Waiting == 0 })
	c, err := client.Completions.New(context.Background(), textParams("hi", 4))
	if err != nil || c.Choices[0].FinishReason != "length" {
		t.Fatalf("after the cancel: %v %+v", err, c)
	}
}

// A streamed batch interleaves its choices; each choice's events add up to
// the choice of the whole answer, the echo first.
func TestCompletionsStreamedBatch(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 4, stepDelay: time.Millisecond})
	c := &api.Client{BaseURL: e.url}
	ctx := context.Background()
	req := &api.CompletionRequest{Model: "asi1-mini", Prompt: []string{"hi", "ok"}, N: ptr(2),
		MaxTokens: ptr(6), Temperature: ptr(0.0), Echo: true}
	whole, err := c.Completion(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Choices) != 4 || !strings.HasPrefix(whole.Text(0), "hi") || !strings.HasPrefix(whole.Text(3), "ok") {
		t.Fatalf("whole: %+v", whole)
	}
	req.StreamOptions = &api.StreamOptions{IncludeUsage: true}
	st, err := c.CompletionStream(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	texts := make([]string, 4)
	finished := 0
	var usage *api.Usage
	for {
		ev, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Usage != nil {
			usage = ev.Usage
		}
		for _, ch := range ev.Choices {
			if ch.FinishReason != nil {
				finished++
			}
			texts[ch.Index] += ch.Text
		}
	}
	for i := range texts {
		if texts[i] != whole.Text(i) {
			t.Errorf("choice %d streamed %q, whole %q", i, texts[i], whole.Text(i))
		}
	}
	if finished != 4 || usage == nil || usage.CompletionTokens != 24 || usage.PromptTokens != whole.Usage.PromptTokens || usage.TotalTokens != whole.Usage.TotalTokens {
		t.Errorf("finished %d, usage %+v, whole usage %+v", finished, usage, whole.Usage)
	}
}

func ptr[T any](v T) *T { return &v }
