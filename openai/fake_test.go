package openai_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/openai"
)

// within bounds every wait in these tests: a fail-safe, never a pace.
const within = 5 * time.Second

// secretKey is the API key the tests send; no error message or log line
// may contain it.
const secretKey = "sk-test-SECRET0123456789"

// leakCheck fails t if a goroutine started during the test outlives it.
// Call it first: cleanups run last-registered first, so the check runs
// after the servers and connections are closed.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// fakeLLM is an OpenAI-compatible server for the tests. It speaks the real
// wire format (text/event-stream, "data: {chat.completion.chunk}" events,
// comments, "data: [DONE]") and each request runs the next script, the
// last one again once they run out.
type fakeLLM struct {
	t       testing.TB
	srv     *httptest.Server
	scripts []script

	mu    sync.Mutex
	reqs  []fakeRequest
	conns atomic.Int32
	gone  chan struct{} // a request that hold was waiting on ended
}

// script plays one response.
type script func(s *sse)

// fakeRequest is what a request carried.
type fakeRequest struct {
	Header http.Header
	Body   map[string]any
}

func newFake(t testing.TB, scripts ...script) *fakeLLM {
	t.Helper()
	f := &fakeLLM{t: t, scripts: scripts, gone: make(chan struct{}, 16)}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL to configure: the server's /v1.
func (f *fakeLLM) URL() string { return f.srv.URL + "/v1" }

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		f.t.Errorf("request body %q: %v", raw, err)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.t.Errorf("request %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, fakeRequest{Header: r.Header.Clone(), Body: body})
	f.mu.Unlock()
	if len(f.scripts) == 0 {
		f.t.Error("the fake server has no script")
		return
	}
	s := &sse{f: f, w: w, r: r, rc: http.NewResponseController(w)}
	f.scripts[min(n, len(f.scripts)-1)](s)
}

// requests returns what the server received so far.
func (f *fakeLLM) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

// waitGone waits until a request that a script holds has ended on the
// server's side, and fails t if that takes longer than within.
func (f *fakeLLM) waitGone(t testing.TB) {
	t.Helper()
	select {
	case <-f.gone:
	case <-time.After(within):
		t.Fatalf("the upstream request was still open %v later", within)
	}
}

// sse writes one response of the fake server.
type sse struct {
	f       *fakeLLM
	w       http.ResponseWriter
	r       *http.Request
	rc      *http.ResponseController
	started bool
}

func (s *sse) start() {
	if s.started {
		return
	}
	s.started = true
	if s.w.Header().Get("Content-Type") == "" {
		s.w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	}
	s.w.Header().Set("Cache-Control", "no-cache")
	s.w.WriteHeader(http.StatusOK)
}

// raw writes text as it is and flushes it.
func (s *sse) raw(text string) {
	s.start()
	io.WriteString(s.w, text)
	s.rc.Flush()
}

// data sends one event.
func (s *sse) data(v string) { s.raw("data: " + v + "\n\n") }

// chunk sends a chat.completion.chunk with choices (JSON) and usage (JSON
// or "null").
func (s *sse) chunk(choices, usage string) {
	s.data(`{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"test-model","system_fingerprint":"fp_fake","choices":` + choices + `,"usage":` + usage + `}`)
}

func (s *sse) role() {
	s.chunk(`[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]`, "null")
}

func (s *sse) token(text string) {
	s.chunk(`[{"index":0,"delta":{"content":`+quote(text)+`},"logprobs":null,"finish_reason":null}]`, "null")
}

func (s *sse) finish(reason string) {
	s.chunk(`[{"index":0,"delta":{},"logprobs":null,"finish_reason":`+quote(reason)+`}]`, "null")
}

func (s *sse) usage(prompt, completion int) {
	s.chunk(`[]`, fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, prompt, completion, prompt+completion))
}

func (s *sse) comment(text string) { s.raw(": " + text + "\n\n") }

func (s *sse) done() { s.data("[DONE]") }

// status answers with an error status and a JSON body; headers are pairs.
func (s *sse) status(code int, body string, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		s.w.Header().Set(headers[i], headers[i+1])
	}
	s.w.Header().Set("Content-Type", "application/json")
	s.w.WriteHeader(code)
	io.WriteString(s.w, body)
}

// auth returns the Authorization header the request carried.
func (s *sse) auth() string { return s.r.Header.Get("Authorization") }

// hold waits until the client ends the request, then reports it on f.gone.
func (s *sse) hold() {
	select {
	case <-s.r.Context().Done():
		s.f.gone <- struct{}{}
	case <-time.After(2 * within):
		s.f.t.Error("hold: the client never ended the request")
	}
}

// abort cuts the connection without ending the response.
func (s *sse) abort() { panic(http.ErrAbortHandler) }

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// answer streams tokens the way OpenAI does: a role chunk, the tokens, a
// finish chunk, a usage chunk and [DONE].
func answer(tokens ...string) script {
	return func(s *sse) {
		s.role()
		for _, tok := range tokens {
			s.token(tok)
		}
		s.finish("stop")
		s.usage(100, len(tokens))
		s.done()
	}
}

// newGen returns a Generator for f with o, Model and BaseURL defaulted, and
// retries without backoff.
func newGen(t testing.TB, f *fakeLLM, o openai.Options) *openai.Generator {
	t.Helper()
	if f != nil {
		o.BaseURL = cmp.Or(o.BaseURL, f.URL())
	}
	o.Model = cmp.Or(o.Model, "test-model")
	g, err := openai.New(o)
	if err != nil {
		t.Fatalf("New(%v): %v", o, err)
	}
	openai.SetBackoff(g, time.Millisecond)
	t.Cleanup(g.CloseIdleConnections)
	return g
}

// result is what one Generate produced.
type result struct {
	tokens []string
	done   runnel.Done
	err    error
}

func (r result) text() string { return strings.Join(r.tokens, "") }

// generate runs g on p; onToken, if not nil, sees each token as emit does
// and may fail it.
func generate(ctx context.Context, g *openai.Generator, p runnel.Prompt, onToken func(i int, tok string) error) result {
	var r result
	r.done, r.err = g.Generate(ctx, p, func(tok string) error {
		r.tokens = append(r.tokens, tok)
		if onToken != nil {
			return onToken(len(r.tokens)-1, tok)
		}
		return nil
	})
	return r
}

// question is a prompt with a few passages, as the pipeline builds it.
var question = runnel.Prompt{
	Question: "what is websocket?",
	Terms:    []string{"websocket"},
	Passages: []runnel.Passage{
		{Slug: "websockets", Title: "WebSockets in practice", Heading: "The upgrade", Position: 1, Score: 9.1,
			Text: "A WebSocket is a long-lived, full-duplex connection between a browser and a server, opened with an ordinary HTTP request and then upgraded."},
		{Slug: "sse", Title: "Server-Sent Events", Score: 5.2,
			Text: "Server-sent events let a server push a stream of text messages to the browser over a single HTTP response. Unlike a WebSocket, the channel is one-way."},
		{Slug: "websockets", Title: "WebSockets in practice", Heading: "Proxies and timeouts", Position: 2, Score: 4.4,
			Text: "Many reverse proxies close a connection that has been idle for a minute or two; applications send a ping every thirty seconds."},
	},
}
