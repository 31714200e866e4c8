package models

import (
	"strings"
	"testing"
)

// cutRun parses pieces and ends with Cut.
func cutRun(f ToolFormat, pieces []string) ([]ToolChunk, []ToolCall) {
	p := NewToolCallParser(f, weatherNames, true, seqToolIDs())
	var out []ToolChunk
	for _, s := range pieces {
		out = append(out, p.Push(s)...)
	}
	out = append(out, p.Cut()...)
	return mergeToolChunks(out), p.Calls()
}

// Every prefix of an answer that makes a call, ended by Cut as max_tokens
// ends it: before the marker is complete the prefix is content as it
// stands; from the complete marker until the call completes, only the text
// before the call is content and nothing is a call; once the call is
// complete it is a call. The result is the same however the prefix is
// split into pushes.
func TestToolCallParserCut(t *testing.T) {
	for _, c := range []struct {
		f      ToolFormat
		before string // content before the call
		marker string // the text that starts the region
		call   string // the region, marker included
		name   string
		args   string
	}{
		{ToolFormatHermes, "Sure. ", "<tool_call>", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris <tool_call>\"}}\n</tool_call>", "get_weather", `{"city":"Paris <tool_call>"}`},
		{ToolFormatLlama3, "", "{", `{"name": "get_weather", "parameters": {"city": "Paris"}}`, "get_weather", `{"city":"Paris"}`},
		{ToolFormatLlama3, "", "<|python_tag|>", `<|python_tag|>{"name": "search", "parameters": {"q": "x"}}`, "search", `{"q":"x"}`},
		{ToolFormatMistral, "Sure. ", "[TOOL_CALLS]", `[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]`, "get_weather", `{"city":"Paris"}`},
		{ToolFormatMistral, "Sure. ", "[TOOL_CALLS]", `[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}`, "get_weather", `{"city":"Paris"}`},
	} {
		full := c.before + c.call
		markerEnd := len(c.before) + len(c.marker)
		for n := 0; n <= len(full); n++ {
			prefix := full[:n]
			var want []ToolChunk
			switch {
			case n < markerEnd:
				if prefix != "" {
					want = []ToolChunk{tContent(prefix)}
				}
			case n < len(full):
				if c.before != "" {
					want = []ToolChunk{tContent(c.before)}
				}
			default:
				if c.before != "" {
					want = []ToolChunk{tContent(c.before)}
				}
				want = append(want, tCall(0, c.name, c.args))
			}
			splits := [][]string{{prefix}, strings.Split(prefix, "")}
			for _, pieces := range splits {
				got, calls := cutRun(c.f, pieces)
				if !equalToolChunks(got, want) {
					t.Fatalf("%s: Cut after %q (%d pieces):\n got %s\nwant %s", c.f, prefix, len(pieces), fmtToolChunks(got), fmtToolChunks(want))
				}
				if (len(calls) == 1) != (n == len(full)) {
					t.Fatalf("%s: Cut after %q: calls %v", c.f, prefix, calls)
				}
			}
		}
	}
}

// Cut differs from Flush only for a region unfinished at the end: a call
// that already failed is content either way, and so is text after calls.
func TestToolCallParserCutKeepsFailedAndComplete(t *testing.T) {
	for _, text := range []string{
		`<tool_call>{"name": "nope", "arguments": {}}</tool_call> and more`, // unknown name: failed, content
		`<tool_call>{"name": "search", "arguments": {}}</tool_call> after`,  // a call, then content
		`text [TOOL_CALLS`, // a partial marker: content
	} {
		f := ToolFormatHermes
		if strings.Contains(text, "TOOL_CALLS") {
			f = ToolFormatMistral
		}
		flushed := runToolParser(f, weatherNames, true, []string{text})
		got, calls := cutRun(f, []string{text})
		if !equalToolChunks(got, mergeToolChunks(flushed.chunks)) || len(calls) != len(flushed.calls) {
			t.Errorf("%q: Cut gives %s, Flush %s", text, fmtToolChunks(got), fmtToolChunks(mergeToolChunks(flushed.chunks)))
		}
	}
}

func TestToolFormatMarkers(t *testing.T) {
	for f, want := range map[ToolFormat]string{
		ToolFormatNone: "", ToolFormatHermes: "<tool_call> </tool_call>",
		ToolFormatLlama3: "<|python_tag|>", ToolFormatMistral: "[TOOL_CALLS] [ARGS]",
	} {
		if got := strings.Join(f.Markers(), " "); got != want {
			t.Errorf("%s: markers %q, want %q", f, got, want)
		}
	}
}
