//go:build integration

package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/asi1d/asi1d/internal/testutil/testserver"
)

func (p *page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// shot writes a screenshot of the viewport to the artifacts folder.
func (p *page) shot(name string) {
	p.t.Helper()
	b, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(artifactDir(p.t), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// colorScheme makes the page's system preference dark or light.
func (p *page) colorScheme(scheme string) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}

// chatRequest is what the page sent for one answer.
type chatRequest struct {
	MaxTokens int `json:"max_tokens"`
	Messages  []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

func (p *page) lastQuestion() string {
	p.t.Helper()
	return p.eval(`[...document.querySelectorAll(".msg.user .body")].pop().textContent`)
}

// waitPosts waits until the page has sent n chat completion requests.
func (p *page) waitPosts(n int) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.posts)
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the page sent %d chat requests, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond) // polling an observable count
	}
}

func (p *page) sent() []chatRequest {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]chatRequest, len(p.posts))
	for i, b := range p.posts {
		if err := json.Unmarshal([]byte(b), &out[i]); err != nil {
			p.t.Fatalf("request %d: %v: %s", i, err, b)
		}
	}
	return out
}

// waitAnswers waits until the page shows n finished answers and is idle.
func (p *page) waitAnswers(n int, finish string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%d answers", n), fmt.Sprintf(`(() => {
		const s = document.querySelectorAll(".msg.assistant:not(.streaming) .stats");
		return !document.body.classList.contains("busy") && s.length === %d && s[%d].textContent.includes(%q);
	})()`, n, n-1, finish))
}

const darkBackground = `(() => { const m = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number); return m[0] + m[1] + m[2] < 150; })()`

// wholePromptTokens is the prompt_tokens of a request with these messages
// (a system prompt, then user and assistant in turn).
func wholePromptTokens(t *testing.T, base string, msgs []string) int {
	t.Helper()
	req := map[string]any{"model": "asi1-mini", "max_tokens": 1}
	var list []map[string]string
	for i, m := range msgs {
		role := map[bool]string{true: "user", false: "assistant"}[i%2 == 1]
		if i == 0 {
			role = "system"
		}
		list = append(list, map[string]string{"role": role, "content": m})
	}
	req["messages"] = list
	b, _ := json.Marshal(req)
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := decodeJSON(resp, &out); err != nil {
		t.Fatal(err)
	}
	return out.Usage.PromptTokens
}

// A conversation on a reasoning chat model: three turns (Enter sends,
// Shift+Enter adds a line), the history cut to the context with a note
// (system prompt and last message kept, the default answer length a
// quarter of the context), kept over a reload, copy, regenerate, edit and
// resend, Esc to stop, a second conversation renamed, switched and
// deleted, dark mode from the system and from the toggle; then the same
// conversation on a 390 px phone screen. Screenshots go to the artifacts.
func TestPlaygroundConversation(t *testing.T) {
	chromiumPath(t)
	const ctx = 512
	srv := testserver.Start(t, thinkingModel(t), testserver.Options{Parallel: 1, CtxPerSeq: ctx})
	browser := newBrowser(t, testContext(t))
	p := open(t, browser, srv.URL)
	p.waitJS("the model list", `document.querySelector("#model option") !== null`)
	if v := p.eval(`document.getElementById("max-tokens").value`); v != "128" {
		t.Errorf("default answer length %q, want 128 (a quarter of %d)", v, ctx)
	}
	p.setField("temperature", "0")
	const system = "Answer in one short paragraph."
	p.setField("system", system)

	questions := []string{
		"Hi there, who are you?",
		"Tell me about the sea and the ships on it, and about the people who sail them far away.",
		strings.Repeat("Now tell me everything about the stars above the sea at night. ", 5),
	}
	p.send(questions[0])
	p.waitAnswers(1, "finish: stop")
	// Enter sends; Shift+Enter only adds a line.
	p.do(chromedp.SendKeys(chromedp.ID("input"), "line one"), chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(chromedp.ID("input"), "line two"))
	if v := p.eval(`document.getElementById("input").value`); v != "line one\nline two" || len(p.sent()) != 1 {
		t.Errorf("Shift+Enter: the box holds %q, %d requests", v, len(p.sent()))
	}
	p.setField("input", "")
	p.do(chromedp.SendKeys(chromedp.ID("input"), questions[1]+kb.Enter))
	p.waitAnswers(2, "finish: stop")
	p.send(questions[2])
	p.waitAnswers(3, "finish: stop")

	wantAnswer := strings.TrimSpace(strings.ReplaceAll(strings.Join(answerPieces, ""), "▁", " "))
	sent := p.sent()
	if len(sent) != 3 {
		t.Fatalf("%d requests, want 3", len(sent))
	}
	for i, r := range sent {
		if r.MaxTokens != ctx/4 || r.Messages[0].Role != "system" || r.Messages[0].Content != system ||
			r.Messages[len(r.Messages)-1].Content != questions[i] {
			t.Errorf("request %d: max_tokens %d, messages %+v", i, r.MaxTokens, r.Messages)
		}
	}
	if len(sent[0].Messages) != 2 {
		t.Errorf("first request: %+v", sent[0].Messages)
	}
	// The third turn does not fit whole: the oldest turn goes, with a note.
	kept := len(sent[2].Messages) - 1
	if kept >= 5 || kept%2 != 1 || sent[2].Messages[1].Role != "user" {
		t.Errorf("third request keeps %d of 5 messages: %+v", kept, sent[2].Messages)
	}
	if note := p.text(".trim-note"); !strings.Contains(note, fmt.Sprintf("%d earlier message", 5-kept)) || !strings.Contains(note, "512 tokens") {
		t.Errorf("trim note %q", note)
	}
	if n := p.eval(`String(document.querySelectorAll(".msg.trimmed").length)`); n != fmt.Sprint(5-kept) {
		t.Errorf("%s messages shown as left out, want %d", n, 5-kept)
	}
	// The cut was needed: the whole conversation leaves no room for the
	// answer, what was sent does.
	var prompt3 int
	if _, err := fmt.Sscanf(p.eval(`document.querySelectorAll(".msg.assistant .stats")[2].textContent.split("usage: ")[1]`), "%d prompt", &prompt3); err != nil {
		t.Fatal(err)
	}
	whole := wholePromptTokens(t, srv.URL, []string{system, questions[0], wantAnswer, questions[1], wantAnswer, questions[2]})
	t.Logf("third turn: %d of 4 earlier messages sent, %d prompt tokens; the whole conversation is %d", kept-1, prompt3, whole)
	if prompt3+ctx/4 > ctx || whole+ctx/4 <= ctx {
		t.Errorf("sent %d prompt tokens, whole %d: with %d for the answer, want the first to fit %d and the second not", prompt3, whole, ctx/4, ctx)
	}
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(".trim-note").scrollIntoView()`))
	p.shot("playground-1280-light.png")

	// A reload keeps the conversation and its note.
	p.do(chromedp.Reload())
	p.waitJS("the model list after the reload", `document.querySelector("#model option") !== null`)
	if n := p.eval(`String(document.querySelectorAll(".msg.user").length) + "/" + document.querySelectorAll(".msg.assistant").length`); n != "3/3" {
		t.Fatalf("after the reload: %s user/assistant messages", n)
	}
	if got := p.lastQuestion(); got != questions[2] {
		t.Errorf("last question after the reload %q", got)
	}
	if got := p.text(".conv.current .conv-open"); got != questions[0] {
		t.Errorf("conversation title %q", got)
	}
	if p.text(".trim-note") == "" || p.eval(`document.getElementById("system").value`) != system {
		t.Error("the note or the system prompt did not survive the reload")
	}

	// Copy puts the answer's text (its Markdown) on the clipboard.
	p.do(chromedp.Evaluate[chromedp.Void](`navigator.clipboard.writeText = (t) => { window.copied = t; return Promise.resolve(); }`))
	p.do(chromedp.Click(chromedp.CSS(`.msg.assistant:last-of-type .act.copy`)))
	p.waitJS("the copy", `window.copied !== undefined`)
	if got := strings.TrimSpace(p.eval(`window.copied`)); got != wantAnswer {
		t.Errorf("copied %q, want %q", got, wantAnswer)
	}

	// Regenerate asks again for the last answer with the same messages.
	p.do(chromedp.Click(chromedp.CSS(`.act.regenerate`)))
	p.waitPosts(4)
	p.waitAnswers(3, "finish: stop")
	sent = p.sent()
	// The same question again (the history cut anew: the estimate has
	// learned from the answers since).
	if r := sent[len(sent)-1].Messages; len(sent) != 4 || r[len(r)-1].Content != questions[2] || r[len(r)-2].Role != "assistant" && len(r) > 2 {
		t.Fatalf("regenerate: %d requests; last %+v", len(sent), r)
	}

	// Edit the second question and send it again: what followed it goes.
	const edited = "Edited: what is a bigram?"
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll(".msg.user .act.edit")[1].click()`))
	p.waitJS("the edit box", `document.querySelector(".edit-text") !== null`)
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(".edit-text").value = %q`, edited)),
		chromedp.Click(chromedp.CSS(`.edit-send`)))
	p.waitPosts(5)
	p.waitAnswers(2, "finish: stop")
	if n := p.eval(`String(document.querySelectorAll(".msg.user").length)`); n != "2" {
		t.Errorf("%s questions after the edit, want 2", n)
	}
	if got := p.lastQuestion(); got != edited {
		t.Errorf("edited question shows %q", got)
	}
	sent = p.sent()
	last := sent[len(sent)-1].Messages
	if len(sent) != 5 || last[len(last)-1].Content != edited || strings.Contains(fmt.Sprint(last), questions[2]) {
		t.Errorf("edit and resend: %d requests; last %+v", len(sent), last)
	}

	// Esc stops an answer in the middle.
	srv.Gate.Hold(4)
	p.send("Stop me")
	p.waitJS("the answer being written", `document.querySelector(".msg.assistant.streaming") !== null`)
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitJS("the stopped answer", `(document.querySelector(".msg.assistant:last-of-type .stats") || {textContent: ""}).textContent.includes("stopped")`)
	srv.Gate.Open()
	srv.WaitMetric(t, "asi1_requests_running", 0)

	// A second conversation: new, named, switched away from and deleted.
	p.do(chromedp.Click(chromedp.ID("clear")))
	p.waitJS("the empty conversation", `document.querySelector(".msg") === null && document.querySelectorAll(".conv").length === 2`)
	p.send("Second chat")
	p.waitAnswers(1, "finish: stop")
	p.do(chromedp.Click(chromedp.CSS(`.conv.current .conv-rename`)))
	p.waitJS("the name field", `document.querySelector(".conv-title") !== null`)
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(".conv-title").value = ""`),
		chromedp.SendKeys(chromedp.CSS(`.conv-title`), "Renamed chat"+kb.Enter))
	p.waitJS("the new name", `document.querySelector(".conv.current .conv-open").textContent === "Renamed chat"`)
	p.do(chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll(".conv-open")].find((b) => b.textContent !== "Renamed chat").click()`))
	p.waitJS("the first conversation", `document.querySelectorAll(".msg.user").length === 3`)
	p.do(chromedp.Evaluate[chromedp.Void](`(() => { const li = [...document.querySelectorAll(".conv")].find((l) => l.textContent.includes("Renamed chat")); const d = li.querySelector(".conv-delete"); d.click(); d.click(); })()`))
	p.waitJS("one conversation left", `document.querySelectorAll(".conv").length === 1`)
	if got := p.eval(`JSON.parse(localStorage.getItem("asi1d.conversations")).list.length + ""`); got != "1" {
		t.Errorf("%s conversations stored after the delete", got)
	}

	// Dark mode: the system's, then the toggle's over it, remembered.
	p.colorScheme("dark")
	p.waitJS("the dark page", darkBackground)
	p.shot("playground-1280-dark.png")
	p.colorScheme("light")
	p.waitJS("the light page", "!"+darkBackground)
	p.do(chromedp.Click(chromedp.ID("theme")), chromedp.Click(chromedp.ID("theme"))) // auto -> light -> dark
	p.waitJS("the dark toggle", `document.documentElement.dataset.theme === "dark" && `+darkBackground)
	p.do(chromedp.Reload())
	p.waitJS("dark after the reload", `document.getElementById("theme").textContent.includes("Dark") && `+darkBackground)
	p.do(chromedp.Click(chromedp.ID("theme"))) // back to the system's
	p.waitJS("the system's theme again", `document.documentElement.dataset.theme === undefined && !`+darkBackground)
	p.checkRequests(srv.URL)

	// A phone: 390 px wide, the same conversation (the same browser's
	// storage), nothing wider than the screen, the list in a drawer.
	m := openSized(t, p.ctx, srv.URL, 390, 844, true)
	m.waitJS("the model list", `document.querySelector("#model option") !== null && document.querySelectorAll(".msg.user").length === 3`)
	layout := m.eval(`(() => {
		const r = (id) => document.getElementById(id).getBoundingClientRect();
		return [document.documentElement.scrollWidth <= innerWidth, r("sidebar").right <= 0, r("composer").bottom <= innerHeight, r("send").right <= innerWidth,
			[...document.querySelectorAll(".msg")].every((e) => e.getBoundingClientRect().right <= innerWidth)].join(",");
	})()`)
	if layout != "true,true,true,true,true" {
		t.Errorf("390 px layout (no overflow, drawer closed, composer and send visible, messages within): %s", layout)
	}
	m.send("A question from a phone")
	m.waitAnswers(4, "finish: stop")
	m.shot("playground-390-light.png")
	m.do(chromedp.Click(chromedp.ID("menu")))
	m.waitJS("the open drawer", `document.getElementById("sidebar").getBoundingClientRect().left >= 0 && document.querySelectorAll(".conv").length === 1`)
	m.shot("playground-390-drawer.png")
	m.do(chromedp.KeyEvent(kb.Escape))
	m.waitJS("the closed drawer", `document.getElementById("sidebar").getBoundingClientRect().right <= 0`)
	m.colorScheme("dark")
	m.waitJS("the dark phone page", darkBackground)
	m.shot("playground-390-dark.png")
	m.checkRequests(srv.URL)
}
