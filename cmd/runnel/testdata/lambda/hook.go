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
//     /test/panic?after=1 after writing a query event and half a line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
		if r.URL.Query().Get("after") != "" {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"type":"query","data":"panic?"}`+"\n"+`{"type":"token","da`)
		}
		panic("test: a panic in the handler")
	})
	return mux
}

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
