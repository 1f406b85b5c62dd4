package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

// parkedStreams reads the runnel_streams_parked gauge from reg.
func parkedStreams(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "runnel_streams_parked" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no runnel_streams_parked")
	return 0
}

// runParking serves s with Run on a loopback port, parking streams at
// their first wait, with metrics on reg, until stop.
func runParking(t *testing.T, s *rhttp.Server) (addr string, reg *prometheus.Registry, stop func()) {
	t.Helper()
	return runParkingAfter(t, s, time.Nanosecond)
}

// runParkingAfter is runParking with s.ParkAfter set to after.
func runParkingAfter(t *testing.T, s *rhttp.Server, after time.Duration) (addr string, reg *prometheus.Registry, stop func()) {
	t.Helper()
	reg = prometheus.NewRegistry()
	m, err := rhttp.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Metrics, s.ParkAfter = m, after
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, ln) }()
	return ln.Addr().String(), reg, func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
}

func gateServer(g runnel.Generator) *rhttp.Server {
	store := newMemStore(testArticles...)
	return &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: g}, Store: store,
		Runs: memory.New(memory.Options{}),
	}
}

// readEvents reads NDJSON events from r up to the first of type until.
func readEvents(t *testing.T, r *bufio.Reader, until runnel.EventType) []runnel.Event {
	t.Helper()
	var got []runnel.Event
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		var e runnel.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		got = append(got, e)
		if e.Type == until {
			return got
		}
	}
}

// A parked stream is still one HTTP/1.1 response, streamed event by event
// and ended by the last chunk, and its connection then serves the next
// request: Run takes it back.
func TestParkedStreamGivesItsConnectionBack(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	g, g2 := newGate(), newGate()
	s := gateServer(runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		if strings.HasPrefix(p.Question, "again") {
			return g2.Generate(ctx, p, emit)
		}
		return g.Generate(ctx, p, emit)
	}))
	addr, reg, stop := runParking(t, s)
	defer stop()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)

	io.WriteString(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" || resp.Close {
		t.Fatalf("status %d, transfer encoding %v, close %v", resp.StatusCode, resp.TransferEncoding, resp.Close)
	}
	body := bufio.NewReader(resp.Body)
	// The pump parks at its first wait, after query: sources come from
	// the parked stream.
	readEvents(t, body, runnel.EventSources)
	if n := parkedStreams(t, reg); n != 1 {
		t.Fatalf("parked streams: %v, want 1", n)
	}
	// Each token is on the wire before the generator makes the next.
	parkedToDone(t, body, g, reg)

	// The same connection serves the next request, and a stream again.
	askHealthz(t, conn, br)
	io.WriteString(conn, "GET /articles/stream?question=again+websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body = bufio.NewReader(resp.Body)
	readEvents(t, body, runnel.EventSources)
	g2.give(t, "three ")
	close(g2.release)
	if got := readEvents(t, body, runnel.EventDone); got[0].Token != "three " {
		t.Fatalf("second stream: %+v", got)
	}
	conn.Close()
}

// A stream younger than ParkAfter that waits ParkIdle for its generator's
// next token parks while it waits, and goes on from the parked side: the
// tokens, done, and the connection's next request.
func TestIdleStreamParks(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	g := newGate()
	s := gateServer(g)
	s.ParkIdle = time.Millisecond
	addr, reg, stop := runParkingAfter(t, s, time.Hour)
	defer stop()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	body := bufio.NewReader(resp.Body)
	readEvents(t, body, runnel.EventSources)
	// The generator holds its first token until the stream has parked.
	waitFor(t, func() bool { return parkedStreams(t, reg) == 1 })
	parkedToDone(t, body, g, reg)
	askHealthz(t, conn, br)
}

// parkedToDone gives a parked stream's generator g two tokens, reading
// each from body before the next is made, then reads done, the response's
// end, and waits until no stream is parked.
func parkedToDone(t *testing.T, body *bufio.Reader, g *gate, reg *prometheus.Registry) {
	t.Helper()
	for _, tok := range []string{"one ", "two "} {
		g.give(t, tok)
		if got := readEvents(t, body, runnel.EventToken); got[len(got)-1].Token != tok {
			t.Fatalf("token %q, want %q", got[len(got)-1].Token, tok)
		}
	}
	close(g.release)
	readEvents(t, body, runnel.EventDone)
	if rest, err := io.ReadAll(body); err != nil || len(rest) != 0 {
		t.Fatalf("after done: %q, %v (want the response's end)", rest, err)
	}
	waitFor(t, func() bool { return parkedStreams(t, reg) == 0 })
}

// askHealthz sends the connection's next request, /healthz, and wants 200.
func askHealthz(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the next request on the connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

// A client that closes its connection while its stream is parked is seen
// at once: after the linger window the run ends and its generator stops.
func TestParkedStreamClientLeaves(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	g := newGate()
	_, ts := newServer(t, g, func(s *rhttp.Server) {
		s.ParkAfter = time.Nanosecond
		s.Runs = memory.New(memory.Options{Linger: 20 * time.Millisecond})
	})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	readEvents(t, bufio.NewReader(resp.Body), runnel.EventSources)
	<-g.started
	conn.Close()
	if err := receive(t, g.ended, "the generator's end"); !errors.Is(err, runnel.ErrCanceled) {
		t.Fatalf("the generator ended with %v, want ErrCanceled (abandoned)", err)
	}
	ts.Close()
}

// A client that sent its next request before this response ended
// (pipelining) gets this response whole, then the connection closes: the
// request it sent early is not lost silently, it is never answered, and
// a client sends it again on a new connection.
func TestParkedStreamPipelinedRequest(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	g := newGate()
	addr, _, stop := runParking(t, gateServer(g))
	defer stop()
	conn, br, body := dialStream(t, addr, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	defer conn.Close()
	g.give(t, "one ")
	close(g.release)
	readEvents(t, body, runnel.EventDone)
	if _, err := io.ReadAll(body); err != nil {
		t.Fatalf("the response did not end cleanly: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(within))
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the response: %d bytes, %v; want the connection closed", n, err)
	}
}

// Streams over HTTP/2 do not park (net/http cannot give up an HTTP/2
// connection), and stream as ever.
func TestParkingSkipsHTTP2(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	reg := prometheus.NewRegistry()
	m, err := rhttp.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	s := gateServer(g)
	s.Metrics, s.ParkAfter = m, time.Nanosecond
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	client := ts.Client()
	defer client.CloseIdleConnections()
	resp, err := client.Get(ts.URL + "/articles/stream?question=websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	body := bufio.NewReader(resp.Body)
	readEvents(t, body, runnel.EventSources)
	g.give(t, "one ")
	readEvents(t, body, runnel.EventToken)
	if n := parkedStreams(t, reg); n != 0 {
		t.Errorf("parked streams over HTTP/2: %v", n)
	}
	close(g.release)
	readEvents(t, body, runnel.EventDone)
}

// A client that sends its next request while its stream is parked gets
// both answers on the one connection: the watch reads nothing, so the
// request waits in the socket for net/http (Linux, where epoll watches).
func TestParkedStreamNextRequestEarly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a goroutine watches parked streams here; it reads what comes early")
	}
	defer goleak.VerifyNone(t, leakOptions()...)
	g := newGate()
	addr, _, stop := runParking(t, gateServer(g))
	defer stop()
	conn, br, body := dialStream(t, addr, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n") // parked by now
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	g.give(t, "one ")
	close(g.release)
	readEvents(t, body, runnel.EventDone)
	if _, err := io.ReadAll(body); err != nil {
		t.Fatalf("the response did not end cleanly: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request sent early: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

// Parked streams on Linux are driven by events, with runs in memory or in
// Redis: an open stream whose generator waits holds its producer's
// goroutine and no other, and the producer's appends still reach every
// client at once.
func TestDrivenStreamsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" || !*rhttp.DriveParked {
		t.Skip("parked streams are not driven by events here")
	}
	defer goleak.VerifyNone(t, leakOptions()...)
	for _, where := range []string{"memory", "redis"} {
		t.Run(where, func(t *testing.T) {
			release := make(chan struct{})
			s := gateServer(runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
				select {
				case <-release:
				case <-ctx.Done():
					return runnel.Done{}, ctx.Err()
				}
				for _, tok := range []string{"one ", "two ", "three"} {
					if err := emit(tok); err != nil {
						return runnel.Done{}, err
					}
				}
				return runnel.Done{FinishReason: "stop"}, nil
			}))
			if where == "redis" {
				s.Runs = redisRuns(t, 0)
			}
			addr, reg, stop := runParking(t, s)
			defer stop()
			const streams = 20
			before := runtime.NumGoroutine()
			bodies := make([]*bufio.Reader, streams)
			for i := range bodies {
				var conn net.Conn
				bodies[i], conn = openStream(t, addr)
				defer conn.Close()
			}
			waitFor(t, func() bool { return parkedStreams(t, reg) == streams })
			// Each stream's producer, and the epoll set's goroutine; a
			// stream kept in a goroutine of its own would make this twice
			// as many. The goroutines net/http served the requests in end
			// a moment after their streams park.
			limit := time.Now().Add(within)
			for n := runtime.NumGoroutine() - before; n >= streams*3/2; n = runtime.NumGoroutine() - before {
				if time.Now().After(limit) {
					t.Fatalf("%d goroutines for %d parked streams, want about one a stream", n, streams)
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(release)
			for i, body := range bodies {
				evs := readEvents(t, body, runnel.EventDone)
				if text := tokenText(evs); text != "one two three" {
					t.Errorf("stream %d: %q, want the three tokens", i, text)
				}
			}
			waitFor(t, func() bool { return parkedStreams(t, reg) == 0 })
		})
	}
}

// openStream asks addr a question on a connection of its own and returns
// the response's body once it has read the sources event (the stream then
// waits for its generator, and parks), and the connection.
func openStream(t *testing.T, addr string) (*bufio.Reader, net.Conn) {
	t.Helper()
	conn, _, body := dialStream(t, addr, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	return body, conn
}

// dialStream sends raw, which starts with a question, on a connection of
// its own, reads the response up to the sources event, and returns the
// connection, its reader (for responses that follow) and the body.
func dialStream(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, raw)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	body := bufio.NewReader(resp.Body)
	readEvents(t, body, runnel.EventSources)
	return conn, br, body
}

// tokenText joins the text of the token events in evs.
func tokenText(evs []runnel.Event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Type == runnel.EventToken {
			b.WriteString(e.Token)
		}
	}
	return b.String()
}

// A driven stream whose client does not read gets a goroutine to finish
// the write that its socket would not take, and the client that reads
// later has every event in order: the producer never waited for it.
func TestDrivenStreamSlowReader(t *testing.T) {
	if runtime.GOOS != "linux" || !*rhttp.DriveParked {
		t.Skip("parked streams are not driven by events here")
	}
	defer goleak.VerifyNone(t, leakOptions()...)
	const tokens, size = 4000, 4 << 10 // 16 MiB, more than loopback's socket buffers hold
	release, produced := make(chan struct{}), make(chan struct{})
	s := gateServer(runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		defer close(produced)
		select {
		case <-release:
		case <-ctx.Done():
			return runnel.Done{}, ctx.Err()
		}
		for i := range tokens {
			tok := fmt.Sprintf("%06d", i) + strings.Repeat("x", size-6)
			if err := emit(tok); err != nil {
				return runnel.Done{}, err
			}
		}
		return runnel.Done{FinishReason: "stop"}, nil
	}))
	addr, reg, stop := runParking(t, s)
	defer stop()
	body, conn := openStream(t, addr)
	defer conn.Close()
	waitFor(t, func() bool { return parkedStreams(t, reg) == 1 })
	blocked := rhttp.BlockedWrites()
	close(release)
	receive(t, produced, "the generator's last token, with the client not reading")
	// The stream writes on, in batches, until the sockets' buffers are
	// full; then a write must wait.
	limit := time.Now().Add(within)
	for rhttp.BlockedWrites() == blocked {
		if time.Now().After(limit) {
			t.Fatal("no write waited, though the client read nothing of 16 MiB")
		}
		time.Sleep(10 * time.Millisecond)
	}
	evs := readEvents(t, body, runnel.EventDone)
	n := 0
	for _, e := range evs {
		if e.Type != runnel.EventToken {
			continue
		}
		if want := fmt.Sprintf("%06d", n); !strings.HasPrefix(e.Token, want) || len(e.Token) != size {
			t.Fatalf("token %d: %.10q (%d bytes), want %s...", n, e.Token, len(e.Token), want)
		}
		n++
	}
	if n != tokens {
		t.Fatalf("%d tokens, want %d", n, tokens)
	}
	if _, err := io.ReadAll(body); err != nil {
		t.Fatalf("the response did not end cleanly: %v", err)
	}
	waitFor(t, func() bool { return parkedStreams(t, reg) == 0 })
}

// A stream that may park on a server Run does not serve (a handler
// mounted on a server of one's own) says in its headers that the
// connection closes after it: nothing could give the connection back to
// that server. A keep-alive client then asks its next question on a new
// connection, instead of on one about to close.
func TestParkedStreamWithoutHandbackSaysClose(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions()...)
	store := newMemStore(testArticles...)
	s := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: words("one ", "two")}, Store: store,
		Runs: memory.New(memory.Options{}), ParkAfter: time.Nanosecond,
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for i := range 3 {
		resp, err := http.Post(ts.URL+"/articles/stream", "application/json", strings.NewReader(`{"question":"websocket"}`))
		if err != nil {
			t.Fatalf("question %d: %v", i, err)
		}
		if !resp.Close {
			t.Errorf("question %d: no Connection: close (header %q)", i, resp.Header.Get("Connection"))
		}
		evs := readEvents(t, bufio.NewReader(resp.Body), runnel.EventDone)
		resp.Body.Close()
		if text := tokenText(evs); text != "one two" {
			t.Errorf("question %d: %q", i, text)
		}
	}
	// Served by Run, the same stream keeps its connection.
	addr, _, stop := runParking(t, gateServer(words("one ", "two")))
	defer stop()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections() // before stop, which would wait for it
	resp, err := client.Get("http://" + addr + "/articles/stream?question=websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Close {
		t.Error("a stream served by Run says Connection: close")
	}
	readEvents(t, bufio.NewReader(resp.Body), runnel.EventDone)
}
