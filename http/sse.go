package http

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/runnel/runnel"
)

// SSEReader reads runnel events from a Server-Sent Events stream, as the
// HTML standard's parser does: lines end in LF, CRLF or CR, split at any
// byte across reads; "event", "data" (several join with LF), "id" and
// "retry" fields; comment lines (": ping") ignored; a blank line dispatches.
// An event's data is the JSON of a runnel event's data, and an id of the
// form "run.seq" sets the event's Run and Seq. Like the NDJSON Reader it
// refuses lines longer than its limit. An event left incomplete at the end
// of the stream is dropped, as the standard says.
type SSEReader struct {
	r   *bufio.Reader
	max int
	buf []byte

	typ   string
	data  []byte
	id    string // the last event id, which persists across events
	ownID bool   // the event being read has an id field of its own
	retry int    // the last retry field, in milliseconds; 0 if none
	crlf  bool   // the last line ended in CR: a following LF is its end
}

// NewSSEReader returns an SSEReader on r that accepts lines of up to
// maxLine bytes; maxLine <= 0 means DefaultMaxLine.
func NewSSEReader(r io.Reader, maxLine int) *SSEReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &SSEReader{r: bufio.NewReaderSize(r, min(maxLine+1, 64<<10)), max: maxLine}
}

// LastEventID returns the id of the last event read, as an EventSource
// would send it in Last-Event-ID.
func (d *SSEReader) LastEventID() string { return d.id }

// Retry returns the reconnection time the stream asked for, in
// milliseconds, or 0.
func (d *SSEReader) Retry() int { return d.retry }

// Next returns the next event. It returns io.EOF at the end of the stream,
// an *runnel.Error with ELINETOOLONG or EMALFORMED for a line over the
// limit or data that is not a runnel event, and the underlying error if
// reading fails.
func (d *SSEReader) Next() (runnel.Event, error) {
	for {
		line, err := d.line()
		if err != nil {
			return runnel.Event{}, err
		}
		if len(line) == 0 {
			if e, ok, err := d.dispatch(); ok || err != nil {
				return e, err
			}
			continue
		}
		d.field(line)
	}
}

// field processes one non-blank line.
func (d *SSEReader) field(line []byte) {
	if line[0] == ':' {
		return // a comment
	}
	name, value, found := bytes.Cut(line, []byte(":"))
	if found && len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	switch string(name) {
	case "event":
		d.typ = string(value)
	case "data":
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.id, d.ownID = string(value), true
		}
	case "retry":
		n := 0
		for _, c := range value {
			if c < '0' || c > '9' {
				return
			}
			n = n*10 + int(c-'0')
		}
		if len(value) > 0 {
			d.retry = n
		}
	}
}

// dispatch turns the fields gathered since the last blank line into an
// event; ok is false when there was nothing to dispatch.
func (d *SSEReader) dispatch() (e runnel.Event, ok bool, err error) {
	typ, data, own := d.typ, d.data, d.ownID
	d.typ, d.data, d.ownID = "", d.data[:0], false
	if len(data) == 0 {
		return runnel.Event{}, false, nil // no data: the standard dispatches nothing
	}
	data = data[:len(data)-1]
	if typ == "" {
		typ = "message"
	}
	// An event is numbered by an id of its own; one without (an error the
	// response made up, outside the run) keeps Seq -1.
	e = runnel.Event{Type: runnel.EventType(typ), Seq: -1}
	if run, seq, ok := parseEventID(d.id); ok && own {
		e.Run, e.Seq = run, seq
	}
	if err := e.UnmarshalData(data); err != nil {
		return runnel.Event{}, false, &runnel.Error{Code: runnel.EMALFORMED,
			Message: fmt.Sprintf("The stream sent a %s event that is not protocol v1.1: %v.", typ, err)}
	}
	return e, true, nil
}

// line returns the next line without its end, or io.EOF at the end of the
// stream (an unterminated last line is dropped with the event it is in).
func (d *SSEReader) line() ([]byte, error) {
	d.buf = d.buf[:0]
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, err
		}
		if d.crlf {
			d.crlf = false
			if c == '\n' {
				continue // the LF of a CRLF
			}
		}
		switch c {
		case '\n':
			return d.buf, nil
		case '\r':
			d.crlf = true
			return d.buf, nil
		}
		if len(d.buf) == d.max {
			return nil, &runnel.Error{Code: runnel.ELINETOOLONG,
				Message: fmt.Sprintf("The stream sent a line longer than %d bytes.", d.max)}
		}
		d.buf = append(d.buf, c)
	}
}
