package server

import (
	"strings"
	"testing"

	"github.com/asi1d/asi1d/engine"
)

func TestContextTooLongSaysHowToRaiseIt(t *testing.T) {
	for _, c := range []struct {
		name string
		info engine.Info
		want []string
	}{
		{"pool below the trained context", engine.Info{NCtx: 1536, NCtxSeq: 1536, NCtxTrain: 2048, KVUnified: true, Parallel: 16},
			[]string{"maximum context length is 1536 tokens", "prompt has 1600 tokens", "KV pool of 1536 cells", "trained on 2048", "--ctx N", `"ctx" of the model's entry in models.json`}},
		{"the trained context", engine.Info{NCtx: 4096, NCtxSeq: 2048, NCtxTrain: 2048, KVUnified: true, Parallel: 16},
			[]string{"maximum context length is 2048 tokens", "model's trained context", "--ctx"}},
		{"a pool per sequence", engine.Info{NCtx: 4096, NCtxSeq: 1024, NCtxTrain: 2048, Parallel: 4},
			[]string{"maximum context length is 1024 tokens", "each of 4 sequences gets 1024", "--ctx N", "--kv-unified"}},
	} {
		prompt := 1600
		if c.info.NCtxSeq > prompt {
			prompt = c.info.NCtxSeq + 10
		}
		e := contextTooLong(c.info, prompt)
		if e.Status != 400 || e.Code != CodeContextLength || e.Param != "messages" {
			t.Fatalf("%s: %+v", c.name, e)
		}
		for _, w := range c.want {
			if w == "prompt has 1600 tokens" && prompt != 1600 {
				continue
			}
			if !strings.Contains(e.Message, w) {
				t.Errorf("%s: message %q lacks %q", c.name, e.Message, w)
			}
		}
	}
}

func TestUnknownModelListsTheModels(t *testing.T) {
	e := ErrorFor(&UnknownModelError{ID: "gpt-4", Known: []KnownModel{{ID: "stories", Aliases: []string{"asi1-mini"}}, {ID: "tiny"}}})
	if e.Status != 404 || e.Code != CodeModelNotFound ||
		!strings.Contains(e.Message, "The model 'gpt-4' does not exist; the models served are: stories (aliases: asi1-mini), tiny") {
		t.Fatalf("%+v", e)
	}
	if e := ErrorFor(&UnknownModelError{ID: "x"}); !strings.Contains(e.Message, "no model is served") {
		t.Fatalf("%+v", e)
	}
}
