// Package redistest starts a real redis-server (Debian's redis-server
// package) for a test, on a free loopback port, without persistence, bounded
// in time and stopped by the test's cleanup. Where redis-server is missing
// the test fails in CI and is skipped elsewhere (testutil.Need). Unit tests
// use miniredis instead; tests that start a real redis-server carry the
// integration build tag.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asi1d/asi1d/internal/testutil"
)

// Server is one running redis-server.
type Server struct {
	Addr string // 127.0.0.1:port
	t    testing.TB
	bin  string
	dir  string
	port int
	lim  time.Duration
	cmd  *exec.Cmd
	out  *bytes.Buffer
	once *sync.Once
	done chan struct{}
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Start starts redis-server for t; it lives at most limit (0: 2 minutes).
func Start(t testing.TB, limit time.Duration) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		err = fmt.Errorf("%w (install Debian's redis-server package: apt-get install -y redis-server)", err)
	}
	testutil.Need(t, "redis-server", err)
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), t: t, bin: bin, dir: t.TempDir(), port: port, lim: limit}
	s.start()
	return s
}

// Restart starts a fresh, empty redis-server on the same port after Stop
// (a Redis that comes back after an outage, its data lost).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.lim)
	cmd := exec.CommandContext(ctx, s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
		"--dir", s.dir, "--logfile", "")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start redis-server: %v", err)
	}
	s.cmd, s.out, s.once, s.done = cmd, out, &sync.Once{}, make(chan struct{})
	done := s.done
	go func() { // owned by s: ends when the process does (Stop, or the time limit)
		_ = cmd.Wait()
		cancel()
		close(done)
	}()
	t.Cleanup(s.Stop)
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Stop()
		t.Fatalf("redis-server on %s: %v\n%s", s.Addr, err, out.String())
	}
}

// waitReady dials until the server answers PING with PONG.
func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited")
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n := 0
			if err == nil {
				n, err = c.Read(buf)
			}
			c.Close()
			if err == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return nil
			}
		}
		last = err
		// The process is starting; the next dial is the next check.
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %v", within, last)
}

// Stop kills the server and waits for it to exit. Safe to call twice.
func (s *Server) Stop() {
	cmd, done := s.cmd, s.done
	s.once.Do(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}
