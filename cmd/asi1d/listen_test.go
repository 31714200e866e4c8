package main

// The HTTP front of asi1d serve (listen, newHTTPServer, serveHTTP) against
// raw TCP and TLS clients on loopback, with the real server stack over the
// fake engine: TLS, header/body/idle timeouts, the connection cap, and a
// client that never reads its stream.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asi1d/asi1d/engine"
	"github.com/asi1d/asi1d/engine/enginetest"
	"github.com/asi1d/asi1d/engine/scheduler"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/stack"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type served struct {
	addr  string
	sched *scheduler.Scheduler
	tc    *tls.Config
}

// startStack serves the fake engine (parallel sequences of ctx cells, each
// decode step taking stepDelay) with serve's listener and http.Server built
// from args. wrap, when set, wraps the listener (tests shrink socket
// buffers with it).
func startStack(t *testing.T, args []string, parallel, ctx int, stepDelay time.Duration, wrap func(net.Listener) net.Listener) *served {
	t.Helper()
	cfg, err := parseServe(append([]string{"--addr", "127.0.0.1:0"}, args...), noenv)
	if err != nil {
		t.Fatal(err)
	}
	fake := enginetest.New(parallel, ctx, 512)
	fake.StepDelay = stepDelay
	stk := stack.New(stack.Options{
		Server:    server.Options{Logger: quiet, WriteTimeout: cfg.WriteTimeout},
		Scheduler: scheduler.Options{MaxQueue: 64, Logger: quiet},
		Open:      func() (engine.Backend, error) { return fake, nil },
	})
	if err := stk.Load(); err != nil {
		t.Fatal(err)
	}
	srv, sched := stk.Server, stk.Sched
	ln, tc, err := listen(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	hs := newHTTPServer(cfg, srv.Handler(), quiet)
	done := make(chan error, 1)
	go func() { done <- serveHTTP(hs, ln, tc) }()
	t.Cleanup(func() {
		hs.Close()
		<-done
		_ = stk.Close()
	})
	return &served{addr: addr, sched: sched, tc: tc}
}

const chatReq = `{"model":"asi1-mini","max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"hi"}]}`

func rawChat(maxTokens int, stream bool) string {
	body := fmt.Sprintf(chatReq, maxTokens, stream)
	return fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// closedWithin reads c until the server closes it; it fails if that takes
// longer than within (a client-side deadline, far above the server's).
func closedWithin(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open past %v; got %q", within, b)
	}
	return string(b)
}

func TestSlowHeadersAreCut(t *testing.T) {
	s := startStack(t, []string{"--read-header-timeout", "200ms"}, 1, 64, 0, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half the headers, then nothing.
	fmt.Fprint(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
	got := closedWithin(t, c, 10*time.Second)
	if strings.Contains(got, " 200 ") || strings.Contains(got, " 50") {
		t.Fatalf("answer to a stalled request: %q", got)
	}
}

func TestSlowBodyIsCut(t *testing.T) {
	s := startStack(t, []string{"--read-timeout", "300ms"}, 1, 64, 0, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Complete headers announcing 100 bytes; 10 sent, then nothing.
	fmt.Fprint(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
	got := closedWithin(t, c, 10*time.Second)
	if got != "" && !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Fatalf("answer to a stalled body: %q, want a 400 or a closed connection", got)
	}
	t.Logf("stalled body: %.80q", got)
}

func TestIdleKeepAliveIsClosed(t *testing.T) {
	s := startStack(t, []string{"--idle-timeout", "300ms"}, 1, 64, 0, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	// Kept alive, then idle: the server must close it.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := br.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %d bytes, err %v; want EOF (closed by the server)", n, err)
	}
}

// A stream longer than --read-timeout is not cut: the deadline covers
// reading the request only.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	s := startStack(t, []string{"--read-timeout", "200ms"}, 1, 256, 10*time.Millisecond, nil)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprint(c, rawChat(60, true))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Fatalf("stream cut after %v: %v %q", time.Since(start), err, b[max(0, len(b)-200):])
	}
	t.Logf("stream of 60 tokens took %v with a 200ms read timeout", time.Since(start))
}

// readAnswer reads one HTTP answer from c and decodes its JSON body.
func readAnswer(t *testing.T, c net.Conn) (*http.Response, map[string]any) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp, v
}

func checkOverloaded(t *testing.T, resp *http.Response, v map[string]any) {
	t.Helper()
	e, _ := v["error"].(map[string]any)
	if resp.StatusCode != 503 || e["code"] != "server_overloaded" || e["type"] != "server_error" ||
		resp.Header.Get("Retry-After") != "1" || !resp.Close {
		t.Fatalf("over the cap: %d %v %v (close %v)", resp.StatusCode, resp.Header, v, resp.Close)
	}
}

func TestMaxConnections(t *testing.T) {
	s := startStack(t, []string{"--max-connections", "2", "--read-header-timeout", "30s"}, 1, 64, 0, nil)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// Both places are taken (accepted in order): the third is refused at
	// once with a clean error, and closed.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, v := readAnswer(t, c)
	checkOverloaded(t, resp, v)
	if rest := closedWithin(t, c, 10*time.Second); rest != "" {
		t.Fatalf("after the 503: %q", rest)
	}
	// A held connection still works; one closed gives its place back.
	fmt.Fprint(held[0], "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, held[0]); resp.StatusCode != 200 {
		t.Fatalf("held connection: %d", resp.StatusCode)
	}
	held[1].Close()
	// The server learns of the close when its read returns; until then a
	// new connection may still be refused. Each try is a real request.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, _ := readAnswer(t, c)
		c.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection never gave its place back: still %d", resp.StatusCode)
		}
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// (PEM) into dir and returns the paths and a pool trusting it.
func writeCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "asi1d test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir)
	s := startStack(t, []string{"--tls-cert", certFile, "--tls-key", keyFile, "--max-connections", "1", "--read-header-timeout", "30s"}, 1, 64, 0, nil)
	// One kept-alive connection for both requests: the cap is 1.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxConnsPerHost: 1}}
	for _, stream := range []bool{false, true} {
		resp, err := client.Post("https://"+s.addr+"/v1/chat/completions", "application/json",
			strings.NewReader(fmt.Sprintf(chatReq, 4, stream)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil || (stream && !strings.HasSuffix(string(b), "data: [DONE]\n\n")) {
			t.Fatalf("https (stream %v): %d tls %v %s", stream, resp.StatusCode, resp.TLS != nil, b)
		}
	}
	client.CloseIdleConnections()
	// Plain HTTP to the TLS port is not served.
	if resp, err := http.Get("http://" + s.addr + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("plain http to the TLS port: %d", resp.StatusCode)
		}
	}
	// An untrusted client fails the handshake.
	if _, err := http.Get("https://" + s.addr + "/health"); err == nil {
		t.Fatal("a client without the test CA accepted the certificate")
	}
	// Over the cap, the refusal comes over TLS too. First one connection
	// takes the only place (the ones above may hold it until the server
	// reads their close), and proves it with a 200 on a kept-alive
	// connection.
	tlsGet := func(c *tls.Conn) (*http.Response, map[string]any) {
		fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp, v
	}
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		held := dial()
		defer held.Close()
		if resp, _ := tlsGet(held); resp.StatusCode == 200 {
			break
		}
		held.Close()
		if time.Now().After(deadline) {
			t.Fatal("no connection got the only place")
		}
	}
	c := dial()
	defer c.Close()
	resp, v := tlsGet(c)
	checkOverloaded(t, resp, v)
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir)
	otherCert, _, _ := writeCert(t, t.TempDir())
	if _, err := parseServe([]string{"--tls-cert", certFile}, noenv); err == nil {
		t.Fatal("--tls-cert without --tls-key accepted")
	}
	for name, args := range map[string][]string{
		"missing":    {"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", keyFile},
		"mismatched": {"--tls-cert", otherCert, "--tls-key", keyFile},
		"swapped":    {"--tls-cert", keyFile, "--tls-key", certFile},
	} {
		cfg, err := parseServe(append([]string{"--addr", "127.0.0.1:0"}, args...), noenv)
		if err != nil {
			t.Fatal(err)
		}
		if ln, _, err := listen(cfg, quiet); err == nil {
			ln.Close()
			t.Fatalf("%s: listen accepted the pair", name)
		}
	}
}

// smallBuffers shrinks the send buffer of every accepted connection, so a
// client that does not read blocks the server's writes after a few KiB
// instead of after megabytes of kernel buffers.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		if tc, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
			_ = tc.SetWriteBuffer(4096)
		}
	}
	return c, err
}

// A client that never reads its stream does not slow the others: they
// finish while it still holds its slot (the scheduler buffers events per
// stream and never waits on a client); then its blocked write times out
// (--write-timeout), its sequence is cancelled long before its max_tokens
// and its slot freed, though the client never closed its connection.
func TestSlowReaderDoesNotStallOthers(t *testing.T) {
	// Every decode step takes 2 ms: the slow stream's 4000 tokens would
	// take 8 s or more; the normal ones' 100 tokens about 0.2 s.
	s := startStack(t, []string{"--write-timeout", "300ms", "--max-connections", "0"}, 4, 4096, 2*time.Millisecond,
		func(ln net.Listener) net.Listener { return smallBuffers{ln} })
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, rawChat(4000, true)) // about 700 KB of events, not read
	waitFor(t, "the slow stream to start", func() bool { return s.sched.Stats().Running >= 1 })

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post("http://"+s.addr+"/v1/chat/completions", "application/json",
				strings.NewReader(fmt.Sprintf(chatReq, 100, true)))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
				errs <- fmt.Errorf("normal stream: %d %v %q", resp.StatusCode, err, b[max(0, len(b)-120):])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The slow stream still holds its slot here unless its write already
	// timed out: either way it was not in the others' way.
	waitFor(t, "the slow stream's slot to be freed", func() bool { return s.sched.Stats().Running == 0 })
	st := s.sched.Stats()
	t.Logf("slot freed; finished %v, %d tokens generated in all", st.Finished, st.GeneratedTokens)
	if st.Finished[scheduler.FinishCancelled] != 1 || st.Finished[scheduler.FinishLength] != 3 {
		t.Fatalf("the slow stream was not cut by its write timeout: %v", st.Finished)
	}
	// Its connection was closed by the server: what was buffered, then EOF,
	// without the end of the stream.
	got := closedWithin(t, slow, 10*time.Second)
	if strings.Contains(got, "data: [DONE]") || !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Fatalf("slow client: %d bytes, ends %q", len(got), got[max(0, len(got)-100):])
	}
	t.Logf("the slow client got %d bytes before the server dropped it", len(got))
}

// waitFor polls cond (a cheap read of scheduler state) until it holds,
// failing after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLimitAndConnectionFlags(t *testing.T) {
	env := map[string]string{"ASI1D_RATE_RPM": "60", "ASI1D_RATE_TPM": "9000", "ASI1D_REDIS_URL": "redis://127.0.0.1:1/0",
		"ASI1D_MAX_CONNECTIONS": "5", "ASI1D_READ_HEADER_TIMEOUT": "3s", "ASI1D_READ_TIMEOUT": "4s",
		"ASI1D_WRITE_TIMEOUT": "5s", "ASI1D_IDLE_TIMEOUT": "6s"}
	c, err := parseServe([]string{"--rate-rpm", "7"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.RateRPM != 7 || c.RateTPM != 9000 || c.RedisURL != env["ASI1D_REDIS_URL"] || c.MaxConnections != 5 ||
		c.ReadHeaderTimeout != 3*time.Second || c.ReadTimeout != 4*time.Second || c.WriteTimeout != 5*time.Second || c.IdleTimeout != 6*time.Second {
		t.Fatalf("config %+v", c)
	}
	hs := newHTTPServer(c, http.NotFoundHandler(), quiet)
	if hs.ReadHeaderTimeout != 3*time.Second || hs.ReadTimeout != 4*time.Second || hs.IdleTimeout != 6*time.Second || hs.WriteTimeout != 0 {
		t.Fatalf("http.Server timeouts: header %v read %v idle %v write %v (must be 0: it would cut streams)",
			hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout, hs.WriteTimeout)
	}
	// Redis unreachable at start: a limiter all the same (counted here).
	l, err := newLimits(c, quiet)
	if err != nil || l == nil || !l.Shared() {
		t.Fatalf("limits: %v %v", l, err)
	}
	l.Close()
	for _, args := range [][]string{
		{"--redis-url", "redis://x:6379"}, // shares nothing without a rate
		{"--rate-rpm", "-1"},
		{"--max-connections", "-1"},
		{"--tls-key", "k.pem"},
		{"--read-timeout", "0s"},
	} {
		if _, err := parseServe(args, noenv); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
	if l, err := newLimits(&serveConfig{}, quiet); l != nil || err != nil {
		t.Fatalf("no rates: %v %v", l, err)
	}
}

// Over TLS the client may speak HTTP/2, whose server applies ReadTimeout
// per stream: it must not cut a stream either.
func TestHTTP2StreamOutlivesReadTimeout(t *testing.T) {
	certFile, keyFile, pool := writeCert(t, t.TempDir())
	s := startStack(t, []string{"--tls-cert", certFile, "--tls-key", keyFile, "--read-timeout", "200ms", "--idle-timeout", "200ms"},
		1, 256, 10*time.Millisecond, nil)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	start := time.Now()
	resp, err := client.Post("https://"+s.addr+"/v1/chat/completions", "application/json", strings.NewReader(fmt.Sprintf(chatReq, 60, true)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || err != nil || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Fatalf("HTTP/%d %d after %v: %v %q", resp.ProtoMajor, resp.StatusCode, time.Since(start), err, b[max(0, len(b)-200):])
	}
	t.Logf("HTTP/2 stream of 60 tokens took %v with a 200ms read and idle timeout", time.Since(start))
}
