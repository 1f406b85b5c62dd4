package http

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/runnel/runnel"
)

// A stream that stays open parks: its connection leaves net/http, which
// holds a goroutine with an 8 KiB stack, 10 KiB of buffers and the
// request's state for every connection it serves, and the pump goes on in
// a goroutine of its own, writing the response's chunks to the connection
// itself. An epoll set shared by all parked streams tells it when the
// client goes (watch_linux.go; elsewhere, and over TLS, a goroutine a
// stream waits on a read), so an open stream holds about 20 KB instead of
// 40 (BenchmarkOpenStreams; design.md, "Streams park"). Only
// HTTP/1.1 streams whose writer can be hijacked park: HTTP/2 and AWS
// Lambda streams stay where they are.
//
// When the stream ends, the pump finishes the chunked response and gives
// the connection back to the http.Server that Run serves, through the
// listener it accepts from (handback), so a client's keep-alive connection
// goes on as if nothing happened. A server run some other way (a handler
// mounted on a server of one's own) closes it instead.

// DefaultParkAfter is how long a stream stays in net/http's goroutine
// before it parks.
const DefaultParkAfter = time.Second

// DefaultParkIdle is how long a stream younger than ParkAfter waits with
// nothing to write before it parks.
const DefaultParkIdle = 100 * time.Millisecond

// parking is what a pump needs to park, and what it does at the end in
// place of the handler it left. It holds strings, not the request or its
// writer, which would keep net/http's state for the connection alive.
type parking struct {
	w    http.ResponseWriter // until it parks
	at   time.Time           // when it may park
	idle time.Duration       // it parks sooner once it waited this long with nothing to write; 0: not
	// idleTimer fires when the stream may have waited idle long enough,
	// until it parks or tries to; idleFrom is when the pump began, in
	// monoNow's time.
	idleTimer *time.Timer
	idleFrom  int64
	keep      bool        // the connection may serve another request after this one
	rec       *recorder   // until it parks: the request's log line
	line      requestLine // once it parked
	done      func()      // the handler's clean-up: reader count, limits, stream count
	conn      net.Conn
	cancel    context.CancelCauseFunc
	watched   chan struct{} // closed when the watching goroutine returns; nil when epoll watches (watch_linux.go)
	extra     bool          // the client sent bytes the connection cannot give back to net/http
	gone      func()        // for a driven stream, kicks it when epoll sees the client leave

	rc      syscall.RawConn // for epoll
	fd, gen int32
}

// kindParked is the outcome of a pump's loop in the handler's goroutine
// when the stream parked: the pump goes on in its own.
const kindParked = "parked"

// errClientGone is the cause of a parked stream's context when its client
// closes the connection.
var errClientGone = errors.New("the client closed the connection")

// park moves the stream out of the handler's goroutine, if it can: it
// takes the connection from net/http and starts the pump's goroutine and
// the watch of the connection. It reports false if the connection cannot
// be taken (HTTP/2, or a writer that cannot hijack): the stream goes on
// where it is. Once it is taken, the handler returns at once.
//
//go:noinline
func (p *pump) park(start time.Time) bool {
	pk := p.pk
	pk.at = time.Time{} // one attempt
	p.stopIdle()
	conn, brw, err := http.NewResponseController(pk.w).Hijack()
	if err != nil {
		p.pk = nil
		return false
	}
	pk.w = nil
	// net/http flushed what the response had written as it gave the
	// connection up, and cleared its deadlines. What the client sent
	// after its request is unread: the connection cannot serve it.
	pk.extra = brw.Reader.Buffered() > 0
	if pk.rec != nil {
		pk.rec.parked = true
		pk.line = pk.rec.line()
		pk.rec = nil
	}
	pk.conn = conn
	// The stream's context from here on is a root of its own, not the
	// request's: the request's ends as the handler returns, the stream
	// ends by its own cancel (the client leaving) or a shutdown's kick,
	// and it reads none of the request's values (the status it reports
	// to was taken when it started). Keeping the request's context would
	// keep its chain for the rest of the answer, net/http's connection
	// context and its children's map among it: half a kilobyte of every
	// parked stream.
	var pctx context.Context
	pctx, pk.cancel = context.WithCancelCause(context.Background())
	p.sink = &chunkSink{pk: pk, timeout: p.s.writeTimeout()}
	p.s.Metrics.parked(1)
	if n, ok := p.run.(runnel.Notifier); ok && driveParked {
		p.newDriver(pctx, start, n) // before the watch, which may kick it
	}
	if !startWatch(pk) {
		p.drv, pk.gone = nil, nil // driven only where epoll watches
		pk.watched = make(chan struct{})
		go pk.watch()
	}
	// At shutdown a driven stream is kicked, and when the shutdown grace
	// runs out the connection closes, as http.Server.Close would close
	// it were it still net/http's.
	p.s.parked.add(p, p.s.cut)
	if p.drv != nil {
		p.drive()
	} else {
		go p.finish(pctx, start, nil)
	}
	return true
}

// parkedSet is the set of a server's parked streams, for its shutdown and
// for the pings of the streams driven by events.
type parkedSet struct {
	mu sync.Mutex
	m  map[*pump]struct{}
	// idle is closed when the set empties while its sweep runs, which
	// then ends; nil while no sweep runs.
	idle chan struct{}
}

// add adds p, and closes its connection if the shutdown grace (cut) ran
// out already.
func (ps *parkedSet) add(p *pump, cut context.Context) {
	ps.mu.Lock()
	if ps.m == nil {
		ps.m = make(map[*pump]struct{})
	}
	ps.m[p] = struct{}{}
	if d := p.drv; d != nil && d.pings && ps.idle == nil {
		ps.idle = make(chan struct{})
		go ps.sweep(p.ping, ps.idle)
	}
	ps.mu.Unlock()
	if cut.Err() != nil {
		p.pk.conn.Close()
	}
}

func (ps *parkedSet) remove(p *pump) {
	ps.mu.Lock()
	delete(ps.m, p)
	if len(ps.m) == 0 && ps.idle != nil {
		close(ps.idle)
		ps.idle = nil
	}
	ps.mu.Unlock()
}

// sweep sends the pings of the streams driven by events: every quarter of
// the ping interval it kicks each one that has written nothing for an
// interval, and the stream writes its ping. A ping is then due up to a
// quarter of an interval late. One goroutine a server, while streams are
// parked, in place of a timer a stream: at thousands of streams that
// write a token a second, a timer each was about 150 bytes of every
// stream, and the pings never came (docs/design.md, "What a run holds
// while it waits").
func (ps *parkedSet) sweep(interval time.Duration, idle <-chan struct{}) {
	t := time.NewTicker(max(interval/4, time.Millisecond))
	defer t.Stop()
	var due []*pump
	for {
		select {
		case <-idle:
			return
		case <-t.C:
		}
		now := monoNow()
		ps.mu.Lock()
		for p := range ps.m {
			if d := p.drv; d != nil && d.pings && time.Duration(now-d.lastWrite.Load()) >= interval {
				due = append(due, p)
			}
		}
		ps.mu.Unlock()
		// Kicked with the set unlocked: a stream that ends removes itself.
		for i, p := range due {
			p.drv.pingDue.Store(true)
			p.kick()
			due[i] = nil
		}
		due = due[:0]
	}
}

// each calls f for each parked stream, with the set locked: f must not
// block.
func (ps *parkedSet) each(f func(*pump)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for p := range ps.m {
		f(p)
	}
}

// shutDown kicks every driven stream once the server's base context has
// ended, so that each drains and ends (the others wait on s.stopping).
func (ps *parkedSet) shutDown() {
	ps.each(func(p *pump) {
		if p.drv != nil {
			go p.kick()
		}
	})
}

// cut closes the connection of every parked stream.
func (ps *parkedSet) cut() {
	ps.each(func(p *pump) { p.pk.conn.Close() })
}

// watch reads from a parked stream's connection until the client closes
// it, which ends the stream, or the pump stops the watch (a read
// deadline) to give the connection back: where epoll cannot watch it. A
// client that sends bytes while the stream is open (pipelining) then has
// its connection closed at the end.
func (pk *parking) watch() {
	defer close(pk.watched)
	var b [16]byte
	for {
		n, err := pk.conn.Read(b[:])
		if n > 0 {
			pk.extra = true
		}
		if err != nil {
			pk.cancel(errClientGone)
			return
		}
	}
}

// finish runs what is left of a parked stream, in the goroutine that
// calls it, and does at the end what the handler would have done. With
// rest nil that is the pump's loop, in a goroutine of its own that waits
// in it (called straight from the go statement, so that its stack stays
// small); otherwise rest says how a stream driven by events ends
// (drive.go).
func (p *pump) finish(ctx context.Context, start time.Time, rest func() outcome) {
	pk := p.pk
	defer pk.done()
	defer p.s.Metrics.parked(-1)
	if p.cp != nil {
		defer p.cp.leave()
	}
	defer func() {
		// As net/http does for a handler: a panic ends this stream, not
		// the server.
		if v := recover(); v != nil {
			pk.conn.Close()
			p.s.Logger.Error("panic in parked stream", "run", p.run.ID(), "request_id", p.reqID, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if p.drv != nil {
		p.drv.stop()
	}
	var o outcome
	if rest == nil {
		o = p.loop(ctx, start)
	} else {
		o = rest()
	}
	p.stopTimers()
	p.finishParked(o)
	p.log(ctx, o, start)
}

// finishParked ends a parked stream's response and gives its connection
// back to the server, or closes it, and writes the request's log line.
//
//go:noinline
func (p *pump) finishParked(o outcome) {
	pk := p.pk
	defer pk.cancel(nil)
	defer p.s.parked.remove(p)
	// The watch stops before the last chunk goes out: a keep-alive client
	// sends its next request only once it has read this response whole,
	// and that request is net/http's to read.
	if pk.watched != nil {
		pk.conn.SetReadDeadline(time.Now())
		<-pk.watched
	} else {
		stopWatch(pk)
	}
	back := false
	if o.kind != kindLeft {
		sk := p.sink.(*chunkSink)
		if err := sk.end(); err == nil && pk.keep && !pk.extra {
			back = p.s.handback(pk.conn)
		}
	}
	if !back {
		pk.conn.Close()
	}
	if pk.line.method != "" {
		pk.line.bytes += p.sink.(*chunkSink).wrote
		p.s.logLine(pk.line)
	}
}

// chunkSink writes a parked stream's events as the chunks of its HTTP/1.1
// response, straight to the connection, each write under a deadline as
// responseSink sets it.
type chunkSink struct {
	pk       *parking
	timeout  time.Duration
	deadline time.Time
	wrote    int64

	// What a write that could not wait left for a goroutine to write.
	rest  []byte
	whole []byte // the chunk rest is the end of
	rbuf  *[]byte

	once oneWrite // the writes that do not wait (drive.go)
}

func (s *chunkSink) write(buf []byte, _ []int) error {
	if err := s.setDeadline(); err != nil {
		return err
	}
	bp, b := chunk(buf)
	n, err := s.pk.conn.Write(b)
	s.wrote += int64(n)
	putChunk(bp, b)
	return err
}

// chunk returns the chunk that carries buf: its size line, the events and
// the CRLF together, so that a batch is one write, in a buffer from the
// pumps' pool.
func chunk(buf []byte) (*[]byte, []byte) {
	bp := bufPool.Get().(*[]byte)
	b := strconv.AppendInt((*bp)[:0], int64(len(buf)), 16)
	b = append(b, "\r\n"...)
	b = append(b, buf...)
	return bp, append(b, "\r\n"...)
}

// putChunk gives a chunk's buffer back to the pool.
func putChunk(bp *[]byte, b []byte) {
	if cap(b) <= 2*maxBatch+64 {
		*bp = b[:0]
		bufPool.Put(bp)
	}
}

// writeNow writes buf as a chunk if the connection takes it without
// waiting. It reports blocked when the connection took only part of it or
// nothing: the rest is then flush's to write.
func (s *chunkSink) writeNow(buf []byte) (blocked bool, err error) {
	bp, b := chunk(buf)
	n, err := s.once.write(s.pk.rc, b)
	s.wrote += int64(n)
	if errors.Is(err, errWouldBlock) {
		s.rest, s.whole, s.rbuf = b[n:], b, bp
		return true, nil
	}
	putChunk(bp, b)
	return false, err
}

// flush writes what writeNow left, waiting as long as the write timeout
// allows, and clears the deadline again for the writes that do not wait.
func (s *chunkSink) flush() error {
	defer func() {
		putChunk(s.rbuf, s.whole)
		s.rest, s.whole, s.rbuf = nil, nil, nil
	}()
	if err := s.setDeadline(); err != nil {
		return err
	}
	n, err := s.pk.conn.Write(s.rest)
	s.wrote += int64(n)
	if err != nil {
		return err
	}
	s.deadline = time.Time{}
	return s.pk.conn.SetWriteDeadline(time.Time{})
}

// end writes the last chunk, which ends the response.
func (s *chunkSink) end() error {
	if err := s.setDeadline(); err != nil {
		return err
	}
	n, err := s.pk.conn.Write([]byte("0\r\n\r\n"))
	s.wrote += int64(n)
	if err == nil {
		err = s.pk.conn.SetWriteDeadline(time.Time{})
	}
	return err
}

func (s *chunkSink) setDeadline() error {
	if now := time.Now(); s.deadline.Sub(now) < s.timeout*3/4 {
		s.deadline = now.Add(s.timeout)
		return s.pk.conn.SetWriteDeadline(s.deadline)
	}
	return nil
}

// handbackListener is the listener Run serves from: it accepts new
// connections, and the connections of parked streams that ended, so that
// net/http serves their next requests.
type handbackListener struct {
	net.Listener
	back      chan net.Conn
	accepted  chan acceptResult
	closed    chan struct{}
	closeOnce sync.Once
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func newHandbackListener(ln net.Listener) *handbackListener {
	l := &handbackListener{Listener: ln, back: make(chan net.Conn), accepted: make(chan acceptResult), closed: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *handbackListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.closed:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// http.Server retries temporary errors after a pause and
			// returns on the rest; either way it calls Accept again
			// or stops, and a closed listener fails at once.
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}

func (l *handbackListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		return r.conn, r.err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handbackListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// give hands c back to the server; false when it no longer accepts.
func (l *handbackListener) give(c net.Conn) bool {
	select {
	case l.back <- c:
		return true
	case <-l.closed:
		return false
	}
}
