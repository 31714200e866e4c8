package main

import (
	"strings"
	"testing"
)

// --allowed-origins and ASI1D_ALLOWED_ORIGINS take a comma-separated list
// (the flag may also repeat); a value that is not an origin is one error
// that names the flag and the value.
func TestAllowedOriginsFlag(t *testing.T) {
	env := map[string]string{"ASI1D_ALLOWED_ORIGINS": "https://a.example.com, http://localhost:5173"}
	c, err := parseServe(nil, func(k string) string { return env[k] })
	if err != nil || strings.Join(c.AllowedOrigins, "|") != "https://a.example.com|http://localhost:5173" {
		t.Fatalf("from the environment: %v %v", c, err)
	}
	c, err = parseServe([]string{"--allowed-origins", "https://b.example.com,localhost", "--allowed-origins=*"}, func(k string) string { return env[k] })
	if err != nil || strings.Join(c.AllowedOrigins, "|") != "https://b.example.com,localhost|*" {
		t.Fatalf("from flags: %v %v", c, err)
	}
	c, err = parseServe(nil, noenv)
	if err != nil || len(c.AllowedOrigins) != 0 {
		t.Fatalf("default: %v %v", c, err)
	}
	for _, bad := range []string{"a.example.com", "https://a.example.com/app", "http://ok.example,https://x.example/path"} {
		_, err := parseServe([]string{"--allowed-origins", bad}, noenv)
		if err == nil || !strings.HasPrefix(err.Error(), "--allowed-origins: ") || !strings.Contains(err.Error(), "scheme://host") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
