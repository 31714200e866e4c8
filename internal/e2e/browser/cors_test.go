//go:build integration

package browser

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/asi1d/asi1d/internal/testutil/testmodel"
	"github.com/asi1d/asi1d/internal/testutil/testserver"
)

// crossOriginCall is what a web app on another origin does: a chat
// completion with an API key and an OpenAI SDK header (so the browser sends
// a preflight first), reading an exposed header of the answer (null
// unless Access-Control-Expose-Headers names it).
const crossOriginCall = `(async () => {
	try {
		const r = await fetch(%q + "/v1/chat/completions", {
			method: "POST",
			headers: {"Content-Type": "application/json", "Authorization": "Bearer k", "x-stainless-os": "Linux", "OpenAI-Organization": "org"},
			body: JSON.stringify({model: "asi1-mini", max_tokens: 4, temperature: 0, messages: [{role: "user", content: "Once upon a time"}]}),
		});
		const j = await r.json();
		return r.status + "|" + (r.headers.get("x-request-id") || "no x-request-id") + "|" + j.choices[0].message.content.length;
	} catch (e) {
		return "blocked: " + e.name + ": " + e.message;
	}
})()`

// A page served from another loopback port calls asi1d with fetch in
// Chromium: allowed by default (a loopback origin), allowed when
// --allowed-origins lists it or is *, and refused by the browser when the
// list names only another origin; the refused call never reaches the
// model.
func TestCrossOriginFetch(t *testing.T) {
	chromiumPath(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>another app</title><p>a web app on another port</p>")
	}))
	t.Cleanup(app.Close)
	model := testmodel.Path(t, testmodel.Stories260K)

	ctx, cancel := chromedp.NewContext(newBrowser(t, testContext(t)))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(app.URL+"/")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		origins []string
		allowed bool
	}{
		{"default: loopback origins", nil, true},
		{"listed", []string{"https://app.example.com", app.URL}, true},
		{"any", []string{"*"}, true},
		{"only another origin listed", []string{"https://app.example.com"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.Start(t, model, testserver.Options{APIKeys: []string{"k"}, AllowedOrigins: tc.origins, NoPlayground: true})
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(crossOriginCall, srv.URL), chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			served, _ := srv.Metric(t, `asi1_requests_total{endpoint="/v1/chat/completions",model="asi1-mini",status="200"}`)
			if tc.allowed {
				parts := strings.Split(got, "|")
				if len(parts) != 3 || parts[0] != "200" || !strings.HasPrefix(parts[1], "id_") || parts[2] == "0" || served != 1 {
					t.Errorf("from %s: %q (served %v)", app.URL, got, served)
				}
				return
			}
			if !strings.HasPrefix(got, "blocked: TypeError") || served != 0 {
				t.Errorf("from %s: %q (served %v), want the browser to block it before it runs", app.URL, got, served)
			}
		})
	}
}
