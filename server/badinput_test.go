package server_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/asi1d/asi1d/server"
)

// badInput is one named class of bad input: a request and the 4xx answer
// it must get. docs/BAD_INPUT.md lists the same classes.
type badInput struct {
	class  string
	method string // "" POST
	path   string // "" /v1/chat/completions
	hdr    []string
	body   string
	status int
	code   string // type follows from status
}

// bi builds a body: the valid minimal request with extra members merged
// after it (a later duplicate key wins).
func bi(extra string) string {
	b := `{"model":"asi1-mini","max_tokens":4,"messages":[{"role":"user","content":"hi"}]`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// cp is the text completions path; biC builds its body as bi does chat's.
const cp = "/v1/completions"

func biC(extra string) string {
	b := `{"model":"asi1-mini","max_tokens":4,"prompt":"hi"`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

func biMsgs(msgs string) string {
	return `{"model":"asi1-mini","max_tokens":4,"messages":` + msgs + `}`
}

const biTool = `{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}`

var badInputs = []badInput{
	// JSON
	{class: "json/empty-body", body: "", status: 400, code: "invalid_json"},
	{class: "json/not-json", body: "hello", status: 400, code: "invalid_json"},
	{class: "json/truncated", body: `{"model":"asi1-mini","messages":[`, status: 400, code: "invalid_json"},
	{class: "json/array-body", body: `[{"model":"asi1-mini"}]`, status: 400, code: "invalid_json"},
	{class: "json/string-body", body: `"hi"`, status: 400, code: "invalid_json"},
	{class: "json/null-body", body: `null`, status: 400, code: "invalid_json"},
	{class: "json/trailing-garbage", body: bi("") + "}", status: 400, code: "invalid_json"},
	{class: "json/deep-nesting", body: bi(`"metadata":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000)), status: 400, code: "invalid_json"},
	{class: "json/single-quotes", body: `{'model':'asi1-mini'}`, status: 400, code: "invalid_json"},
	// schema (types and required members)
	{class: "schema/model-missing", body: `{"messages":[{"role":"user","content":"hi"}]}`, status: 400, code: "missing_required_parameter"},
	{class: "schema/model-not-string", body: bi(`"model":5`), status: 400, code: "invalid_type"},
	{class: "schema/model-empty", body: bi(`"model":""`), status: 400, code: "invalid_value"},
	{class: "schema/model-unknown", body: bi(`"model":"gpt-9"`), status: 404, code: "model_not_found"},
	{class: "schema/messages-missing", body: `{"model":"asi1-mini"}`, status: 400, code: "missing_required_parameter"},
	{class: "schema/messages-not-array", body: biMsgs(`"hi"`), status: 400, code: "invalid_type"},
	{class: "schema/messages-empty", body: biMsgs(`[]`), status: 400, code: "invalid_value"},
	{class: "schema/message-not-object", body: biMsgs(`[1]`), status: 400, code: "invalid_type"},
	{class: "schema/stream-not-bool", body: bi(`"stream":"yes"`), status: 400, code: "invalid_type"},
	{class: "schema/stop-too-many", body: bi(`"stop":["a","b","c","d","e"]`), status: 400, code: "invalid_value"},
	{class: "schema/stop-empty-string", body: bi(`"stop":""`), status: 400, code: "invalid_value"},
	{class: "schema/stop-not-string", body: bi(`"stop":5`), status: 400, code: "invalid_type"},
	// ranges
	{class: "ranges/temperature-above-2", body: bi(`"temperature":3`), status: 400, code: "invalid_value"},
	{class: "ranges/temperature-negative", body: bi(`"temperature":-1`), status: 400, code: "invalid_value"},
	{class: "ranges/temperature-not-number", body: bi(`"temperature":"hot"`), status: 400, code: "invalid_type"},
	{class: "ranges/top-p-above-1", body: bi(`"top_p":1.5`), status: 400, code: "invalid_value"},
	{class: "ranges/max-tokens-zero", body: bi(`"max_tokens":0`), status: 400, code: "invalid_value"},
	{class: "ranges/max-tokens-fraction", body: bi(`"max_tokens":1.5`), status: 400, code: "invalid_type"},
	{class: "ranges/max-tokens-beyond-int64", body: bi(`"max_tokens":1e30`), status: 400, code: "invalid_value"},
	{class: "ranges/n-above-1", body: bi(`"n":2`), status: 400, code: "unsupported_value"},
	{class: "ranges/top-logprobs-above-20", body: bi(`"logprobs":true,"top_logprobs":21`), status: 400, code: "invalid_value"},
	{class: "ranges/top-logprobs-without-logprobs", body: bi(`"top_logprobs":2`), status: 400, code: "invalid_value"},
	{class: "ranges/logit-bias-above-100", body: bi(`"logit_bias":{"5":101}`), status: 400, code: "invalid_value"},
	{class: "ranges/logit-bias-bad-key", body: bi(`"logit_bias":{"x":1}`), status: 400, code: "invalid_value"},
	{class: "ranges/presence-penalty-above-2", body: bi(`"presence_penalty":3`), status: 400, code: "invalid_value"},
	// sizes
	{class: "sizes/body-over-limit", body: bi(`"user":"` + strings.Repeat("x", 20<<10) + `"`), status: 413, code: "request_too_large"},
	{class: "sizes/context-exceeded", body: biMsgs(`[{"role":"user","content":"` + strings.Repeat("a", 400) + `"}]`), status: 400, code: "context_length_exceeded"},
	{class: "sizes/session-id-too-long", hdr: []string{"x-session-id", strings.Repeat("s", 300)}, body: bi(""), status: 400, code: "invalid_value"},
	// encodings
	{class: "encodings/content-type-missing", hdr: []string{"Content-Type", ""}, body: bi(""), status: 400, code: "invalid_content_type"},
	{class: "encodings/content-type-text-plain", hdr: []string{"Content-Type", "text/plain"}, body: bi(""), status: 400, code: "invalid_content_type"},
	{class: "encodings/content-type-form", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, body: "model=asi1-mini", status: 400, code: "invalid_content_type"},
	// roles and messages
	{class: "roles/unknown-role", body: biMsgs(`[{"role":"wizard","content":"hi"}]`), status: 400, code: "invalid_value"},
	{class: "roles/role-missing", body: biMsgs(`[{"content":"hi"}]`), status: 400, code: "missing_required_parameter"},
	{class: "roles/role-not-string", body: biMsgs(`[{"role":5,"content":"hi"}]`), status: 400, code: "invalid_value"},
	{class: "roles/content-image-part", body: biMsgs(`[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]`), status: 400, code: "unsupported_value"},
	{class: "roles/content-part-text-not-string", body: biMsgs(`[{"role":"user","content":[{"type":"text","text":5}]}]`), status: 400, code: "invalid_type"},
	{class: "roles/content-not-string-or-array", body: biMsgs(`[{"role":"user","content":5}]`), status: 400, code: "invalid_type"},
	{class: "roles/tool-message-without-id", body: biMsgs(`[{"role":"user","content":"hi"},{"role":"tool","content":"x"}]`), status: 400, code: "missing_required_parameter"},
	// tools
	{class: "tools/not-array", body: bi(`"tools":{}`), status: 400, code: "invalid_type"},
	{class: "tools/type-not-function", body: bi(`"tools":[{"type":"x","function":{"name":"f"}}]`), status: 400, code: "invalid_value"},
	{class: "tools/bad-function-name", body: bi(`"tools":[{"type":"function","function":{"name":"a b"}}]`), status: 400, code: "invalid_value"},
	{class: "tools/duplicate-function-name", body: bi(`"tools":[` + biTool + `,` + biTool + `]`), status: 400, code: "invalid_value"},
	{class: "tools/required-without-tools", body: bi(`"tool_choice":"required"`), status: 400, code: "invalid_value"},
	{class: "tools/choice-unknown-function", body: bi(`"tools":[` + biTool + `],"tool_choice":{"type":"function","function":{"name":"g"}}`), status: 400, code: "invalid_value"},
	{class: "tools/choice-bad-string", body: bi(`"tool_choice":"maybe"`), status: 400, code: "invalid_value"},
	// response_format
	{class: "response_format/unknown-type", body: bi(`"response_format":{"type":"yaml"}`), status: 400, code: "invalid_value"},
	{class: "response_format/not-object", body: bi(`"response_format":"json"`), status: 400, code: "invalid_type"},
	{class: "response_format/json-schema-missing", body: bi(`"response_format":{"type":"json_schema"}`), status: 400, code: "missing_required_parameter"},
	{class: "response_format/schema-not-object", body: bi(`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":5}}`), status: 400, code: "invalid_type"},
	// /v1/responses (responses_decode.go)
	{class: "responses/input-missing", path: "/v1/responses", body: `{"model":"asi1-mini"}`, status: 400, code: "missing_required_parameter"},
	{class: "responses/input-empty-string", path: "/v1/responses", body: `{"model":"asi1-mini","input":""}`, status: 400, code: "invalid_value"},
	{class: "responses/input-empty-list", path: "/v1/responses", body: `{"model":"asi1-mini","input":[]}`, status: 400, code: "invalid_value"},
	{class: "responses/input-wrong-type", path: "/v1/responses", body: `{"model":"asi1-mini","input":5}`, status: 400, code: "invalid_type"},
	{class: "responses/item-unknown-type", path: "/v1/responses", body: `{"model":"asi1-mini","input":[{"type":"banana"}]}`, status: 400, code: "invalid_value"},
	{class: "responses/item-reference", path: "/v1/responses", body: `{"model":"asi1-mini","input":[{"type":"item_reference","id":"x"}]}`, status: 400, code: "unsupported_value"},
	{class: "responses/image-part", path: "/v1/responses", body: `{"model":"asi1-mini","input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x/y.png"}]}]}`, status: 400, code: "unsupported_value"},
	{class: "responses/call-output-without-call", path: "/v1/responses", body: `{"model":"asi1-mini","input":[{"type":"function_call_output","call_id":"call_x","output":"1"}]}`, status: 400, code: "invalid_value"},
	{class: "responses/previous-unknown", path: "/v1/responses", body: `{"model":"asi1-mini","input":"hi","previous_response_id":"resp_nope"}`, status: 400, code: "invalid_value"},
	{class: "responses/model-unknown", path: "/v1/responses", body: `{"model":"gpt-9","input":"hi"}`, status: 404, code: "model_not_found"},
	{class: "responses/context-exceeded", path: "/v1/responses", body: `{"model":"asi1-mini","input":"` + strings.Repeat("a", 400) + `"}`, status: 400, code: "context_length_exceeded"},
	{class: "responses/hosted-tool", path: "/v1/responses", body: `{"model":"asi1-mini","input":"hi","tools":[{"type":"web_search"}]}`, status: 400, code: "unsupported_value"},
	{class: "responses/text-format-unknown", path: "/v1/responses", body: `{"model":"asi1-mini","input":"hi","text":{"format":{"type":"yaml"}}}`, status: 400, code: "invalid_value"},
	{class: "responses/max-output-tokens-zero", path: "/v1/responses", body: `{"model":"asi1-mini","input":"hi","max_output_tokens":0}`, status: 400, code: "invalid_value"},
	{class: "responses/temperature-not-number", path: "/v1/responses", body: `{"model":"asi1-mini","input":"hi","temperature":"hot"}`, status: 400, code: "invalid_type"},
	{class: "responses/background", path: "/v1/responses", body: `{"model":"asi1-mini","input":"hi","background":true}`, status: 400, code: "unsupported_value"},
	// routes and methods
	{class: "headers/method-not-allowed", method: "GET", status: 405, code: "method_not_allowed"},
	{class: "headers/unknown-url", path: "/v1/chat/completion", body: bi(""), status: 404, code: "unknown_url"},
	// auth
	{class: "auth/missing", hdr: []string{"Authorization", ""}, body: bi(""), status: 401, code: "invalid_api_key"},
	{class: "auth/wrong-key", hdr: []string{"Authorization", "Bearer nope"}, body: bi(""), status: 401, code: "invalid_api_key"},
	{class: "auth/wrong-scheme", hdr: []string{"Authorization", "Basic k"}, body: bi(""), status: 401, code: "invalid_api_key"},
	{class: "auth/empty-token", hdr: []string{"Authorization", "Bearer "}, body: bi(""), status: 401, code: "invalid_api_key"},
	{class: "auth/key-with-space", hdr: []string{"Authorization", "Bearer k extra"}, body: bi(""), status: 401, code: "invalid_api_key"},
	// embeddings (POST /v1/embeddings)
	{class: "embeddings/input-missing", path: "/v1/embeddings", body: `{"model":"asi1-mini"}`, status: 400, code: "missing_required_parameter"},
	{class: "embeddings/input-wrong-type", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":{"text":"hi"}}`, status: 400, code: "invalid_type"},
	{class: "embeddings/input-empty-string", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":""}`, status: 400, code: "invalid_value"},
	{class: "embeddings/input-empty-array", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":[]}`, status: 400, code: "invalid_value"},
	{class: "embeddings/input-empty-string-in-list", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":["a",""]}`, status: 400, code: "invalid_value"},
	{class: "embeddings/input-mixed-types", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":["a",5]}`, status: 400, code: "invalid_type"},
	{class: "embeddings/input-token-not-integer", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":[1,2.5]}`, status: 400, code: "invalid_type"},
	{class: "embeddings/input-token-negative", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":[[1,-2]]}`, status: 400, code: "invalid_value"},
	{class: "embeddings/input-token-out-of-vocab", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":[1,99999]}`, status: 400, code: "invalid_value"},
	{class: "embeddings/input-empty-token-array", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":[[1],[]]}`, status: 400, code: "invalid_value"},
	{class: "embeddings/input-too-long", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":"` + strings.Repeat("a", 400) + `"}`, status: 400, code: "context_length_exceeded"},
	{class: "embeddings/encoding-format-unknown", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":"hi","encoding_format":"int8"}`, status: 400, code: "invalid_value"},
	{class: "embeddings/dimensions-zero", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":"hi","dimensions":0}`, status: 400, code: "invalid_value"},
	{class: "embeddings/dimensions-too-large", path: "/v1/embeddings", body: `{"model":"asi1-mini","input":"hi","dimensions":100000}`, status: 400, code: "invalid_value"},
	{class: "embeddings/model-unknown", path: "/v1/embeddings", body: `{"model":"gpt-9","input":"hi"}`, status: 404, code: "model_not_found"},
	{class: "embeddings/model-missing", path: "/v1/embeddings", body: `{"input":"hi"}`, status: 400, code: "missing_required_parameter"},
	{class: "embeddings/content-type-text-plain", path: "/v1/embeddings", hdr: []string{"Content-Type", "text/plain"}, body: `{"model":"asi1-mini","input":"hi"}`, status: 400, code: "invalid_content_type"},
	{class: "embeddings/auth-missing", path: "/v1/embeddings", hdr: []string{"Authorization", ""}, body: `{"model":"asi1-mini","input":"hi"}`, status: 401, code: "invalid_api_key"},
	// text completions (POST /v1/completions)
	{class: "completions/prompt-missing", path: cp, body: `{"model":"asi1-mini"}`, status: 400, code: "missing_required_parameter"},
	{class: "completions/prompt-not-string-or-array", path: cp, body: biC(`"prompt":5`), status: 400, code: "invalid_type"},
	{class: "completions/prompt-empty-string", path: cp, body: biC(`"prompt":""`), status: 400, code: "invalid_value"},
	{class: "completions/prompt-empty-array", path: cp, body: biC(`"prompt":[]`), status: 400, code: "invalid_value"},
	{class: "completions/prompt-mixed-array", path: cp, body: biC(`"prompt":["a",[1]]`), status: 400, code: "invalid_type"},
	{class: "completions/prompt-token-not-integer", path: cp, body: biC(`"prompt":[1,"a"]`), status: 400, code: "invalid_type"},
	{class: "completions/prompt-token-not-in-vocab", path: cp, body: biC(`"prompt":[1,99999]`), status: 400, code: "invalid_value"},
	{class: "completions/context-exceeded", path: cp, body: biC(`"prompt":"` + strings.Repeat("a", 400) + `"`), status: 400, code: "context_length_exceeded"},
	{class: "completions/model-unknown", path: cp, body: biC(`"model":"gpt-9"`), status: 404, code: "model_not_found"},
	{class: "completions/n-too-large", path: cp, body: biC(`"n":1000`), status: 400, code: "unsupported_value"},
	{class: "completions/best-of-not-n", path: cp, body: biC(`"best_of":3`), status: 400, code: "unsupported_value"},
	{class: "completions/logprobs-above-5", path: cp, body: biC(`"logprobs":6`), status: 400, code: "invalid_value"},
	{class: "completions/logprobs-bool", path: cp, body: biC(`"logprobs":true`), status: 400, code: "invalid_type"},
	{class: "completions/echo-with-logprobs", path: cp, body: biC(`"echo":true,"logprobs":1`), status: 400, code: "unsupported_value"},
	{class: "completions/suffix-without-fim", path: cp, body: biC(`"suffix":"}"`), status: 400, code: "unsupported_value"},
	{class: "completions/max-tokens-not-integer", path: cp, body: biC(`"max_tokens":"many"`), status: 400, code: "invalid_type"},
	// a browser page on an origin that is not allowed (cors.go)
	{class: "cors/origin-not-allowed", method: http.MethodOptions, hdr: []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, status: 403, code: "origin_not_allowed"},
}

// TestBadInputClasses sends every named class of bad input through the
// whole server over HTTP and checks the 4xx status, type and code in the
// contract's shape: never a 5xx. Each class is documented in
// docs/BAD_INPUT.md.
func TestBadInputClasses(t *testing.T) {
	e := ctStart(t, ctConfig{opts: server.Options{APIKeys: []string{"k"}, BodyLimit: 16 << 10}})
	doc, err := os.ReadFile("../docs/BAD_INPUT.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(badInputs) < 40 {
		t.Fatalf("%d classes, want at least 40", len(badInputs))
	}
	seen := map[string]bool{}
	for _, b := range badInputs {
		t.Run(b.class, func(t *testing.T) {
			if seen[b.class] {
				t.Fatal("duplicate class")
			}
			seen[b.class] = true
			if !strings.Contains(string(doc), "| `"+b.class+"` |") {
				t.Errorf("docs/BAD_INPUT.md has no row for %s", b.class)
			}
			method, path := b.method, b.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/chat/completions"
			}
			hdr := append([]string{"Authorization", "Bearer k"}, b.hdr...)
			r := e.do(method, path, b.body, hdr...)
			if r.status >= 500 {
				t.Fatalf("5xx: %d %s", r.status, r.body)
			}
			wantType := "invalid_request_error"
			switch b.status {
			case 401:
				wantType = "authentication_error"
			case 403:
				wantType = "permission_error"
			}
			e := ctObj(t, r.body)["error"].(map[string]any)
			if r.status != b.status || e["type"] != wantType || e["code"] != b.code {
				t.Fatalf("got %d %v/%v, want %d %s/%s: %s", r.status, e["type"], e["code"], b.status, wantType, b.code, r.body)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Fatal("empty message")
			}
		})
	}
	if st := e.sched.Stats(); st.Running != 0 || st.Waiting != 0 {
		t.Fatalf("bad input left work in the scheduler: %+v", st)
	}
}
