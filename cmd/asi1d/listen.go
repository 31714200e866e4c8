package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asi1d/asi1d/server"
)

// newHTTPServer is serve's http.Server. WriteTimeout stays 0 on purpose: it
// is a deadline for the whole answer and would cut long streams; each write
// of a stream has its own deadline instead (--write-timeout, in the server
// package). ReadTimeout covers headers and body only: net/http clears the
// read deadline once the body is read, so it does not end a stream either.
func newHTTPServer(cfg *serveConfig, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// listen opens cfg.Addr with the --max-connections cap and loads the TLS
// configuration (nil without --tls-cert).
func listen(cfg *serveConfig, log *slog.Logger) (net.Listener, *tls.Config, error) {
	var tc *tls.Config
	if cfg.TLSCert != "" {
		var err error
		if tc, err = loadTLS(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return nil, nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	if cfg.MaxConnections > 0 {
		ln = newCapListener(ln, cfg.MaxConnections, tc)
	}
	return ln, tc, nil
}

// serveHTTP serves hs on ln until it is closed, over TLS when tc is set.
func serveHTTP(hs *http.Server, ln net.Listener, tc *tls.Config) error {
	if tc != nil {
		hs.TLSConfig = tc
		return hs.ServeTLS(ln, "", "")
	}
	return hs.Serve(ln)
}

// capListener caps the open connections. One accepted past the cap is not
// left waiting (as golang.org/x/net/netutil.LimitListener would: the client
// sees a hang) nor reset: it gets a plain HTTP/1.1 503 server_overloaded in
// the contract's error shape with Retry-After, then is closed. The cap counts
// TCP connections, below TLS; over TLS the refusal is sent after a handshake.
type capListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	tc   *tls.Config // nil: plain HTTP
	// refusing bounds the refusals in progress; past it a connection is
	// closed at once (a flood gets no answer rather than unbounded work).
	refusing chan struct{}
	wg       sync.WaitGroup
	answer   []byte
}

// refuseTimeout bounds one refusal (handshake, write, drain).
const refuseTimeout = 2 * time.Second

func newCapListener(ln net.Listener, max int, tc *tls.Config) *capListener {
	l := &capListener{Listener: ln, max: int64(max), refusing: make(chan struct{}, 64)}
	if tc != nil {
		l.tc = tc.Clone()
		l.tc.NextProtos = []string{"http/1.1"}
	}
	body, _ := json.Marshal((&server.APIError{Status: http.StatusServiceUnavailable, Type: server.TypeServer,
		Code: server.CodeOverloaded, Message: fmt.Sprintf("Too many open connections (the cap is %d); retry later", max)}).Body())
	l.answer = fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return l
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &capConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		select {
		case l.refusing <- struct{}{}:
			l.wg.Add(1)
			go l.refuse(c) // owned by l: bounded by refuseTimeout, waited for by Close
		default:
			c.Close()
		}
	}
}

// Close stops accepting and waits for the refusals in progress.
func (l *capListener) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// refuse answers 503 and closes c: write, half-close, then read what the
// client sent until it closes (or the deadline), so the close does not turn
// into a reset that could destroy the answer before the client reads it.
func (l *capListener) refuse(c net.Conn) {
	defer func() {
		c.Close()
		<-l.refusing
		l.wg.Done()
	}()
	_ = c.SetDeadline(time.Now().Add(refuseTimeout))
	conn := c
	var closeWrite func() error
	if tcp, ok := c.(*net.TCPConn); ok {
		closeWrite = tcp.CloseWrite
	}
	if l.tc != nil {
		tconn := tls.Server(c, l.tc)
		if tconn.Handshake() != nil {
			return
		}
		conn, closeWrite = tconn, tconn.CloseWrite
	}
	if _, err := conn.Write(l.answer); err != nil {
		return
	}
	if closeWrite != nil {
		_ = closeWrite()
	}
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

// capConn gives its place back once, on the first Close.
type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
