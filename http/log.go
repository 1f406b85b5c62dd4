package http

import (
	"log/slog"
	"net/http"
	"time"
)

// logRequests logs one structured line per request when it ends.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		s.logRequest(rec, r, start)
	})
}

// logRequest writes the line for r, which rec answered. It is a function
// of its own, not part of logRequests' closure, because a stream's
// goroutine spends its life below that closure: the attributes' space in
// its frame would be kept on every open stream's stack (and a parked
// stack a little over 4 KiB is never shrunk below 16 KiB).
//
//go:noinline
func (s *Server) logRequest(rec *recorder, r *http.Request, start time.Time) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelError
	}
	s.Logger.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
		slog.String("request_id", rec.Header().Get("X-Request-Id")),
	)
}

// recorder notes the status and size of a response. Unwrap lets
// http.ResponseController reach the real writer to flush and set deadlines;
// without it the wrapper would hide http.Flusher and stall every stream.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
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
