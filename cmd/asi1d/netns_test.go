//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/asi1d/asi1d/internal/testutil"
	"github.com/asi1d/asi1d/internal/testutil/fleettest"
)

// inNetns is set in the environment of this test binary re-run inside a
// network namespace with no route.
const inNetns = "ASI1D_TEST_IN_NETNS"

// TestNoOutboundTraffic runs serve, a chat, a model load, bench and pull
// inside a network namespace that has only a loopback interface (unshare
// -n): everything local works, and pull fails naming the host it could not
// reach. It re-runs itself inside the namespace. In CI a machine that
// cannot make the namespace fails the test rather than skip it
// (testutil.Need).
func TestNoOutboundTraffic(t *testing.T) {
	if os.Getenv(inNetns) != "1" {
		// As root, -n; otherwise a user namespace too (-rn), where the
		// kernel allows unprivileged ones; else through sudo without a
		// password (a CI runner's user), with this environment passed on.
		env := append(os.Environ(), inNetns+"=1")
		var argv []string
		unshare, err := exec.LookPath("unshare")
		if err == nil {
			err = errors.New("unshare -n, -rn and sudo -n unshare -n all failed")
			for _, try := range [][]string{{unshare, "-n"}, {unshare, "-rn"}, {"sudo", "-n", unshare, "-n"}} {
				if exec.Command(try[0], append(try[1:], "true")...).Run() == nil {
					argv, err = try, nil
					break
				}
			}
		}
		testutil.Need(t, "a network namespace (unshare -n)", err)
		if argv[0] == "sudo" {
			argv = append([]string{"sudo", "-n", "env"}, append(env, argv[2:]...)...)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], os.Args[0], "-test.run", "^TestNoOutboundTraffic$", "-test.v", "-test.count=1")...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		t.Logf("inside the namespace:\n%s", out)
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestNoOutboundTraffic")) {
			t.Fatalf("inside the namespace: %v", err)
		}
		return
	}

	if err := loopbackUp(); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
	// The namespace has no route out: prove it before trusting the rest.
	if c, err := net.DialTimeout("tcp", "1.1.1.1:80", 2*time.Second); err == nil {
		c.Close()
		t.Fatal("1.1.1.1:80 is reachable: not an isolated namespace")
	} else {
		t.Logf("outbound dial: %v", err)
	}

	dir := catalogDir(t)
	addr := fleettest.FreeAddr(t)
	base := "http://" + addr
	out := &syncBuffer{}
	p := startProc(t, out, "serve", "--models-dir", dir, "--addr", addr, "--parallel", "2", "--ctx", "512", "--threads", "1")
	p.waitOK(t, base+"/health", 60*time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var so, se bytes.Buffer
	if code := run(ctx, []string{"chat", "--url", base, "--model", "stories", "--max-tokens", "8", "Once upon a time"}, &so, &se, noenv); code != 0 || so.Len() == 0 {
		t.Fatalf("chat: exit %d, out %q, err %s", code, so.String(), se.String())
	}
	r, err := http.Post(base+"/v1/models/tiny/load", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !bytes.Contains(b, []byte(`"loaded":true`)) {
		t.Fatalf("load: %d %s", r.StatusCode, b)
	}
	so.Reset()
	se.Reset()
	if code := run(ctx, []string{"bench", "--url", base, "--model", "tiny", "--requests", "4", "--concurrency", "2", "--prompt-tokens", "16", "--max-tokens", "8"}, &so, &se, noenv); code != 0 {
		t.Fatalf("bench: exit %d\n%s\n%s", code, so.String(), se.String())
	}

	// pull names the host it cannot reach, and leaves nothing behind.
	so.Reset()
	se.Reset()
	code := run(ctx, []string{"models", "pull", "--models-dir", dir, "--sha256", strings.Repeat("0", 64), "http://10.255.255.1:8080/m.gguf"}, &so, &se, noenv)
	if code == 0 || !strings.Contains(se.String(), "10.255.255.1") {
		t.Fatalf("pull: exit %d, stderr %q", code, se.String())
	}
	t.Logf("pull: %s", strings.TrimSpace(se.String()))
	if left, _ := filepath.Glob(filepath.Join(dir, "m.gguf*")); len(left) > 0 {
		t.Fatalf("pull left %v", left)
	}
	if err := p.stop(os.Interrupt, 30*time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
}

// loopbackUp sets the loopback interface up: a new network namespace
// starts with it down. The same as `ip link set lo up`, without needing
// iproute2.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return errors.New("SIOCGIFFLAGS: " + e.Error())
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return errors.New("SIOCSIFFLAGS: " + e.Error())
	}
	return nil
}
