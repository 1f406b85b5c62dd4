package main

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/extractive"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/sqlite"
)

// keyedServer starts a runnel server over the embedded articles that needs
// one of keys for its stream and run routes, and returns its base URL.
func keyedServer(t *testing.T, keys ...string) string {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "runnel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := markdown.PutFS(t.Context(), store, corpus.FS()); err != nil {
		t.Fatal(err)
	}
	srv := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: extractive.New(extractive.Options{})},
		Store:    store,
		Runs:     memory.New(memory.Options{}),
		APIKeys:  keys,
	}
	if err := srv.Validate(); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// TestAskAPIKey runs "runnel ask --server" against a server that needs a
// key: without one, or with a wrong one, it fails with status 1 and says
// how to pass the key, without printing it; with the key from --api-key or
// RUNNEL_API_KEY it prints the answer, over every transport.
func TestAskAPIKey(t *testing.T) {
	const key = "cli-key-5d1e"
	url := keyedServer(t, key)
	question := []string{"what", "is", "chunked", "transfer", "encoding"}
	ask := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, append(append([]string{"ask", "--server", url}, args...), question...)...)
	}
	answered := func(t *testing.T, how string, code int, out, errOut string) {
		t.Helper()
		if code != 0 {
			t.Fatalf("ask %s = %d: %s", how, code, errOut)
		}
		if !strings.Contains(out, "Sources:") || !strings.Contains(out, url+"/articles/chunked-transfer-encoding") || !strings.Contains(out, "chunk") {
			t.Errorf("ask %s printed:\n%s", how, out)
		}
	}

	t.Run("without a key", func(t *testing.T) {
		t.Setenv("RUNNEL_API_KEY", "")
		code, out, errOut := ask()
		if code != 1 {
			t.Errorf("ask without a key = %d, want 1", code)
		}
		for _, want := range []string{"unauthorized", "needs an API key", "--api-key", "RUNNEL_API_KEY"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("ask without a key: stderr %q does not mention %q", errOut, want)
			}
		}
		if out != "" {
			t.Errorf("ask without a key printed %q", out)
		}
	})

	t.Run("a wrong key", func(t *testing.T) {
		t.Setenv("RUNNEL_API_KEY", "")
		code, out, errOut := ask("--api-key", "wrong-key-0")
		if code != 1 || out != "" {
			t.Errorf("ask with a wrong key = %d, printed %q", code, out)
		}
		if !strings.Contains(errOut, "refused the API key") || !strings.Contains(errOut, "--api-key or RUNNEL_API_KEY") {
			t.Errorf("ask with a wrong key: stderr %q", errOut)
		}
		if strings.Contains(errOut, "wrong-key-0") {
			t.Errorf("ask with a wrong key repeats it: %q", errOut)
		}
	})

	t.Run("--api-key", func(t *testing.T) {
		t.Setenv("RUNNEL_API_KEY", "")
		for _, transport := range []string{"ndjson", "sse", "websocket"} {
			code, out, errOut := ask("--api-key", key, "--transport", transport)
			answered(t, "--api-key --transport "+transport, code, out, errOut)
		}
	})

	t.Run("RUNNEL_API_KEY", func(t *testing.T) {
		t.Setenv("RUNNEL_API_KEY", key+"\n") // as read from a file
		code, out, errOut := ask()
		answered(t, "with RUNNEL_API_KEY", code, out, errOut)
		code, out, errOut = ask("--transport", "websocket")
		answered(t, "with RUNNEL_API_KEY over websocket", code, out, errOut)
	})

	t.Run("the flag over the environment", func(t *testing.T) {
		t.Setenv("RUNNEL_API_KEY", "wrong-key-0")
		code, out, errOut := ask("--api-key", key)
		answered(t, "--api-key with a wrong RUNNEL_API_KEY", code, out, errOut)
	})

	t.Run("-h keeps the key to itself", func(t *testing.T) {
		t.Setenv("RUNNEL_API_KEY", key)
		code, out, errOut := run(t, "ask", "-h")
		if code != 0 {
			t.Errorf("ask -h = %d", code)
		}
		help := out + errOut
		if strings.Contains(help, key) {
			t.Errorf("ask -h prints the key:\n%s", help)
		}
		if !strings.Contains(help, "-api-key") || !strings.Contains(help, "RUNNEL_API_KEY") {
			t.Errorf("ask -h does not document the key:\n%s", help)
		}
	})
}
