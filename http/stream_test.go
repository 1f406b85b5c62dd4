package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

func TestAskEndToEnd(t *testing.T) {
	_, ts := newServer(t, words("A ", "WebSocket ", "is ", "full-duplex."))
	got, err := collect(t, ts.URL, "  what   is websocket ")
	if err != nil {
		t.Fatalf("Ask: %v", err)
	}
	want := []runnel.EventType{"query", "tags", "titles", "sources", "token", "token", "token", "token", "done"}
	if !slices.Equal(types(got), want) {
		t.Fatalf("event types = %v, want %v", types(got), want)
	}
	if got[0].Query != "what is websocket?" {
		t.Errorf("query = %q, want %q", got[0].Query, "what is websocket?")
	}
	if len(got[1].Tags) == 0 || got[1].Tags[0] != "web-socket" {
		t.Errorf("tags = %q, want web-socket first (named in the question)", got[1].Tags)
	}
	if len(got[2].Titles) == 0 || got[2].Titles[0] != "WebSockets in practice" {
		t.Errorf("titles = %q, want WebSockets in practice first", got[2].Titles)
	}
	if s := got[3].Sources; len(s) == 0 || s[0].URL != "/articles/websocket" || s[0].Slug != "websocket" {
		t.Errorf("sources = %+v, want /articles/websocket first", s)
	}
	var answer strings.Builder
	for _, e := range got[4:8] {
		answer.WriteString(e.Token)
	}
	if answer.String() != "A WebSocket is full-duplex." {
		t.Errorf("answer = %q", answer.String())
	}
	if d := got[8].Done; d == nil || d.FinishReason != "stop" || d.ID == "" {
		t.Errorf("done = %+v, want finish_reason stop and an id", d)
	}
}

// TestEventsAreStreamed proves that each token reaches the client before the
// generator produces the next: the generator may produce token i+1 only once
// the client has passed token i to its callback.
func TestEventsAreStreamed(t *testing.T) {
	const n = 5
	received := make(chan int)
	produced := 0
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for i := range n {
			if i > 0 {
				select {
				case got := <-received:
					if got != i-1 {
						return runnel.Done{}, fmt.Errorf("client confirmed token %d, want %d", got, i-1)
					}
				case <-ctx.Done():
					return runnel.Done{}, ctx.Err()
				}
			}
			produced++
			if err := emit(fmt.Sprintf("t%d ", i)); err != nil {
				return runnel.Done{}, err
			}
		}
		return runnel.Done{FinishReason: runnel.FinishStop}, nil
	})
	_, ts := newServer(t, gen)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var tokens []string
	err := rhttp.NewClient(ts.URL).Ask(ctx, "websocket", func(e runnel.Event) error {
		if e.Type != runnel.EventToken {
			return nil
		}
		i := len(tokens)
		tokens = append(tokens, e.Token)
		// The generator is parked until we confirm: it has produced
		// exactly the tokens we hold, no more.
		if produced != i+1 {
			return fmt.Errorf("generator produced %d tokens when the client held %d", produced, i+1)
		}
		if i < n-1 {
			select {
			case received <- i:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Ask: %v (a token held back until the next one was produced would stall here)", err)
	}
	if len(tokens) != n {
		t.Fatalf("got %d tokens, want %d", len(tokens), n)
	}
}

// TestWire checks the raw HTTP/1.1 response: chunked, the streaming
// headers, and one JSON object a line.
func TestWire(t *testing.T) {
	_, ts := newServer(t, words("one ", "two"))
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "GET /articles/stream?question=%s HTTP/1.1\r\nHost: test\r\n\r\n", url.QueryEscape("what is websocket"))
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line = %q", status)
	}
	header := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
		header[strings.ToLower(k)] = v
	}
	for k, want := range map[string]string{
		"content-type":      "application/x-ndjson",
		"cache-control":     "no-cache, no-transform",
		"x-accel-buffering": "no",
		"transfer-encoding": "chunked",
	} {
		if header[k] != want {
			t.Errorf("header %s = %q, want %q", k, header[k], want)
		}
	}
	for _, k := range []string{"content-length", "connection", "content-encoding"} {
		if v, ok := header[k]; ok && !(k == "connection" && v == "close" && testParks()) {
			t.Errorf("header %s = %q, want none", k, v)
		}
	}
	body, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		t.Fatalf("chunked body: %v", err)
	}
	if !strings.HasSuffix(string(body), "\n") {
		t.Errorf("body does not end with a newline: %q", body)
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	var got []string
	for _, line := range lines {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", line, err)
		}
		var typ string
		json.Unmarshal(obj["type"], &typ)
		got = append(got, typ)
	}
	want := []string{"query", "tags", "titles", "sources", "token", "token", "done"}
	if !slices.Equal(got, want) {
		t.Errorf("types on the wire = %v, want %v", got, want)
	}
	if lines[0] != `{"type":"query","data":"what is websocket?"}` {
		t.Errorf("first line = %s", lines[0])
	}
}

func TestErrorsBeforeTheStream(t *testing.T) {
	_, ts := newServer(t, words("x"), func(s *rhttp.Server) { s.MaxQuestion = 100; s.MaxBody = 1000 })
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"empty GET", "GET", "/articles/stream?question=", "", 400, runnel.EINVALID},
		{"missing GET", "GET", "/articles/stream", "", 400, runnel.EINVALID},
		{"blank GET", "GET", "/articles/stream?question=%20%09%20", "", 400, runnel.EINVALID},
		{"punctuation only", "GET", "/articles/stream?question=%22*%29%3F", "", 400, runnel.EINVALID},
		{"too long GET", "GET", "/articles/stream?question=" + strings.Repeat("a", 101), "", 413, runnel.ETOOLARGE},
		{"invalid UTF-8 GET", "GET", "/articles/stream?question=caf%C3%28", "", 400, runnel.EINVALID},
		{"empty POST", "POST", "/articles/stream", `{"question":""}`, 400, runnel.EINVALID},
		{"no question POST", "POST", "/articles/stream", `{"q":"websocket"}`, 400, runnel.EINVALID},
		{"bad JSON POST", "POST", "/articles/stream", `{"question":`, 400, runnel.EINVALID},
		{"invalid UTF-8 POST", "POST", "/articles/stream", "{\"question\":\"caf\xc3\x28\"}", 400, runnel.EINVALID},
		{"too long POST", "POST", "/articles/stream", `{"question":"` + strings.Repeat("a", 101) + `"}`, 413, runnel.ETOOLARGE},
		{"body too large POST", "POST", "/articles/stream", `{"question":"` + strings.Repeat("a", 2000) + `"}`, 413, runnel.ETOOLARGE},
		{"unknown article", "GET", "/articles/nope", "", 404, runnel.ENOTFOUND},
		{"unknown route", "GET", "/nope", "", 404, runnel.ENOTFOUND},
		{"bad limit", "GET", "/articles?limit=x", "", 400, runnel.EINVALID},
		{"limit too large", "GET", "/articles?limit=1000", "", 400, runnel.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			if tt.method == "POST" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var body struct{ Error runnel.Error }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if body.Error.Code != tt.code || body.Error.Message == "" {
				t.Errorf("error = %+v, want code %q and a message", body.Error, tt.code)
			}
		})
	}
	t.Run("client returns the server's error", func(t *testing.T) {
		_, err := collect(t, ts.URL, strings.Repeat("b", 101))
		var re *runnel.Error
		if !errors.As(err, &re) || re.Code != runnel.ETOOLARGE {
			t.Errorf("Ask = %v, want *runnel.Error with code %s", err, runnel.ETOOLARGE)
		}
	})
}

func TestErrorAfterTheStreamBegan(t *testing.T) {
	tests := []struct {
		name string
		gen  runnel.GeneratorFunc
		code string
	}{
		{"generator error", func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
			emit("half ")
			return runnel.Done{}, &runnel.Error{Code: runnel.EUPSTREAM, Message: "The model failed.", Retryable: true}
		}, runnel.EUPSTREAM},
		{"internal error", func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
			emit("half ")
			return runnel.Done{}, errors.New("disk on fire at /var/secret")
		}, runnel.EINTERNAL},
		{"panic", func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
			emit("half ")
			panic("boom")
		}, runnel.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newServer(t, tt.gen)
			got, err := collect(t, ts.URL, "websocket")
			var re *runnel.Error
			if !errors.As(err, &re) || re.Code != tt.code {
				t.Fatalf("Ask = %v, want *runnel.Error with code %q", err, tt.code)
			}
			if strings.Contains(re.Message, "secret") || strings.Contains(re.Message, "boom") {
				t.Errorf("message %q leaks internals", re.Message)
			}
			last := got[len(got)-1]
			if last.Type != runnel.EventError || types(got)[4] != runnel.EventToken {
				t.Errorf("events = %v, want a token then a terminal error", types(got))
			}
		})
	}
}

// panicSearcher panics in Search: a bug in the answer's preparation.
type panicSearcher struct{ *memStore }

func (panicSearcher) Search(context.Context, runnel.Query, int) ([]runnel.Passage, error) {
	panic("boom in the search")
}

// TestPanicWhilePreparing checks that a panic before the generator starts
// (the answer's preparation runs in a goroutine of its own) ends the stream
// with an internal error and leaves the server serving.
func TestPanicWhilePreparing(t *testing.T) {
	_, ts := newServer(t, words("never"), func(s *rhttp.Server) {
		s.Answerer = &runnel.Answerer{Searcher: panicSearcher{newMemStore(testArticles...)}, Generator: s.Answerer.Generator}
	})
	for range 2 {
		got, err := collect(t, ts.URL, "websocket")
		var re *runnel.Error
		if !errors.As(err, &re) || re.Code != runnel.EINTERNAL || strings.Contains(re.Message, "boom") {
			t.Fatalf("Ask = %v, want an internal error that says nothing of the panic", err)
		}
		if want := []runnel.EventType{runnel.EventQuery, runnel.EventError}; !slices.Equal(types(got), want) {
			t.Errorf("events = %v, want %v", types(got), want)
		}
	}
}

func TestMaxStreamDuration(t *testing.T) {
	// The generator sees the run's deadline: one that would retry an
	// upstream looks at it before it waits.
	deadline := make(chan time.Time, 1)
	stall := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		if dl, ok := ctx.Deadline(); ok {
			deadline <- dl
		}
		emit("waiting ")
		<-ctx.Done()
		return runnel.Done{}, ctx.Err()
	})
	_, ts := newServer(t, stall, func(s *rhttp.Server) { s.MaxStreamDuration = 300 * time.Millisecond })
	start := time.Now()
	_, err := collect(t, ts.URL, "websocket")
	var re *runnel.Error
	if !errors.As(err, &re) || re.Code != runnel.ETIMEOUT {
		t.Fatalf("Ask = %v, want *runnel.Error with code %s", err, runnel.ETIMEOUT)
	}
	select {
	case dl := <-deadline:
		if dl.Before(start) || dl.After(time.Now()) {
			t.Errorf("the generator's deadline %v is not between the request (%v) and its end", dl, start)
		}
	default:
		t.Error("the generator's context has no deadline")
	}
}

// TestPing holds the generator until the client has seen three pings: a
// silence gets a ping after each interval of it, not only after the first.
func TestPing(t *testing.T) {
	release := make(chan struct{})
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return runnel.Done{}, ctx.Err()
		}
		return runnel.Done{FinishReason: "stop"}, emit("after the ping")
	})
	_, ts := newServer(t, gen, func(s *rhttp.Server) { s.PingInterval = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/articles/stream?question=websocket", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := rhttp.NewReader(resp.Body, 0)
	var got []runnel.EventType
	pings := 0
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("Next after %v: %v", got, err)
		}
		got = append(got, e.Type)
		if e.Type == runnel.EventPing {
			if pings++; pings == 3 {
				close(release)
			}
		}
		if e.Terminal() {
			break
		}
	}
	if got[len(got)-1] != runnel.EventDone || !slices.Contains(got, runnel.EventToken) {
		t.Errorf("events = %v, want pings, a token and done", got)
	}
}

// TestNoPingWhileTokensFlow sends a token every tenth of the ping interval
// for five intervals: a ping is for a silence, and the stream has none.
// The ping timer is not moved at each write (it looks at the last write
// when it fires), so this is what says it looks.
func TestNoPingWhileTokensFlow(t *testing.T) {
	const interval, tokens = 200 * time.Millisecond, 50
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for range tokens {
			if err := emit("tok "); err != nil {
				return runnel.Done{}, err
			}
			select {
			case <-time.After(interval / 10):
			case <-ctx.Done():
				return runnel.Done{}, ctx.Err()
			}
		}
		return runnel.Done{FinishReason: "stop"}, nil
	})
	_, ts := newServer(t, gen, func(s *rhttp.Server) { s.PingInterval = interval })
	resp, err := http.Get(ts.URL + "/articles/stream?question=websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := rhttp.NewReader(resp.Body, 0) // pings included, as the client leaves them out
	pings, toks := 0, 0
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("Next after %d tokens: %v", toks, err)
		}
		switch e.Type {
		case runnel.EventPing:
			pings++
		case runnel.EventToken:
			toks++
		}
		if e.Terminal() {
			break
		}
	}
	// One ping is forgiven: a machine that stalls for a whole interval
	// between two tokens has a silence to fill.
	if toks != tokens || pings > 1 {
		t.Errorf("%d tokens and %d pings, want %d tokens and no ping", toks, pings, tokens)
	}
}

// TestClientDisconnect leaves mid-stream and checks that the generation's
// context ends and that no goroutine is left behind.
func TestClientDisconnect(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	ended := make(chan error, 1)
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for i := 0; ; i++ {
			if err := emit(fmt.Sprintf("w%d ", i)); err != nil {
				ended <- err
				return runnel.Done{}, err
			}
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return runnel.Done{}, ctx.Err()
			default:
			}
		}
	})
	_, ts := newServer(t, gen)
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	err := rhttp.NewClient(ts.URL).Ask(ctx, "websocket", func(e runnel.Event) error {
		if e.Type == runnel.EventToken {
			if n++; n == 3 {
				cancel()
			}
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Ask = %v, want context.Canceled", err)
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Error("generator ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the generator was still running 10 s after the client left")
	}
	ts.Close()
	http.DefaultClient.CloseIdleConnections()
}

// TestSlowReader connects, never reads, and checks that the per-write
// deadline drops the client and stops the generator.
func TestSlowReader(t *testing.T) {
	ended := make(chan error, 1)
	big := strings.Repeat("x", 32<<10) + " "
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for {
			if err := emit(big); err != nil {
				ended <- err
				return runnel.Done{}, err
			}
		}
	})
	_, ts := newServer(t, gen, func(s *rhttp.Server) { s.WriteTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: test\r\n\r\n")
	select {
	case err := <-ended:
		if err == nil {
			t.Error("generator ended without an error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the generator was still running 20 s after the client stopped reading")
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	started := make(chan struct{})
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		emit("begun ")
		close(started)
		<-ctx.Done()
		return runnel.Done{}, ctx.Err()
	})
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: gen}, Store: store, Runs: memory.New(memory.Options{})}
	addr, stop, ran := runServer(t, s)
	go func() { <-started; stop() }()
	_, err := collect(t, "http://"+addr, "websocket")
	var re *runnel.Error
	if !errors.As(err, &re) || re.Code != runnel.EUNAVAILABLE || !re.Retryable {
		t.Errorf("Ask = %v, want a retryable %s error", err, runnel.EUNAVAILABLE)
	}
	ranClean(t, ran)
}

// A stream whose generator does not stop when told (it ignores its
// context) still ends at shutdown with a retryable error event, parked or
// not: the stream, idle with its token written, drains for a moment, then
// says why it ends.
func TestShutdownEndsStreamsOfAStuckGenerator(t *testing.T) {
	hold := make(chan struct{})
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		emit("begun ")
		<-hold
		return runnel.Done{}, ctx.Err()
	})
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: gen}, Store: store, Runs: memory.New(memory.Options{}),
		// No ping wakes the stream, and its own error comes long before
		// the cut.
		PingInterval: time.Hour, ShutdownTimeout: 20 * time.Second}
	addr, stop, ran := runServer(t, s)
	err := rhttp.NewClient("http://"+addr).Ask(t.Context(), "websocket", func(e runnel.Event) error {
		if e.Type == runnel.EventToken {
			stop() // the token is the client's; the stream waits
		}
		return nil
	})
	var re *runnel.Error
	if !errors.As(err, &re) || re.Code != runnel.EUNAVAILABLE || !re.Retryable {
		t.Errorf("Ask = %v, want a retryable %s error", err, runnel.EUNAVAILABLE)
	}
	close(hold)
	ranClean(t, ran)
}

func TestArticlesAPI(t *testing.T) {
	_, ts := newServer(t, words("x"))
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var list struct {
		Articles []struct{ Slug, Title, URL string }
		Total    int
	}
	get("/articles?limit=2&offset=1", &list)
	if list.Total != 3 || len(list.Articles) != 2 || list.Articles[0].Slug != "sse" {
		t.Errorf("GET /articles?limit=2&offset=1 = %+v, want 2 of 3 starting at sse", list)
	}
	var a struct{ Slug, Title, Body string }
	get("/articles/websocket", &a)
	if a.Title != "WebSockets in practice" || !strings.Contains(a.Body, "full-duplex") {
		t.Errorf("GET /articles/websocket = %+v", a)
	}
	var tags struct{ Tags []runnel.TagCount }
	get("/tags", &tags)
	if !slices.Contains(tags.Tags, runnel.TagCount{Tag: "streaming", Count: 2}) {
		t.Errorf("GET /tags = %+v, want streaming: 2", tags)
	}
	var health struct {
		Status   string
		Articles int
	}
	get("/healthz", &health)
	if health.Status != "ok" || health.Articles != 3 {
		t.Errorf("GET /healthz = %+v", health)
	}
}

// TestLongStreamOutlivesServerTimeouts runs a stream several times longer
// than the http.Server's read and write timeouts: the stream clears both
// and must end with done.
func TestLongStreamOutlivesServerTimeouts(t *testing.T) {
	tick := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for i := range 8 {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return runnel.Done{}, ctx.Err()
			}
			if err := emit(fmt.Sprintf("t%d ", i)); err != nil {
				return runnel.Done{}, err
			}
		}
		return runnel.Done{FinishReason: runnel.FinishStop}, nil
	})
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: tick}, Store: store, Runs: memory.New(memory.Options{})}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Config.ReadTimeout = 200 * time.Millisecond
	ts.Config.WriteTimeout = 200 * time.Millisecond
	ts.Start()
	defer ts.Close()
	got, err := collect(t, ts.URL, "websocket")
	if err != nil {
		t.Fatalf("Ask: %v (events %v)", err, types(got))
	}
	if n := len(got); n != 13 {
		t.Errorf("got %d events, want 13: %v", n, types(got))
	}
}

// gatedSearcher checks, when the search starts, that the query event is
// already on the wire.
type gatedSearcher struct {
	*memStore
	sent func(runnel.EventType) bool
	t    *testing.T
}

func (g gatedSearcher) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	if !g.sent(runnel.EventQuery) {
		g.t.Error("the search started before the query event was written to the connection")
	}
	return g.memStore.Search(ctx, q, limit)
}

// wireListener records what the server writes to its connections.
type wireListener struct {
	net.Listener
	mu  sync.Mutex
	out []byte
}

func (l *wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return &wireConn{c, l}, err
}

type wireConn struct {
	net.Conn
	l *wireListener
}

func (c *wireConn) Write(b []byte) (int, error) {
	c.l.mu.Lock()
	c.l.out = append(c.l.out, b...)
	c.l.mu.Unlock()
	return c.Conn.Write(b)
}

// TestStagesAreWrittenFirst checks the checkpoints: the search begins only
// once the query event is on the wire, and generation only once sources
// is, so slow work never holds back an event that is ready, even when the
// producer would otherwise keep the only CPU busy.
func TestStagesAreWrittenFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	wl := &wireListener{}
	sent := func(typ runnel.EventType) bool {
		wl.mu.Lock()
		defer wl.mu.Unlock()
		return bytes.Contains(wl.out, []byte(`{"type":"`+string(typ)+`"`))
	}
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		if !sent(runnel.EventSources) {
			t.Error("generation started before the sources event was written to the connection")
		}
		return runnel.Done{FinishReason: runnel.FinishStop}, emit("ok")
	})
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: gatedSearcher{store, sent, t}, Generator: gen}, Store: store, Runs: memory.New(memory.Options{})}
	ts := httptest.NewUnstartedServer(s.Handler())
	wl.Listener = ts.Listener
	ts.Listener = wl
	ts.Start()
	defer ts.Close()
	for range 20 {
		wl.mu.Lock()
		wl.out = nil
		wl.mu.Unlock()
		if _, err := collect(t, ts.URL, "websocket"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequestDeadline gives the request a deadline of its own, as AWS
// Lambda does with the invocation's, and expects a timeout error event
// before it, not a cut connection.
func TestRequestDeadline(t *testing.T) {
	stall := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		emit("waiting ")
		<-ctx.Done()
		return runnel.Done{}, ctx.Err()
	})
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: stall}, Store: store, Runs: memory.New(memory.Options{})}
	h := s.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 800*time.Millisecond)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer ts.Close()
	got, err := collect(t, ts.URL, "websocket")
	var re *runnel.Error
	if !errors.As(err, &re) || re.Code != runnel.ETIMEOUT {
		t.Fatalf("Ask = %v (events %v), want a timeout error event", err, types(got))
	}
}
