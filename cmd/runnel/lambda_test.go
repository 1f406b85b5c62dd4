package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"

	"github.com/runnel/runnel"
)

// wait bounds every wait on the function under test.
const wait = 15 * time.Second

// TestLambda runs the real binary as AWS Lambda runs it, against a fake
// Runtime API: neither AWS's Runtime Interface Emulator nor sam local
// streams a response, so this is the only way to see the events arrive.
// The binary is built with testdata/lambda/hook.go, which lets the test
// hand out an answer's tokens one at a time and make it panic or stall.
func TestLambda(t *testing.T) {
	bin := buildLambda(t)
	t.Run("embedded articles", func(t *testing.T) { testLambdaStream(t, bin) })
	t.Run("bundled database", func(t *testing.T) { testLambdaDatabase(t, bin) })
}

func testLambdaStream(t *testing.T, bin string) {
	rt := newFakeRuntime(t)
	stop := startLambda(t, bin, rt)

	t.Run("events arrive one at a time", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/articles/stream", "question=gate+streaming", ""), time.Minute)
		p := inv.prelude(t)
		if p.StatusCode != 200 || p.Headers["Content-Type"] != "application/x-ndjson" {
			t.Errorf("prelude: status %d, headers %v; want 200 and application/x-ndjson", p.StatusCode, p.Headers)
		}
		if p.Headers["X-Request-Id"] != inv.id {
			t.Errorf("X-Request-Id = %q, want the invocation's id %q", p.Headers["X-Request-Id"], inv.id)
		}
		if p.contentType != "application/vnd.awslambda.http-integration-response" || !p.chunked {
			t.Errorf("response POST: Content-Type %q, chunked %v; want the http-integration-response type, chunked", p.contentType, p.chunked)
		}
		// The generator now waits for the first token, so these four
		// events can only be here if each was sent as it happened.
		for _, want := range []runnel.EventType{runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources} {
			if e := inv.event(t); e.Type != want {
				t.Fatalf("event %v, want %v", e.Type, want)
			}
		}
		for _, tok := range []string{"Streams ", "arrive ", "token ", "by token."} {
			rt.release(t, tok)
			// The next token is handed out only after this one arrived.
			if e := inv.event(t); e.Type != runnel.EventToken || e.Token != tok {
				t.Fatalf("event %v %q, want token %q", e.Type, e.Token, tok)
			}
		}
		rt.release(t, "")
		e := inv.event(t)
		if e.Type != runnel.EventDone || e.Done.FinishReason != runnel.FinishStop || e.Done.ID != inv.id {
			t.Errorf("last event %v %+v, want done, stop, id %q", e.Type, e.Done, inv.id)
		}
		inv.end(t)
	})

	t.Run("SSE events arrive one at a time", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/articles/stream", "question=gate+sse", "", "accept", "text/event-stream"), time.Minute)
		p := inv.prelude(t)
		if p.StatusCode != 200 || p.Headers["Content-Type"] != "text/event-stream" {
			t.Errorf("prelude: status %d, headers %v; want 200 and text/event-stream", p.StatusCode, p.Headers)
		}
		run := p.Headers["Runnel-Run-Id"]
		if run == "" {
			t.Errorf("prelude headers %v: no Runnel-Run-Id", p.Headers)
		}
		if p.Headers["X-Request-Id"] != inv.id {
			t.Errorf("X-Request-Id = %q, want the invocation's id %q", p.Headers["X-Request-Id"], inv.id)
		}
		if b := inv.block(t); b.text != "retry: 1000" {
			t.Fatalf("first block %q, want the retry block", b.text)
		}
		seq := 0
		next := func(want runnel.EventType) runnel.Event {
			t.Helper()
			b := inv.block(t)
			if wantID := run + "." + strconv.Itoa(seq); b.typ != string(want) || b.id != wantID {
				t.Fatalf("block %q, want event %s with id %s", b.text, want, wantID)
			}
			seq++
			return b.event(t)
		}
		// The generator now waits for the first token, so these four
		// blocks can only be here if each was sent as it happened.
		if e := next(runnel.EventQuery); e.Query != "gate sse?" {
			t.Errorf("query %q, want %q", e.Query, "gate sse?")
		}
		for _, want := range []runnel.EventType{runnel.EventTags, runnel.EventTitles, runnel.EventSources} {
			next(want)
		}
		for _, tok := range []string{"Server-Sent ", "events ", "stream ", "too."} {
			rt.release(t, tok)
			// The next token is handed out only after this one arrived.
			if e := next(runnel.EventToken); e.Token != tok {
				t.Fatalf("token %q, want %q", e.Token, tok)
			}
		}
		rt.release(t, "")
		e := next(runnel.EventDone)
		if e.Done.FinishReason != runnel.FinishStop || e.Done.ID != inv.id {
			t.Errorf("done %+v, want stop, id %q", e.Done, inv.id)
		}
		inv.end(t)
	})

	t.Run("a panic in the generator ends the stream with an error event", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/articles/stream", "question=panic+please", ""), time.Minute)
		if p := inv.prelude(t); p.StatusCode != 200 {
			t.Errorf("status %d, want 200", p.StatusCode)
		}
		events := inv.rest(t)
		types := eventTypes(events)
		if !slices.Equal(types, []runnel.EventType{"query", "tags", "titles", "sources", "error"}) {
			t.Fatalf("events %v, want query, tags, titles, sources, error", types)
		}
		if err := events[len(events)-1].Err; err.Code != runnel.EINTERNAL {
			t.Errorf("error %+v, want code internal", err)
		}
	})

	t.Run("a panic in the stream's handler after it began ends it with an error event", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/test/panic", "after=1", ""), time.Minute)
		p := inv.prelude(t)
		if p.StatusCode != 200 || p.Headers["Content-Type"] != "application/x-ndjson" || p.Headers["Runnel-Run-Id"] == "" {
			t.Errorf("prelude %+v, want 200 NDJSON with a Runnel-Run-Id", p)
		}
		// The query event, then the panic at the next Write: the error
		// event comes from lambdaHandler, in the stream's framing.
		lines := inv.lines(t)
		want := []string{`{"type":"query","data":"stall please?"}`, `{"type":"error","data":{"code":"internal","message":"Internal error."}}`}
		if !slices.Equal(lines, want) {
			t.Errorf("body lines\n%q\nwant\n%q", lines, want)
		}
	})

	t.Run("a panic in the SSE stream's handler after it began ends it with an SSE error event", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/test/panic", "after=2", "", "accept", "text/event-stream"), time.Minute)
		p := inv.prelude(t)
		run := p.Headers["Runnel-Run-Id"]
		if p.StatusCode != 200 || p.Headers["Content-Type"] != "text/event-stream" || run == "" {
			t.Errorf("prelude %+v, want 200 SSE with a Runnel-Run-Id", p)
		}
		// The retry block and the query event (two Writes), then the
		// panic; the pump's own error event has no id, as it is not one
		// of the run's.
		var blocks []string
		for _, b := range inv.blocks(t) {
			blocks = append(blocks, b.text)
		}
		want := []string{
			"retry: 1000",
			"event: query\nid: " + run + ".0\ndata: \"stall please?\"",
			`event: error` + "\n" + `data: {"code":"internal","message":"Internal error."}`,
		}
		if !slices.Equal(blocks, want) {
			t.Errorf("body blocks\n%q\nwant\n%q", blocks, want)
		}
	})

	t.Run("a panic in the handler before it wrote is a 500", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/test/panic", "", ""), time.Minute)
		p := inv.prelude(t)
		lines := inv.lines(t)
		if p.StatusCode != 500 || p.Headers["Content-Type"] != "application/json" ||
			len(lines) != 1 || !strings.Contains(lines[0], `"code":"internal"`) {
			t.Errorf("prelude %+v, body %q; want 500 with a JSON internal error", p, lines)
		}
	})

	t.Run("the function answers after the panics", func(t *testing.T) {
		body := base64.StdEncoding.EncodeToString([]byte(`{"question": "what is websocket"}`))
		inv := rt.invoke(t, urlEvent("POST", "/articles/stream", "", body), time.Minute)
		if p := inv.prelude(t); p.StatusCode != 200 {
			t.Fatalf("status %d, want 200", p.StatusCode)
		}
		events := inv.rest(t)
		var answer strings.Builder
		var titles []string
		for _, e := range events {
			answer.WriteString(e.Token)
			if e.Type == runnel.EventTitles {
				titles = e.Titles
			}
		}
		if last := events[len(events)-1]; last.Type != runnel.EventDone {
			t.Errorf("last event %v, want done", last.Type)
		}
		if !slices.Contains(titles, "WebSocket") || !strings.Contains(answer.String(), "WebSocket") {
			t.Errorf("titles %q, answer %q; want the embedded WebSocket article", titles, answer.String())
		}
	})

	t.Run("a bad question is a 400 before the stream", func(t *testing.T) {
		inv := rt.invoke(t, urlEvent("GET", "/articles/stream", "question=+", ""), time.Minute)
		p := inv.prelude(t)
		lines := inv.lines(t)
		if p.StatusCode != 400 || len(lines) != 1 || !strings.Contains(lines[0], `"code":"invalid"`) {
			t.Errorf("prelude %+v, body %q; want 400 invalid", p, lines)
		}
	})

	t.Run("the invocation deadline ends the stream with an error event before it", func(t *testing.T) {
		deadline := 3 * time.Second
		inv := rt.invoke(t, urlEvent("GET", "/articles/stream", "question=stall+forever", ""), deadline)
		inv.prelude(t)
		events := inv.rest(t)
		types := eventTypes(events)
		if !slices.Equal(types, []runnel.EventType{"query", "tags", "titles", "sources", "token", "error"}) {
			t.Fatalf("events %v, want query, tags, titles, sources, token, error", types)
		}
		if err := events[len(events)-1].Err; err.Code != runnel.ETIMEOUT {
			t.Errorf("error %+v, want code timeout", err)
		}
		if !inv.lastAt.Before(inv.deadline) {
			t.Errorf("the error event arrived %v after the deadline", inv.lastAt.Sub(inv.deadline))
		}
	})

	rt.check(t)
	// CloudWatch gets one JSON object a line.
	msgs := map[string]int{}
	for line := range strings.Lines(stop()) {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level == "" || rec.Msg == "" {
			t.Errorf("log line %q is not a JSON record", line)
		}
		msgs[rec.Msg]++
	}
	if msgs["lambda ready"] != 1 || msgs["panic in handler"] != 3 {
		t.Errorf("log messages %v, want lambda ready once and panic in handler three times", msgs)
	}
}

// testLambdaDatabase serves a database bundled with the function, which
// Lambda mounts read-only: the function must leave the file as it is.
func testLambdaDatabase(t *testing.T, bin string) {
	dir, bundle := t.TempDir(), t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kites.md": "---\ntitle: Flying kites\ntags: [outdoors, wind]\n---\nA kite flies when wind pushes against its sail and the line holds it at an angle.\n",
	})
	db := filepath.Join(bundle, "runnel.db")
	if code, _, errOut := run(t, "import", "--db", db, dir); code != 0 {
		t.Fatalf("import = %d: %s", code, errOut)
	}
	before := snapshot(t, bundle)

	rt := newFakeRuntime(t)
	startLambda(t, bin, rt, "RUNNEL_DB="+db)
	inv := rt.invoke(t, urlEvent("GET", "/articles/stream", "question=how+does+a+kite+fly", ""), time.Minute)
	inv.prelude(t)
	var titles []string
	events := inv.rest(t)
	for _, e := range events {
		if e.Type == runnel.EventTitles {
			titles = e.Titles
		}
	}
	if !slices.Equal(titles, []string{"Flying kites"}) || events[len(events)-1].Type != runnel.EventDone {
		t.Errorf("titles %q, %d events; want Flying kites from the bundled database, then done", titles, len(events))
	}
	if after := snapshot(t, bundle); after != before {
		t.Errorf("the bundled database's directory changed:\n%s\nwas\n%s", after, before)
	}
	rt.check(t)
}

// snapshot describes the files in dir: names, sizes and hashes.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %x\n", e.Name(), len(data), sha256.Sum256(data))
	}
	return b.String()
}

// buildLambda builds the binary as deploy/lambda/build.sh does (-tags
// lambda.norpc), for this machine, with testdata/lambda/hook.go added to
// the package. It builds with the test binary's own -race and CGO_ENABLED:
// so the build reuses the packages go test compiled (other settings compile
// the SQLite driver again, minutes on a cold cache), and a data race in the
// function shows in its output, which the test reads.
func buildLambda(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pkg, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(pkg, "zz_lambda_test_hook.go"): filepath.Join(pkg, "testdata", "lambda", "hook.go"),
	}})
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bootstrap")
	args := []string{"build", "-tags", "lambda.norpc,runneltest", "-overlay", filepath.Join(dir, "overlay.json"), "-o", bin}
	cgo := "0"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "-race" && s.Value == "true":
				args = append(args, "-race")
			case s.Key == "CGO_ENABLED":
				cgo = s.Value
			}
		}
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startLambda starts the binary as Lambda does, with no arguments and the
// Runtime API's address in the environment. It returns a function that
// kills the process and returns everything it printed; the test's cleanup
// calls it too.
func startLambda(t *testing.T, bin string, rt *fakeRuntime, env ...string) (stop func() string) {
	t.Helper()
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RUNNEL_") && !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "_X_AMZN") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"AWS_LAMBDA_RUNTIME_API="+rt.srv.Listener.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME=runnel",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"RUNNEL_TEST_GATE_URL="+rt.srv.URL,
		"TMPDIR="+t.TempDir(),
	)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer // read once the process has exited
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		rt.exitErr = cmd.Wait() // returns once all the output is in out
		close(rt.exited)
	}()
	stop = func() string {
		cmd.Process.Kill()
		<-rt.exited
		return out.String()
	}
	t.Cleanup(func() {
		if out := stop(); t.Failed() {
			t.Logf("the function's output:\n%s", out)
		}
	})
	return stop
}

// urlEvent returns a Function URL event (payload format 2.0) for a request.
// A body is given base64-encoded, as the platform sends binary bodies.
// header holds extra request headers as name, value pairs, names in lower
// case as the platform sends them; they replace the defaults (accept: */*).
func urlEvent(method, path, rawQuery, base64Body string, header ...string) map[string]any {
	const domain = "abcdefghijklmnopqrstuvwxyz.lambda-url.eu-west-1.on.aws"
	query := map[string]string{}
	q, _ := url.ParseQuery(rawQuery)
	for k := range q {
		query[k] = q.Get(k)
	}
	headers := map[string]string{
		"host":              domain,
		"user-agent":        "curl/8.5.0",
		"accept":            "*/*",
		"x-forwarded-for":   "203.0.113.7",
		"x-forwarded-proto": "https",
		"x-amzn-trace-id":   "Root=1-65a1b2c3-0123456789abcdef01234567",
	}
	if base64Body != "" {
		headers["content-type"] = "application/json"
	}
	if len(header)%2 != 0 {
		panic("urlEvent: header needs name, value pairs")
	}
	for i := 0; i < len(header); i += 2 {
		headers[header[i]] = header[i+1]
	}
	e := map[string]any{
		"version":        "2.0",
		"routeKey":       "$default",
		"rawPath":        path,
		"rawQueryString": rawQuery,
		"headers":        headers,
		"requestContext": map[string]any{
			"accountId":    "anonymous",
			"apiId":        "abcdefghijklmnopqrstuvwxyz",
			"domainName":   domain,
			"domainPrefix": "abcdefghijklmnopqrstuvwxyz",
			"http": map[string]any{
				"method": method, "path": path, "protocol": "HTTP/1.1",
				"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0",
			},
			"requestId": "0d6c1a4b-8f0e-4c1e-9a57-3c2d1e0f9b8a",
			"routeKey":  "$default",
			"stage":     "$default",
			"time":      time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			"timeEpoch": time.Now().UnixMilli(),
		},
		"isBase64Encoded": base64Body != "",
	}
	if len(query) > 0 {
		e["queryStringParameters"] = query
	}
	if base64Body != "" {
		e["body"] = base64Body
	}
	return e
}

// fakeRuntime is the Lambda Runtime API as far as a function that streams
// its responses uses it: GET .../invocation/next hands out an event, and the
// function answers with a chunked POST .../invocation/{id}/response whose
// body is a JSON prelude, eight NUL bytes, then the response body. It also
// serves /gate, where the test hands out tokens to the gated generator.
type fakeRuntime struct {
	srv     *httptest.Server
	pending chan *invocation
	gate    chan string
	closing chan struct{}
	exited  chan struct{} // closed when the function's process has exited
	exitErr error         // how it exited, once exited is closed

	mu       sync.Mutex
	inflight map[string]*invocation
	seq      int
	problems []string // protocol errors seen by the handlers
}

type invocation struct {
	rt       *fakeRuntime
	id       string
	payload  []byte
	deadline time.Time

	pre     chan lambdaPrelude
	body    chan bodyLine // lines of the body, closed at its end
	lastAt  time.Time     // when the last line read arrived
	trail   http.Header   // the request's trailers, after the body
	bodyErr error         // why reading the body stopped, io.EOF if it ended well
}

type bodyLine struct {
	text string
	at   time.Time // when it arrived
}

type lambdaPrelude struct {
	StatusCode  int               `json:"statusCode"`
	Headers     map[string]string `json:"headers"`
	Cookies     []string          `json:"cookies"`
	contentType string            // of the POST carrying the response
	chunked     bool
}

func newFakeRuntime(t *testing.T) *fakeRuntime {
	rt := &fakeRuntime{
		pending:  make(chan *invocation, 1),
		gate:     make(chan string),
		closing:  make(chan struct{}),
		exited:   make(chan struct{}),
		inflight: map[string]*invocation{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", rt.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", rt.response)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", rt.failure)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", rt.failure)
	mux.HandleFunc("GET /gate", func(w http.ResponseWriter, r *http.Request) {
		select {
		case tok := <-rt.gate:
			if tok == "" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			io.WriteString(w, tok)
		case <-r.Context().Done():
		case <-rt.closing:
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rt.problem("unexpected request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	rt.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(rt.closing)
		rt.srv.Close()
	})
	return rt
}

func (rt *fakeRuntime) problem(format string, args ...any) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.problems = append(rt.problems, fmt.Sprintf(format, args...))
}

// check reports the protocol errors the runtime saw.
func (rt *fakeRuntime) check(t *testing.T) {
	t.Helper()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, p := range rt.problems {
		t.Error("runtime API:", p)
	}
}

// invoke queues event for the function with a deadline d from now.
func (rt *fakeRuntime) invoke(t *testing.T, event map[string]any, d time.Duration) *invocation {
	t.Helper()
	b, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	rt.mu.Lock()
	rt.seq++
	id := fmt.Sprintf("8476a536-e9f4-11e8-9739-%012d", rt.seq)
	rt.mu.Unlock()
	inv := &invocation{rt: rt, id: id, payload: b, deadline: time.Now().Add(d),
		pre: make(chan lambdaPrelude, 1), body: make(chan bodyLine, 4096)}
	select {
	case rt.pending <- inv:
	case <-rt.exited:
		t.Fatalf("the function has exited: %v", rt.exitErr)
	case <-time.After(wait):
		t.Fatal("the function did not take the previous invocation")
	}
	return inv
}

func (rt *fakeRuntime) next(w http.ResponseWriter, r *http.Request) {
	select {
	case inv := <-rt.pending:
		rt.mu.Lock()
		rt.inflight[inv.id] = inv
		rt.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:runnel")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-65a1b2c3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0")
		w.Write(inv.payload)
	case <-r.Context().Done():
	case <-rt.closing:
	}
}

func (rt *fakeRuntime) response(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	inv := rt.inflight[r.PathValue("id")]
	delete(rt.inflight, r.PathValue("id"))
	rt.mu.Unlock()
	if inv == nil {
		rt.problem("response for unknown invocation %q", r.PathValue("id"))
		http.NotFound(w, r)
		return
	}
	defer func() {
		close(inv.body)
	}()
	br := bufio.NewReader(r.Body)
	js, err := br.ReadBytes(0) // JSON cannot hold a raw NUL
	if err != nil {
		rt.problem("invocation %s: no prelude: %v", inv.id, err)
		return
	}
	var nuls [7]byte
	if _, err := io.ReadFull(br, nuls[:]); err != nil || nuls != [7]byte{} {
		rt.problem("invocation %s: the prelude is not followed by eight NUL bytes", inv.id)
		return
	}
	var p lambdaPrelude
	if err := json.Unmarshal(js[:len(js)-1], &p); err != nil {
		rt.problem("invocation %s: prelude %q: %v", inv.id, js, err)
		return
	}
	p.contentType = r.Header.Get("Content-Type")
	p.chunked = slices.Contains(r.TransferEncoding, "chunked")
	inv.pre <- p
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			inv.body <- bodyLine{line, time.Now()}
		}
		if err != nil {
			inv.bodyErr = err
			break
		}
	}
	inv.trail = r.Trailer
	w.WriteHeader(http.StatusAccepted)
}

func (rt *fakeRuntime) failure(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rt.problem("%s: %s", r.URL.Path, b)
	w.WriteHeader(http.StatusAccepted)
}

// release hands the gated generator its next token ("" ends the answer).
// It fails unless the generator is already asking for one.
func (rt *fakeRuntime) release(t *testing.T, tok string) {
	t.Helper()
	select {
	case rt.gate <- tok:
	case <-rt.exited:
		t.Fatalf("the function has exited: %v", rt.exitErr)
	case <-time.After(wait):
		t.Fatalf("the generator did not ask for a token (to send %q)", tok)
	}
}

func (inv *invocation) prelude(t *testing.T) lambdaPrelude {
	t.Helper()
	select {
	case p := <-inv.pre:
		return p
	case <-inv.rt.exited:
		t.Fatalf("the function has exited: %v", inv.rt.exitErr)
	case <-time.After(wait):
		t.Fatal("no response prelude")
	}
	panic("unreachable")
}

// line returns the next line of the body, and false at its end.
func (inv *invocation) line(t *testing.T) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-inv.body:
		if ok {
			inv.lastAt = l.at
		}
		return l.text, ok
	case <-time.After(wait):
		t.Fatal("no line in the response body")
	}
	panic("unreachable")
}

// event reads the next line as an event.
func (inv *invocation) event(t *testing.T) runnel.Event {
	t.Helper()
	l, ok := inv.line(t)
	if !ok {
		t.Fatal("the body ended")
	}
	var e runnel.Event
	if err := json.Unmarshal([]byte(l), &e); err != nil || !strings.HasSuffix(l, "\n") {
		t.Fatalf("line %q is not an event: %v", l, err)
	}
	return e
}

// lines returns the remaining lines of the body without their newlines,
// and checks it ended cleanly.
func (inv *invocation) lines(t *testing.T) []string {
	t.Helper()
	var lines []string
	for {
		l, ok := inv.line(t)
		if !ok {
			break
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	inv.end(t)
	return lines
}

// rest returns the remaining events of the body.
func (inv *invocation) rest(t *testing.T) []runnel.Event {
	t.Helper()
	var events []runnel.Event
	for _, l := range inv.lines(t) {
		var e runnel.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q is not an event: %v", l, err)
		}
		events = append(events, e)
	}
	if len(events) == 0 {
		t.Fatal("no events")
	}
	return events
}

// sseBlock is one block of an SSE body: its lines up to the blank line
// that ends it, and the fields an event block holds.
type sseBlock struct {
	text          string // the lines without the blank one, joined by newlines
	typ, id, data string // the event, id and data fields ("" when missing)
}

// block reads the next SSE block of the body.
func (inv *invocation) block(t *testing.T) sseBlock {
	t.Helper()
	var lines []string
	for {
		l, ok := inv.line(t)
		switch {
		case !ok && len(lines) == 0:
			t.Fatal("the body ended")
		case !ok || !strings.HasSuffix(l, "\n"):
			t.Fatalf("the body ended inside the block %q", append(lines, l))
		case l == "\n":
			return parseBlock(t, lines)
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
}

func parseBlock(t *testing.T, lines []string) sseBlock {
	t.Helper()
	b := sseBlock{text: strings.Join(lines, "\n")}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "event":
			b.typ = value
		case "id":
			b.id = value
		case "data":
			if b.data != "" {
				t.Fatalf("block %q has more than one data line; runnel's data is one line of JSON", b.text)
			}
			b.data = value
		}
	}
	return b
}

// blocks returns the remaining SSE blocks of the body, and checks it ended
// cleanly.
func (inv *invocation) blocks(t *testing.T) []sseBlock {
	t.Helper()
	var blocks []sseBlock
	var lines []string
	for {
		l, ok := inv.line(t)
		if !ok {
			break
		}
		if l == "\n" {
			blocks = append(blocks, parseBlock(t, lines))
			lines = nil
			continue
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	if len(lines) > 0 {
		t.Errorf("the body ended inside the block %q", lines)
	}
	inv.end(t)
	return blocks
}

// event decodes an event block: the event's type and its data, as an
// NDJSON line would carry them.
func (b sseBlock) event(t *testing.T) runnel.Event {
	t.Helper()
	var e runnel.Event
	line := `{"type":` + strconv.Quote(b.typ) + `,"data":` + b.data + `}`
	if b.typ == "" || b.data == "" {
		t.Fatalf("block %q is not an event", b.text)
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("block %q is not an event: %v", b.text, err)
	}
	return e
}

// end waits for the end of the body and checks that it ended cleanly,
// without the error trailers the runtime client adds when a body fails.
func (inv *invocation) end(t *testing.T) {
	t.Helper()
	if l, ok := inv.line(t); ok {
		t.Fatalf("line %q after the end", l)
	}
	if inv.bodyErr != io.EOF {
		t.Errorf("the response body ended with %v", inv.bodyErr)
	}
	if typ := inv.trail.Get("Lambda-Runtime-Function-Error-Type"); typ != "" {
		t.Errorf("the response body ended with the error trailer %s", typ)
	}
}

func eventTypes(events []runnel.Event) []runnel.EventType {
	types := make([]runnel.EventType, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	return types
}

// TestLambdaDeploy checks that the SAM template and the Terraform module
// parse and deploy what the streaming needs.
func TestLambdaDeploy(t *testing.T) {
	const zip = "dist/lambda/runnel-lambda.zip"
	build, err := os.ReadFile("../../deploy/lambda/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "-tags lambda.norpc", filepath.Base(zip)} {
		if !bytes.Contains(build, []byte(want)) {
			t.Errorf("build.sh does not say %s", want)
		}
	}

	t.Run("SAM", func(t *testing.T) {
		src, err := os.ReadFile("../../deploy/lambda/template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(src, &doc); err != nil {
			t.Fatalf("template.yaml: %v", err)
		}
		// Short-form intrinsics (!Ref, !GetAtt) are YAML tags that
		// generic YAML tools cannot read; the template uses the long form.
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
				t.Errorf("template.yaml:%d: tag %s; use the long form (Ref:, Fn::GetAtt:)", n.Line, n.Tag)
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(&doc)
		var tmpl struct {
			Transform string `yaml:"Transform"`
			Resources map[string]struct {
				Type       string         `yaml:"Type"`
				Properties map[string]any `yaml:"Properties"`
			} `yaml:"Resources"`
		}
		if err := doc.Decode(&tmpl); err != nil {
			t.Fatal(err)
		}
		if tmpl.Transform != "AWS::Serverless-2016-10-31" {
			t.Errorf("Transform = %q, want the SAM transform", tmpl.Transform)
		}
		byType := map[string][]map[string]any{}
		var fn string
		for name, r := range tmpl.Resources {
			byType[r.Type] = append(byType[r.Type], r.Properties)
			if r.Type == "AWS::Serverless::Function" {
				fn = name
			}
		}
		if len(byType["AWS::Serverless::Function"]) != 1 {
			t.Fatalf("want one AWS::Serverless::Function, have %d", len(byType["AWS::Serverless::Function"]))
		}
		props := byType["AWS::Serverless::Function"][0]
		checkFields(t, "function", props, map[string]any{
			"Runtime":       "provided.al2023",
			"Handler":       "bootstrap",
			"Architectures": []any{"arm64"},
		})
		if cu, _ := props["CodeUri"].(string); filepath.Clean(filepath.Join("../../deploy/lambda", cu)) != filepath.Clean("../../"+zip) {
			t.Errorf("CodeUri = %q, want the zip build.sh makes, %s", cu, zip)
		}
		vars, _ := dig(props, "Environment", "Variables").(map[string]any)
		for _, v := range []string{"RUNNEL_LLM_URL", "RUNNEL_LLM_MODEL", "RUNNEL_LLM_API_KEY"} {
			if _, ok := vars[v]; !ok {
				t.Errorf("the function's environment has no %s", v)
			}
		}
		ref := map[string]any{"Ref": fn}
		var url map[string]any
		if urls := byType["AWS::Lambda::Url"]; len(urls) == 1 {
			url = urls[0]
		}
		checkFields(t, "function URL", url, map[string]any{
			"AuthType":          "NONE",
			"InvokeMode":        "RESPONSE_STREAM",
			"TargetFunctionArn": map[string]any{"Fn::GetAtt": []any{fn, "Arn"}},
		})
		checkPermissions(t, byType["AWS::Lambda::Permission"], func(p map[string]any) bool {
			return fmt.Sprint(p["FunctionName"]) == fmt.Sprint(ref) && p["Principal"] == "*"
		}, "Action", "FunctionUrlAuthType", "InvokedViaFunctionUrl")
	})

	t.Run("Terraform", func(t *testing.T) {
		files, _ := filepath.Glob("../../deploy/lambda/terraform/*.tf")
		if len(files) == 0 {
			t.Fatal("no Terraform files in deploy/lambda/terraform")
		}
		resources := map[string][]*hclsyntax.Block{}
		var providers *hclsyntax.Body
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, diags := hclsyntax.ParseConfig(src, f, hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("%s: %v", f, diags)
			}
			for _, b := range file.Body.(*hclsyntax.Body).Blocks {
				switch {
				case b.Type == "resource" && len(b.Labels) == 2:
					resources[b.Labels[0]] = append(resources[b.Labels[0]], b)
				case b.Type == "terraform":
					for _, rp := range b.Body.Blocks {
						if rp.Type == "required_providers" {
							providers = rp.Body
						}
					}
				}
			}
		}
		if providers == nil || providers.Attributes["aws"] == nil {
			t.Error("no required_providers for aws (invoked_via_function_url needs a recent provider)")
		}
		if len(resources["aws_lambda_function"]) != 1 {
			t.Fatalf("want one aws_lambda_function, have %d", len(resources["aws_lambda_function"]))
		}
		fn := resources["aws_lambda_function"][0]
		checkFields(t, "aws_lambda_function", hclLiterals(fn.Body), map[string]any{
			"runtime":       "provided.al2023",
			"handler":       "bootstrap",
			"architectures": []any{"arm64"},
		})
		var keys []string
		for _, b := range fn.Body.Blocks {
			if b.Type == "environment" && b.Body.Attributes["variables"] != nil {
				keys = hclObjectKeys(b.Body.Attributes["variables"].Expr)
			}
		}
		for _, v := range []string{"RUNNEL_LLM_URL", "RUNNEL_LLM_MODEL", "RUNNEL_LLM_API_KEY"} {
			if !slices.Contains(keys, v) {
				t.Errorf("the function's environment has no %s (keys %q)", v, keys)
			}
		}
		var url map[string]any
		if urls := resources["aws_lambda_function_url"]; len(urls) == 1 {
			url = hclLiterals(urls[0].Body)
		}
		checkFields(t, "aws_lambda_function_url", url, map[string]any{
			"authorization_type": "NONE",
			"invoke_mode":        "RESPONSE_STREAM",
		})
		var perms []map[string]any
		for _, b := range resources["aws_lambda_permission"] {
			p := hclLiterals(b.Body)
			p["function_name"] = hclTraversal(b.Body.Attributes["function_name"])
			perms = append(perms, p)
		}
		checkPermissions(t, perms, func(p map[string]any) bool {
			return p["function_name"] == "aws_lambda_function."+fn.Labels[1]+".function_name" && p["principal"] == "*"
		}, "action", "function_url_auth_type", "invoked_via_function_url")
	})
}

// checkPermissions checks that perms, the resource policy's statements for
// the function (as told by ours), make a NONE Function URL public: since
// October 2025 a new URL needs both lambda:InvokeFunctionUrl and
// lambda:InvokeFunction.
func checkPermissions(t *testing.T, perms []map[string]any, ours func(map[string]any) bool, action, authType, viaURL string) {
	t.Helper()
	var url, invoke bool
	for _, p := range perms {
		if !ours(p) {
			continue
		}
		switch p[action] {
		case "lambda:InvokeFunctionUrl":
			url = url || p[authType] == "NONE"
		case "lambda:InvokeFunction":
			invoke = invoke || p[viaURL] == true
		}
	}
	if !url {
		t.Errorf("no permission for principal * to lambda:InvokeFunctionUrl with %s NONE (have %v)", authType, perms)
	}
	if !invoke {
		t.Errorf("no permission for principal * to lambda:InvokeFunction with %s true (have %v)", viaURL, perms)
	}
}

// checkFields checks that m has the wanted values.
func checkFields(t *testing.T, what string, m, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got := m[k]; fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s: %s = %v, want %v", what, k, got, v)
		}
	}
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	return v
}

// hclLiterals returns the attributes of body whose values are literals
// (strings, numbers, bools and lists of them), as Go values.
func hclLiterals(body *hclsyntax.Body) map[string]any {
	m := map[string]any{}
	for name, a := range body.Attributes {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			continue
		}
		if g, ok := ctyGo(v); ok {
			m[name] = g
		}
	}
	return m
}

func ctyGo(v cty.Value) (any, bool) {
	switch {
	case v.IsNull() || !v.IsKnown():
		return nil, false
	case v.Type() == cty.String:
		return v.AsString(), true
	case v.Type() == cty.Bool:
		return v.True(), true
	case v.Type() == cty.Number:
		return v.AsBigFloat().String(), true
	case v.Type().IsTupleType() || v.Type().IsListType():
		var list []any
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, ok := ctyGo(e)
			if !ok {
				return nil, false
			}
			list = append(list, g)
		}
		return list, true
	}
	return nil, false
}

// hclObjectKeys returns the keys of an object expression, or of the objects
// merged by merge(...).
func hclObjectKeys(expr hclsyntax.Expression) []string {
	var keys []string
	switch e := expr.(type) {
	case *hclsyntax.ObjectConsExpr:
		for _, item := range e.Items {
			if k, diags := item.KeyExpr.Value(nil); !diags.HasErrors() && k.Type() == cty.String {
				keys = append(keys, k.AsString())
			}
		}
	case *hclsyntax.FunctionCallExpr:
		if e.Name == "merge" {
			for _, arg := range e.Args {
				keys = append(keys, hclObjectKeys(arg)...)
			}
		}
	}
	return keys
}

// hclTraversal returns a reference such as aws_lambda_function.x.function_name
// as text.
func hclTraversal(a *hclsyntax.Attribute) string {
	if a == nil {
		return ""
	}
	st, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok {
		return ""
	}
	var parts []string
	for _, step := range st.Traversal {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		}
	}
	return strings.Join(parts, ".")
}
