package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/runnel/runnel"
)

// queueLen bounds the events a producer may get ahead of a slow client.
// Beyond it the producer blocks, so a client that reads slowly slows its
// own generation instead of growing a buffer.
const queueLen = 32

// deadlineMargin is the time kept before a request's own deadline to
// write the terminal error event.
const deadlineMargin = 500 * time.Millisecond

// maxBatch caps the bytes written in one Write when events pile up.
const maxBatch = 32 << 10

// stream is one streamed answer: a producer goroutine runs the pipeline
// and sends events on a bounded channel; the handler goroutine encodes
// them, coalescing whatever is queued into one write and one flush.
//
// Every event but a token is a checkpoint: the producer waits until it has
// been flushed. What follows query (the search) and sources (generation)
// can keep a CPU busy for milliseconds, and on a single core the writer
// would not run until the producer yielded; the wait makes sure the client
// holds each stage before the next begins. Tokens do not wait, so a burst
// of them still coalesces.
type stream struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	rc     *http.ResponseController
	id     string
	buf    []byte
	acks   chan struct{} // a flush that carried a checkpoint event
	owed   bool          // the pending batch holds a checkpoint
	events int
	last   runnel.EventType
}

func newStream(s *Server, w http.ResponseWriter, r *http.Request) *stream {
	return &stream{s: s, w: w, r: r, rc: http.NewResponseController(w), id: requestID(r),
		buf: make([]byte, 0, 4096), acks: make(chan struct{}, 1)}
}

var (
	errShutdown = &runnel.Error{Code: runnel.EUNAVAILABLE, Message: "The server is shutting down; ask again.", Retryable: true}
	errTooLong  = &runnel.Error{Code: runnel.ETIMEOUT, Message: "The answer reached the maximum stream duration."}
)

func (st *stream) run(q runnel.Query) {
	s := st.s
	h := st.w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", st.id)
	st.w.WriteHeader(http.StatusOK)

	// The server's WriteTimeout would cut a long stream; each write sets
	// its own deadline instead, and the stream has a maximum duration.
	if err := st.rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.Logger.Warn("clear write deadline", "err", err)
	}
	max := s.MaxStreamDuration
	if max <= 0 {
		max = DefaultMaxStreamDuration
	}
	if dl, ok := st.r.Context().Deadline(); ok {
		// The request itself has a deadline (on AWS Lambda, the
		// invocation's): end the stream with an error event while there is
		// still time to write it, not when the platform kills the process.
		max = min(max, time.Until(dl)-deadlineMargin)
	}
	ctx, cancel := context.WithCancelCause(st.r.Context())
	defer cancel(nil)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, max, errTooLong)
	defer cancelTimeout()
	go func() {
		select {
		case <-s.stopping:
			cancel(errShutdown)
		case <-ctx.Done():
		}
	}()

	events := make(chan runnel.Event, queueLen)
	var answerErr error
	go func() {
		defer close(events)
		defer func() {
			if p := recover(); p != nil {
				s.Logger.Error("panic in answer", "request_id", st.id, "panic", p, "stack", string(debug.Stack()))
				answerErr = &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}
			}
		}()
		answerErr = s.Answerer.Answer(ctx, q, func(e runnel.Event) error {
			select {
			case events <- e:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			if e.Type == runnel.EventToken {
				return nil
			}
			select {
			case <-st.acks:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
	}()

	ping := s.PingInterval
	if ping <= 0 {
		ping = DefaultPingInterval
	}
	timer := time.NewTimer(ping)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				st.finish(ctx, answerErr)
				return
			}
			st.add(e)
			st.drain(events)
		case <-timer.C:
			st.add(runnel.Event{Type: runnel.EventPing})
		}
		if err := st.flush(); err != nil {
			// The client is gone or stopped reading: stop the work and
			// wait for the producer so nothing is left running.
			cancel(err)
			for range events {
			}
			st.log(slog.LevelInfo, "client left", err)
			return
		}
		timer.Reset(ping)
	}
}

// add appends e to the pending batch.
func (st *stream) add(e runnel.Event) {
	if e.Type == runnel.EventDone && e.Done != nil && e.Done.ID == "" {
		d := *e.Done
		d.ID = st.id
		e.Done = &d
	}
	b, err := e.AppendJSON(st.buf)
	if err != nil {
		// Only a bug can make an event unencodable; say so in the stream.
		st.s.Logger.Error("encode event", "request_id", st.id, "type", e.Type, "err", err)
		b, _ = runnel.Event{Type: runnel.EventError, Err: &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}}.AppendJSON(st.buf)
	}
	st.buf = append(b, '\n')
	st.owed = st.owed || (e.Type != runnel.EventToken && e.Type != runnel.EventPing)
	st.events++
	st.last = e.Type
}

// drain adds whatever events are already queued, so a burst goes out in one
// write, without waiting for events that are not there yet.
func (st *stream) drain(events <-chan runnel.Event) {
	for len(st.buf) < maxBatch {
		select {
		case e, ok := <-events:
			if !ok {
				return // run sees the close on its next receive
			}
			st.add(e)
		default:
			return
		}
	}
}

// flush writes the pending batch with a write deadline and flushes it.
func (st *stream) flush() error {
	if len(st.buf) == 0 {
		return nil
	}
	timeout := st.s.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	if err := st.rc.SetWriteDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	_, err := st.w.Write(st.buf)
	st.buf = st.buf[:0]
	if err != nil {
		return err
	}
	if err := st.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if st.owed {
		// At most one checkpoint is in flight: its producer waits for
		// this ack before it can send another, so the send never blocks.
		st.owed = false
		select {
		case st.acks <- struct{}{}:
		default:
		}
	}
	return nil
}

// finish ends the stream after the producer returned: done was already sent
// on success; a failure becomes a terminal error event, unless the client
// itself left.
func (st *stream) finish(ctx context.Context, err error) {
	if err == nil && st.last == runnel.EventDone {
		st.flush()
		st.log(slog.LevelInfo, "stream done", nil)
		return
	}
	if st.r.Context().Err() != nil {
		st.log(slog.LevelInfo, "client left", st.r.Context().Err())
		return
	}
	e := runnel.AsError(err)
	if ctx.Err() != nil {
		// The stream's own context ended: the maximum duration or shutdown.
		e = runnel.AsError(context.Cause(ctx))
	}
	if err == nil {
		err = fmt.Errorf("answer ended without done")
		e = &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}
	}
	if e.Code == runnel.EINTERNAL {
		st.log(slog.LevelError, "stream failed", err)
	} else {
		st.log(slog.LevelWarn, "stream ended with error", err)
	}
	st.add(runnel.Event{Type: runnel.EventError, Err: e})
	st.flush()
}

func (st *stream) log(level slog.Level, msg string, err error) {
	attrs := []any{"request_id", st.id, "events", st.events, "last", string(st.last)}
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	st.s.Logger.Log(st.r.Context(), level, msg, attrs...)
}
