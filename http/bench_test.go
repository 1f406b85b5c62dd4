package http_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

// countingListener counts the Write calls made on its connections: the
// system calls a stream costs.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.l.writes.Add(1)
	return c.Conn.Write(b)
}

// BenchmarkStreamBurst streams answers of 1,000 tokens that the generator
// produces as fast as it can, read by a client on loopback, and reports
// events per second and socket writes per answer (coalescing at work).
func BenchmarkStreamBurst(b *testing.B) {
	const n = 1000
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("word%d ", i)
	}
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: words(tokens...)}, Store: store, Runs: memory.New(memory.Options{})}
	ts := httptest.NewUnstartedServer(s.Handler())
	cl := &countingListener{Listener: ts.Listener}
	ts.Listener = cl
	ts.Start()
	defer ts.Close()
	url := ts.URL + "/articles/stream?question=websocket"
	b.ReportAllocs()
	cl.writes.Store(0)
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	events := float64(b.N * (n + 5))
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cl.writes.Load())/float64(b.N), "writes/answer")
}

// BenchmarkAsk measures the Go client and server together on a short
// answer: the cost of one question end to end on loopback, minus search.
func BenchmarkAsk(b *testing.B) {
	_, ts := newServer(b, words("A ", "WebSocket ", "is ", "a ", "full-duplex ", "channel."))
	c := rhttp.NewClient(ts.URL)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Ask(context.Background(), "what is websocket", func(runnel.Event) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
