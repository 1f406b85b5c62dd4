package http

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel"
)

// An answer is a run (run.go in the root package): a producer goroutine
// runs the pipeline and appends its events to the run's log; each reader is
// a pump that reads the log from where the reader is and writes what it
// finds, over whichever transport the reader chose. The producer does not
// depend on any reader: it keeps going while its readers come and go, and
// stops when the run ends, is canceled, or is abandoned (no reader for the
// linger window).

// deadlineMargin is the time kept before a request's own deadline to
// write the terminal error event.
const deadlineMargin = 500 * time.Millisecond

// maxBatch caps the bytes written in one Write when events pile up.
const maxBatch = 32 << 10

var (
	errShutdown = &runnel.Error{Code: runnel.EUNAVAILABLE, Message: "The server is shutting down; ask again.", Retryable: true}
	errTooLong  = &runnel.Error{Code: runnel.ETIMEOUT, Message: "The answer reached the maximum stream duration."}
	errDeadline = &runnel.Error{Code: runnel.ETIMEOUT, Message: "This response reached its time limit; resume the run to read the rest.", Retryable: true}
)

// checkpoints let a producer wait until its first reader has put an event
// on the wire. query, sources and the terminal events are checkpoints:
// what follows query (the search) and sources (generation) can keep a CPU
// busy for milliseconds, and on a single core the reader would not run
// until the producer yielded; the wait makes sure the client holds each
// stage before the next begins. tags and titles do not wait: sources
// follows them at once, and its checkpoint puts all three on the wire in
// one write. Tokens do not wait, so a burst of them still coalesces.
//
// A run holds its checkpoints for the whole answer, and for most of it
// nothing waits at them (tokens do not), so what a producer waits on is
// made when it waits: a channel that a write or the reader's leaving
// signals. The producer keeps it from one checkpoint to the next and lets
// it go at its first token, so an answer makes two: one for query to
// sources, one for done.
type checkpoints struct {
	written atomic.Int64          // the last event the reader wrote
	left    atomic.Bool           // the reader left; nobody acknowledges any more
	ack     atomic.Pointer[acker] // what the waiting producer waits on; nil while none waits
	spare   *acker                // the producer's, kept between its waits

	// produced is closed when the producer returns; made only for a
	// server that awaits its producers (Server.AwaitProducers).
	produced chan struct{}
}

// acker is what a producer waits on at a checkpoint.
type acker struct{ c chan struct{} }

func newCheckpoints(awaited bool) *checkpoints {
	cp := &checkpoints{}
	if awaited {
		cp.produced = make(chan struct{})
	}
	cp.written.Store(-1)
	return cp
}

// passed reports whether the producer need not wait for event seq.
func (cp *checkpoints) passed(seq int) bool {
	return cp.written.Load() >= int64(seq) || cp.left.Load()
}

// wait returns once event seq is written, the reader is gone, or ctx ends.
func (cp *checkpoints) wait(ctx context.Context, seq int) {
	if cp.passed(seq) {
		return
	}
	a := cp.spare
	if a == nil {
		a = &acker{c: make(chan struct{}, 1)}
		cp.spare = a
	}
	// Stored before written is read again: a write that stores written
	// after that read finds a, and signals it.
	cp.ack.Store(a)
	defer cp.ack.Store(nil)
	for !cp.passed(seq) {
		select {
		case <-a.c:
		case <-ctx.Done():
			return
		}
	}
}

// generating lets the producer's channel go: tokens do not wait.
func (cp *checkpoints) generating() { cp.spare = nil }

// signal wakes the producer if it waits.
func (cp *checkpoints) signal() {
	if a := cp.ack.Load(); a != nil {
		select {
		case a.c <- struct{}{}:
		default: // a signal is pending already
		}
	}
}

// leave records that the reader is gone, and wakes a producer that waits
// for it. It may be called more than once.
func (cp *checkpoints) leave() {
	cp.left.Store(true)
	cp.signal()
}

// wrote records that every event up to seq is on the wire.
// Tokens do not wait, so most writes find nobody to tell.
func (cp *checkpoints) wrote(seq int) {
	cp.written.Store(int64(seq))
	cp.signal()
}

// start creates a run for q and starts its producer. rctx is the context
// of the request that asks. The producer's context is the server's, not the
// request's: the run outlives the request that
// started it when its reader leaves within the linger window. It ends when
// the run is canceled, the server shuts down, or the run reaches its
// maximum duration (capped by the request's own deadline, on AWS Lambda the
// invocation's, so the error event is written while there is time).
//
// With an idempotency key that names a run already kept, start returns that
// run and no checkpoints: the request is a retry of one whose response
// broke off before it named its run.
func (s *Server) start(rctx context.Context, q runnel.Query, key, reqID string) (runnel.Run, *checkpoints, error) {
	return s.startWith(s.answerer, rctx, q, key, reqID)
}

// startWith is start with the pipeline a.
func (s *Server) startWith(a *runnel.Answerer, rctx context.Context, q runnel.Query, key, reqID string) (runnel.Run, *checkpoints, error) {
	max := s.MaxStreamDuration
	if max <= 0 {
		max = DefaultMaxStreamDuration
	}
	if dl, ok := rctx.Deadline(); ok {
		max = min(max, time.Until(dl)-deadlineMargin)
	}
	ctx, cancel := context.WithCancelCause(s.base)
	run, created, err := s.Runs.Create(rctx, key, cancel)
	if err != nil {
		cancel(nil)
		return nil, nil, fmt.Errorf("create run: %w", err)
	}
	if !created {
		cancel(nil)
		return run, nil, nil
	}
	rc := &runContext{Context: ctx, cancel: cancel, due: monoNow() + int64(max)}
	s.deadlines.add(rc)
	cp := newCheckpoints(s.AwaitProducers)
	s.Metrics.runStarted()
	s.producers.Add(1)
	pr := &producer{s: s, rc: rc, run: run, cp: cp, reqID: reqID}
	go pr.prepare(a, q)
	return run, cp, nil
}

// producer runs the pipeline of one run into it and ends it with done, or
// with an error event that says why it failed. The answer's preparation
// (up to its sources) and its generation run in goroutines of their own:
// the preparation grows its goroutine's stack (the question, the search,
// the prompt), and a goroutine keeps the stack it grew to while it waits,
// so the generation, which waits for its generator for the rest of the
// answer, starts in a goroutine with a stack of its own (docs/design.md,
// "A run's generator waits on a small stack").
type producer struct {
	s      *Server
	rc     *runContext // its context, listed in the server's deadlines until it returns
	run    runnel.Run
	cp     *checkpoints
	reqID  string
	start  time.Time
	tokens int
}

// prepare runs the answer up to its sources, then starts its generation.
func (pr *producer) prepare(a *runnel.Answerer, q runnel.Query) {
	pr.start = time.Now()
	g, err := pr.prepared(a, q)
	if err != nil {
		pr.finish(err)
		return
	}
	go pr.generate(g)
}

// prepared is a.Prepare; a panic in it becomes an internal error.
func (pr *producer) prepared(a *runnel.Answerer, q runnel.Query) (g *runnel.Generation, err error) {
	defer pr.recover(&err)
	return a.Prepare(pr.rc, q, pr.emit)
}

// generate runs g and ends the run.
func (pr *producer) generate(g *runnel.Generation) {
	pr.finish(pr.generated(g))
}

// generated is g.Generate; a panic in it becomes an internal error.
func (pr *producer) generated(g *runnel.Generation) (err error) {
	defer pr.recover(&err)
	return g.Generate(pr.rc)
}

// recover turns a panic in the pipeline into an internal error in *err.
func (pr *producer) recover(err *error) {
	if p := recover(); p != nil {
		pr.s.Logger.Error("panic in answer", "run", pr.run.ID(), "request_id", pr.reqID, "panic", p, "stack", string(debug.Stack()))
		*err = &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}
	}
}

// emit appends e to the run and waits at the checkpoints.
func (pr *producer) emit(e runnel.Event) error {
	switch e.Type {
	case runnel.EventTitles:
		pr.s.Metrics.stage(e.Type, time.Since(pr.start))
	case runnel.EventToken:
		if pr.tokens++; pr.tokens == 1 {
			pr.s.Metrics.stage(e.Type, time.Since(pr.start))
			pr.cp.generating()
		}
	}
	if e.Type == runnel.EventDone && e.Done != nil && e.Done.ID == "" {
		d := *e.Done
		d.ID = pr.reqID
		e.Done = &d
	}
	seq, err := pr.run.Append(pr.rc, e)
	if err != nil {
		return err
	}
	if checkpoint(e.Type) {
		pr.cp.wait(pr.rc, seq)
	}
	return pr.rc.Err()
}

// checkpoint reports whether a producer waits for an event of type t to be
// written before it goes on.
func checkpoint(t runnel.EventType) bool {
	switch t {
	case runnel.EventToken, runnel.EventTags, runnel.EventTitles:
		return false
	}
	return true
}

// finish decides and logs how the run ended, appends the error event when
// it failed, and lets the run's context and the server's count of
// producers go.
func (pr *producer) finish(err error) {
	s, ctx, run := pr.s, pr.rc, pr.run
	defer s.producers.Done()
	if pr.cp.produced != nil {
		defer close(pr.cp.produced)
	}
	defer pr.rc.cancel(nil)
	defer s.deadlines.remove(pr.rc)
	log := func(level slog.Level, msg string, err error) {
		attrs := []any{"run", run.ID(), "request_id", pr.reqID, "duration", time.Since(pr.start).Round(time.Microsecond)}
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		s.Logger.Log(context.Background(), level, msg, attrs...)
	}
	if err == nil {
		log(slog.LevelDebug, "run done", nil)
		return
	}
	cause := context.Cause(ctx)
	if errors.Is(err, runnel.ErrRunEnded) || errors.Is(cause, runnel.ErrCanceled) {
		log(slog.LevelInfo, "run canceled", nil)
		return
	}
	e := runnel.AsError(err)
	if ctx.Err() != nil {
		// The run's own context ended: the maximum duration or shutdown.
		e = runnel.AsError(cause)
	}
	if e.Code == runnel.EINTERNAL {
		log(slog.LevelError, "run failed", err)
	} else {
		log(slog.LevelWarn, "run ended with error", err)
	}
	if _, err := run.Append(context.WithoutCancel(ctx), runnel.Event{Type: runnel.EventError, Err: e}); err != nil && !errors.Is(err, runnel.ErrRunEnded) {
		log(slog.LevelError, "append error event", err)
	}
}

// pump carries one run's events to one reader: it reads the log from where
// the reader is, encodes what it finds, writes it in as few writes as it
// can, sends a ping after each silence, and decides and logs how the stream
// ended, in one place.
type pump struct {
	s       *Server
	run     runnel.Run
	enc     encoder
	sink    sink
	after   int          // the last event written
	encoded int          // the last event encoded into buf
	cp      *checkpoints // the producer's, for the reader that started the run
	ping    time.Duration
	reqID   string
	via     string // the transport, for the log
	tracker *StreamStatus
	pk      *parking // when the stream may park, or has (park.go)

	buf  []byte
	ends []int
	bufp *[]byte         // the pool's pointer buf came in, given back with it
	evs  *[]runnel.Event // what fill reads the log into, from its pool

	// The timers loop waits on: the request's deadline, and the silence
	// after which a ping goes out. Nil when there is none.
	deadlineTimer, pingTimer *time.Timer
	deadlineC, pingC         <-chan time.Time
	idleC                    <-chan time.Time // pk.idleTimer's, nil once the stream may not park idle
	deadlineAt               int64            // when deadlineTimer fires, in monoNow's time
	holdTimer                *time.Timer      // a token's wait to share a write (hold.go), once there was one
	drv                      *driver          // once a parked stream is driven by events (drive.go)

	events  int              // events written
	wroteAt int64            // when the last write went out, in monoNow's time
	tokens  int              // token events encoded since the last write
	last    runnel.EventType // the last event written
	code    string           // the code of the error event written, if one was
}

// outcome says how a stream ended, for the log and the metrics.
type outcome struct {
	msg   string
	level slog.Level
	err   error
	kind  string // done, canceled, client_left, or an error code
}

// serve writes the run's events from p.after on until the reader has the
// terminal event, the reader leaves (ctx ends or a write fails), the
// request's own deadline is near, or the server shuts down. It reports
// whether the stream parked instead (park.go): it then goes on in a
// goroutine of its own, which does the rest.
func (p *pump) serve(ctx context.Context) (parked bool) {
	start := time.Now()
	defer p.served(&parked)
	o, ok := p.begin(ctx)
	if ok {
		o = p.loop(ctx, start)
	}
	if o.kind == kindParked {
		return true
	}
	p.stopTimers()
	p.log(ctx, o, start)
	return false
}

// served tells the producer that this reader is gone, unless the stream
// parked and goes on elsewhere; deferred, so that a panic tells it too.
func (p *pump) served(parked *bool) {
	if p.cp != nil && !*parked {
		p.cp.leave()
	}
}

// log writes the line that says how the stream ended. Like everything the
// pump does only once, it is kept out of the frames that stay on the
// stack while the stream is open (see logRequest).
//
//go:noinline
func (p *pump) log(ctx context.Context, o outcome, start time.Time) {
	p.s.Metrics.streamEnded(p.via, o.kind)
	attrs := []any{"run", p.run.ID(), "request_id", p.reqID, "via", p.via, "events", p.events,
		"last", string(p.last), "duration", time.Since(start).Round(time.Microsecond)}
	if o.err != nil {
		attrs = append(attrs, "err", o.err.Error())
	}
	p.s.Logger.Log(ctx, o.level, o.msg, attrs...)
}

// loop is where a stream's goroutine waits for the life of the stream, so
// it keeps its frame small: the timers live in the pump, and what happens
// once (setting up, the first write, failing) is in functions of its own.
func (p *pump) loop(ctx context.Context, start time.Time) outcome {
	for {
		more, err := p.fill(ctx)
		if err != nil {
			return p.fail(errLogRead, err)
		}
		if len(p.buf) > 0 {
			// The ping timer is not moved: when it fires, sendPing
			// looks at how long ago the last write was.
			if err := p.write(); err != nil {
				return left(err)
			}
		} else {
			p.passed()
		}
		if p.last.Terminal() || more == nil {
			return p.ended()
		}
		// Waiting, perhaps for a long while: the buffer goes back to the
		// pool, so that an idle stream holds none.
		p.release()
		if p.pk != nil && !p.pk.at.IsZero() && !time.Now().Before(p.pk.at) {
			if p.park(start) {
				return outcome{kind: kindParked}
			}
		}
		select {
		case <-more:
			if d := p.holdFor(p.last, p.wroteAt); d > 0 {
				if o, ok := p.hold(ctx, d); !ok {
					return o
				}
			}
		case <-p.pingC:
			if err := p.sendPing(); err != nil {
				return left(err)
			}
		case <-p.idleC:
			if p.idled(start, more) {
				return outcome{kind: kindParked}
			}
		case <-ctx.Done():
			return left(context.Cause(ctx))
		case <-p.deadlineC:
			return p.fail(errDeadline, nil)
		case <-p.s.stopping:
			return p.stop(ctx)
		}
	}
}

// idled parks the stream when its idle timer fires and it has written
// nothing for pk.idle, with nothing to write now; otherwise it sets the
// timer for the rest of the wait. It reports whether the stream parked.
//
//go:noinline
func (p *pump) idled(start time.Time, more <-chan struct{}) bool {
	if p.pk == nil || p.pk.at.IsZero() {
		p.stopIdle()
		return false
	}
	select {
	case <-more:
		// An event came as the timer fired: the stream is not idle.
		p.pk.idleTimer.Reset(p.pk.idle)
		return false
	default:
	}
	if wait := p.pk.idle - time.Duration(monoNow()-max(p.wroteAt, p.pk.idleFrom)); wait > 0 {
		p.pk.idleTimer.Reset(wait) // a write since
		return false
	}
	return p.park(start)
}

// stopIdle stops the idle timer for good.
func (p *pump) stopIdle() {
	if pk := p.pk; pk != nil && pk.idleTimer != nil {
		pk.idleTimer.Stop()
		pk.idleTimer = nil
	}
	p.idleC = nil
}

// hold lets the token the run appended last wait, d at most, for the next
// event to share its write (hold.go). It reports false, and how the stream
// ended, if it ended meanwhile.
//
//go:noinline
func (p *pump) hold(ctx context.Context, d time.Duration) (outcome, bool) {
	// The token is the event after p.encoded; a read after it says when
	// the next comes.
	evs, next, err := p.run.Read(ctx, p.encoded+1, nil)
	if err != nil || len(evs) > 0 || next == nil {
		return outcome{}, true // the next is there, or there will be none
	}
	if p.holdTimer == nil {
		p.holdTimer = time.NewTimer(d)
	} else {
		p.holdTimer.Reset(d)
	}
	select {
	case <-next:
		p.holdTimer.Stop()
		return outcome{}, true
	case <-p.holdTimer.C:
		return outcome{}, true
	case <-ctx.Done():
		return left(context.Cause(ctx)), false
	case <-p.deadlineC:
		return p.fail(errDeadline, nil), false
	case <-p.s.stopping:
		return p.stop(ctx), false
	}
}

// errLogRead is the error a reader gets when the run's log fails.
var errLogRead = &runnel.Error{Code: runnel.EUNAVAILABLE, Message: "The run's log could not be read; resume it.", Retryable: true}

// left is the outcome of a stream whose reader went away.
func left(err error) outcome { return outcome{"client left", slog.LevelInfo, err, kindLeft} }

// kindLeft is the outcome of a stream whose client went away.
const kindLeft = "client_left"

// begin starts the timers and writes what the encoder opens a stream with.
// It reports false, and how the stream ended, if the reader is gone.
//
//go:noinline
func (p *pump) begin(ctx context.Context) (outcome, bool) {
	p.s.Metrics.streamStarted(p.via)
	if dl, ok := ctx.Deadline(); ok {
		// Later than the run's own deadline (deadlineMargin), so the run
		// that this request started ends with its own timeout first.
		wait := time.Until(dl.Add(-deadlineMargin / 2))
		p.deadlineAt = monoNow() + int64(wait)
		p.deadlineTimer = time.NewTimer(wait)
		p.deadlineC = p.deadlineTimer.C
	}
	if p.ping > 0 && len(p.enc.ping(nil)) > 0 {
		p.pingTimer = time.NewTimer(p.ping)
		p.pingC = p.pingTimer.C
	}
	if p.pk != nil && p.pk.idle > 0 {
		p.pk.idleFrom = monoNow()
		p.pk.idleTimer = time.NewTimer(p.pk.idle)
		p.idleC = p.pk.idleTimer.C
	}
	p.buf, p.ends = p.enc.begin(p.take()), p.ends[:0]
	if len(p.buf) > 0 {
		if err := p.write(); err != nil {
			return left(err), false
		}
	}
	return outcome{}, true
}

// stopTimers stops the timers begin started and gives the buffer back.
func (p *pump) stopTimers() {
	if p.deadlineTimer != nil {
		p.deadlineTimer.Stop()
	}
	if p.pingTimer != nil {
		p.pingTimer.Stop()
	}
	if p.holdTimer != nil {
		p.holdTimer.Stop()
	}
	p.stopIdle()
	p.release()
}

// sendPing writes a ping after a silence.
//
//go:noinline
func (p *pump) sendPing() error {
	if wait := p.ping - time.Duration(monoNow()-p.wroteAt); wait > 0 {
		p.pingTimer.Reset(wait) // a write since: the silence is not over
		return nil
	}
	p.buf, p.ends = p.enc.ping(p.take()), p.ends[:0]
	if err := p.write(); err != nil {
		return err
	}
	p.pingTimer.Reset(p.ping)
	return nil
}

// stop ends the stream when the server shuts down. The producer ends the
// run with its own error event; a run produced elsewhere is the reader's
// to resume elsewhere.
//
//go:noinline
func (p *pump) stop(ctx context.Context) outcome {
	if p.drain(ctx) {
		return p.ended()
	}
	return p.fail(errShutdown, nil)
}

// fill encodes into the buffer the events the log holds after the last one
// encoded, reading until nothing more is there, the buffer is full
// (maxBatch) or the terminal event is in. So a burst goes out in few writes,
// while a reader that keeps up gets every event alone, at once. It returns
// the channel that says when there may be more (closed already when the
// buffer filled up), nil once the log has nothing more to give.
func (p *pump) fill(ctx context.Context) (<-chan struct{}, error) {
	return p.fillFor(ctx, false)
}

// fillFor is fill. With driven set (a driven stream's advance, drive.go),
// once a read has found events it asks the run whether there is more
// (runnel.Notifier's Notify with no function) before it reads again, and
// returns caughtUp when there is not. A read that finds nothing makes the
// channel that a driven stream never waits on, for every token.
func (p *pump) fillFor(ctx context.Context, driven bool) (<-chan struct{}, error) {
	p.buf, p.ends = p.take(), p.ends[:0]
	for read := false; !p.last.Terminal(); read = true {
		if len(p.buf) >= maxBatch {
			return ready, nil
		}
		if driven && read && p.drv.notifier.Notify(p.encoded, nil) {
			return caughtUp, nil
		}
		if p.evs == nil {
			p.evs = evsPool.Get().(*[]runnel.Event)
		}
		evs, more, err := p.run.Read(ctx, p.encoded, (*p.evs)[:0])
		*p.evs = evs[:0]
		switch {
		case errors.Is(err, io.EOF):
			return nil, nil
		case err != nil:
			return nil, err
		case len(evs) == 0:
			return more, nil
		}
		for i := range evs {
			p.encode(&evs[i])
			if evs[i].Terminal() {
				break
			}
		}
		// The events hold sources and text that neither the slice nor its
		// pool should keep; only what this read filled needs clearing.
		clear(evs)
	}
	return nil, nil
}

// bufPool holds the pumps' write buffers while their streams wait.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// take returns the pump's buffer, empty, from the pool if it has none.
func (p *pump) take() []byte {
	if p.buf == nil {
		p.bufp = bufPool.Get().(*[]byte)
		p.buf = (*p.bufp)[:0]
	}
	return p.buf[:0]
}

// release gives the buffer back to the pool; one that a burst grew far
// past the batch size is left to the collector.
func (p *pump) release() {
	if p.buf != nil && cap(p.buf) <= 2*maxBatch {
		*p.bufp = p.buf[:0]
		bufPool.Put(p.bufp)
	}
	p.buf, p.bufp = nil, nil
	if p.evs != nil {
		evsPool.Put(p.evs) // fill cleared what it read
		p.evs = nil
	}
}

// evsPool holds the slices pumps read the run's log into, while their
// streams wait: grown to a read's worth of events, one was 20 KB a stream.
var evsPool = sync.Pool{New: func() any { evs := make([]runnel.Event, 0, 64); return &evs }}

// caughtUp is what fillFor returns for a driven stream that has read all
// there is: a channel that is never closed, which nothing waits on.
var caughtUp = make(chan struct{})

// ready is a closed channel: more is ready now.
var ready = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// encode appends e to the buffer.
func (p *pump) encode(e *runnel.Event) {
	b, err := p.enc.event(p.buf, e)
	if err != nil {
		b = p.unencodable(e, err)
	}
	p.buf = b
	p.ends = append(p.ends, len(b))
	p.encoded = e.Seq
	p.events++
	p.last = e.Type
	switch e.Type {
	case runnel.EventToken:
		p.tokens++
	case runnel.EventError:
		if e.Err != nil {
			p.code = e.Err.Code
		}
	}
}

// unencodable logs that e could not be encoded and encodes an internal
// error in its place. Only a bug can make an event unencodable; the stream
// says so. It is a function of its own to keep encode's frame small: a
// token is encoded on its producer's stack (docs/design.md, "A run's
// generator waits on a small stack").
//
//go:noinline
func (p *pump) unencodable(e *runnel.Event, err error) []byte {
	p.s.Logger.Error("encode event", "run", p.run.ID(), "type", e.Type, "err", err)
	b, _ := p.enc.event(p.buf, &runnel.Event{Type: runnel.EventError, Err: &runnel.Error{Code: runnel.EINTERNAL, Message: "Internal error."}, Run: e.Run, Seq: e.Seq})
	return b
}

// drain writes what the log holds once the producer, told to stop, has had
// its moment to end the run. It reports whether the terminal event went out.
func (p *pump) drain(ctx context.Context) bool {
	grace := time.NewTimer(time.Second)
	defer grace.Stop()
	for {
		more, err := p.fill(ctx)
		if err != nil {
			return false
		}
		if len(p.buf) > 0 && p.write() != nil {
			return false
		}
		if p.last.Terminal() || more == nil {
			return p.last.Terminal()
		}
		select {
		case <-more:
		case <-grace.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// write writes the buffer: every event encoded so far is then on the wire.
func (p *pump) write() error {
	if err := p.sink.write(p.buf, p.ends); err != nil {
		return err
	}
	p.wrote()
	return nil
}

// wrote records a write of the buffer.
func (p *pump) wrote() {
	p.wroteAt = monoNow()
	p.s.Metrics.wrote(len(p.ends), p.tokens, len(p.buf))
	p.tokens = 0
	p.passed()
	if p.tracker != nil {
		p.tracker.terminal.Store(p.last.Terminal())
	}
}

// passed records that every event encoded so far is on the wire, or
// encoded to nothing (an encoder may leave events out, as the
// OpenAI-compatible stream does tags and titles): either way the producer
// waiting at a checkpoint may go on.
func (p *pump) passed() {
	if p.after != p.encoded {
		p.after = p.encoded
		if p.cp != nil {
			p.cp.wrote(p.after)
		}
	}
}

// ended is the outcome of a stream that delivered the run's terminal event.
func (p *pump) ended() outcome {
	switch p.last {
	case runnel.EventDone:
		return outcome{"stream done", slog.LevelInfo, nil, "done"}
	case runnel.EventCanceled:
		return outcome{"stream canceled", slog.LevelInfo, nil, "canceled"}
	case runnel.EventError:
		return outcome{"stream ended with error", slog.LevelInfo, nil, cmp.Or(p.code, runnel.EINTERNAL)}
	}
	return outcome{"stream ended without a terminal event", slog.LevelWarn, nil, kindLeft}
}

// fail ends the stream with an error event of the pump's own, outside the
// run's log: the run goes on (or is someone else's), and the reader may
// resume it.
func (p *pump) fail(e *runnel.Error, cause error) outcome {
	b, _ := p.enc.event(p.take(), &runnel.Event{Type: runnel.EventError, Err: e})
	p.buf, p.ends = b, append(p.ends[:0], len(b))
	p.last = runnel.EventError
	p.events++
	if err := p.write(); err != nil {
		return left(err)
	}
	return outcome{"stream ended with error", slog.LevelWarn, cmp.Or(cause, error(e)), e.Code}
}

// StreamStatus tells a wrapper of the server's handler what a stream wrote,
// so that it can end a response its handler abandoned in a panic (AWS
// Lambda mode, where nothing else would) in the stream's own framing.
type StreamStatus struct {
	enc      atomic.Value // encoder, once the stream began
	terminal atomic.Bool
}

type statusKey struct{}

// TrackStream returns r with a StreamStatus the stream routes fill in.
func TrackStream(r *http.Request) (*http.Request, *StreamStatus) {
	st := new(StreamStatus)
	return r.WithContext(context.WithValue(r.Context(), statusKey{}, st)), st
}

func trackerOf(r *http.Request) *StreamStatus {
	st, _ := r.Context().Value(statusKey{}).(*StreamStatus)
	return st
}

// Open reports whether a stream began and has not written its terminal
// event.
func (st *StreamStatus) Open() bool {
	return st.enc.Load() != nil && !st.terminal.Load()
}

// ErrorEvent returns the encoding of an error event in the stream's framing.
func (st *StreamStatus) ErrorEvent(e *runnel.Error) []byte {
	enc, _ := st.enc.Load().(encoder)
	if enc == nil {
		enc = ndjson{}
	}
	b, _ := enc.event(nil, &runnel.Event{Type: runnel.EventError, Err: e})
	return b
}
