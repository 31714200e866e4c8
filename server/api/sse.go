package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Server-sent events (https://html.spec.whatwg.org/multipage/server-sent-events.html).
//
// The chat stream's framing (contract section 7) is one line
// "data: <compact JSON>" and a blank line per event, LF line ends, and
// "data: [DONE]" last; comment lines (": keep-alive") may come between
// events. Named events ("event: NAME\ndata: ...\n\n") are what the
// Responses API streams; the writer and the reader handle both.

const dataPrefix = "data: "

// DoneData is the data of the last event of a chat stream.
const DoneData = "[DONE]"

// DoneEvent is the whole last event of a chat stream.
const DoneEvent = "data: [DONE]\n\n"

// KeepAliveEvent is the comment a server sends while an answer is queued.
const KeepAliveEvent = ": keep-alive\n\n"

// SetSSEHeaders sets the response headers of an event stream.
func SetSSEHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// AppendEvent appends an event with data to b: "event: NAME\n" when name
// is not empty, one "data: " line per line of data (LF, CRLF or CR ends a
// line), and the blank line that ends the event.
func AppendEvent(b []byte, name string, data []byte) []byte {
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, dataPrefix...)
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, dataPrefix...)
	b = append(b, data...)
	return append(b, '\n', '\n')
}

// AppendJSONEvent appends the event of v encoded with encoding/json: one
// data line, since encoding/json writes no line break (it escapes them in
// strings), so the data is not searched for one.
func AppendJSONEvent(b []byte, name string, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("encode event: %w", err)
	}
	if name != "" {
		b = append(append(append(b, "event: "...), name...), '\n')
	}
	b = append(b, dataPrefix...)
	b = append(b, j...)
	return append(b, '\n', '\n'), nil
}

// SSEWriter writes events to W and flushes after each one when W can
// (http.ResponseWriter and gin's writer can). It is not safe for
// concurrent use.
type SSEWriter struct {
	W   io.Writer
	buf []byte
}

// NewSSEWriter returns a writer of events to w.
func NewSSEWriter(w io.Writer) *SSEWriter { return &SSEWriter{W: w} }

// Data writes v as a data-only event (the chat stream's events).
func (w *SSEWriter) Data(v any) error { return w.Event("", v) }

// Event writes v as an event named name ("" for none).
func (w *SSEWriter) Event(name string, v any) error {
	b, err := AppendJSONEvent(w.buf[:0], name, v)
	if err != nil {
		return err
	}
	w.buf = b
	return w.Raw(b)
}

// Done writes "data: [DONE]".
func (w *SSEWriter) Done() error { return w.Raw([]byte(DoneEvent)) }

// Comment writes a comment line (a keep-alive); text must be one line.
func (w *SSEWriter) Comment(text string) error {
	w.buf = append(append(append(w.buf[:0], ": "...), text...), "\n\n"...)
	return w.Raw(w.buf)
}

// Raw writes a whole event already framed (ChunkEncoder.AppendText,
// AppendEvent) and flushes.
func (w *SSEWriter) Raw(event []byte) error {
	if _, err := w.W.Write(event); err != nil {
		return err
	}
	switch f := w.W.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// SSEEvent is one event read from a stream. Data is only valid until the
// next call of Next.
type SSEEvent struct {
	// Name is the event: field; "" for a data-only event (the "message"
	// event of the specification).
	Name string
	// Data is the data lines joined with "\n".
	Data []byte
	// ID is the last id: field seen in the stream.
	ID string
}

// IsDone reports whether the event is the chat stream's "data: [DONE]".
func (e *SSEEvent) IsDone() bool { return e.Name == "" && string(e.Data) == DoneData }

// MaxSSELine is the longest line an SSEReader reads (16 MiB).
const MaxSSELine = 16 << 20

// SSEReader reads server-sent events: data-only and named events, comment
// lines, data split over several lines, and LF, CRLF or CR line ends.
type SSEReader struct {
	sc      *bufio.Scanner
	data    []byte
	name    string
	id      string
	pending bool // a field was read since the last event
	started bool
}

// NewSSEReader reads events from r.
func NewSSEReader(r io.Reader) *SSEReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 32<<10), MaxSSELine)
	sc.Split(scanSSELines)
	return &SSEReader{sc: sc}
}

// ErrSSETruncated is returned by Next when the stream ends in the middle
// of an event (the event is not returned).
var ErrSSETruncated = fmt.Errorf("event stream ended inside an event: %w", io.ErrUnexpectedEOF)

// Next returns the next event. At the end of the stream it returns io.EOF,
// or ErrSSETruncated when the stream stopped inside an event; a read
// error (a line over MaxSSELine, a dropped connection) is returned as is.
func (r *SSEReader) Next() (SSEEvent, error) {
	r.data = r.data[:0]
	hasData := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a byte order mark
		}
		if len(line) == 0 {
			name := r.name
			r.name, r.pending = "", false
			if !hasData {
				continue // an event without data is not dispatched
			}
			return SSEEvent{Name: name, Data: r.data, ID: r.id}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		r.pending = true
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.id = string(value)
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return SSEEvent{}, fmt.Errorf("event stream line longer than %d bytes: %w", MaxSSELine, err)
		}
		return SSEEvent{}, err
	}
	if r.pending {
		r.pending = false
		return SSEEvent{}, ErrSSETruncated
	}
	return SSEEvent{}, io.EOF
}

// scanSSELines splits lines ended by LF, CRLF or CR, without the ends.
func scanSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0:
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data):
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a CR at the end of the buffer: CRLF or CR?
}
