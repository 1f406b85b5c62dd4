package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
	reg = prometheus.NewRegistry()
	m, err := rhttp.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.Metrics, s.ParkAfter = m, time.Nanosecond
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

	// The same connection serves the next request, and a stream again.
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the next request on the connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
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
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bufio.NewReader(resp.Body)
	readEvents(t, body, runnel.EventSources)
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
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bufio.NewReader(resp.Body)
	readEvents(t, body, runnel.EventSources) // parked by now
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	g.give(t, "one ")
	close(g.release)
	readEvents(t, body, runnel.EventDone)
	if _, err := io.ReadAll(body); err != nil {
		t.Fatalf("the response did not end cleanly: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request sent early: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}
