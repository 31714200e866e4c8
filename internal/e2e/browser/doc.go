// Package browser tests the web playground (server/web) in a real headless
// Chromium, driven with chromedp, against the real server on tiny models.
// It has only tests; see playground_test.go.
package browser
