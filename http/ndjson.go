package http

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/runnel/runnel"
)

// DefaultMaxLine is the longest protocol line a Reader accepts by default:
// 1 MiB, far above any event runnel sends (a sources event is a few KiB).
const DefaultMaxLine = 1 << 20

// Reader reads protocol v1 events from an NDJSON stream. It accepts lines
// split at any byte across reads, skips blank lines, accepts a final line
// without a newline, and refuses lines longer than its limit instead of
// growing without bound.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader on r that accepts lines of up to maxLine bytes
// (without the newline); maxLine <= 0 means DefaultMaxLine.
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Reader{r: bufio.NewReaderSize(r, min(maxLine+1, 64<<10)), max: maxLine}
}

// Next returns the next event. It returns io.EOF at the end of the stream,
// a *runnel.Error with code ELINETOOLONG for a line over the limit, one with
// EMALFORMED for a line that is not a protocol event, and the underlying
// error if reading fails. After an error other than io.EOF the stream is
// out of step and the Reader must not be used again.
func (d *Reader) Next() (runnel.Event, error) {
	for {
		line, final, err := d.line()
		if len(line) > 0 {
			var e runnel.Event
			if jerr := json.Unmarshal(line, &e); jerr != nil {
				if final {
					return runnel.Event{}, &runnel.Error{Code: runnel.ETRUNCATED,
						Message: "The stream ended in the middle of an event.", Retryable: true}
				}
				return runnel.Event{}, &runnel.Error{Code: runnel.EMALFORMED,
					Message: fmt.Sprintf("The stream sent a line that is not an event: %v.", jerr)}
			}
			return e, nil
		}
		if err != nil {
			return runnel.Event{}, err
		}
	}
}

// line returns the next line without surrounding white space, or nil at a
// blank line. At the end of the stream it returns a final unterminated line
// with final set and a nil error, then io.EOF.
func (d *Reader) line() (line []byte, final bool, err error) {
	d.buf = d.buf[:0]
	for {
		var chunk []byte
		chunk, err = d.r.ReadSlice('\n')
		n := len(d.buf) + len(chunk)
		if err == nil {
			n-- // the newline does not count
		}
		if n > d.max {
			return nil, false, &runnel.Error{Code: runnel.ELINETOOLONG,
				Message: fmt.Sprintf("The stream sent a line longer than %d bytes.", d.max)}
		}
		d.buf = append(d.buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSpace(d.buf), false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(d.buf) > 0:
			if line := bytes.TrimSpace(d.buf); len(line) > 0 {
				return line, true, nil
			}
			return nil, false, io.EOF
		default:
			return nil, false, err
		}
	}
}
