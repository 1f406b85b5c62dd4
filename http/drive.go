package http

import (
	"context"
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel"
)

// A parked stream whose run can call it back (a runnel.Notifier: runs in
// this process's memory) and whose connection epoll watches (Linux, not
// TLS) needs no goroutine at all while it waits: it is driven by events.
// Whatever happens to it calls kick: an append to the run (in the
// producer's goroutine), the ping timer, the request's deadline, the
// client leaving (the epoll watch), the server shutting down (Run, through
// the server's set of parked streams). kick advances the stream in
// the goroutine that calls it: it reads what the log has, writes it with
// one write that does not wait, and registers for the next append. So
// the producer of a run with one reader writes that reader's events
// itself, without waking another goroutine for each.
//
// Nothing in advance waits. A client that does not take a write at once
// (its socket buffer is full) gets a goroutine that finishes the write,
// with the usual write timeout, and goes on advancing the stream until
// it is caught up. The end of a stream (the last chunk, the hand-back of
// the connection, the request's log line, a shutdown's drain) runs in a
// goroutine too, once.

// driveParked is whether parked streams are driven by events where they
// can be; tests turn it off to run the parked streams' goroutine path.
var driveParked = true

// blockedWrites counts the writes of driven streams that had to wait, for
// the tests.
var blockedWrites atomic.Int64

// errWouldBlock is writeNow's: the socket did not take the whole write.
var errWouldBlock = errors.New("write would block")

// A driven stream's state.
const (
	driveIdle  int32 = iota // waiting for a kick
	driveBusy               // a goroutine is advancing the stream
	driveAgain              // the same, and it was kicked meanwhile
	driveEnded              // the stream's end runs in a goroutine of its own
)

// driver is what a stream driven by events keeps between kicks.
//
// It is kept by every parked stream, so its fields are ordered, and its
// times are monoNow's, to keep it in the 112-byte size class.
type driver struct {
	state      atomic.Int32
	registered atomic.Bool // a Notify is pending
	pingDue    atomic.Bool // the server's ping sweep found it silent (parkedSet.sweep)
	pings      bool        // its encoding has pings; set before it is in the parked set
	afterToken atomic.Bool // the last event written was a token (hold.go)
	holdNext   atomic.Bool // more asks advance to let the token appended wait for the next
	holding    atomic.Bool // a token waits for the next event (hold.go)
	ctx        context.Context
	start      int64 // when the stream began, in monoNow's time
	notifier   runnel.Notifier
	kick       func()       // p.kick, made once
	more       func()       // p.more, made once
	lastWrite  atomic.Int64 // when the last write went out, in monoNow's time
	hold       atomic.Pointer[time.Timer]
	deadline   *time.Timer
}

// began returns when the stream began.
func (d *driver) began() time.Time { return processStart.Add(time.Duration(d.start)) }

// stop stops the timers that kick the stream.
func (d *driver) stop() {
	if d.deadline != nil {
		d.deadline.Stop()
	}
	if t := d.hold.Load(); t != nil {
		t.Stop()
	}
}

// What advance reports.
type advanced int

const (
	advWaiting advanced = iota // caught up; registered for what comes next
	advBlocked                 // a write is left for flushBlocked
	advEnded                   // the stream's end has begun
)

// newDriver readies a stream that is parking to be driven by events: the
// pump's timers become callbacks. drive then starts it.
func (p *pump) newDriver(ctx context.Context, start time.Time, n runnel.Notifier) {
	d := &driver{ctx: ctx, start: int64(start.Sub(processStart)), notifier: n, pings: p.pingTimer != nil}
	d.lastWrite.Store(monoNow())
	d.kick, d.more = p.kick, p.more
	// Busy until drive has set it up: a kick meanwhile (the client
	// leaving at once) is seen when drive advances it.
	d.state.Store(driveBusy)
	p.drv, p.pk.gone = d, d.kick
}

// drive starts a stream that newDriver readied: it turns the pump's
// timers into callbacks, and advances the stream the first time, here.
func (p *pump) drive() {
	d := p.drv
	if p.pingTimer != nil {
		// Its pings are the server's sweep's (parkedSet.sweep).
		p.pingTimer.Stop()
		p.pingTimer, p.pingC = nil, nil
	}
	if p.deadlineTimer != nil {
		p.deadlineTimer.Stop()
		p.deadlineTimer, p.deadlineC = nil, nil
		d.deadline = time.AfterFunc(time.Duration(p.deadlineAt-monoNow()), d.kick)
	}
	p.advanceAll()
}

// kick advances the stream now, in the calling goroutine, unless another
// goroutine is advancing it: that one then looks again before it stops.
func (p *pump) kick() {
	d := p.drv
	for {
		switch d.state.Load() {
		case driveIdle:
			if d.state.CompareAndSwap(driveIdle, driveBusy) {
				p.advanceAll()
				return
			}
		case driveBusy:
			if d.state.CompareAndSwap(driveBusy, driveAgain) {
				return
			}
		default:
			return
		}
	}
}

// more is what the run calls back after its next append, in the
// producer's goroutine. An event that comes after a quiet moment is
// written at once, by the producer; one close behind a write (a burst) is
// left to a goroutine, so that the producer goes on appending and the
// goroutine, when it runs, writes what piled up meanwhile together. A
// token that may wait to share a write (hold.go) is left to a timer.
func (p *pump) more() {
	d := p.drv
	d.registered.Store(false)
	if d.holding.Load() && d.holding.Swap(false) {
		// A token waited for this event: the two go out now, together.
		if t := d.hold.Load(); t != nil {
			t.Stop()
		}
		p.kick()
		return
	}
	last := runnel.EventType("")
	if d.afterToken.Load() {
		last = runnel.EventToken
	}
	if p.holdFor(last, d.lastWrite.Load()) > 0 {
		// advance, which owns the stream's place in the log, registers
		// for the event after this token.
		d.holdNext.Store(true)
		p.kick()
		return
	}
	if time.Duration(monoNow()-d.lastWrite.Load()) < burstGap {
		go p.kick()
		return
	}
	p.kick()
}

// burstGap is how soon after a write an event counts as part of a burst.
// Tokens paced as a model writes them (tens of milliseconds apart) are
// each written by the producer; a generator that emits faster than this
// has its events batched.
var burstGap = time.Millisecond

// monoNow returns the monotonic time since the process began (the time
// processStart holds, openaiapi.go).
func monoNow() int64 { return int64(time.Since(processStart)) }

// advanceAll advances the stream until it waits with nothing left to do,
// a write must wait, or the stream ends. A panic ends the stream, not the
// goroutine that kicked it (the producer's, or a timer's).
func (p *pump) advanceAll() {
	d := p.drv
	defer func() {
		if v := recover(); v != nil {
			d.state.Store(driveEnded)
			p.pk.conn.Close()
			p.s.Logger.Error("panic in parked stream", "run", p.run.ID(), "request_id", p.reqID, "panic", v, "stack", string(debug.Stack()))
			go p.finish(d.ctx, d.began(), func() outcome { return left(errPanicked) })
		}
	}()
	for {
		switch p.advance() {
		case advWaiting:
			if d.state.CompareAndSwap(driveBusy, driveIdle) {
				return
			}
			d.state.Store(driveBusy) // kicked meanwhile: look again
		case advBlocked:
			blockedWrites.Add(1)
			go p.flushBlocked()
			return
		case advEnded:
			return
		}
	}
}

// errPanicked is the cause of a stream that a panic ended.
var errPanicked = errors.New("panic in the stream")

// advance does what the pump's loop does in one turn, without waiting:
// it ends the stream if its client left, the server shuts down or the
// request's deadline came; writes what the log holds; and sends a ping
// after a silence.
func (p *pump) advance() advanced {
	d := p.drv
	switch {
	case p.last.Terminal():
		return p.end(p.ended)
	case d.ctx.Err() != nil:
		return p.end(func() outcome { return left(context.Cause(d.ctx)) })
	case p.s.base.Err() != nil:
		return p.end(func() outcome { return p.stop(d.ctx) })
	case d.deadline != nil && monoNow() >= p.deadlineAt:
		return p.end(func() outcome { return p.fail(errDeadline, nil) })
	}
	if d.holdNext.Load() && d.holdNext.Swap(false) {
		p.holdNext()
		return advWaiting
	}
	for {
		more, err := p.fillFor(d.ctx, true)
		if err != nil {
			return p.end(func() outcome { return p.fail(errLogRead, err) })
		}
		if len(p.buf) > 0 {
			if a, ok := p.writeNow(); !ok {
				return a
			}
		} else {
			p.passed()
		}
		if p.last.Terminal() || more == nil {
			return p.end(p.ended)
		}
		p.release()
		if more == ready {
			continue
		}
		if d.registered.Load() || p.register() {
			break
		}
		// More came meanwhile: read it.
	}
	if d.pings && d.pingDue.Swap(false) {
		if time.Duration(monoNow()-d.lastWrite.Load()) < p.ping {
			return advWaiting // it wrote since the sweep looked
		}
		p.buf, p.ends = p.enc.ping(p.take()), p.ends[:0]
		if a, ok := p.writeNow(); !ok {
			return a
		}
		p.release()
	}
	return advWaiting
}

// register asks the run to call the stream back after the last event
// encoded, and reports whether it will: false when there is more to read
// already. The flags are set first, since the call back may come at once,
// in another goroutine.
func (p *pump) register() bool {
	d := p.drv
	d.afterToken.Store(p.last == runnel.EventToken)
	d.registered.Store(true)
	if d.notifier.Notify(p.encoded, d.more) {
		return true
	}
	d.registered.Store(false)
	return false
}

// holdNext lets the token the run appended last (the event after
// p.encoded) wait for the next event, or the hold's timer, whichever comes
// first (hold.go). A run that cannot call back for the event after one
// not read yet (runs in Redis) has the token wait for the timer alone.
func (p *pump) holdNext() {
	d := p.drv
	wait := p.s.writeHold(monoNow())
	if wait <= 0 {
		wait = time.Nanosecond // no longer saturated: at once
	}
	// In this order, so that an event that comes at once finds the
	// token waiting and stops the timer.
	d.holding.Store(true)
	p.armHold(wait)
	d.registered.Store(true)
	if !d.notifier.Notify(p.encoded+1, d.more) {
		d.registered.Store(false)
		d.holding.Store(false)
	}
}

// armHold starts the timer that ends a hold after wait, made once.
func (p *pump) armHold(wait time.Duration) {
	d := p.drv
	t := d.hold.Load()
	if t == nil {
		t = time.AfterFunc(wait, func() {
			d.holding.Store(false)
			d.kick()
		})
		if d.hold.CompareAndSwap(nil, t) {
			return
		}
		t.Stop()
		t = d.hold.Load()
	}
	t.Reset(wait)
}

// writeNow writes the buffer if the connection takes it without waiting.
// It reports false, and what advance reports, when the write must wait or
// failed.
func (p *pump) writeNow() (advanced, bool) {
	blocked, err := p.sink.(*chunkSink).writeNow(p.buf)
	switch {
	case err != nil:
		return p.end(func() outcome { return left(err) }), false
	case blocked:
		return advBlocked, false
	}
	p.wrote()
	p.drv.lastWrite.Store(monoNow())
	return 0, true
}

// flushBlocked finishes a write that could not go at once, in a goroutine
// of its own, and goes on advancing the stream from there.
func (p *pump) flushBlocked() {
	d := p.drv
	if err := p.sink.(*chunkSink).flush(); err != nil {
		d.state.Store(driveEnded)
		p.finish(d.ctx, d.began(), func() outcome { return left(err) })
		return
	}
	p.wrote()
	d.lastWrite.Store(monoNow())
	p.release()
	// Kicked meanwhile or not, what the log holds now and the
	// registration for what comes next are still to see to.
	d.state.Store(driveBusy)
	p.advanceAll()
}

// end begins the end of a driven stream: rest decides how it ended (and
// may write, or wait for a shutdown's drain), in the goroutine that also
// does what the handler would have done.
func (p *pump) end(rest func() outcome) advanced {
	d := p.drv
	d.state.Store(driveEnded)
	go p.finish(d.ctx, d.began(), rest)
	return advEnded
}
