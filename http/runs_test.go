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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

// counted wraps a generator and counts its runs.
type counted struct {
	runnel.Generator
	n atomic.Int64
}

func (c *counted) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	c.n.Add(1)
	return c.Generator.Generate(ctx, p, emit)
}

// lingering gives the server a run store that keeps abandoned runs going
// for a minute, long enough for any test's reader to come back.
func lingering(s *rhttp.Server) { s.Runs = memory.New(memory.Options{Linger: time.Minute}) }

// cutProxy forwards TCP connections to a server, and cuts the first
// connection after each arm once it has forwarded a given number of the
// server's bytes: the test's stand-in for a network that drops.
type cutProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	cutAt   int // -1: forward everything
	open    map[net.Conn]bool
	wg      sync.WaitGroup
}

// cutAll cuts every connection open now.
func (p *cutProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		c.Close()
	}
}

func newCutProxy(t testing.TB, backend string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, backend: backend, cutAt: -1, open: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

// arm makes the next connection break after n bytes from the server.
func (p *cutProxy) arm(n int) {
	p.mu.Lock()
	p.cutAt = n
	p.mu.Unlock()
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cutAt
		p.cutAt = -1
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c, cut)
		}()
	}
}

func (p *cutProxy) pipe(c net.Conn, cut int) {
	p.mu.Lock()
	p.open[c] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.open, c)
		p.mu.Unlock()
		c.Close()
	}()
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer b.Close()
	go func() {
		io.Copy(b, c)
		b.(*net.TCPConn).CloseWrite()
	}()
	if cut < 0 {
		io.Copy(c, b)
		return
	}
	io.CopyN(c, b, int64(cut))
	// Closing both ends here is the cut: the client sees its connection
	// end in the middle of whatever it was reading.
}

// multibyte tokens, so that some cuts fall inside a character.
var cutTokens = []string{"Ünïcödé ", "streams ", "😀 ", "survive ", "every ", "cut ", "ünd ", "résumé."}

// rawResponse returns the bytes the server sends for req on a fresh
// connection, headers included.
func rawResponse(t *testing.T, addr, req string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return b
}

// cutOffsets picks where to cut a response: every offset in its first
// bytes (status line, headers, the first chunk header), each chunk header
// and the bytes around it, inside each multi-byte character, at and around
// each event boundary, and the last bytes.
func cutOffsets(raw []byte) []int {
	seen := map[int]bool{}
	add := func(i int) {
		if i > 0 && i < len(raw) {
			seen[i] = true
		}
	}
	head := bytes.Index(raw, []byte("\r\n\r\n")) + 4
	for i := range head + 8 {
		if i%7 == 0 || i >= head-2 {
			add(i)
		}
	}
	for i := head; i < len(raw); i++ {
		switch {
		case raw[i] == '\n' && i > 0 && raw[i-1] == '\r': // chunk framing
			add(i - 2)
			add(i)
			add(i + 1)
			add(i + 2)
		case raw[i] == '\n': // the end of an event line or block
			add(i)
			add(i + 1)
		case raw[i] >= 0x80 && !utf8.RuneStart(raw[i]): // inside a character
			add(i)
		}
	}
	for i := len(raw) - 12; i < len(raw); i++ {
		add(i)
	}
	out := make([]int, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// answerOf concatenates the tokens of events, and checks that their numbers
// run from 0 without a gap or a repeat.
func answerOf(t *testing.T, events []runnel.Event) string {
	t.Helper()
	var b strings.Builder
	for i, e := range events {
		if e.Seq != i {
			t.Fatalf("event %d (%s) has number %d: %v", i, e.Type, e.Seq, types(events))
		}
		b.WriteString(e.Token)
	}
	return b.String()
}

// TestResumeAtEveryCut cuts the first connection of an answer at many byte
// offsets: inside the headers and chunk headers, inside multi-byte
// characters, between events. For each, the client resumes the run and its
// answer equals the uninterrupted one, every event once, and the generator
// ran once.
func TestResumeAtEveryCut(t *testing.T) {
	gen := &counted{Generator: words(cutTokens...)}
	_, ts := newServer(t, gen, lingering)
	want := strings.Join(cutTokens, "")
	proxy := newCutProxy(t, ts.Listener.Addr().String())
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	body := `{"question":"websocket"}`

	for _, tr := range []struct {
		transport rhttp.Transport
		accept    string
	}{{rhttp.NDJSON, "application/x-ndjson"}, {rhttp.SSE, "text/event-stream"}} {
		t.Run(tr.transport.String(), func(t *testing.T) {
			raw := rawResponse(t, ts.Listener.Addr().String(), fmt.Sprintf(
				"POST /articles/stream HTTP/1.1\r\nHost: t\r\nAccept: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				tr.accept, len(body), body))
			offsets := cutOffsets(raw)
			c := &rhttp.Client{URL: proxy.URL(), HTTPClient: hc, Transport: tr.transport, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
			for _, cut := range offsets {
				askThroughCut(t, c, proxy, cut, gen, want)
			}
			t.Logf("%d cuts of a %d-byte response", len(offsets), len(raw))
		})
	}

	t.Run("websocket", func(t *testing.T) {
		c := &rhttp.Client{URL: proxy.URL(), Transport: rhttp.WebSocket, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
		// The upgrade response, then one frame per event: cut in the
		// handshake and throughout the frames.
		for cut := 20; cut < 900; cut += 37 {
			askThroughCut(t, c, proxy, cut, gen, want)
		}
	})
}

// askThroughCut asks through proxy with its next connection cut after cut
// bytes, and checks that the client's answer is whole, every event once,
// and that the generator ran once.
func askThroughCut(t *testing.T, c *rhttp.Client, proxy *cutProxy, cut int, gen *counted, want string) {
	t.Helper()
	before := gen.n.Load()
	proxy.arm(cut)
	var got []runnel.Event
	err := c.Ask(t.Context(), "websocket", func(e runnel.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("cut at byte %d: Ask: %v", cut, err)
	}
	if answer := answerOf(t, got); answer != want {
		t.Fatalf("cut at byte %d: answer %q, want %q", cut, answer, want)
	}
	if runs := gen.n.Load() - before; runs != 1 {
		t.Fatalf("cut at byte %d: the generator ran %d times, want once", cut, runs)
	}
}

// gate is a generator that emits one token per release and reports when
// its context ends.
type gate struct {
	release chan string
	ended   chan error
	started chan struct{}
}

func newGate() *gate {
	return &gate{release: make(chan string), ended: make(chan error, 1), started: make(chan struct{}, 1)}
}

func (g *gate) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	g.started <- struct{}{}
	for {
		select {
		case tok, ok := <-g.release:
			if !ok {
				return runnel.Done{FinishReason: runnel.FinishStop}, nil
			}
			if err := emit(tok); err != nil {
				g.ended <- err
				return runnel.Done{}, err
			}
		case <-ctx.Done():
			g.ended <- context.Cause(ctx)
			return runnel.Done{}, ctx.Err()
		}
	}
}

// give hands the generator one token, failing the test if it stopped.
func (g *gate) give(t *testing.T, tok string) {
	t.Helper()
	select {
	case g.release <- tok:
	case err := <-g.ended:
		t.Fatalf("the generator had ended (%v)", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the generator never took the token")
	}
}

// readUntil asks question over the client and returns the events up to and
// including the first token, then leaves by canceling the request.
func leaveAfterFirstToken(t *testing.T, c *rhttp.Client, g *gate) []runnel.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []runnel.Event
	go func() {
		<-g.started
		g.give(t, "first ")
	}()
	err := c.Ask(ctx, "websocket", func(e runnel.Event) error {
		got = append(got, e)
		if e.Type == runnel.EventToken {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Ask = %v, want context.Canceled", err)
	}
	return got
}

func TestLinger(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	t.Run("nobody comes back", func(t *testing.T) {
		g := newGate()
		_, ts := newServer(t, g, func(s *rhttp.Server) { s.Runs = memory.New(memory.Options{Linger: 50 * time.Millisecond}) })
		c := rhttp.NewClient(ts.URL)
		got := leaveAfterFirstToken(t, c, g)
		select {
		case err := <-g.ended:
			if !errors.Is(err, runnel.ErrCanceled) {
				t.Errorf("the generator's context ended with %v, want ErrCanceled", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the generator was still running 20 s after a 50 ms linger window")
		}
		// The run is kept, and says it was abandoned.
		var rest []runnel.Event
		err := c.Follow(t.Context(), got[0].Run, got[len(got)-1].Seq, func(e runnel.Event) error {
			rest = append(rest, e)
			return nil
		})
		if !errors.Is(err, runnel.ErrCanceled) || len(rest) != 1 || rest[0].Canceled.Reason != runnel.CancelAbandon {
			t.Errorf("Follow = %v, %+v; want ErrCanceled after one canceled event, abandoned", err, rest)
		}
		ts.Close()
	})
	t.Run("a reader comes back within the window", func(t *testing.T) {
		g := newGate()
		_, ts := newServer(t, g, lingering)
		c := rhttp.NewClient(ts.URL)
		got := leaveAfterFirstToken(t, c, g)
		last := got[len(got)-1]
		var rest []runnel.Event
		done := make(chan error, 1)
		go func() {
			done <- c.Follow(t.Context(), last.Run, last.Seq, func(e runnel.Event) error {
				rest = append(rest, e)
				return nil
			})
		}()
		g.give(t, "second ")
		close(g.release)
		if err := <-done; err != nil {
			t.Fatalf("Follow: %v", err)
		}
		if got := types(rest); !slices.Equal(got, []runnel.EventType{"token", "done"}) || rest[0].Token != "second " || rest[0].Seq != last.Seq+1 {
			t.Errorf("the rest = %v %+v, want the second token then done", got, rest)
		}
		ts.Close()
	})
	http.DefaultClient.CloseIdleConnections()
}

// TestCancel cancels a run through each route and over a WebSocket while a
// reader follows it on each transport: the generator stops, and the reader
// ends with the canceled event, which the client reports as ErrCanceled.
func TestCancel(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	cancels := map[string]func(t *testing.T, base, run string){
		"DELETE": func(t *testing.T, base, run string) {
			state, err := rhttp.NewClient(base).Cancel(t.Context(), run)
			if err != nil || state != runnel.RunCanceled {
				t.Errorf("Cancel = %q, %v; want canceled", state, err)
			}
		},
		"POST cancel": func(t *testing.T, base, run string) {
			resp, err := http.Post(base+"/runs/"+run+"/cancel", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ ID, State string }
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != 200 || body.ID != run || body.State != "canceled" {
				t.Errorf("POST /runs/%s/cancel = %d %+v", run, resp.StatusCode, body)
			}
		},
		"websocket": func(t *testing.T, base, run string) {
			conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/runs/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			conn.Write(t.Context(), websocket.MessageText, []byte(`{"type":"cancel","run":"`+run+`"}`))
			conn.Close(websocket.StatusNormalClosure, "")
		},
	}
	for name, cancel := range cancels {
		for _, tr := range []rhttp.Transport{rhttp.NDJSON, rhttp.SSE, rhttp.WebSocket} {
			t.Run(name+" while reading "+tr.String(), func(t *testing.T) {
				g := newGate()
				_, ts := newServer(t, g, lingering)
				c := &rhttp.Client{URL: ts.URL, Transport: tr}
				go func() {
					<-g.started
					g.give(t, "first ")
				}()
				var got []runnel.Event
				err := c.Ask(t.Context(), "websocket", func(e runnel.Event) error {
					got = append(got, e)
					if e.Type == runnel.EventToken {
						cancel(t, ts.URL, e.Run)
					}
					return nil
				})
				if !errors.Is(err, runnel.ErrCanceled) {
					t.Fatalf("Ask = %v, want ErrCanceled", err)
				}
				var re *runnel.Error
				if errors.As(err, &re) {
					t.Errorf("Ask = %v, an *Error: a cancel is not a failure", err)
				}
				if last := got[len(got)-1]; last.Type != runnel.EventCanceled || last.Canceled.Reason != runnel.CancelByClient {
					t.Errorf("last event %+v, want canceled by client", last)
				}
				select {
				case err := <-g.ended:
					if !errors.Is(err, runnel.ErrCanceled) {
						t.Errorf("the generator ended with %v, want ErrCanceled", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("the generator was still running 20 s after the cancel")
				}
				ts.Close()
			})
		}
	}
	t.Run("the socket's own run", func(t *testing.T) {
		g := newGate()
		_, ts := newServer(t, g, lingering)
		conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws?question=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		go func() {
			<-g.started
			g.give(t, "first ")
		}()
		for {
			e := readMessage(t, conn)
			if e.Type == runnel.EventToken {
				conn.Write(t.Context(), websocket.MessageText, []byte(`{"type":"cancel"}`))
			}
			if e.Terminal() {
				if e.Type != runnel.EventCanceled {
					t.Fatalf("terminal event %s, want canceled", e.Type)
				}
				break
			}
		}
		conn.Close(websocket.StatusNormalClosure, "")
		ts.Close()
	})
	t.Run("an ended run stays as it ended", func(t *testing.T) {
		_, ts := newServer(t, words("all ", "done"))
		var run string
		if err := rhttp.NewClient(ts.URL).Ask(t.Context(), "websocket", func(e runnel.Event) error { run = e.Run; return nil }); err != nil {
			t.Fatal(err)
		}
		state, err := rhttp.NewClient(ts.URL).Cancel(t.Context(), run)
		if err != nil || state != runnel.RunDone {
			t.Errorf("Cancel of an ended run = %q, %v; want done", state, err)
		}
		if _, err := rhttp.NewClient(ts.URL).Cancel(t.Context(), "nope"); runnel.ErrorCode(err) != runnel.ENOTFOUND {
			t.Errorf("Cancel of an unknown run = %v, want not_found", err)
		}
		ts.Close()
	})
	http.DefaultClient.CloseIdleConnections()
}

func readMessage(t *testing.T, conn *websocket.Conn) runnel.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	typ, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v, want text", typ)
	}
	var e runnel.Event
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("message %s: %v", data, err)
	}
	return e
}

// TestSSEWire checks the SSE framing on the wire, and that a request with
// Last-Event-ID, as a reconnecting EventSource sends, resumes the run on
// the very URL that asked instead of asking again.
func TestSSEWire(t *testing.T) {
	gen := &counted{Generator: words("one ", "two")}
	_, ts := newServer(t, gen)
	req, _ := http.NewRequest("GET", ts.URL+"/articles/stream?question=websocket", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	run := resp.Header.Get(rhttp.RunIDHeader)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || len(run) < 22 {
		t.Fatalf("Content-Type %q, run %q; want text/event-stream and a run id of 22 or more characters", ct, run)
	}
	blocks := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	if blocks[0] != "retry: 1000" {
		t.Errorf("first block %q, want the retry hint", blocks[0])
	}
	want := []string{
		"event: query\nid: " + run + ".0\ndata: \"websocket?\"",
		"event: token\nid: " + run + ".4\ndata: \"one \"",
		"event: token\nid: " + run + ".5\ndata: \"two\"",
	}
	for _, w := range want {
		if !slices.Contains(blocks, w) {
			t.Errorf("no block %q in\n%s", w, body)
		}
	}
	if last := blocks[len(blocks)-1]; !strings.HasPrefix(last, "event: done\nid: "+run+".6\ndata: {\"finish_reason\":\"stop\"") {
		t.Errorf("last block %q, want done numbered 6", last)
	}

	resume := func(lastID string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", ts.URL+"/articles/stream?question=websocket", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Last-Event-ID", lastID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, b := resume(run + ".4"); resp.StatusCode != 200 || strings.Count(b, "event: ") != 2 || !strings.Contains(b, "id: "+run+".5\n") {
		t.Errorf("resume after 4: %d %q, want events 5 and 6", resp.StatusCode, b)
	}
	if resp, _ := resume(run + ".6"); resp.StatusCode != http.StatusNoContent {
		t.Errorf("resume after the terminal event: %d, want 204 (an EventSource stops reconnecting)", resp.StatusCode)
	}
	if resp, b := resume("nope.3"); resp.StatusCode != 404 || !strings.Contains(b, `"not_found"`) {
		t.Errorf("resume of an unknown run: %d %q, want a 404 JSON error", resp.StatusCode, b)
	}
	if resp, _ := resume("garbage"); resp.StatusCode != 400 {
		t.Errorf("resume with a malformed Last-Event-ID: %d, want 400", resp.StatusCode)
	}
	if n := gen.n.Load(); n != 1 {
		t.Errorf("the generator ran %d times, want once", n)
	}
}

func TestFollowErrors(t *testing.T) {
	_, ts := newServer(t, words("x"))
	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/runs/nope", 404, runnel.ENOTFOUND},
		{"/runs/nope?after=x", 400, runnel.EINVALID},
		{"/runs/nope?after=-2", 400, runnel.EINVALID},
	} {
		resp, err := http.Get(ts.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error runnel.Error }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || body.Error.Code != tt.code {
			t.Errorf("GET %s = %d %+v, want %d %s", tt.path, resp.StatusCode, body.Error, tt.status, tt.code)
		}
	}
	var run string
	rhttp.NewClient(ts.URL).Ask(t.Context(), "websocket", func(e runnel.Event) error { run = e.Run; return nil })
	err := rhttp.NewClient(ts.URL).Follow(t.Context(), run, -1, func(runnel.Event) error { return nil })
	if err != nil {
		t.Errorf("Follow of an ended run from the start = %v, want its done", err)
	}
}

// TestWebSocket asks two questions one after another on one socket, and
// checks what the socket refuses.
func TestWebSocket(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	g := newGate()
	_, ts := newServer(t, g)
	conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	send := func(msg string) {
		t.Helper()
		if err := conn.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	for i, q := range []string{"what is websocket", "what is sse"} {
		send(`{"type":"ask","question":"` + q + `"}`)
		<-g.started
		var run string
		var got []runnel.EventType
		for {
			e := readMessage(t, conn)
			if e.Run == "" {
				t.Fatalf("event %s without a run", e.Type)
			}
			if run == "" {
				run = e.Run
			}
			if e.Run != run || e.Seq != len(got) {
				t.Fatalf("event %s of run %s numbered %d, want run %s, %d", e.Type, e.Run, e.Seq, run, len(got))
			}
			got = append(got, e.Type)
			if e.Type == runnel.EventSources {
				// A second question while this one runs is refused,
				// without ending the run.
				send(`{"type":"ask","question":"dns"}`)
				if r := readMessage(t, conn); r.Type != runnel.EventError || r.Run != "" || r.Err.Code != runnel.EINVALID {
					t.Errorf("ask while busy: %+v, want an error without a run", r)
				}
				go func() { g.give(t, fmt.Sprintf("answer%d", i)); close(g.release) }()
			}
			if e.Terminal() {
				break
			}
		}
		g.release = make(chan string)
		if !slices.Equal(got, []runnel.EventType{"query", "tags", "titles", "sources", "token", "done"}) {
			t.Errorf("question %d: %v", i, got)
		}
	}
	send(`not json`)
	if r := readMessage(t, conn); r.Type != runnel.EventError || r.Err.Code != runnel.EINVALID {
		t.Errorf("bad JSON: %+v, want an invalid error", r)
	}
	send(`{"type":"resume","run":"nope"}`)
	if r := readMessage(t, conn); r.Type != runnel.EventError || r.Err.Code != runnel.ENOTFOUND {
		t.Errorf("resume of an unknown run: %+v, want not_found", r)
	}
	conn.Write(t.Context(), websocket.MessageBinary, []byte{1, 2})
	_, _, err = conn.Read(t.Context())
	if st := websocket.CloseStatus(err); st != websocket.StatusUnsupportedData {
		t.Errorf("after a binary message: %v, want close status 1003", err)
	}
	ts.Close()
}

// TestWebSocketShutdown: a run in progress on a socket gets the retryable
// unavailable error, then the socket closes as going away.
func TestWebSocketShutdown(t *testing.T) {
	g := newGate()
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: g}, Store: store, Runs: memory.New(memory.Options{})}
	addr, stop, ran := runServer(t, s)
	conn, _, err := websocket.Dial(t.Context(), "ws://"+addr+"/runs/ws?question=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	<-g.started
	stop()
	var last runnel.Event
	for !last.Terminal() {
		last = readMessage(t, conn)
	}
	if last.Type != runnel.EventError || last.Err.Code != runnel.EUNAVAILABLE || !last.Err.Retryable {
		t.Errorf("last event %+v, want a retryable unavailable error", last)
	}
	_, _, err = conn.Read(t.Context())
	if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
		t.Errorf("then %v, want close status 1001", err)
	}
	ranClean(t, ran)
}

// TestRunIDs: every stream names its run in a header, ids are distinct and
// never taken from the client.
func TestRunIDs(t *testing.T) {
	_, ts := newServer(t, words("x"))
	seen := map[string]bool{}
	for range 50 {
		req, _ := http.NewRequest("GET", ts.URL+"/articles/stream?question=websocket", nil)
		req.Header.Set(rhttp.RunIDHeader, "chosen-by-the-client")
		req.Header.Set("X-Request-Id", "chosen-by-the-client")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		id := resp.Header.Get(rhttp.RunIDHeader)
		if len(id) < 22 || seen[id] || strings.Contains(id, "chosen") {
			t.Fatalf("run id %q: want 22+ URL-safe characters, new each time, never the client's", id)
		}
		seen[id] = true
	}
}

// A Reader skips nothing a cut could hide: sanity of the raw NDJSON count
// the client's numbering relies on.
func TestNDJSONNumbering(t *testing.T) {
	_, ts := newServer(t, words("a ", "b"))
	resp, err := http.Get(ts.URL + "/articles/stream?question=websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	run := resp.Header.Get(rhttp.RunIDHeader)
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		n++
	}
	// The same events, numbered by the server, through the run route.
	var got []runnel.Event
	rhttp.NewClient(ts.URL).Follow(t.Context(), run, -1, func(e runnel.Event) error { got = append(got, e); return nil })
	if len(got) != n || got[n-1].Seq != n-1 {
		t.Errorf("%d lines on the stream, %d events on the run route (last numbered %d)", n, len(got), got[len(got)-1].Seq)
	}
}

// TestLongBurst streams an answer far over one write's worth of events,
// produced at once, over each transport.
func TestLongBurst(t *testing.T) {
	tokens := make([]string, 5000)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("token%05d-of-a-long-burst ", i)
	}
	want := strings.Join(tokens, "")
	_, ts := newServer(t, words(tokens...))
	for _, tr := range []rhttp.Transport{rhttp.NDJSON, rhttp.SSE, rhttp.WebSocket} {
		var got []runnel.Event
		err := (&rhttp.Client{URL: ts.URL, Transport: tr}).Ask(t.Context(), "websocket", func(e runnel.Event) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Ask: %v", tr, err)
		}
		if answer := answerOf(t, got); answer != want {
			t.Errorf("%s: %d bytes of answer, want %d", tr, len(answer), len(want))
		}
	}
}

// TestFollowLiveRunAnswersAtOnce: a reader that resumes a run with nothing
// new yet gets the response's headers at once, not with the next event.
func TestFollowLiveRunAnswersAtOnce(t *testing.T) {
	g := newGate()
	_, ts := newServer(t, g, lingering)
	c := rhttp.NewClient(ts.URL)
	got := leaveAfterFirstToken(t, c, g)
	last := got[len(got)-1]
	resp, err := http.Get(fmt.Sprintf("%s/runs/%s?after=%d", ts.URL, last.Run, last.Seq))
	if err != nil {
		t.Fatalf("GET /runs/{id}: %v (the headers never came while the run had nothing new)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(rhttp.RunIDHeader) != last.Run {
		t.Errorf("status %d, run %q", resp.StatusCode, resp.Header.Get(rhttp.RunIDHeader))
	}
	close(g.release)
}

// TestWebSocketKeepalive: a client that stops answering pings (it no longer
// reads its socket) is disconnected, and its run is left to linger.
func TestWebSocketKeepalive(t *testing.T) {
	g := newGate()
	_, ts := newServer(t, g, func(s *rhttp.Server) {
		s.PingInterval = 20 * time.Millisecond
		s.WriteTimeout = 50 * time.Millisecond
	})
	conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws?question=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	<-g.started
	// Not reading means not answering the server's pings. With linger 0,
	// the server dropping the socket cancels the run.
	select {
	case err := <-g.ended:
		if !errors.Is(err, runnel.ErrCanceled) {
			t.Errorf("the generator ended with %v, want ErrCanceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a client that answers no pings was still connected after 20 s")
	}
}

// TestReaderDeadline: a reader whose request has a deadline of its own (as
// AWS Lambda gives one) reads a run that outlives it: the reader gets a
// retryable timeout error before its deadline, the run goes on, and a
// later reader gets the rest. The request's deadline, not the run's, ends
// this stream, through the pump's deadline timer in each way a stream
// waits (make test runs it parked and driven by events too).
func TestReaderDeadline(t *testing.T) {
	g := newGate()
	// No pings: only the deadline's timer can end the reader's stream.
	s, _ := newServer(t, g, lingering, func(s *rhttp.Server) { s.PingInterval = time.Hour })
	h := s.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/runs/") {
			ctx, cancel := context.WithTimeout(r.Context(), time.Second)
			defer cancel()
			r = r.WithContext(ctx)
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c := rhttp.NewClient(ts.URL)
	got := leaveAfterFirstToken(t, c, g)
	last := got[len(got)-1]

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/runs/%s?after=%d", ts.URL, last.Run, last.Seq), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	e, err := rhttp.NewReader(resp.Body, 0).Next()
	if err != nil {
		t.Fatalf("Next: %v, want the deadline's error event", err)
	}
	if e.Type != runnel.EventError || e.Err.Code != runnel.ETIMEOUT || !e.Err.Retryable {
		t.Fatalf("event %+v, want a retryable %s error", e, runnel.ETIMEOUT)
	}
	select {
	case err := <-g.ended:
		t.Fatalf("the run ended with its reader's deadline (%v)", err)
	default:
	}

	g.give(t, "second")
	close(g.release)
	var rest []runnel.Event
	if err := c.Follow(t.Context(), last.Run, last.Seq, func(e runnel.Event) error { rest = append(rest, e); return nil }); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if len(rest) != 2 || rest[0].Token != "second" || rest[1].Type != runnel.EventDone {
		t.Errorf("after the deadline: %+v, want the rest of the run", rest)
	}
}
