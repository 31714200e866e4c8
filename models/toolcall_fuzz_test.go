package models

import (
	"encoding/json"
	"slices"
	"testing"
)

// fuzzToolCalls checks, for any answer text: no panic, the invariants of
// checkToolRun (content plus raw call regions give back the text, every call
// is valid and decodes from its region), and that pushing the text in the
// pieces cuts gives the same merged chunks and calls as one Push.
func fuzzToolCalls(f *testing.F, format ToolFormat, seeds []string) {
	for _, c := range toolCases {
		if c.format == format {
			seeds = append(seeds, c.text)
		}
	}
	for i, s := range seeds {
		f.Add(s, []byte{byte(i), 3, 1, 7, 2, 5}, i%2 == 0, i%3 != 0)
	}
	f.Fuzz(func(t *testing.T, text string, cuts []byte, parallel, declared bool) {
		var names map[string]bool
		if declared {
			names = weatherNames
		}
		whole := runToolParser(format, names, parallel, []string{text})
		checkToolRun(t, format, names, parallel, text, whole)
		pieces := thoughtCuts(text, cuts)
		split := runToolParser(format, names, parallel, pieces)
		checkToolRun(t, format, names, parallel, text, split)
		got, want := mergeToolChunks(split.chunks), mergeToolChunks(whole.chunks)
		if !equalToolChunks(got, want) || !slices.Equal(split.calls, whole.calls) {
			t.Fatalf("pieces %q give\n%s\nwhole text gives\n%s", pieces, fmtToolChunks(got), fmtToolChunks(want))
		}
	})
}

func FuzzToolCallHermes(f *testing.F) {
	fuzzToolCalls(f, ToolFormatHermes, []string{
		"<tool_call>{\"name\":\"search\",\"arguments\":\"{}\"}</tool_call> <tool_call>{\"name\":\"search\"}</tool_call>",
		"x<tool_call><tool_call>{\"name\":\"get_weather\",\"arguments\":{\"a\":[1,{\"b\":\"\\u00e9\"}]}}</tool_call>",
		"<tool_call>{\"name\":\"search\",\"arguments\":{}}</tool_call></tool_call><tool_",
	})
}

func FuzzToolCallLlama3(f *testing.F) {
	fuzzToolCalls(f, ToolFormatLlama3, []string{
		" <|python_tag|> {\"name\":\"search\",\"parameters\":null};\n;{\"name\":\"search\"}",
		"{\"name\":\"get_weather\",\"parameters\":\"{\\\"city\\\":1}\"}\n\n<|python_tag|>{\"name\":\"search\"}",
		"<|python_ta",
	})
}

func FuzzToolCallMistral(f *testing.F) {
	fuzzToolCalls(f, ToolFormatMistral, []string{
		"[TOOL_CALLS][{\"name\":\"search\"},{\"name\":\"get_weather\",\"arguments\":null}] [TOOL_CALLS]search[ARGS] {}",
		"[[TOOL_CALLS][TOOL_CALLS]search[ARGS]{\"q\":[]}[TOOL_CALLS] [ ]",
		"[TOOL_CALLS]get_weather[AR",
	})
}

// FuzzToolJSONScanner checks the streaming JSON scanner against json.Valid
// on texts starting with "{" or "[", as the parser feeds it.
func FuzzToolJSONScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e+3,true,null,"\u00e9\n"]}`, `[{}]`, `{"a":01}`, `[1,]`, "[\"\xff\"] "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || s[0] != '{' && s[0] != '[' {
			return
		}
		if got, want := scanJSON(s), json.Valid([]byte(s)); got != want {
			t.Fatalf("scan %q = %v, json.Valid = %v", s, got, want)
		}
	})
}
