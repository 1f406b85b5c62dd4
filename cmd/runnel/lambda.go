package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

// lambdaMaxStreamDuration is the default maximum stream duration on Lambda:
// the platform's own limit, so that the function's timeout decides. Every
// invocation has a deadline, and the server ends a stream with a timeout
// error event shortly before it (see http/stream.go).
const lambdaMaxStreamDuration = 15 * time.Minute

// lambdaTestHook is nil in every build but the one TestLambda makes, which
// compiles testdata/lambda/hook.go into the package with go build -overlay
// to swap in generators the test controls and a route that panics.
var lambdaTestHook func(srv *rhttp.Server, h http.Handler) http.Handler

// runLambda serves the HTTP API to a Lambda Function URL whose InvokeMode is
// RESPONSE_STREAM, through lambdaurl: the same server and handler as "runnel
// serve", its events written to the Function URL as they happen. The
// configuration is the RUNNEL_* environment that serve reads. It returns
// only if the function cannot start; lambdaurl ends the process itself if
// the Runtime API fails.
func runLambda(ctx context.Context, env func(string) string, stderr io.Writer) error {
	start := time.Now()
	c := newConfig("lambda", env)
	var (
		sf storeFlags
		ss serverSettings
	)
	sf.bind(c)
	sf.noDefault = true
	// An instance serves one invocation at a time, so a reader can come back
	// to a run only through a store the instances share: without one, an
	// abandoned answer stops at once.
	// With Redis, another instance can: the answer goes on for the usual
	// linger, and the invocation that asked waits for it (AwaitProducers).
	linger := time.Duration(0)
	if env("RUNNEL_REDIS_URL") != "" {
		linger = memory.DefaultLinger
	}
	ss.bind(c, "json", lambdaMaxStreamDuration, linger)
	if err := parse(c.fs, nil, stderr); err != nil {
		return err
	}
	if err := c.err(); err != nil {
		return err
	}
	logger, err := newLogger(stderr, ss.logFormat, ss.logLevel)
	if err != nil {
		return err
	}
	source := "embedded articles"
	switch {
	case sf.db != "":
		source = sf.db
		if sf.db, err = copyDatabase(sf.db); err != nil {
			return err
		}
	case sf.articles != "":
		source = sf.articles
	}
	store, closeStore, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()

	srv, err := ss.server(store, logger)
	if err != nil {
		return err
	}
	// An instance's goroutines freeze between invocations: the one that
	// started a run keeps the invocation until the run's producer is done.
	srv.AwaitProducers = true
	h := srv.Handler()
	if lambdaTestHook != nil {
		h = lambdaTestHook(srv, h)
	}
	_, total, _ := store.List(ctx, runnel.ListOptions{Limit: 1})
	logger.Info("lambda ready", "articles", total, "source", source, "version", version(),
		"init", time.Since(start).Round(time.Millisecond).String())
	lambdaurl.Start(lambdaHandler(h, logger))
	return errors.New("lambda: the runtime loop returned")
}

// copyDatabase copies the database file at path (and a -wal file bundled
// beside it) into a new temporary directory and returns the copy's path.
// A function's own files are read-only, and SQLite in WAL mode must write
// -wal and -shm files beside the database; on Lambda only /tmp is writable.
func copyDatabase(path string) (string, error) {
	dir, err := os.MkdirTemp("", "runnel-")
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "runnel.db")
	if err := copyFile(path, dst); err != nil {
		return "", fmt.Errorf("copy database: %w", err)
	}
	if err := copyFile(path+"-wal", dst+"-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("copy database: %w", err)
	}
	return dst, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lambdaHandler adapts the server's handler to a Function URL.
//
// The request gets the invocation's request id as its X-Request-Id unless
// the client sent one, so the server's log lines, the done event and the
// platform's own START/END/REPORT lines in CloudWatch share one id.
//
// lambdaurl runs the handler on a goroutine without a recover, so a panic
// there would end the process in the middle of the stream. (A panic in the
// generator is already recovered by the stream's producer, which ends the
// run with an error event.) A panic in the handler itself is recovered here
// and logged, and the response is ended as well as it can be; see
// recovered.
func lambdaHandler(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Request-Id") == "" {
			if lc, ok := lambdacontext.FromContext(r.Context()); ok && lc.AwsRequestID != "" {
				r = r.Clone(r.Context())
				r.Header.Set("X-Request-Id", lc.AwsRequestID)
			}
		}
		// The stream routes record in st which framing a stream uses and
		// whether its terminal event went out. The pump hands each Write
		// whole events, so a panic cannot leave one half written, and that
		// is all recovered needs to know to end a stream in its framing.
		r, st := rhttp.TrackStream(r)
		lw := &lambdaWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				lw.recovered(p, r, st, logger)
			}
		}()
		next.ServeHTTP(lw, r)
	})
}

// lambdaWriter notes whether the handler began its response (wrote its
// header or any of its body), which decides whether a panic can still be
// answered with a status of its own. Unwrap keeps the real writer reachable
// by http.ResponseController.
type lambdaWriter struct {
	http.ResponseWriter
	started bool
}

func (lw *lambdaWriter) WriteHeader(code int) {
	lw.started = true
	lw.ResponseWriter.WriteHeader(code)
}

func (lw *lambdaWriter) Write(p []byte) (int, error) {
	lw.started = true
	return lw.ResponseWriter.Write(p)
}

func (lw *lambdaWriter) Unwrap() http.ResponseWriter { return lw.ResponseWriter }

// recovered ends the response after the handler panicked with p:
//
//   - nothing written yet: a 500 with the usual JSON error;
//   - a stream that began and has not written its terminal event (st is
//     Open): an internal error event in the stream's own framing, NDJSON or
//     SSE, so the client reads why the answer stopped. A Function URL
//     cannot abort a response the way panic(http.ErrAbortHandler) does on a
//     connection: without the event the body would just end, and the client
//     could not tell a crash from a dropped connection;
//   - a stream that already has its terminal event, or a response that is
//     not a stream: left as it is, since anything added would corrupt it.
//
// panic(http.ErrAbortHandler) is left as it asks: the response ends where it
// is, and a stream's client reports it as truncated.
func (lw *lambdaWriter) recovered(p any, r *http.Request, st *rhttp.StreamStatus, logger *slog.Logger) {
	id := cmp.Or(lw.Header().Get("X-Request-Id"), r.Header.Get("X-Request-Id"))
	if p == http.ErrAbortHandler {
		logger.Warn("response aborted", "request_id", id, "path", r.URL.Path)
		return
	}
	logger.Error("panic in handler", "request_id", id, "path", r.URL.Path,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	internal := &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}
	switch {
	case !lw.started:
		h := lw.Header()
		h.Set("Content-Type", "application/json")
		h.Del("Content-Length")
		lw.WriteHeader(rhttp.StatusOf(internal.Code))
		json.NewEncoder(lw).Encode(map[string]any{"error": internal})
	case st.Open():
		lw.Write(st.ErrorEvent(internal))
	}
}
