//go:build runneltest

// This file is not part of package main on disk: TestLambda compiles it into
// the binary it tests with go build -overlay (and -tags runneltest), so no
// other build contains it. It gives the test control over generation:
//
//   - a question starting with "gate" answers with the tokens the test hands
//     out one at a time at GET $RUNNEL_TEST_GATE_URL/gate (204: the end);
//   - "panic" panics in the generator;
//   - "stall" sends one token, then waits until the stream's context ends;
//   - any other question gets the real generator's answer;
//   - GET /test/panic panics in the handler before writing anything, and
//     /test/panic?after=N serves the real stream of the question "stall
//     please" (with the request's own Accept header, so NDJSON or SSE)
//     through a writer that panics at the stream's Write number N+1: the
//     panic happens in the stream's handler after it wrote N times. The
//     pump writes whole events, and every event before the first token
//     goes out alone, so for NDJSON after=1 is the query event, and for
//     SSE after=2 is the retry block and the query event.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

func init() {
	lambdaTestHook = testHook
}

func testHook(srv *rhttp.Server, h http.Handler) http.Handler {
	gate := os.Getenv("RUNNEL_TEST_GATE_URL")
	real := srv.Answerer.Generator
	srv.Answerer.Generator = runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		switch {
		case strings.HasPrefix(p.Question, "gate"):
			for {
				tok, err := nextToken(ctx, gate)
				if err != nil {
					return runnel.Done{}, err
				}
				if tok == "" {
					return runnel.Done{FinishReason: runnel.FinishStop}, nil
				}
				if err := emit(tok); err != nil {
					return runnel.Done{}, err
				}
			}
		case strings.HasPrefix(p.Question, "panic"):
			panic("test: a panic in the generator")
		case strings.HasPrefix(p.Question, "stall"):
			if err := emit("waiting "); err != nil {
				return runnel.Done{}, err
			}
			<-ctx.Done()
			return runnel.Done{}, ctx.Err()
		}
		return real.Generate(ctx, p, emit)
	})

	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET /test/panic", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("after")
		if v == "" {
			panic("test: a panic in the handler")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "after must be a whole number", http.StatusBadRequest)
			return
		}
		r = r.Clone(r.Context()) // the context holds the StreamStatus
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = "/articles/stream", "", "question=stall+please"
		r.RequestURI = r.URL.RequestURI()
		h.ServeHTTP(&panicWriter{ResponseWriter: w, left: n}, r)
	})
	return mux
}

// panicWriter panics at the Write after its first left ones, as a bug in
// the stream's own code would, before that Write reaches the client.
// Unwrap lets http.ResponseController reach the real writer, so the
// stream's flushes still work.
type panicWriter struct {
	http.ResponseWriter
	left int
}

func (pw *panicWriter) Write(p []byte) (int, error) {
	if pw.left == 0 {
		panic("test: a panic in the stream's handler")
	}
	pw.left--
	return pw.ResponseWriter.Write(p)
}

func (pw *panicWriter) Unwrap() http.ResponseWriter { return pw.ResponseWriter }

// nextToken asks the test for the next token; "" means the answer is done.
func nextToken(ctx context.Context, gate string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gate+"/gate", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return "", err
	case resp.StatusCode == http.StatusNoContent:
		return "", nil
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("gate: %s", resp.Status)
	case len(b) == 0:
		return "", errors.New("gate: empty token")
	}
	return string(b), nil
}
