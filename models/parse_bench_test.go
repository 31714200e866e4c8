package models

import (
	"strings"
	"testing"
)

// Benchmarks of the JSON parsing behind tool calls and templates. Run with
//
//	go test -run '^$' -bench 'ToolCall|DecodeJSON' -benchmem ./models/

// tokenPieces cuts s into pieces of n bytes, as a model streams tokens.
func tokenPieces(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func benchToolParse(b *testing.B, f ToolFormat, answer string, wantCalls int) {
	pieces := tokenPieces(answer, 4)
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		p := NewToolCallParser(f, weatherNames, true, func() string { return "call_1" })
		for _, s := range pieces {
			p.Push(s)
		}
		p.Flush()
		if n := len(p.Calls()); n != wantCalls {
			b.Fatalf("%d calls, want %d", n, wantCalls)
		}
	}
}

// A typical Qwen 2.5/3 answer: some text, then one call with small
// arguments, streamed 4 bytes a token.
func BenchmarkToolCallHermesTypical(b *testing.B) {
	benchToolParse(b, ToolFormatHermes,
		"I'll check the weather for you.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\", \"days\": 3}}\n</tool_call>", 1)
}

// A call whose arguments carry 4 KB of text (a file to write, a long
// query), streamed 4 bytes a token: the JSON is re-checked as it grows.
func BenchmarkToolCallHermesLongArgs(b *testing.B) {
	long := strings.Repeat(`line of generated code with \"quotes\" and \\n escapes; `, 72)
	benchToolParse(b, ToolFormatHermes,
		"<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \""+long+"\", \"limit\": 10}}\n</tool_call>", 1)
}

// Llama 3.1: two calls separated by ";".
func BenchmarkToolCallLlama3Typical(b *testing.B) {
	benchToolParse(b, ToolFormatLlama3,
		"<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}; {\"name\": \"search\", \"parameters\": {\"query\": \"events in Paris this weekend\"}}", 2)
}

// Mistral v0.3: an array of two calls.
func BenchmarkToolCallMistralArray(b *testing.B) {
	benchToolParse(b, ToolFormatMistral,
		"[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"search\", \"arguments\": {\"query\": \"Paris museums\", \"limit\": 5}}]", 2)
}

// Decoding the tools of a request (and call arguments) into template
// values, keeping key order.
func BenchmarkDecodeJSON(b *testing.B) {
	tools := benchQwenInput().Tools
	var size int64
	for _, t := range tools {
		size += int64(len(t))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, t := range tools {
			if _, err := decodeJSON(t); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// A call whose arguments carry 32 KB of text: the streaming scanner stays
// linear (re-decoding the value at each Push, as a Decoder would have to,
// took 640x as long here).
func BenchmarkToolCallHermes32KArgs(b *testing.B) {
	long := strings.Repeat(`line of generated code with \"quotes\" and \\n escapes; `, 576)
	benchToolParse(b, ToolFormatHermes,
		"<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \""+long+"\", \"limit\": 10}}\n</tool_call>", 1)
}
