package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

// serve runs "runnel serve" with args on a free loopback port until the
// test ends and returns its base URL.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...), nil, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	_, url, ok := strings.Cut(strings.TrimSpace(line), " on ")
	if !ok {
		t.Fatalf("serve printed %q", line)
	}
	return url
}

// run runs the program with args and returns its exit status and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(t.Context(), args, nil, &out, &errb)
	return exitCode(err, &errb), out.String(), errb.String()
}

func TestServeDefaultCorpus(t *testing.T) {
	url := serve(t)
	var events []runnel.Event
	err := rhttp.NewClient(url).Ask(t.Context(), "what is websocket?", func(e runnel.Event) error {
		events = append(events, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Ask: %v", err)
	}
	var answer strings.Builder
	var tags, titles []string
	for _, e := range events {
		switch e.Type {
		case runnel.EventTags:
			tags = e.Tags
		case runnel.EventTitles:
			titles = e.Titles
		case runnel.EventToken:
			answer.WriteString(e.Token)
		}
	}
	if !slices.Contains(tags, "websocket") {
		t.Errorf("tags = %q, want websocket among them", tags)
	}
	if !slices.Contains(titles, "WebSocket") {
		t.Errorf("titles = %q, want the WebSocket article", titles)
	}
	if a := answer.String(); !strings.Contains(a, "WebSocket") || len(strings.Fields(a)) < 20 {
		t.Errorf("answer = %q, want a few sentences about WebSocket", a)
	}
	if last := events[len(events)-1]; last.Type != runnel.EventDone {
		t.Errorf("last event = %v, want done", last.Type)
	}

	t.Run("not covered", func(t *testing.T) {
		var answer strings.Builder
		err := rhttp.NewClient(url).Ask(t.Context(), "best recipe for banana bread", func(e runnel.Event) error {
			answer.WriteString(e.Token)
			return nil
		})
		if err != nil || !strings.Contains(answer.String(), "do not cover") {
			t.Errorf("Ask = %v, answer %q; want a plain 'do not cover'", err, answer.String())
		}
	})
	t.Run("articles", func(t *testing.T) {
		resp, err := http.Get(url + "/articles?limit=100")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Articles []struct{ Slug, Title, Date string }
			Total    int
		}
		json.NewDecoder(resp.Body).Decode(&list)
		if list.Total < 40 || len(list.Articles) != list.Total {
			t.Errorf("GET /articles: %d of %d articles, want all of at least 40", len(list.Articles), list.Total)
		}
		for _, a := range list.Articles {
			if a.Title == "" || a.Date == "" {
				t.Errorf("article %q has title %q and date %q", a.Slug, a.Title, a.Date)
			}
		}
	})
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportAskPrune(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(t.TempDir(), "notes.db")
	writeFiles(t, dir, map[string]string{
		"kites.md":     "---\ntitle: Flying kites\ntags: [outdoors, wind]\ndate: 2026-03-01\n---\nA kite flies when wind pushes against its sail and the line holds it at an angle.\n\n## Choosing a day\n\nSteady wind of fifteen to twenty-five kilometres an hour suits most kites.\n",
		"sub/bread.md": "# Sourdough bread\n\nSourdough bread rises with a starter of wild yeast and lactic bacteria instead of baker's yeast.\n",
		"broken.md":    "---\ntitle: [unclosed\n---\nbody\n",
		"more.jsonl":   `{"slug":"tides","title":"Tides","tags":["sea"],"body":"Tides rise and fall twice a day, pulled by the moon."}` + "\n",
	})
	code, out, errOut := run(t, "import", "--db", db, dir)
	if code != 1 || !strings.Contains(errOut, "broken.md") || !strings.Contains(out, "3 added") {
		t.Fatalf("import = %d, stdout %q, stderr %q; want status 1, 3 added, broken.md reported", code, out, errOut)
	}
	code, out, _ = run(t, "import", "--db", db, dir)
	if !strings.Contains(out, "3 unchanged") {
		t.Errorf("second import: %q, want 3 unchanged", out)
	}

	code, out, errOut = run(t, "ask", "--db", db, "--json", "how does a kite fly?")
	if code != 0 {
		t.Fatalf("ask = %d, stderr %q", code, errOut)
	}
	var types []string
	for line := range strings.Lines(out) {
		var e runnel.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("ask --json line %q: %v", line, err)
		}
		types = append(types, string(e.Type))
		if e.Type == runnel.EventTitles && (len(e.Titles) == 0 || e.Titles[0] != "Flying kites") {
			t.Errorf("titles = %q, want Flying kites first", e.Titles)
		}
	}
	if len(types) < 6 || types[0] != "query" || types[len(types)-1] != "done" {
		t.Errorf("ask --json types = %v", types)
	}

	code, out, _ = run(t, "ask", "--db", db, "sourdough starter")
	if code != 0 || !strings.Contains(out, "[1] Sourdough bread — "+filepath.Join(dir, "sub", "bread.md")) || !strings.Contains(out, "wild yeast") {
		t.Errorf("ask = %d, %q", code, out)
	}

	os.Remove(filepath.Join(dir, "kites.md"))
	os.Remove(filepath.Join(dir, "broken.md"))
	code, out, errOut = run(t, "import", "--db", db, "--prune", dir)
	if code != 0 || !strings.Contains(out, "1 pruned") {
		t.Errorf("import --prune = %d, %q, %q; want 1 pruned", code, out, errOut)
	}
	url := serve(t, "--db", db)
	resp, err := http.Get(url + "/articles/kites")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /articles/kites after prune: %s, want 404", resp.Status)
	}
}

// TestNpmDocs imports npm's own documentation, real third-party Markdown
// with front matter, and asks it a question.
func TestNpmDocs(t *testing.T) {
	out, err := exec.Command("npm", "root", "-g").Output()
	if err != nil {
		t.Skip("npm is not installed")
	}
	docs := filepath.Join(strings.TrimSpace(string(out)), "npm", "docs", "content")
	if _, err := os.Stat(docs); err != nil {
		t.Skipf("no npm docs at %s", docs)
	}
	db := filepath.Join(t.TempDir(), "npm.db")
	code, stdout, stderr := run(t, "import", "--db", db, docs)
	if code != 0 || !strings.Contains(stdout, "0 failed") {
		t.Fatalf("import npm docs = %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "ask", "--db", db, "--json", "how do I install a package?")
	if code != 0 {
		t.Fatalf("ask = %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `"slug":"commands/npm-install"`) {
		t.Errorf("sources do not include commands/npm-install:\n%s", firstLines(stdout, 4))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestAskRemote(t *testing.T) {
	url := serve(t)
	code, out, errOut := run(t, "ask", "--server", url, "what", "is", "chunked", "transfer", "encoding")
	if code != 0 {
		t.Fatalf("ask --server = %d: %s", code, errOut)
	}
	if !strings.Contains(out, "Sources:") || !strings.Contains(out, url+"/articles/chunked-transfer-encoding") || !strings.Contains(out, "chunk") {
		t.Errorf("ask --server printed:\n%s", out)
	}
}

// TestAskResumes runs "runnel ask --server" through a connection that is
// cut in the middle of the answer, over each transport: ask resumes the
// run by itself and prints the whole answer, as an uncut one does.
func TestAskResumes(t *testing.T) {
	url := serve(t)
	question := []string{"what", "is", "chunked", "transfer", "encoding"}
	_, want, _ := run(t, append([]string{"ask", "--server", url}, question...)...)
	backend := strings.TrimPrefix(url, "http://")
	for _, transport := range []string{"ndjson", "sse", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			proxy, conns := cutOnce(t, backend, 1500)
			code, out, errOut := run(t, append([]string{"ask", "--server", proxy, "--transport", transport}, question...)...)
			out = strings.ReplaceAll(out, proxy, url)
			if code != 0 || out != want {
				t.Errorf("ask through a cut = %d, stderr %q\n%s\nwant\n%s", code, errOut, out, want)
			}
			if n := conns(); n < 2 {
				t.Errorf("%d connection(s) to the proxy: the cut never happened", n)
			}
		})
	}
	if code, _, errOut := run(t, "ask", "--server", url, "--transport", "pigeon", "q"); code != 2 || !strings.Contains(errOut, "pigeon") {
		t.Errorf("ask --transport pigeon = %d, %q; want a usage error", code, errOut)
	}
}

// cutOnce returns the URL of a proxy to backend whose first connection is
// cut after n bytes from the server, later ones passing whole, and a
// function that counts the connections so far.
func cutOnce(t *testing.T, backend string, n int64) (string, func() int64) {
	var conns atomic.Int64
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func(cut bool) {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c)
				if cut {
					io.CopyN(c, b, n)
					return
				}
				io.Copy(c, b)
			}(first)
		}
	}()
	return "http://" + ln.Addr().String(), conns.Load
}

func TestAskFailures(t *testing.T) {
	truncated := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"type":"query","data":"q?"}`+"\n"+`{"type":"token","data":"half "}`+"\n")
	}))
	defer truncated.Close()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"truncated stream", []string{"ask", "--server", truncated.URL, "q"}, 1, "truncated"},
		{"refused question", []string{"ask", "--server", truncated.URL + "/nowhere", "q"}, 1, ""},
		{"empty question", []string{"ask", "  "}, 2, "no QUESTION"},
		{"bad local question", []string{"ask", "?!"}, 1, "no words"},
		{"no server", []string{"ask", "--server", "http://127.0.0.1:1", "q"}, 1, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("%v = %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	db := filepath.Join(t.TempDir(), "x.db")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"help"}, 0, "runnel serve"},
		{[]string{"version"}, 0, "runnel "},
		{[]string{"version", "-h"}, 0, "Usage: runnel version"},
		{[]string{"serve", "-h"}, 0, "-addr"},
		{[]string{"ask", "-h"}, 0, "-server"},
		{[]string{"import", "-h"}, 0, "-prune"},
		{[]string{"import"}, 2, "no PATH"},
		{[]string{"serve", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"import", "--db", db, "/does/not/exist"}, 1, "/does/not/exist"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("runnel %v = %d, output %q; want %d and %q", tt.args, code, out+errOut, tt.code, tt.want)
			}
		})
	}
}

func TestEnvironmentDefaults(t *testing.T) {
	t.Setenv("RUNNEL_PING_INTERVAL", "soon")
	code, _, errOut := run(t, "serve")
	if code != 1 || !strings.Contains(errOut, "RUNNEL_PING_INTERVAL") {
		t.Errorf("serve with a bad RUNNEL_PING_INTERVAL = %d, %q", code, errOut)
	}
	t.Setenv("RUNNEL_PING_INTERVAL", "")
	t.Setenv("RUNNEL_SERVER", "http://127.0.0.1:1")
	code, _, errOut = run(t, "ask", "q")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("ask with RUNNEL_SERVER set = %d, %q; want it used", code, errOut)
	}
}
