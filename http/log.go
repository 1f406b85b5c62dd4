package http

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// logRequests logs one structured line per request when it ends. A
// stream that parked (park.go) writes its own line when it ends.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, r: r, start: time.Now()}
		next.ServeHTTP(rec, r)
		if !rec.parked {
			s.logRequest(rec)
		}
	})
}

// logRequest writes the line for the request rec answered. It is a
// function of its own, not part of logRequests' closure, because a
// stream's goroutine spends its life below that closure: the attributes'
// space in its frame would be kept on every open stream's stack (and a
// parked stack a little over 4 KiB is never shrunk below 16 KiB).
//
//go:noinline
func (s *Server) logRequest(rec *recorder) {
	s.logLine(rec.line())
}

// requestLine is what the log line of a request says.
type requestLine struct {
	method, path, remote, requestID string
	status                          int
	bytes                           int64
	start                           time.Time
}

func (s *Server) logLine(l requestLine) {
	level := slog.LevelInfo
	if l.status >= 500 {
		level = slog.LevelError
	}
	s.Logger.LogAttrs(context.Background(), level, "request",
		slog.String("method", l.method),
		slog.String("path", l.path),
		slog.Int("status", l.status),
		slog.Int64("bytes", l.bytes),
		slog.Duration("duration", time.Since(l.start)),
		slog.String("remote", l.remote),
		slog.String("request_id", l.requestID),
	)
}

// recorder notes the status and size of a response. Unwrap lets
// http.ResponseController reach the real writer to flush and set deadlines;
// without it the wrapper would hide http.Flusher and stall every stream.
type recorder struct {
	http.ResponseWriter
	r      *http.Request
	start  time.Time
	status int
	bytes  int64
	parked bool // the stream took the connection and logs the request itself
}

// line returns what the request's log line says so far.
func (r *recorder) line() requestLine {
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	return requestLine{method: r.r.Method, path: r.r.URL.Path, remote: r.r.RemoteAddr,
		requestID: r.Header().Get("X-Request-Id"), status: status, bytes: r.bytes, start: r.start}
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
