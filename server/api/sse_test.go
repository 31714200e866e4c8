package api

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every event of s; the last string is the error that ended
// the reading.
func readAll(s string, r io.Reader) []string {
	if r == nil {
		r = strings.NewReader(s)
	}
	sr := NewSSEReader(r)
	var out []string
	for {
		ev, err := sr.Next()
		if err != nil {
			return append(out, "err:"+err.Error())
		}
		e := ev.Name + "|" + string(ev.Data)
		if ev.ID != "" {
			e += "|id=" + ev.ID
		}
		out = append(out, e)
	}
}

func TestSSEReader(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"chat framing", "data: {\"a\":1}\n\n: keep-alive\n\ndata: [DONE]\n\n", []string{`|{"a":1}`, "|[DONE]", "err:EOF"}},
		{"named events", "event: response.created\ndata: {\"x\":1}\n\nevent: response.output_text.delta\ndata: {\"d\":\"hi\"}\n\n",
			[]string{`response.created|{"x":1}`, `response.output_text.delta|{"d":"hi"}`, "err:EOF"}},
		{"multi-line data", "data: line one\ndata:line two\ndata\n\n", []string{"|line one\nline two\n", "err:EOF"}},
		{"CRLF", "data: a\r\n\r\nevent: e\r\ndata: b\r\n\r\n", []string{"|a", "e|b", "err:EOF"}},
		{"CR", "data: a\r\rdata: b\r\r", []string{"|a", "|b", "err:EOF"}},
		{"comments and unknown fields", ":c\nretry: 10\nfoo: bar\ndata: x\n\n", []string{"|x", "err:EOF"}},
		{"id kept", "id: 7\ndata: x\n\ndata: y\n\n", []string{"|x|id=7", "|y|id=7"}},
		{"no data: not dispatched", "event: ping\n\ndata: x\n\n", []string{"|x", "err:EOF"}},
		{"one space stripped", "data:  two\n\n", []string{"| two", "err:EOF"}},
		{"byte order mark", "\xef\xbb\xbfdata: x\n\n", []string{"|x", "err:EOF"}},
		{"truncated event", "data: x\n\ndata: {\"cut", []string{"|x", "err:" + ErrSSETruncated.Error()}},
		{"truncated before blank line", "data: [DONE]\n", []string{"err:" + ErrSSETruncated.Error()}},
		{"empty", "", []string{"err:EOF"}},
	}
	for _, c := range cases {
		got := readAll(c.in, nil)
		if c.name == "id kept" {
			got = got[:2]
		}
		if strings.Join(got, "§") != strings.Join(c.want, "§") {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		// Byte by byte, a CR at the end of a read must wait for the next.
		if got2 := readAll("", iotest.OneByteReader(strings.NewReader(c.in))); c.name != "id kept" && strings.Join(got2, "§") != strings.Join(c.want, "§") {
			t.Errorf("%s one byte at a time:\n got %q\nwant %q", c.name, got2, c.want)
		}
	}
	if _, err := NewSSEReader(strings.NewReader("data: x\n\n")).Next(); err != nil {
		t.Fatal(err)
	}
	long := "data: " + strings.Repeat("a", MaxSSELine) + "\n\n"
	if _, err := NewSSEReader(strings.NewReader(long)).Next(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long line: %v", err)
	}
	if !errors.Is(ErrSSETruncated, io.ErrUnexpectedEOF) {
		t.Error("ErrSSETruncated is not io.ErrUnexpectedEOF")
	}
}

// The writer's framing is the server's: data-only events, named events,
// [DONE], comments; what it writes reads back.
func TestSSEWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewSSEWriter(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Data(map[string]string{"a": "<b>"}))
	must(w.Comment("keep-alive"))
	must(w.Event("response.created", struct {
		X int `json:"x"`
	}{1}))
	must(w.Raw(AppendEvent(nil, "", []byte("two\nlines\r\nthree\rfour"))))
	must(w.Done())
	want := "data: {\"a\":\"\\u003cb\\u003e\"}\n\n" + KeepAliveEvent + "event: response.created\ndata: {\"x\":1}\n\n" +
		"data: two\ndata: lines\ndata: three\ndata: four\n\n" + DoneEvent
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
	got := readAll(buf.String(), nil)
	wantEv := []string{`|{"a":"\u003cb\u003e"}`, `response.created|{"x":1}`, "|two\nlines\nthree\nfour", "|[DONE]", "err:EOF"}
	if strings.Join(got, "§") != strings.Join(wantEv, "§") {
		t.Errorf("read back %q", got)
	}
	if err := w.Data(func() {}); err == nil {
		t.Error("a value that cannot be encoded was written")
	}
}

// The writer flushes an http.ResponseWriter after each event.
func TestSSEWriterFlushes(t *testing.T) {
	rec := httptest.NewRecorder()
	SetSSEHeaders(rec.Header())
	w := NewSSEWriter(rec)
	if err := w.Done(); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed || rec.Body.String() != DoneEvent || rec.Header().Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Errorf("flushed %v body %q headers %v", rec.Flushed, rec.Body.String(), rec.Header())
	}
}
