//go:build integration

package deploy_test

import (
	"testing"

	"github.com/asi1d/asi1d/internal/testutil/fleettest"
)

// The shipped nginx file, with the replicas' names replaced by loopback
// addresses, passes nginx -t, and so does its round-robin variant.
func TestNginxConf(t *testing.T) {
	nginx := fleettest.Nginx(t)
	for _, rr := range []bool{false, true} {
		dir := t.TempDir()
		conf := fleettest.WriteConf(t, nginx, dir, fleettest.FreeAddr(t), []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}, rr)
		if err := fleettest.Check(nginx, dir, conf); err != nil {
			t.Fatal(err)
		}
	}
}
