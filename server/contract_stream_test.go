package server_test

// Contract sections 6 (generation rules), 7 (streaming) and 10 (limits and
// concurrency), plus logprobs, against the real server over HTTP with the
// fake backend. Harness in contract_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
)

// ctStream is a parsed event stream.
type ctStream struct {
	raw       []string         // data payloads, [DONE] excluded
	chunks    []map[string]any // decoded payloads (numbers as json.Number)
	comments  int
	content   string
	reasoning string
	finish    string
}

// ctParseSSE checks the framing of section 7 strictly: the body is a
// sequence of blocks "X\n\n" where X is one line, either a comment (":...")
// or "data: <compact JSON>", the last one "data: [DONE]"; no event:, id:,
// retry: fields, no CR.
func ctParseSSE(t *testing.T, body []byte) ctStream {
	t.Helper()
	var s ctStream
	if bytes.ContainsRune(body, '\r') {
		t.Fatalf("CR in the stream")
	}
	if !bytes.HasSuffix(body, []byte("data: [DONE]\n\n")) {
		t.Fatalf("stream does not end with data: [DONE]: ...%q", ctTail(body, 200))
	}
	blocks := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	for i, b := range blocks {
		if strings.Contains(b, "\n") || b == "" {
			t.Fatalf("event %d is not one line: %q", i, b)
		}
		if strings.HasPrefix(b, ":") {
			s.comments++
			continue
		}
		data, ok := strings.CutPrefix(b, "data: ")
		if !ok {
			t.Fatalf("event %d is not a data line: %q", i, b)
		}
		if data == "[DONE]" {
			if i != len(blocks)-1 {
				t.Fatalf("[DONE] is not last")
			}
			break
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(data)); err != nil || compact.String() != data {
			t.Fatalf("event %d is not compact JSON (%v): %q", i, err, data)
		}
		s.raw = append(s.raw, data)
		ch := ctObj(t, []byte(data))
		s.chunks = append(s.chunks, ch)
		if cs, _ := ch["choices"].([]any); len(cs) > 0 {
			c0 := cs[0].(map[string]any)
			d, _ := c0["delta"].(map[string]any)
			if v, ok := d["content"].(string); ok {
				s.content += v
			}
			if v, ok := d["reasoning_content"].(string); ok {
				s.reasoning += v
			}
			if f, ok := c0["finish_reason"].(string); ok {
				s.finish = f
			}
		}
	}
	return s
}

func ctTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// ---------------------------------------------------------------------------
// Section 6: generation rules

func TestContract6Greedy(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 4})
	req := ctBody("Once upon a time", map[string]any{"max_tokens": 48})
	ref := e.complete(req).content()
	if len(ref) != 48 {
		t.Fatalf("reference %q", ref)
	}
	if got := e.complete(req).content(); got != ref {
		t.Fatalf("second run %q, want %q", got, ref)
	}
	// The same answer while the server is busy with other work, streamed
	// or not.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				if got := e.complete(req).content(); got != ref {
					errs <- fmt.Errorf("busy, non-streamed: %q", got)
				}
			case 1:
				s := ctParseSSE(t, e.chat(ctBody("Once upon a time", map[string]any{"max_tokens": 48, "stream": true})).body)
				if s.content != ref {
					errs <- fmt.Errorf("busy, streamed: %q", s.content)
				}
			default:
				e.complete(ctBody(fmt.Sprintf("other %d", i), map[string]any{"max_tokens": 30 + i, "temperature": 1}))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestContract6Seed(t *testing.T) {
	// The fake puts its peak on token 2 (no text); a -100 bias on it leaves
	// a nearly flat distribution over the vocabulary, so sampling matters.
	e := ctStart(t, ctConfig{next: func([]engine.Token) engine.Token { return 2 }})
	run := func(seed any) string {
		return e.complete(ctBody("s", map[string]any{"temperature": 1, "max_tokens": 24, "seed": seed,
			"logit_bias": map[string]any{"2": -100}})).content()
	}
	a, b := run(42), run(42)
	if a != b || a == "" {
		t.Fatalf("same seed: %q vs %q", a, b)
	}
	if c := run(43); c == a {
		t.Errorf("seeds 42 and 43 gave the same %q", c)
	}
	if x, y := run(nil), run(nil); x == y {
		t.Errorf("two unseeded requests gave the same %q", x)
	}
	// Negative and huge seeds are fine.
	if run(int64(-1)) != run(int64(-1)) || run(int64(1)<<62) != run(int64(1)<<62) {
		t.Error("extreme seeds not reproducible")
	}
}

func TestContract6Stop(t *testing.T) {
	const prompt = "tell"
	const script = "The ENd of the END is near. STOP here"
	e := ctStart(t, ctConfig{next: ctScript(prompt, script), stepDelay: time.Millisecond})
	for _, c := range []struct {
		stop any
		want string
	}{
		{"END", "The ENd of the "},
		{[]any{"near", "END"}, "The ENd of the "},
		{[]any{"is", "of the END"}, "The ENd "},
		{"STOP", "The ENd of the END is near. "},
		{"The", ""},
		{"nowhere", script},
		{[]any{"e E", "zz"}, "Th"},
	} {
		body := ctBody(prompt, map[string]any{"max_tokens": 100, "stop": c.stop})
		got := e.complete(body)
		if got.content() != c.want || got.Choices[0].FinishReason != "stop" {
			t.Errorf("stop %v: %q (%s), want %q", c.stop, got.content(), got.Choices[0].FinishReason, c.want)
		}
		body["stream"] = true
		s := ctParseSSE(t, e.chat(body).body)
		if s.content != c.want || s.finish != "stop" {
			t.Errorf("stop %v streamed: %q (%s), want %q", c.stop, s.content, s.finish, c.want)
		}
		stops := []string{}
		switch v := c.stop.(type) {
		case string:
			stops = append(stops, v)
		case []any:
			for _, x := range v {
				stops = append(stops, x.(string))
			}
		}
		for _, ch := range s.chunks {
			d := ctDelta(ch)
			for _, st := range stops {
				if v, _ := d["content"].(string); strings.Contains(v, st) {
					t.Errorf("stop %q emitted in chunk %q", st, v)
				}
			}
		}
	}
	// Streamed one token per event, so the stop string spans several
	// steps: nothing of it may leak before the match is known.
	s := ctParseSSE(t, e.chat(ctBody(prompt, map[string]any{"max_tokens": 100, "stop": "END", "stream": true})).body)
	if n := ctCountContent(s); n < 3 {
		t.Errorf("only %d content chunks; the test wants the stop string split across chunks", n)
	}
}

func ctDelta(ch map[string]any) map[string]any {
	cs, _ := ch["choices"].([]any)
	if len(cs) == 0 {
		return nil
	}
	d, _ := cs[0].(map[string]any)["delta"].(map[string]any)
	return d
}

func ctCountContent(s ctStream) int {
	n := 0
	for _, ch := range s.chunks {
		if _, ok := ctDelta(ch)["content"].(string); ok {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// Section 7: streaming

func TestContract7Stream(t *testing.T) {
	e := ctStart(t, ctConfig{stepDelay: 200 * time.Microsecond})
	for _, usage := range []bool{false, true} {
		t.Run(fmt.Sprintf("include_usage=%v", usage), func(t *testing.T) {
			body := ctBody("Once upon", map[string]any{"max_tokens": 20, "stream": true})
			if usage {
				body["stream_options"] = map[string]any{"include_usage": true}
			}
			r := e.chat(body)
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
			if err != nil || mt != "text/event-stream" {
				t.Errorf("content-type %q", r.header.Get("Content-Type"))
			}
			if r.header.Get("Cache-Control") != "no-cache" {
				t.Errorf("cache-control %q", r.header.Get("Cache-Control"))
			}
			if r.header.Get("X-Accel-Buffering") != "no" {
				t.Errorf("x-accel-buffering %q", r.header.Get("X-Accel-Buffering"))
			}
			s := ctParseSSE(t, r.body)
			ctCheckStream(t, s, r.header.Get("x-request-id"), "asi1-mini", usage)
			if s.comments != 0 {
				t.Errorf("%d comments in an unqueued stream", s.comments)
			}
			// Streamed content equals the non-streamed content.
			delete(body, "stream")
			delete(body, "stream_options")
			c := e.complete(body)
			if s.content != c.content() || s.finish != c.Choices[0].FinishReason {
				t.Errorf("streamed %q (%s), non-streamed %q (%s)", s.content, s.finish, c.content(), c.Choices[0].FinishReason)
			}
			if usage {
				u := s.chunks[len(s.chunks)-1]["usage"].(map[string]any)
				pt, ct, tt := ctInt(t, "prompt", u["prompt_tokens"]), ctInt(t, "completion", u["completion_tokens"]), ctInt(t, "total", u["total_tokens"])
				if int(pt) != c.Usage.PromptTokens || int(ct) != c.Usage.CompletionTokens || tt != pt+ct {
					t.Errorf("usage chunk %v, non-streamed %+v", u, c.Usage)
				}
			}
		})
	}
	t.Run("finish_reason stop", func(t *testing.T) {
		e := ctStart(t, ctConfig{next: ctScript("hi", "Hey there.")})
		s := ctParseSSE(t, e.chat(ctBody("hi", map[string]any{"stream": true})).body)
		if s.content != "Hey there." || s.finish != "stop" {
			t.Errorf("content %q finish %q", s.content, s.finish)
		}
	})
}

// ctCheckStream checks the order and shape of a stream's chunks.
func ctCheckStream(t *testing.T, s ctStream, reqID, model string, usage bool) {
	t.Helper()
	if len(s.chunks) < 3 {
		t.Fatalf("%d chunks", len(s.chunks))
	}
	id, _ := s.chunks[0]["id"].(string)
	if !ctIDRe.MatchString(id) || id != reqID {
		t.Errorf("id %q, x-request-id %q", id, reqID)
	}
	created := ctInt(t, "created", s.chunks[0]["created"])
	finishes := 0
	last := len(s.chunks) - 1
	for i, ch := range s.chunks {
		if ch["id"] != id || ctInt(t, "created", ch["created"]) != created {
			t.Errorf("chunk %d: id %v created %v differ from the first", i, ch["id"], ch["created"])
		}
		if ch["object"] != "chat.completion.chunk" || ch["model"] != model {
			t.Errorf("chunk %d: object %v model %v", i, ch["object"], ch["model"])
		}
		u, hasUsage := ch["usage"]
		isUsage := usage && i == last
		switch {
		case isUsage:
			if cs, ok := ch["choices"].([]any); !ok || len(cs) != 0 {
				t.Errorf("usage chunk choices %#v, want []", ch["choices"])
			}
			if _, ok := u.(map[string]any); !ok {
				t.Errorf("usage chunk usage %#v", u)
			}
			continue
		case usage:
			if !hasUsage || u != nil {
				t.Errorf("chunk %d: usage %#v (present %v), want null", i, u, hasUsage)
			}
		}
		cs, _ := ch["choices"].([]any)
		if len(cs) != 1 {
			t.Fatalf("chunk %d: %d choices: %s", i, len(cs), s.raw[i])
		}
		c0 := cs[0].(map[string]any)
		if ctInt(t, "index", c0["index"]) != 0 {
			t.Errorf("chunk %d: index %v", i, c0["index"])
		}
		if v, ok := c0["logprobs"]; !ok || v != nil {
			t.Errorf("chunk %d: logprobs %#v, want null", i, v)
		}
		d, _ := c0["delta"].(map[string]any)
		fr, hasFR := c0["finish_reason"]
		if !hasFR {
			t.Errorf("chunk %d lacks finish_reason", i)
		}
		switch {
		case i == 0:
			if !reflect.DeepEqual(d, map[string]any{"role": "assistant", "content": ""}) || fr != nil {
				t.Errorf("role chunk: %s", s.raw[0])
			}
			if ea, ok := ch["executable_data"].([]any); !ok || len(ea) != 0 {
				t.Errorf("role chunk executable_data %#v", ch["executable_data"])
			}
			if tt, ok := ch["tool_thought"].([]any); !ok || len(tt) != 0 {
				t.Errorf("role chunk tool_thought %#v", ch["tool_thought"])
			}
			if v, ok := ch["conversation_id"]; !ok || v != nil {
				t.Errorf("role chunk conversation_id %#v (present %v)", v, ok)
			}
		case fr != nil:
			finishes++
			if len(d) != 0 || (fr != "stop" && fr != "length") {
				t.Errorf("finish chunk: %s", s.raw[i])
			}
			if want := last; usage && i != last-1 || !usage && i != want {
				t.Errorf("finish chunk at %d of %d", i, len(s.chunks))
			}
		default:
			if _, ok := d["role"]; ok {
				t.Errorf("chunk %d repeats the role: %s", i, s.raw[i])
			}
			c, ok := d["content"].(string)
			if len(d) != 1 || !ok || c == "" {
				t.Errorf("content chunk %d: %s", i, s.raw[i])
			}
		}
	}
	if finishes != 1 {
		t.Errorf("%d finish chunks", finishes)
	}
}

// An error after the 200 was sent is an in-stream error event in the
// contract's shape, then [DONE]; before any byte it is a plain JSON error.
func TestContract7ErrorAfterStart(t *testing.T) {
	var decodes atomic.Int64
	roleRead := make(chan struct{})
	e := ctStart(t, ctConfig{parallel: 1, failDecode: func([]engine.BatchEntry) error {
		if n := decodes.Add(1); n >= 5 {
			if n == 5 { // fail only once the client holds the role chunk
				select {
				case <-roleRead:
				case <-time.After(5 * time.Second):
				}
			}
			return errors.New("fake: device lost")
		}
		return nil
	}})
	b, _ := json.Marshal(ctBody("hi", map[string]any{"max_tokens": 50, "stream": true}))
	resp, err := http.Post(e.url+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	first, err := rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	close(roleRead)
	rest, _ := io.ReadAll(rd)
	s := ctParseSSE(t, append([]byte(first), rest...))
	if len(s.chunks) < 2 || ctDelta(s.chunks[0])["role"] != "assistant" {
		t.Fatalf("stream %q", s.raw)
	}
	last := s.chunks[len(s.chunks)-1]
	ctError(t, ctResp{status: 500, header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"x"}}, body: []byte(s.raw[len(s.raw)-1])},
		500, "server_error", "internal_error", nil)
	if _, ok := last["choices"]; ok {
		t.Errorf("error event carries choices: %s", s.raw[len(s.raw)-1])
	}
	if len(s.content) > 4 {
		t.Errorf("content %q after 4 good decodes", s.content)
	}
	for _, ch := range s.chunks[:len(s.chunks)-1] {
		if cs, _ := ch["choices"].([]any); len(cs) == 1 && cs[0].(map[string]any)["finish_reason"] != nil {
			t.Errorf("a finish chunk before the error event")
		}
	}
	// Non-streamed, the failure is a plain 500 (a server fault, not the
	// client's).
	ctError(t, e.chat(ctBody("hi", map[string]any{"max_tokens": 50})), 500, "server_error", "internal_error", nil)
}

// Queued streams get keep-alive comments and their role chunk only when
// decoding starts.
func TestContract7KeepAliveWhileQueued(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 1, stepDelay: 3 * time.Millisecond, opts: server.Options{KeepAlive: 20 * time.Millisecond}})
	first := make(chan ctCompletion, 1)
	go func() { first <- e.complete(ctBody("first", map[string]any{"max_tokens": 60})) }()
	ctWait(t, "the first request running", func() bool { return e.sched.Stats().Running == 1 })

	b, _ := json.Marshal(ctBody("second", map[string]any{"max_tokens": 5, "stream": true}))
	resp, err := http.Post(e.url+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != 200 || mt != "text/event-stream" {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(resp.Body)
	keepAlives, waitingSeen := 0, false
	var rest bytes.Buffer
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended early: %v", err)
		}
		if strings.HasPrefix(line, ":") {
			keepAlives++
			if e.sched.Stats().Waiting == 1 {
				waitingSeen = true
			}
			continue
		}
		if line == "\n" {
			continue
		}
		// The first data line: the role chunk, sent once the request left
		// the queue, so the first request has finished generating.
		if !strings.Contains(line, `"delta":{"role":"assistant","content":""}`) {
			t.Fatalf("first event is not the role chunk: %q", line)
		}
		if e.sched.Stats().Finished[scheduler.FinishLength] < 1 {
			t.Errorf("role chunk sent before the first request finished")
		}
		rest.WriteString(line)
		break
	}
	if keepAlives < 2 || !waitingSeen {
		t.Errorf("%d keep-alives while queued (waiting seen %v), want at least 2 with KeepAlive 20ms", keepAlives, waitingSeen)
	}
	io.Copy(&rest, rd)
	s := ctParseSSE(t, rest.Bytes())
	if len([]rune(s.content)) != 5 || s.finish != "length" {
		t.Errorf("queued stream: %q %s", s.content, s.finish)
	}
	if c := <-first; len(c.content()) != 60 {
		t.Errorf("first: %q", c.content())
	}
}

// ---------------------------------------------------------------------------
// Logprobs (section 3.2 and 5)

func TestContractLogprobs(t *testing.T) {
	const prompt = "lp"
	e := ctStart(t, ctConfig{next: ctScript(prompt, "abc ENd. END"), stepDelay: time.Millisecond})
	t.Run("non-streamed", func(t *testing.T) {
		for _, top := range []any{nil, 0, 3, 20} {
			c := e.complete(ctBody(prompt, map[string]any{"max_tokens": 6, "logprobs": true, "top_logprobs": top}))
			lp := c.Choices[0].Logprobs
			if lp == nil || len(lp.Content) != c.Usage.CompletionTokens {
				t.Fatalf("top %v: logprobs %+v for %d tokens", top, lp, c.Usage.CompletionTokens)
			}
			var text strings.Builder
			n, _ := top.(int)
			for _, x := range lp.Content {
				text.WriteString(x.Token)
				if x.Logprob > 0 || !reflect.DeepEqual(x.Bytes, ctBytes(x.Token)) || len(x.TopLogprobs) != n {
					t.Errorf("top %v: entry %+v", top, x)
				}
				for _, a := range x.TopLogprobs {
					if a.Logprob > 0 || !reflect.DeepEqual(a.Bytes, ctBytes(a.Token)) {
						t.Errorf("alternative %+v", a)
					}
				}
				if n > 0 && x.TopLogprobs[0].Token != x.Token {
					t.Errorf("greedy token %q is not the top alternative %q", x.Token, x.TopLogprobs[0].Token)
				}
			}
			if text.String() != c.content() {
				t.Errorf("logprob tokens %q, content %q", text.String(), c.content())
			}
		}
		// Raw shape: "top_logprobs" is present (an array) even when empty.
		r := e.chat(ctBody(prompt, map[string]any{"max_tokens": 2, "logprobs": true}))
		if !strings.Contains(string(r.body), `"top_logprobs":[]`) {
			t.Errorf("no empty top_logprobs array: %s", r.body)
		}
	})
	t.Run("streamed", func(t *testing.T) {
		for _, stop := range []any{nil, "END"} {
			body := ctBody(prompt, map[string]any{"max_tokens": 100, "logprobs": true, "top_logprobs": 2, "stop": stop})
			want := e.complete(body)
			body["stream"] = true
			s := ctParseSSE(t, e.chat(body).body)
			var got []ctLogprob
			for i, ch := range s.chunks {
				cs, _ := ch["choices"].([]any)
				if len(cs) == 0 {
					continue
				}
				lp := cs[0].(map[string]any)["logprobs"]
				if lp == nil {
					continue
				}
				obj := lp.(map[string]any)
				for k := range obj {
					if k != "content" && k != "refusal" {
						t.Errorf("chunk %d: logprobs key %q", i, k)
					}
				}
				var part struct{ Content []ctLogprob }
				b, _ := json.Marshal(obj)
				if err := json.Unmarshal(b, &part); err != nil {
					t.Fatal(err)
				}
				got = append(got, part.Content...)
			}
			if s.content != want.content() {
				t.Errorf("stop %v: streamed %q, non-streamed %q", stop, s.content, want.content())
			}
			var gt, wt []string
			for _, x := range got {
				gt = append(gt, x.Token)
			}
			for _, x := range want.Choices[0].Logprobs.Content {
				wt = append(wt, x.Token)
			}
			if !reflect.DeepEqual(gt, wt) {
				t.Errorf("stop %v: streamed logprob tokens %q, non-streamed %q", stop, gt, wt)
			}
		}
	})
}

func ctBytes(s string) []int {
	out := []int{}
	for _, b := range []byte(s) {
		out = append(out, int(b))
	}
	return out
}

// ---------------------------------------------------------------------------
// Section 10: limits and concurrency

func TestContract10QueueFull(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 1, maxQueue: 1, stepDelay: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []string{"running", "queued"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(ctBody(p, map[string]any{"max_tokens": 200}))
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/chat/completions", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		ctWait(t, p, func() bool {
			st := e.sched.Stats()
			return st.Running == 1 && (p == "running" || st.Waiting == 1)
		})
	}
	for _, stream := range []bool{false, true} {
		r := e.chat(ctBody("third", map[string]any{"max_tokens": 5, "stream": stream}))
		ctError(t, r, 503, "server_error", "server_overloaded", nil)
		if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	cancel()
	wg.Wait()
	ctWait(t, "the slot and queue free", func() bool { st := e.sched.Stats(); return st.Running == 0 && st.Waiting == 0 })
	if c := e.complete(ctBody("after", map[string]any{"max_tokens": 3})); len(c.content()) != 3 {
		t.Errorf("after the overload: %q", c.content())
	}
}

func TestContract10Simultaneous(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	start := make(chan struct{})
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := ctBody(fmt.Sprintf("request %d", i), map[string]any{"max_tokens": 8, "stream": i%2 == 0})
			b, _ := json.Marshal(body)
			resp, err := http.Post(e.url+"/v1/chat/completions", "application/json", bytes.NewReader(b))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			rb, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("request %d: %d %s", i, resp.StatusCode, rb)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A client that leaves mid-stream: the scheduler stops generating within
// one step, frees the slot, counts it cancelled; the request is recorded
// as 499 and the next request is served normally.
func TestContract10ClientDisconnect(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 1, ctx: 512, stepDelay: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, _ := json.Marshal(ctBody("long", map[string]any{"stream": true}))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	for n := 0; n < 4; { // the role chunk and three content chunks
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			n++
		}
	}
	before := e.sched.Stats()
	cancel()
	resp.Body.Close()
	ctWait(t, "the sequence cancelled", func() bool {
		st := e.sched.Stats()
		return st.Finished[scheduler.FinishCancelled] == before.Finished[scheduler.FinishCancelled]+1 && st.Running == 0
	})
	after := e.sched.Stats()
	// The client's disconnect takes a moment to reach the server; allow the
	// step in flight and one more.
	if d := after.GeneratedTokens - before.GeneratedTokens; d > 3 {
		t.Errorf("%d tokens generated after the client left", d)
	}
	if after.Waiting != 0 {
		t.Errorf("waiting %d", after.Waiting)
	}
	ctWait(t, "the 499 recorded", func() bool {
		return ctValue(ctGather(t, e.reg), `asi1_requests_total{endpoint="/v1/chat/completions",model="asi1-mini",status="499"}`) == 1
	})
	if c := e.complete(ctBody("next", map[string]any{"max_tokens": 5})); len(c.content()) != 5 || c.Choices[0].FinishReason != "length" {
		t.Errorf("next request: %q", c.content())
	}
	if v := ctValue(ctGather(t, e.reg), "asi1_requests_in_flight"); v != 0 {
		t.Errorf("in flight %v", v)
	}
}

// The same, deterministically: the client leaves while the handler is busy
// writing, so the scheduler's cancelled event is what the handler sees next.
// The request must still count as 499, not 200.
func TestContract10AbandonedWhileWriting(t *testing.T) {
	e := ctStart(t, ctConfig{parallel: 1, stepDelay: 5 * time.Millisecond})
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			before := e.sched.Stats().Finished[scheduler.FinishCancelled]
			b, _ := json.Marshal(ctBody("abandon", map[string]any{"max_tokens": 100, "stream": stream}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			w := &ctBlockingWriter{h: http.Header{}, blockAt: 2, blocked: make(chan struct{}), release: make(chan struct{})}
			done := make(chan struct{})
			go func() { defer close(done); e.srv.Handler().ServeHTTP(w, req) }()
			if stream {
				<-w.blocked // writing the first content chunk
			} else {
				ctWait(t, "generation", func() bool { return e.sched.Stats().Running == 1 })
			}
			cancel()
			ctWait(t, "the cancelled event", func() bool {
				return e.sched.Stats().Finished[scheduler.FinishCancelled] == before+1
			})
			close(w.release)
			<-done
			key := `asi1_requests_total{endpoint="/v1/chat/completions",model="asi1-mini",status="499"}`
			if got := ctValue(ctGather(t, e.reg), key); got < 1 {
				t.Errorf("%s = %v after an abandoned request", key, got)
			}
		})
	}
}

// ctBlockingWriter is a ResponseWriter whose blockAt-th Write waits for
// release.
type ctBlockingWriter struct {
	h       http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	code    int
	writes  int
	blockAt int
	blocked chan struct{}
	release chan struct{}
}

func (w *ctBlockingWriter) Header() http.Header { return w.h }
func (w *ctBlockingWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.code == 0 {
		w.code = code
	}
}
func (w *ctBlockingWriter) Flush() {}
func (w *ctBlockingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n == w.blockAt {
		close(w.blocked)
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
