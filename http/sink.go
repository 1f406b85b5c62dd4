package http

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// A sink carries encoded events to one client. write sends buf, which holds
// one or more whole events; ends gives the offset where each one ends, for
// framings in which every event is its own message.
type sink interface {
	write(buf []byte, ends []int) error
}

// responseSink writes to an HTTP response: one Write and one Flush for the
// whole buffer, under a write deadline, so a client that stops reading is
// dropped instead of holding the stream.
//
// Setting a deadline costs a change to the runtime's timers, a few percent
// of the CPU of a server that writes each token as it comes, so the sink
// moves its deadline only when less than three quarters of the timeout is
// left: every write gets between 3/4 of the timeout and all of it.
type responseSink struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline time.Time // the write deadline set last
}

func newResponseSink(w http.ResponseWriter, timeout time.Duration) *responseSink {
	return &responseSink{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *responseSink) write(buf []byte, _ []int) error {
	if now := time.Now(); s.deadline.Sub(now) < s.timeout*3/4 {
		s.deadline = now.Add(s.timeout)
		if err := s.rc.SetWriteDeadline(s.deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// wsSink writes each event as a text message on a WebSocket.
type wsSink struct {
	ctx     context.Context
	conn    *websocket.Conn
	timeout time.Duration
}

func (s *wsSink) write(buf []byte, ends []int) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	start := 0
	for _, end := range ends {
		if err := s.conn.Write(ctx, websocket.MessageText, buf[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}
