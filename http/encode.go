package http

import (
	"strconv"

	"github.com/runnel/runnel"
)

// An encoder frames events for one transport. Each method appends to b and
// returns it; the pump owns the buffer and decides when it is written.
// Events read from a run have Run and Seq set; an event the pump makes up
// itself (a follower's own timeout) has Run empty.
type encoder interface {
	contentType() string
	begin(b []byte) []byte
	event(b []byte, e *runnel.Event) ([]byte, error)
	ping(b []byte) []byte
}

// ndjson is protocol v1's framing: one JSON object a line. Lines carry no
// run id or number: a client counts lines.
type ndjson struct{}

func (ndjson) contentType() string   { return "application/x-ndjson" }
func (ndjson) begin(b []byte) []byte { return b }
func (ndjson) ping(b []byte) []byte  { return append(b, `{"type":"ping"}`+"\n"...) }
func (ndjson) event(b []byte, e *runnel.Event) ([]byte, error) {
	b, err := e.AppendJSON(b)
	return append(b, '\n'), err
}

// ndjsonText is NDJSON labelled as plain text, for a browser that opens a
// stream's address itself: it shows the events instead of downloading them
// as a file. The bytes are NDJSON's.
type ndjsonText struct{ ndjson }

func (ndjsonText) contentType() string { return "text/plain; charset=utf-8" }

// sseRetry is the reconnection delay, in milliseconds, an SSE stream asks
// an EventSource to wait after a drop before it resumes.
const sseRetry = 1000

// sse is Server-Sent Events: "event:" the type, "id:" the run and the
// number (so a reconnecting EventSource's Last-Event-ID names where to
// resume), "data:" the event's data as one line of JSON (JSON has no raw
// newlines), and comments as heartbeats.
type sse struct{}

func (sse) contentType() string { return "text/event-stream" }
func (sse) begin(b []byte) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, sseRetry, 10)
	return append(b, "\n\n"...)
}
func (sse) ping(b []byte) []byte { return append(b, ": ping\n\n"...) }
func (sse) event(b []byte, e *runnel.Event) ([]byte, error) {
	b = append(b, "event: "...)
	b = append(b, e.Type...)
	if e.Run != "" {
		b = append(b, "\nid: "...)
		b = appendEventID(b, e.Run, e.Seq)
	}
	b = append(b, "\ndata: "...)
	b, err := e.AppendData(b)
	return append(b, "\n\n"...), err
}

// appendEventID appends the SSE id of event seq of run: "run.seq". Run ids
// are base64url and never hold a dot, CR, LF or NUL.
func appendEventID(b []byte, run string, seq int) []byte {
	b = append(b, run...)
	b = append(b, '.')
	return strconv.AppendInt(b, int64(seq), 10)
}

// wsMessage is a WebSocket text message: the NDJSON line's object with the
// run id and number added, since a socket carries several runs and has no
// headers of its own.
type wsMessage struct{}

func (wsMessage) contentType() string   { return "" }
func (wsMessage) begin(b []byte) []byte { return b }
func (wsMessage) ping(b []byte) []byte  { return b } // pings are WebSocket control frames
func (wsMessage) event(b []byte, e *runnel.Event) ([]byte, error) {
	b, err := e.AppendJSON(b)
	if err != nil || e.Run == "" {
		return b, err
	}
	b = b[:len(b)-1] // the closing brace
	b = append(b, `,"run":`...)
	b = appendJSONString(b, e.Run)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(e.Seq), 10)
	return append(b, '}'), nil
}

// appendJSONString appends s, which holds only URL-safe characters, as a
// JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
