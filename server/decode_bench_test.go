package server

import (
	"strings"
	"testing"
)

// Benchmarks of request decoding: a typical body of each endpoint, and a
// chat body with a long conversation and tools (the per-message and
// per-tool rules).

var benchChatBody = []byte(`{"model":"asi1-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, how are you?"}],"temperature":0.7,"top_p":0.9,"stream":true,"stream_options":{"include_usage":true},"max_tokens":1024,"stop":["\n\n"],"seed":42}`)

var benchChatToolsBody = func() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"asi1-mini","messages":[{"role":"system","content":"sys"}`)
	for i := 0; i < 16; i++ {
		b.WriteString(`,{"role":"user","content":[{"type":"text","text":"what is the weather?"}]}`)
		b.WriteString(`,{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}`)
		b.WriteString(`,{"role":"tool","tool_call_id":"call_1","content":"sunny"}`)
	}
	b.WriteString(`],"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},{"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}],"tool_choice":"auto","response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},"logit_bias":{"50256":-100},"logprobs":true,"top_logprobs":3}`)
	return []byte(b.String())
}()

var benchResponsesBody = []byte(`{"model":"asi1-mini","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"auto","text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"}}},"metadata":{"k":"v"},"max_output_tokens":256,"temperature":0.5}`)

var benchCompletionBody = []byte(`{"model":"asi1-mini","prompt":["Once upon a time","In a land far away"],"max_tokens":64,"temperature":0.8,"stop":["\n"],"n":2,"logprobs":2,"suffix":"","user":"u"}`)

var benchEmbeddingsBody = []byte(`{"model":"asi1-mini","input":["the quick brown fox","jumps over the lazy dog"],"encoding_format":"float","dimensions":64,"user":"u"}`)

func BenchmarkDecodeChatRequest(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{{"typical", benchChatBody}, {"tools", benchChatToolsBody}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for i := 0; i < b.N; i++ {
				if _, aerr := DecodeChatRequest(c.body); aerr != nil {
					b.Fatal(aerr)
				}
			}
		})
	}
}

func BenchmarkDecodeResponsesRequest(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, aerr := decodeResponsesRequest(benchResponsesBody); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

func BenchmarkDecodeCompletionRequest(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, aerr := DecodeCompletionRequest(benchCompletionBody); aerr != nil {
			b.Fatal(aerr)
		}
	}
}

func BenchmarkDecodeEmbeddingsRequest(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, aerr := DecodeEmbeddingsRequest(benchEmbeddingsBody); aerr != nil {
			b.Fatal(aerr)
		}
	}
}
