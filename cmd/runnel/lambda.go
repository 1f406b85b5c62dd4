package main

import (
	"bytes"
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
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
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
	ss.bind(c, "json", lambdaMaxStreamDuration)
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
// generator is already recovered by the stream.) A panic is recovered here
// and logged; then, if nothing was written yet, the client gets a 500 with
// the usual JSON error; if an NDJSON stream had begun and not ended, it is
// ended with an internal error event (after a newline, if the panic left a
// line unfinished), since a Function URL cannot abort a response the way
// panic(http.ErrAbortHandler) does on a connection. That panic is left
// as it is asked: the stream ends where it is, and clients report it as
// truncated.
func lambdaHandler(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Request-Id") == "" {
			if lc, ok := lambdacontext.FromContext(r.Context()); ok && lc.AwsRequestID != "" {
				r = r.Clone(r.Context())
				r.Header.Set("X-Request-Id", lc.AwsRequestID)
			}
		}
		lw := &lambdaWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				lw.recovered(p, r, logger)
			}
		}()
		next.ServeHTTP(lw, r)
	})
}

// lambdaWriter notes what a handler wrote: whether the response began,
// whether its last line is complete, and whether that line was a terminal
// event. Unwrap keeps the real writer reachable by http.ResponseController.
type lambdaWriter struct {
	http.ResponseWriter
	started  bool
	midLine  bool   // the last byte written was not a newline
	line     []byte // the start of the line being written
	terminal bool   // the last complete line was a done or error event
}

// linePrefix is as much of a line as it takes to tell its event type.
const linePrefix = len(`{"type":"error"`)

func (lw *lambdaWriter) WriteHeader(code int) {
	lw.started = true
	lw.ResponseWriter.WriteHeader(code)
}

func (lw *lambdaWriter) Write(p []byte) (int, error) {
	lw.started = true
	n, err := lw.ResponseWriter.Write(p)
	for b := p[:n]; len(b) > 0; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lw.appendLine(b)
			lw.midLine = true
			break
		}
		lw.appendLine(b[:i])
		lw.terminal = bytes.HasPrefix(lw.line, []byte(`{"type":"done"`)) ||
			bytes.HasPrefix(lw.line, []byte(`{"type":"error"`))
		lw.line, lw.midLine = lw.line[:0], false
		b = b[i+1:]
	}
	return n, err
}

func (lw *lambdaWriter) appendLine(b []byte) {
	if room := linePrefix - len(lw.line); room > 0 {
		lw.line = append(lw.line, b[:min(room, len(b))]...)
	}
}

func (lw *lambdaWriter) Unwrap() http.ResponseWriter { return lw.ResponseWriter }

// recovered ends the response after the handler panicked with p.
func (lw *lambdaWriter) recovered(p any, r *http.Request, logger *slog.Logger) {
	id := cmp.Or(lw.Header().Get("X-Request-Id"), r.Header.Get("X-Request-Id"))
	if p == http.ErrAbortHandler {
		logger.Warn("response aborted", "request_id", id, "path", r.URL.Path)
		return
	}
	logger.Error("panic in handler", "request_id", id, "path", r.URL.Path,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	internal := &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}
	if !lw.started {
		h := lw.Header()
		h.Set("Content-Type", "application/json")
		h.Del("Content-Length")
		lw.WriteHeader(rhttp.StatusOf(internal.Code))
		json.NewEncoder(lw).Encode(map[string]any{"error": internal})
		return
	}
	ct := lw.Header().Get("Content-Type")
	if lw.terminal || !strings.HasPrefix(ct, "application/x-ndjson") {
		return // the stream is complete, or the body is not a stream
	}
	b := []byte{}
	if lw.midLine {
		b = append(b, '\n')
	}
	b, _ = runnel.Event{Type: runnel.EventError, Err: internal}.AppendJSON(b)
	lw.Write(append(b, '\n'))
}
