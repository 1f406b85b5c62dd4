package http_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

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

// askAll sends req for each of the benchmark's iterations and reads each
// response whole; with want not 0, each response must have that status.
func askAll(b *testing.B, req *http.Request, want int) {
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if want != 0 && resp.StatusCode != want {
			b.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}
}

// counter returns the value of the counter name in reg.
func counter(b *testing.B, reg *prometheus.Registry, name string) float64 {
	fams, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	b.Fatalf("no %s", name)
	return 0
}

// BenchmarkStreamBurst streams answers of 1,000 tokens that the generator
// produces as fast as it can, read by a client on loopback, over each
// transport, and reports events per second and socket writes per answer
// (coalescing at work; a WebSocket writes each event as a message of its
// own).
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
	report := func(b *testing.B) {
		events := float64(b.N * (n + 5))
		b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(cl.writes.Load())/float64(b.N), "writes/answer")
	}
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		name := map[string]string{"application/x-ndjson": "ndjson", "text/event-stream": "sse"}[accept]
		b.Run(name, func(b *testing.B) {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Accept", accept)
			cl.writes.Store(0)
			askAll(b, req, 0)
			report(b)
		})
	}
	// The same with the stream parked before the burst (at its first
	// wait, after the sources event), as a long answer's would be: driven
	// by events (Linux), and in a goroutine of its own.
	for _, drive := range []bool{true, false} {
		name := map[bool]string{true: "ndjson-parked", false: "ndjson-parked-goroutine"}[drive]
		b.Run(name, func(b *testing.B) {
			defer func(was bool) { *rhttp.DriveParked = was }(*rhttp.DriveParked)
			*rhttp.DriveParked = drive
			reg := prometheus.NewRegistry()
			m, _ := rhttp.NewMetrics(reg)
			s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: words(tokens...)}, Store: store, Runs: memory.New(memory.Options{}), ParkAfter: time.Nanosecond, Metrics: m}
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			req, _ := http.NewRequest("GET", ts.URL+"/articles/stream?question=websocket", nil)
			askAll(b, req, 0)
			b.ReportMetric(float64(b.N*(n+5))/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(counter(b, reg, "runnel_write_batches_total")/float64(b.N), "writes/answer")
		})
	}
	// The same with metrics recorded, for their cost.
	b.Run("ndjson+metrics", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		m, _ := rhttp.NewMetrics(reg)
		s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: words(tokens...)}, Store: store, Runs: memory.New(memory.Options{}), Metrics: m}
		ts := httptest.NewServer(s.Handler())
		defer ts.Close()
		req, _ := http.NewRequest("GET", ts.URL+"/articles/stream?question=websocket", nil)
		askAll(b, req, 0)
		b.ReportMetric(float64(b.N*(n+5))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("websocket", func(b *testing.B) {
		conn, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.CloseNow()
		ask := []byte(`{"type":"ask","question":"websocket"}`)
		done := []byte(`"type":"done"`)
		b.ReportAllocs()
		cl.writes.Store(0)
		for b.Loop() {
			if err := conn.Write(context.Background(), websocket.MessageText, ask); err != nil {
				b.Fatal(err)
			}
			for {
				_, msg, err := conn.Read(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Contains(msg, done) {
					break
				}
			}
		}
		report(b)
	})
}

// BenchmarkOpenStreams holds streams open and idle (the generator waits
// after the sources event) over each transport, read by raw sockets that
// cost the server nothing of their own, and reports what one open stream
// holds in the server: heap and goroutine stacks, and goroutines. Run one
// sub-benchmark a process for the figures (-bench 'OpenStreams/ndjson$'):
// later ones in the same process reuse the stacks earlier ones freed,
// which the count of stacks in use then leaves out.
func BenchmarkOpenStreams(b *testing.B) {
	const streams = 1000
	wait := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		<-ctx.Done()
		return runnel.Done{}, ctx.Err()
	})
	// tokenOnRelease waits for release to close, writes one token (to a
	// parked stream), and waits again.
	tokenOnRelease := func(release <-chan struct{}) runnel.Generator {
		return runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
			select {
			case <-release:
			case <-ctx.Done():
				return runnel.Done{}, ctx.Err()
			}
			if err := emit("token "); err != nil {
				return runnel.Done{}, err
			}
			<-ctx.Done()
			return runnel.Done{}, ctx.Err()
		})
	}
	requests := map[string]string{
		"ndjson":    "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: b\r\n\r\n",
		"sse":       "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n",
		"websocket": "GET /runs/ws?question=websocket HTTP/1.1\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
	}
	// Streams park at their first wait (ParkAfter 1 ns; by default a
	// second after they open), except the ones named unparked.
	// ndjson-redis keeps its runs in a redis-server of its own.
	// ndjson-token measures as ndjson does, then has every stream write a
	// token and reports the stacks again, before any collection could
	// shrink them (token-stack-B/stream): what a token written to a parked
	// reader grows its generator's stack to.
	for _, name := range []string{"ndjson", "ndjson-token", "sse", "websocket", "ndjson-unparked", "sse-unparked", "ndjson-redis"} {
		b.Run(name, func(b *testing.B) {
			park := time.Nanosecond
			if strings.HasSuffix(name, "-unparked") {
				park = -1
			}
			var runs runnel.Runs = memory.New(memory.Options{})
			if strings.HasSuffix(name, "-redis") {
				runs = redisRuns(b, 0)
			}
			for b.Loop() {
				gen, release := runnel.Generator(wait), make(chan struct{})
				if strings.HasSuffix(name, "-token") {
					gen = tokenOnRelease(release)
				}
				store := newMemStore(testArticles...)
				s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: gen}, Store: store, Runs: runs, ParkAfter: park}
				ts := httptest.NewServer(s.Handler())
				addr := ts.Listener.Addr().String()
				heap0, stack0, g0 := inUse()
				conns := make([]net.Conn, 0, streams)
				buf := make([]byte, 4096)
				for range streams {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
					io.WriteString(c, requests[strings.Split(name, "-")[0]])
					// Read until the sources event: the stream is then
					// open and idle, its generator waiting.
					readUntil(b, c, buf, "sources")
				}
				heap1, stack1, g1 := inUse()
				b.ReportMetric(float64(heap1+stack1-heap0-stack0)/streams, "B/stream")
				b.ReportMetric(float64(heap1-heap0)/streams, "heap-B/stream")
				b.ReportMetric(float64(stack1-stack0)/streams, "stack-B/stream")
				b.ReportMetric(float64(g1-g0)/streams, "goroutines/stream")
				if strings.HasSuffix(name, "-token") {
					close(release)
					for _, c := range conns {
						readUntil(b, c, buf, `"token"`)
					}
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					b.ReportMetric(float64(m.StackInuse-stack0)/streams, "token-stack-B/stream")
				}
				for _, c := range conns {
					c.Close()
				}
				ts.Close()
			}
		})
	}
}

// readUntil reads c, into buf, until what it has read holds marker.
func readUntil(b *testing.B, c net.Conn, buf []byte, marker string) {
	var got []byte
	for !bytes.Contains(got, []byte(marker)) {
		n, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
}

// inUse returns the bytes of heap and of goroutine stacks in use after a
// collection, and the number of goroutines. Each collection may halve a
// stack that uses less than a quarter of itself, so a few of them let the
// stacks come down to what the parked goroutines need.
func inUse() (heap, stack uint64, goroutines int) {
	for range 4 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
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

// BenchmarkResume measures the time from a cut connection to the first
// event after it in the client's hands, over each transport: the client
// notices the break, reconnects, resumes the run after its last event, and
// the server sends what the generator produced meanwhile.
func BenchmarkResume(b *testing.B) {
	for _, tr := range []rhttp.Transport{rhttp.NDJSON, rhttp.SSE, rhttp.WebSocket} {
		b.Run(tr.String(), func(b *testing.B) {
			g := newGate()
			_, ts := newServer(b, g, lingering)
			proxy := newCutProxy(b, ts.Listener.Addr().String())
			c := &rhttp.Client{URL: proxy.URL(), Transport: tr}
			var total time.Duration
			for b.Loop() {
				go func() {
					<-g.started
					g.release <- "before "
				}()
				var cut time.Time
				err := c.Ask(context.Background(), "websocket", func(e runnel.Event) error {
					switch {
					case e.Type == runnel.EventToken && e.Token == "before ":
						cut = time.Now()
						proxy.cutAll()
						go func() { g.release <- "after "; close(g.release) }()
					case e.Type == runnel.EventToken:
						total += time.Since(cut)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				g.release = make(chan string)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/resume")
		})
	}
}

// BenchmarkRefusal asks for a stream over the cap on streams (one, held
// open) and reports how long the 503 takes to come back, on loopback.
func BenchmarkRefusal(b *testing.B) {
	release := make(chan struct{})
	defer close(release)
	store := newMemStore(testArticles...)
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: holding(release)}, Store: store,
		Runs: memory.New(memory.Options{}), Limits: rhttp.Limits{MaxStreams: 1}}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	url := ts.URL + "/articles/stream?question=websocket"
	held, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer held.Body.Close()
	req, _ := http.NewRequest("GET", url, nil)
	askAll(b, req, http.StatusServiceUnavailable)
}

// BenchmarkPacedTokens measures what one token costs when tokens come one
// at a time, as a model writes them: the generator emits a token when the
// client has read the one before, so each goes out in a write of its own
// and every goroutine involved wakes for it. An op is one token's round
// trip on loopback, the client's read and its signal back included; with
// -cpu 1 that is the CPU a token costs the whole process. A parked stream
// writes each token in the producer's goroutine, as it does tokens paced
// further apart than burstGap (the round trip here is shorter, and would
// count as a burst). "plain" is a bare net/http handler doing the same
// with a flush a token: the floor to compare with.
func BenchmarkPacedTokens(b *testing.B) {
	serve := func(b *testing.B, h http.Handler, next chan struct{}) {
		ts := httptest.NewServer(h)
		defer ts.Close()
		c, err := net.Dial("tcp", ts.Listener.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /articles/stream?question=websocket HTTP/1.1\r\nHost: b\r\n\r\n")
		r := bufio.NewReader(c)
		token := []byte(`"type":"token"`)
		read := func() {
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Contains(line, token) {
					return
				}
			}
		}
		next <- struct{}{}
		read() // the first token: the stream is open, parked if it parks
		b.ReportAllocs()
		for b.Loop() {
			next <- struct{}{}
			read()
		}
	}
	gate := func(next chan struct{}) runnel.Generator {
		return runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
			for {
				select {
				case <-next:
					if err := emit("word "); err != nil {
						return runnel.Done{}, err
					}
				case <-ctx.Done():
					return runnel.Done{}, ctx.Err()
				}
			}
		})
	}
	for _, name := range []string{"ndjson", "ndjson-parked"} {
		b.Run(name, func(b *testing.B) {
			next := make(chan struct{})
			store := newMemStore(testArticles...)
			park := time.Duration(-1)
			if name == "ndjson-parked" {
				park = time.Nanosecond
				defer func(was time.Duration) { *rhttp.BurstGap = was }(*rhttp.BurstGap)
				*rhttp.BurstGap = 0
			}
			s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: gate(next)}, Store: store,
				Runs: memory.New(memory.Options{}), ParkAfter: park, WriteHold: -1}
			serve(b, s.Handler(), next)
		})
	}
	b.Run("plain", func(b *testing.B) {
		next := make(chan struct{})
		serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			rc := http.NewResponseController(w)
			for {
				select {
				case <-next:
					io.WriteString(w, `{"type":"token","token":"word "}`+"\n")
					if err := rc.Flush(); err != nil {
						return
					}
				case <-r.Context().Done():
					return
				}
			}
		}), next)
	})
}
