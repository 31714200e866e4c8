// Package testutil holds what tests share beyond one package: whether the
// run is CI, and what a test does when a real component it needs (nginx,
// Redis, Chromium, a network namespace, npm) is missing.
//
// Test lanes: `go test ./...` runs the fast, deterministic tests. Tests
// that start real components or run for minutes (the fleet behind nginx,
// Redis, Chromium, network namespaces, soaks, the fresh-clone test) carry
// the build constraint `//go:build integration` and run with
// `go test -tags integration`, which `make test` (and so CI) uses.
package testutil

import (
	"os"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI: the CI environment variable
// is set to anything but "", "0" or "false" (CI services set CI=true).
func InCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "0", "false":
		return false
	}
	return true
}

// Need ends t when err says a component it needs is missing: a skip on a
// developer machine, a failure in CI (where .ci/run installs every
// component, so a missing one is a broken run, not a choice). It returns
// when err is nil.
func Need(t testing.TB, component string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("%s is needed in CI: %v", component, err)
	}
	t.Skipf("%s not available (%v); CI installs it, so this test runs there", component, err)
}
