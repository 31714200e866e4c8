package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

const testLimit = 4 << 20 // the contract's default body limit

// testEngine is the server's router (newRouter) with stub handlers and a
// few routes of its own that exercise the middleware.
func testEngine(keys []string, logger *slog.Logger) *gin.Engine {
	var n atomic.Int64
	next := func(c *gin.Context) { c.Next() }
	e := newRouter(Options{APIKeys: keys, BodyLimit: testLimit, Logger: logger},
		func() string { return "req_" + strconv.FormatInt(n.Add(1), 10) }, routes{
			health:  func(c *gin.Context) { c.JSON(200, gin.H{"status": "ok"}) },
			ready:   func(c *gin.Context) { c.JSON(200, gin.H{"status": "ok"}) },
			metrics: func(c *gin.Context) { c.String(200, "") },
			observe: next,
			limit:   next,
			panics:  next,
			chat: func(c *gin.Context) {
				body, aerr := ReadBody(c)
				if aerr != nil {
					WriteError(c, aerr)
					return
				}
				req, aerr := DecodeChatRequest(body)
				if aerr != nil {
					WriteError(c, aerr)
					return
				}
				SetRequestID(c, "id_completion000000")
				c.JSON(200, gin.H{"model": req.Model, "session": SessionIDFrom(c), "request_id": RequestIDFrom(c)})
			},
			listModels: func(c *gin.Context) { c.JSON(200, gin.H{"object": "list"}) },
			getModel:   func(c *gin.Context) { c.JSON(200, gin.H{"id": c.Param("id")}) },
		})
	e.GET("/panic", func(c *gin.Context) { panic("boom") })
	e.GET("/abort", func(c *gin.Context) { panic(http.ErrAbortHandler) })
	e.GET("/overloaded", func(c *gin.Context) {
		WriteError(c, &APIError{Status: 503, Type: TypeServer, Code: CodeOverloaded, Message: "busy", RetryAfter: 5})
	})
	e.GET("/late-error", func(c *gin.Context) {
		c.String(200, "partial")
		c.Writer.Flush()
		WriteError(c, &APIError{Status: 500, Type: TypeServer, Code: CodeInternal, Message: "late"})
	})
	return e
}

const validBody = `{"model":"asi1-mini","messages":[{"role":"user","content":"hi"}]}`

type reqOpt func(*http.Request)

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func serve(e *gin.Engine, method, path string, body io.Reader, opts ...reqOpt) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

// wireError is the parsed contract error body.
type wireError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// assertError checks status, the exact four-key shape, type, code, a null
// or given param, JSON content type and the x-request-id header.
func assertError(t *testing.T, status int, hdr http.Header, body []byte, wantStatus int, wantType, wantCode, wantParam string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d; body %s", status, wantStatus, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q", ct)
	}
	if hdr.Get(HeaderRequestID) == "" {
		t.Errorf("no x-request-id on error")
	}
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 1 || len(raw["error"]) != 4 {
		t.Fatalf("error shape: %s (%v)", body, err)
	}
	var e struct{ Error wireError }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Message == "" || e.Error.Type != wantType || e.Error.Code == nil || *e.Error.Code != wantCode {
		t.Errorf("error %s, want type %s code %s", body, wantType, wantCode)
	}
	if wantParam == "" && e.Error.Param != nil || wantParam != "" && (e.Error.Param == nil || *e.Error.Param != wantParam) {
		t.Errorf("param in %s, want %q", body, wantParam)
	}
}

func assertRecError(t *testing.T, w *httptest.ResponseRecorder, wantStatus int, wantType, wantCode, wantParam string) {
	t.Helper()
	assertError(t, w.Code, w.Header(), w.Body.Bytes(), wantStatus, wantType, wantCode, wantParam)
}

// countingReader records whether the body was read at all.
type countingReader struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func TestAuth(t *testing.T) {
	keys := []string{"sk-one", "sk-two-longer-key"}
	e := testEngine(keys, nil)
	ok := []string{"Bearer sk-one", "bearer sk-two-longer-key", "BEARER sk-one", "BeArEr   sk-one", "Bearer\tsk-one", " Bearer sk-one "}
	for _, h := range ok {
		t.Run("ok "+h, func(t *testing.T) {
			w := serve(e, "POST", "/v1/chat/completions", strings.NewReader(validBody), header("Authorization", h))
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if w.Header().Get("WWW-Authenticate") != "" {
				t.Fatal("WWW-Authenticate on success")
			}
		})
	}
	bad := map[string]string{
		"missing":       "",
		"wrong key":     "Bearer sk-three",
		"prefix of key": "Bearer sk-on",
		"key plus junk": "Bearer sk-onee",
		"no scheme":     "sk-one",
		"basic":         "Basic sk-one",
		"scheme only":   "Bearer",
		"scheme space":  "Bearer ",
		"glued":         "Bearersk-one",
		"two tokens":    "Bearer sk-one sk-two-longer-key",
		"token scheme":  "Token sk-one",
	}
	for name, h := range bad {
		t.Run("bad "+name, func(t *testing.T) {
			var opts []reqOpt
			if h != "" {
				opts = append(opts, header("Authorization", h))
			}
			w := serve(e, "POST", "/v1/chat/completions", strings.NewReader(validBody), opts...)
			assertRecError(t, w, 401, TypeAuthentication, CodeInvalidAPIKey, "")
			if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
				t.Fatalf("WWW-Authenticate %q", got)
			}
		})
	}
	t.Run("GET models needs key too", func(t *testing.T) {
		w := serve(e, "GET", "/v1/models", nil)
		assertRecError(t, w, 401, TypeAuthentication, CodeInvalidAPIKey, "")
		w = serve(e, "GET", "/v1/models/asi1-mini", nil, header("Authorization", "Bearer sk-one"))
		if w.Code != 200 {
			t.Fatal(w.Code)
		}
	})
	t.Run("health never needs a key", func(t *testing.T) {
		if w := serve(e, "GET", "/health", nil); w.Code != 200 {
			t.Fatal(w.Code)
		}
	})
	t.Run("checked before the body is read", func(t *testing.T) {
		cr := &countingReader{r: strings.NewReader(validBody)}
		w := serve(e, "POST", "/v1/chat/completions", cr, header("Authorization", "Bearer nope"))
		assertRecError(t, w, 401, TypeAuthentication, CodeInvalidAPIKey, "")
		if cr.read.Load() != 0 {
			t.Fatal("body was read before auth")
		}
		// 401 wins over 413 and over a bad content type.
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader("x"))
		r.ContentLength = 1 << 40
		r.Header.Set("Content-Type", "text/plain")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, r)
		assertRecError(t, rec, 401, TypeAuthentication, CodeInvalidAPIKey, "")
	})
	t.Run("no keys configured", func(t *testing.T) {
		for _, keys := range [][]string{nil, {}, {""}} {
			open := testEngine(keys, nil)
			for _, h := range []string{"", "Bearer whatever", "garbage"} {
				var opts []reqOpt
				if h != "" {
					opts = append(opts, header("Authorization", h))
				}
				if w := serve(open, "POST", "/v1/chat/completions", strings.NewReader(validBody), opts...); w.Code != 200 {
					t.Fatalf("keys %q header %q: %d %s", keys, h, w.Code, w.Body)
				}
			}
		}
	})
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer a": "a", "bearer  b ": "b", "bEaReR\tc": "c"} {
		if got, ok := bearerToken(in); !ok || got != want {
			t.Errorf("%q -> %q %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "a", "Bearer", "Bearer ", "Bearer a b", "Beare a", "Bearer\u00a0a"} {
		if got, ok := bearerToken(in); ok {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestRequireJSON(t *testing.T) {
	e := testEngine(nil, nil)
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "APPLICATION/JSON;CHARSET=UTF-8", "application/json ; charset=\"utf-8\"", "application/json; charset"} {
		t.Run("ok "+ct, func(t *testing.T) {
			w := serve(e, "POST", "/v1/chat/completions", strings.NewReader(validBody), header("Content-Type", ct))
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
	for _, ct := range []string{"", "text/plain", "application/jsonx", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "json", "application/json-patch+json", "application/*", ";", "application/json, text/plain"} {
		t.Run("bad "+ct, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(validBody))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, r)
			assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidContentType, "")
		})
	}
	t.Run("GET needs no content type", func(t *testing.T) {
		if w := serve(e, "GET", "/v1/models", nil); w.Code != 200 {
			t.Fatal(w.Code)
		}
	})
}

func TestNoRouteNoMethod(t *testing.T) {
	e := testEngine([]string{"k"}, nil)
	for _, c := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/nope"}, {"POST", "/v1/completion"}, {"GET", "/v1/chat"}, {"POST", "/v1/audio/speech"},
	} {
		t.Run("404 "+c.method+" "+c.path, func(t *testing.T) {
			w := serve(e, c.method, c.path, nil)
			assertRecError(t, w, 404, TypeInvalidRequest, CodeUnknownURL, "")
		})
	}
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/v1/chat/completions", "POST"},
		{"DELETE", "/v1/chat/completions", "POST"},
		{"GET", "/v1/completions", "POST"},
		{"POST", "/v1/models", "GET, HEAD"},
		{"PUT", "/v1/models/asi1-mini", "GET, HEAD"},
		{"POST", "/health", "GET, HEAD"},
	} {
		t.Run("405 "+c.method+" "+c.path, func(t *testing.T) {
			w := serve(e, c.method, c.path, nil)
			assertRecError(t, w, 405, TypeInvalidRequest, CodeMethodNotAllowed, "")
			if got := w.Header().Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
		})
	}
}

func TestBodyLimitRecorder(t *testing.T) {
	e := testEngine(nil, nil)
	t.Run("declared Content-Length is refused unread", func(t *testing.T) {
		cr := &countingReader{r: strings.NewReader(validBody)}
		r := httptest.NewRequest("POST", "/v1/chat/completions", cr)
		r.ContentLength = testLimit + 1
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		assertRecError(t, w, 413, TypeInvalidRequest, CodeRequestTooLarge, "")
		if cr.read.Load() != 0 {
			t.Fatal("body read")
		}
	})
	t.Run("unknown length over the limit", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/v1/chat/completions", io.MultiReader(strings.NewReader(`{"x":"`), strings.NewReader(strings.Repeat("a", testLimit))))
		r.ContentLength = -1
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		assertRecError(t, w, 413, TypeInvalidRequest, CodeRequestTooLarge, "")
	})
	t.Run("exactly at the limit is read", func(t *testing.T) {
		pad := testLimit - len(validBody)
		body := validBody[:len(validBody)-1] + `,"pad":"` + strings.Repeat("a", pad-9) + `"}`
		if len(body) != testLimit {
			t.Fatalf("len %d", len(body))
		}
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
		r.ContentLength = -1
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
	t.Run("bad JSON after the limit check is 400", func(t *testing.T) {
		w := serve(e, "POST", "/v1/chat/completions", strings.NewReader(`{`))
		assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidJSON, "")
		w = serve(e, "POST", "/v1/chat/completions", strings.NewReader(``))
		assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidJSON, "")
		w = serve(e, "POST", "/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[],"temperature":9}`))
		assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidValue, "messages")
	})
}

// TestBodyLimitRealServer sends 10 MB over real TCP connections and checks
// that the 413 body reaches the client before the connection closes.
func TestBodyLimitRealServer(t *testing.T) {
	e := testEngine(nil, nil)
	var seenLength atomic.Int64 // Content-Length of the last request as the server saw it
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenLength.Store(r.ContentLength)
		e.ServeHTTP(w, r)
	}))
	defer srv.Close()
	big := bytes.Repeat([]byte("a"), 10<<20)
	copy(big, `{"model":"m","messages":[{"role":"user","content":"`)

	check := func(t *testing.T, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading 413 body: %v", err)
		}
		assertError(t, resp.StatusCode, resp.Header, body, 413, TypeInvalidRequest, CodeRequestTooLarge, "")
	}
	for _, mode := range []string{"content-length", "chunked"} {
		t.Run("http.Client "+mode, func(t *testing.T) {
			for i := 0; i < 5; i++ {
				var body io.Reader = bytes.NewReader(big)
				if mode == "chunked" {
					body = io.MultiReader(body) // hides the length: chunked encoding
				}
				req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", body)
				req.Header.Set("Content-Type", "application/json")
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatalf("try %d: %v", i, err)
				}
				wantLength := int64(len(big))
				if mode == "chunked" {
					wantLength = -1
				}
				if got := seenLength.Load(); got != wantLength {
					t.Fatalf("server saw Content-Length %d, want %d", got, wantLength)
				}
				check(t, resp)
			}
		})
		// A raw client that writes the whole body before reading anything,
		// the worst case for an early answer.
		t.Run("raw TCP "+mode, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			hdr := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			if mode == "chunked" {
				hdr += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				hdr += "Content-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n"
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // write errors (reset after the answer) are expected
				defer wg.Done()
				if _, err := io.WriteString(conn, hdr); err != nil {
					return
				}
				for off := 0; off < len(big); off += 64 << 10 {
					chunk := big[off:min(off+64<<10, len(big))]
					if mode == "chunked" {
						if _, err := io.WriteString(conn, strconv.FormatInt(int64(len(chunk)), 16)+"\r\n"); err != nil {
							return
						}
					}
					if _, err := conn.Write(chunk); err != nil {
						return
					}
					if mode == "chunked" {
						if _, err := io.WriteString(conn, "\r\n"); err != nil {
							return
						}
					}
				}
				if mode == "chunked" {
					io.WriteString(conn, "0\r\n\r\n")
				}
			}()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading response: %v", err)
			}
			check(t, resp)
			if mode == "chunked" && seenLength.Load() != -1 {
				t.Fatalf("not chunked: %d", seenLength.Load())
			}
			if !resp.Close {
				t.Errorf("connection should be closed after a 413")
			}
			conn.Close()
			wg.Wait()
		})
	}
	t.Run("connection reusable after a small request", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(validBody))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatal(resp.StatusCode)
			}
		}
	})
}

func TestRecovery(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	e := testEngine(nil, logger)
	w := serve(e, "GET", "/panic", nil)
	assertRecError(t, w, 500, TypeServer, CodeInternal, "")
	if w.Header().Get(HeaderRequestID) == "" {
		t.Fatal("no request id")
	}
	log := buf.String()
	if !strings.Contains(log, "boom") || !strings.Contains(log, "stack=") || !strings.Contains(log, "request_id=req_") || !strings.Contains(log, "middleware_test.go") {
		t.Fatalf("log %s", log)
	}
	t.Run("ErrAbortHandler is re-raised", func(t *testing.T) {
		defer func() {
			if rec := recover(); rec != http.ErrAbortHandler {
				t.Fatalf("recovered %v", rec)
			}
		}()
		serve(e, "GET", "/abort", nil)
		t.Fatal("no panic")
	})
	t.Run("real server keeps serving", func(t *testing.T) {
		srv := httptest.NewServer(testEngine(nil, slog.New(slog.NewTextHandler(io.Discard, nil))))
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/panic")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assertError(t, resp.StatusCode, resp.Header, body, 500, TypeServer, CodeInternal, "")
		resp, err = http.Get(srv.URL + "/health")
		if err != nil || resp.StatusCode != 200 {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}

func TestSessionID(t *testing.T) {
	e := testEngine(nil, nil)
	sid := strings.Repeat("s", MaxSessionIDBytes)
	w := serve(e, "POST", "/v1/chat/completions", strings.NewReader(validBody), header(HeaderSessionID, sid))
	if w.Code != 200 || w.Header().Get(HeaderSessionID) != sid || !strings.Contains(w.Body.String(), sid) {
		t.Fatalf("%d %q", w.Code, w.Header().Get(HeaderSessionID))
	}
	w = serve(e, "POST", "/v1/chat/completions", strings.NewReader(validBody), header(HeaderSessionID, sid+"s"))
	assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidValue, "")
	if w.Header().Get(HeaderSessionID) != "" {
		t.Fatal("oversized session id echoed")
	}
	w = serve(e, "GET", "/health", nil)
	if _, ok := w.Header()[http.CanonicalHeaderKey(HeaderSessionID)]; ok {
		t.Fatal("header without session")
	}
	// multi-byte characters count in bytes
	w = serve(e, "GET", "/v1/models", nil, header(HeaderSessionID, strings.Repeat("é", 129)))
	assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidValue, "")
	// The probes are not the API: they never refuse a session id.
	w = serve(e, "GET", "/health", nil, header(HeaderSessionID, strings.Repeat("é", 129)))
	if w.Code != 200 {
		t.Fatalf("/health with an oversized session id: %d", w.Code)
	}
}

func TestRequestIDAndWriteError(t *testing.T) {
	e := testEngine(nil, nil)
	w := serve(e, "GET", "/health", nil, header(HeaderRequestID, "client-chosen"))
	if got := w.Header().Get(HeaderRequestID); !strings.HasPrefix(got, "req_") {
		t.Fatalf("request id %q", got)
	}
	w = serve(e, "POST", "/v1/chat/completions", strings.NewReader(validBody))
	if got := w.Header().Get(HeaderRequestID); got != "id_completion000000" || !strings.Contains(w.Body.String(), got) {
		t.Fatalf("SetRequestID: header %q body %s", got, w.Body)
	}
	w = serve(e, "GET", "/overloaded", nil)
	assertRecError(t, w, 503, TypeServer, CodeOverloaded, "")
	if w.Header().Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	w = serve(e, "GET", "/late-error", nil)
	if w.Code != 200 || w.Body.String() != "partial" {
		t.Fatalf("late error changed a started response: %d %q", w.Code, w.Body)
	}
	t.Run("param is sent", func(t *testing.T) {
		w := serve(e, "POST", "/v1/chat/completions", strings.NewReader(withBase(`"temperature":2.5`)))
		assertRecError(t, w, 400, TypeInvalidRequest, CodeInvalidValue, "temperature")
		want := `{"error":{"message":"temperature must be between 0 and 2, got 2.5","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`
		if w.Body.String() != want {
			t.Fatalf("body %s", w.Body)
		}
	})
	t.Run("nil error is a 500", func(t *testing.T) {
		gin.SetMode(gin.TestMode)
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest("GET", "/", nil)
		WriteError(c, nil)
		if rec.Code != 500 || !c.IsAborted() {
			t.Fatal(rec.Code)
		}
	})
}

func TestReadBodyErrors(t *testing.T) {
	gin.SetMode(gin.TestMode)
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader("{"), errReader{}))
	_, aerr := ReadBody(c)
	if aerr == nil || aerr.Status != 400 || aerr.Code != CodeInvalidJSON {
		t.Fatalf("%v", aerr)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
