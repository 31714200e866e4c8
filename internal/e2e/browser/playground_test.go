//go:build integration

package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/asi1d/asi1d/internal/testutil"
	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/internal/testutil/testserver"
	"github.com/asi1d/asi1d/models/synth"
)

// chromiumPath finds Chromium. Without it the test skips, except in CI,
// where .ci/run installs it and its absence is a failure (testutil.Need).
func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("ASI1D_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	testutil.Need(t, "chromium", errors.New("not installed: apt-get install -y chromium, or set ASI1D_CHROMIUM"))
	return ""
}

// page is a browser tab and what it did.
type page struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	requests   []string // every URL the page asked for
	posts      []string // the bodies of its chat completion requests
	exceptions []string // uncaught JavaScript exceptions, console errors, blocked loads
}

// newBrowser starts a headless Chromium that reaches for no other host by
// itself (the flags turn off its background traffic) in a fresh profile.
func newBrowser(t *testing.T, ctx context.Context) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 820),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	return actx
}

// open opens a tab on base at 1280 by 820 pixels.
func open(t *testing.T, browser context.Context, base string) *page {
	return openSized(t, browser, base, 1280, 820, false)
}

// openSized opens a tab on base with a viewport of w by h CSS pixels, as a
// phone (touch, mobile) when mobile is set. parent is the browser (a new
// one starts) or a tab's context (a new tab of its browser opens).
func openSized(t *testing.T, parent context.Context, base string, w, h int64, mobile bool) *page {
	p := &page{t: t}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithListener(func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			p.requests = append(p.requests, ev.Request.URL)
			if ev.Request.Method == http.MethodPost && strings.HasSuffix(ev.Request.URL, "/v1/chat/completions") {
				var b []byte
				for _, e := range ev.Request.PostDataEntries {
					b = append(b, e.Bytes...)
				}
				p.posts = append(p.posts, string(b))
			}
		case *runtime.EventExceptionThrown:
			p.exceptions = append(p.exceptions, ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
		case *cdplog.EventEntryAdded: // a blocked load (Content-Security-Policy) is a security entry
			if ev.Entry.Source == cdplog.EntrySourceSecurity || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				p.exceptions = append(p.exceptions, "blocked: "+ev.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				p.exceptions = append(p.exceptions, "console.error")
			}
		}
	}))
	t.Cleanup(cancel)
	p.ctx = ctx
	var vo []chromedp.EmulateViewportOption
	if mobile {
		vo = append(vo, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	p.do(chromedp.EmulateViewport(w, h, vo...), chromedp.Navigate(base+"/"))
	return p
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// waitJS waits until the JavaScript expression is true.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, p.text("body"))
	}
}

func (p *page) text(css string) string {
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent`, css)))
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// type types text into the message box and presses Send.
func (p *page) send(text string) {
	p.t.Helper()
	p.do(chromedp.WaitEnabled(chromedp.ID("input")), chromedp.SendKeys(chromedp.ID("input"), text), chromedp.Click(chromedp.ID("send")))
}

// checkRequests asserts that every request the page made went to origin.
func (p *page) checkRequests(origin string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) == 0 {
		p.t.Fatal("no request recorded")
	}
	for _, r := range p.requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme+"://"+u.Host != origin {
			p.t.Errorf("the page asked another host: %s (origin %s)", r, origin)
		}
	}
	for _, e := range p.exceptions {
		p.t.Errorf("JavaScript error: %s", e)
	}
}

// setField sets an input's value as a person typing would (an input event).
func (p *page) setField(id, value string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %q; e.dispatchEvent(new Event("input")); })()`, id, value)))
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// On the reference model: the page loads from the server alone, lists the
// model, sends a message and shows the streamed answer (the one the API
// gives for the same request) with its usage.
func TestPlaygroundChat(t *testing.T) {
	chromiumPath(t)
	srv := testserver.Start(t, testmodel.Path(t, testmodel.Stories260K), testserver.Options{})
	p := open(t, newBrowser(t, testContext(t)), srv.URL)
	p.waitJS("the model list", `document.querySelector("#model option") !== null`)
	if got := p.text("#model"); !strings.HasPrefix(got, "asi1-mini") {
		t.Errorf("model picker shows %q", got)
	}
	p.setField("temperature", "0")
	p.setField("max-tokens", "40")
	p.send("Once upon a time")
	p.waitJS("the finished answer", `document.querySelector(".msg.assistant .stats") && document.querySelector(".msg.assistant .stats").textContent.includes("usage:")`)

	want := testserver.Greedy(t, srv.URL, "Once upon a time", 40)
	got := p.text(".msg.assistant .answer")
	if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(want), " ") {
		t.Errorf("the page shows %q, the API answers %q", got, want)
	}
	stats := p.text(".msg.assistant .stats")
	for _, s := range []string{"first token", "tok/s", "completion = ", "finish: length"} {
		if !strings.Contains(stats, s) {
			t.Errorf("stats %q lack %q", stats, s)
		}
	}
	if p.text(".msg.assistant .thought") != "" {
		t.Error("a thought panel for a model that does not reason")
	}
	p.checkRequests(srv.URL)
}

// The scripted reasoning model's answer: a thought, then Markdown with a
// code block (each entry one token; see synth.Options.Script).
var (
	thoughtPieces = []string{"▁The▁question▁is▁short,", "▁so▁the▁answer▁should▁be▁too.", "▁A▁tiny▁Go▁example", "▁will▁make▁it▁concrete."}
	answerPieces  = []string{"▁Here▁is▁**the▁answer**:", "\n\n```go\nfmt.Println(\"yes\")\n```\n\n", "It▁prints▁`yes`", "▁and▁returns.", "\n\n-▁short", "\n-▁clear", "\n-▁done"}
)

func thinkingModel(t *testing.T) string {
	script := []string{"<0x0A>", "<think>"}
	script = append(script, thoughtPieces...)
	script = append(script, "</think>")
	script = append(script, answerPieces...)
	script = append(script, "<|im_end|>")
	pieces := append(append([]string{}, thoughtPieces...), answerPieces...)
	path := filepath.Join(t.TempDir(), "think.gguf")
	o := synth.Options{Preset: "tiny", Type: synth.TypeQ8_0, Template: synth.TemplateChatMLThink, Script: script, Pieces: pieces}
	if err := synth.WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
	return path
}

// artifactDir is where screenshots go: $ASI1D_ARTIFACTS, or a temporary
// folder that outlives the test.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("ASI1D_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "asi1d-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// On a reasoning model behind an API key: the page asks for the key and
// shows the 401 of a wrong one; with the right one the thought streams into
// its own panel, the answer renders as Markdown, and Stop ends an answer in
// the middle: the server counts it as cancelled and frees the sequence.
func TestPlaygroundThoughtStopAndKey(t *testing.T) {
	chromiumPath(t)
	const key = "playground-test-key"
	srv := testserver.Start(t, thinkingModel(t), testserver.Options{APIKeys: []string{key}})
	p := open(t, newBrowser(t, testContext(t)), srv.URL)

	// No key yet: the key form and the server's 401 message.
	p.waitJS("the key form", `!document.getElementById("key-form").hidden`)
	p.waitJS("the 401", `document.getElementById("error").textContent.includes("401")`)
	if e := p.text("#error"); !strings.Contains(e, "Invalid or missing API key") {
		t.Errorf("error shown without a key: %q", e)
	}
	// A wrong key: the message says so, and a message sent with it shows the 401.
	p.do(chromedp.SendKeys(chromedp.ID("api-key"), "wrong-key"), chromedp.Click(chromedp.ID("key-save")))
	p.waitJS("the refused key", `document.getElementById("error").textContent.includes("refused")`)
	p.send("Why?")
	p.waitJS("the 401 of the message", `document.querySelector(".msg.assistant .error") !== null`)
	if e := p.text(".msg.assistant .error"); !strings.Contains(e, "401") || !strings.Contains(e, "Invalid or missing API key") {
		t.Errorf("message error %q", e)
	}
	// The right key.
	p.setField("api-key", key)
	p.do(chromedp.Click(chromedp.ID("key-save")))
	p.waitJS("the model list", `document.querySelector("#model option") !== null && document.getElementById("key-form").hidden`)
	// The key is kept in the tab only, never in localStorage (which keeps
	// the conversations).
	stored, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`sessionStorage.getItem("asi1d.apiKey") + "|" +
		Object.keys(localStorage).filter((k) => localStorage.getItem(k).includes(sessionStorage.getItem("asi1d.apiKey"))).length`))
	if err != nil || stored != key+"|0" {
		t.Errorf("key storage: %q %v", stored, err)
	}
	p.do(chromedp.Click(chromedp.ID("clear")))

	// Hold the answer after the code block: 1 prefill step makes "<think>",
	// then one token a step.
	heldAfter := 1 + len(thoughtPieces) + 1 + 3
	srv.Gate.Hold(heldAfter)
	p.setField("temperature", "0")
	p.send("Why?")
	wantThought := strings.TrimSpace(strings.ReplaceAll(strings.Join(thoughtPieces, ""), "▁", " "))
	p.waitJS("the thought", fmt.Sprintf(`(document.querySelector(".thought-text") || {}).textContent === %q`, wantThought))
	p.waitJS("the streamed answer so far", `(document.querySelector(".msg.assistant .answer") || {textContent: ""}).textContent.includes("It prints yes")`)

	// Mid-answer: the thought panel is open, the code block is a <pre>,
	// Markdown is elements (no HTML from the model), and Stop is offered.
	state, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`[
		document.querySelector("details.thought").open,
		document.querySelector(".msg.assistant").classList.contains("streaming"),
		document.querySelector(".answer pre code").textContent,
		document.querySelector(".answer strong").textContent,
		document.querySelector(".answer p code").textContent,
		!document.getElementById("stop").hidden,
		document.querySelector(".answer").textContent.includes("returns"),
	].join("|")`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `true|true|fmt.Println("yes")|the answer|yes|true|false`; state != want {
		t.Errorf("mid-answer state %q, want %q", state, want)
	}
	shot, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(artifactDir(t), "playground-mid-answer.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the playground mid-answer: %s", shotPath)

	// Stop: the page ends the answer, the server sees the client leave
	// (499) while the loop is still held, then cancels the sequence.
	p.do(chromedp.Click(chromedp.ID("stop")))
	p.waitJS("the stopped answer", `document.querySelector(".msg.assistant .stats").textContent.includes("stopped")`)
	srv.WaitMetric(t, `asi1_requests_total{endpoint="/v1/chat/completions",model="asi1-mini",status="499"}`, 1)
	srv.Gate.Open()
	srv.WaitMetric(t, `asi1_requests_finished_total{finish_reason="cancelled"}`, 1)
	if v, _ := srv.Metric(t, `asi1_requests_finished_total{finish_reason="stop"}`); v != 0 {
		t.Errorf("%v answers finished with stop, want 0", v)
	}
	srv.WaitMetric(t, "asi1_requests_running", 0)

	// The conversation goes on: the next answer runs to its end.
	p.send("And then?")
	p.waitJS("the second answer", `document.querySelectorAll(".msg.assistant .stats")[1].textContent.includes("finish: stop")`)
	if got := p.text(".msg.assistant:last-child .answer"); !strings.Contains(got, "returns.") || !strings.Contains(got, "done") {
		t.Errorf("second answer %q", got)
	}
	p.checkRequests(srv.URL)
}

func decodeJSON(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// A scripted model that thinks, then calls a tool in Hermes syntax (as
// internal/e2e's TestAutoToolCallWithToolThought).
var scriptedCall = []string{"<0x0A>", "<think>", "▁so", "▁let", "▁me", "</think>", "<tool_call>", callPiece, "</tool_call>", "<|im_end|>"}

const callPiece = "\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"utc\"}}\n"

// With tools in the settings, a tool call is shown as one, and the
// reasoning behind it is labelled as tool_thought.
func TestPlaygroundToolCall(t *testing.T) {
	chromiumPath(t)
	path := filepath.Join(t.TempDir(), "call.gguf")
	o := synth.Options{Preset: "tiny", Type: synth.TypeQ8_0, Template: synth.TemplateChatMLThink, Script: scriptedCall, Pieces: []string{callPiece}}
	if err := synth.WriteFile(path, o); err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, path, testserver.Options{Parallel: 1, CtxPerSeq: 2048})
	p := open(t, newBrowser(t, testContext(t)), srv.URL)
	p.waitJS("the model list", `document.querySelector("#model option") !== null`)
	p.setField("temperature", "0")

	// Tools that are not JSON: a clear message, nothing sent, the text kept.
	p.setField("tools", "[{")
	p.send("What time is it?")
	p.waitJS("the tools error", `document.getElementById("error").textContent.includes("Tools are not valid JSON")`)
	if v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("input").value`)); v != "What time is it?" {
		t.Errorf("the message box holds %q", v)
	}
	p.setField("input", "")

	p.setField("tools", `[{"type":"function","function":{"name":"get_time","description":"The time","parameters":{"type":"object","properties":{"zone":{"type":"string"}}}}}]`)
	p.send("What time is it?")
	p.waitJS("the tool call", `(document.querySelector(".msg.assistant .stats") || {textContent: ""}).textContent.includes("finish: tool_calls")`)
	if got := p.text(".tool-call .label"); !strings.HasPrefix(got, "Tool call: get_time  (call_") {
		t.Errorf("tool call label %q", got)
	}
	if got := p.text(".tool-call code"); got != `{"zone":"utc"}` {
		t.Errorf("tool call arguments %q", got)
	}
	if s, th := p.text("details.thought summary"), p.text("details.thought .thought-text"); s != "Tool thought (reasoning behind the tool call)" || th != "so let me" {
		t.Errorf("thought panel %q: %q", s, th)
	}
	shot, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(artifactDir(t), "playground-tool-call.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of a tool call: %s", shotPath)
	p.checkRequests(srv.URL)
}
