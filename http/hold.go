package http

import (
	"cmp"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel"
)

// When the process's CPU is saturated, a token that comes soon after its
// stream's last write waits for the next event, up to Server.WriteHold,
// and the two go out in one write as soon as that one comes. Under load
// the write system call is most of what a stream costs (on loopback
// about 10 µs, the receiving side's TCP work included, against 2-3 µs for
// everything else a token does); sending two tokens a write leaves that
// CPU to the producers and the searches, so the tokens keep their pace
// and new questions get their titles sooner, for every other token
// arriving one token's interval later (WriteHold at most, when the next
// is slow to come).
//
// The token waits for the next event, not until a time: a wait until a
// time races the next token's arrival, and the next token, coming a
// moment after the write that ended the wait, goes out alone. Waiting for
// the next event, a stream of paced tokens is written every other token,
// and each waits one interval, not the whole hold. While the CPU has time
// nothing waits: an idle server writes every token alone, at once.
//
// Only tokens wait, and only ones that follow a token: the first events
// of an answer (query to sources, and the first token) and an answer's
// end after silence go out at once. A burst (events within burstGap of
// a write) is batched as before, by the writer catching up.
//
// Saturation is the process's CPU time over at least loadSample of wall
// time against what GOMAXPROCS allows (getrusage; on systems without it
// nothing waits): saturated from loadHigh on, and again not once it falls
// below loadLow, so that the relief the waiting brings does not switch it
// off at once. The measure is taken when it is asked for and the last is
// older than loadSample, by whoever asks: no goroutine or timer of its own
// (a ticker in the background cost a parked stream's burst 17% of its
// events a second on one core).

// DefaultWriteHold is how long a token may wait for the next to share a
// write, when the CPU is saturated and Server.WriteHold is 0. Only a
// token that comes within it of its stream's last write waits: tokens
// further apart than that are each written at once.
const DefaultWriteHold = 20 * time.Millisecond

const (
	loadSample = 100 * time.Millisecond
	loadHigh   = 0.9
	loadLow    = 0.6
)

// cpuLoad is the process's.
var cpuLoad load

// load measures whether the process's CPU is saturated.
type load struct {
	next      atomic.Int64 // when the measure is due again, in monoNow's time
	saturated atomic.Bool
	// forced, when not 0, overrides the measure: 1 saturated, -1 not
	// (the tests).
	forced atomic.Int32

	mu  sync.Mutex // held while measuring
	cpu time.Duration
	at  int64 // when cpu was read, in monoNow's time; 0 before the first
	// clock reads the process's CPU time: processCPU, unless a test's.
	clock func() time.Duration
}

// saturatedAt reports whether the CPU is saturated, at now (monoNow's
// time), measuring it first if the last measure is due.
func (l *load) saturatedAt(now int64) bool {
	switch l.forced.Load() {
	case 1:
		return true
	case -1:
		return false
	}
	if cpuClock && now >= l.next.Load() {
		l.measure(now)
	}
	return l.saturated.Load()
}

// isSaturated reports whether the CPU is saturated now.
func (l *load) isSaturated() bool { return l.saturatedAt(monoNow()) }

// measure reads the CPU time, and the share of it used since the last
// read decides saturation. One caller measures; the others go on with the
// state as it was.
func (l *load) measure(now int64) {
	if !l.mu.TryLock() {
		return
	}
	defer l.mu.Unlock()
	if now < l.next.Load() {
		return // measured meanwhile
	}
	clock := l.clock
	if clock == nil {
		clock = processCPU
	}
	c := clock()
	if l.at != 0 {
		// After a quiet spell the span is long and its share low: the
		// state is then not saturated until the next measure says so.
		l.saturated.Store(nextSaturated(l.saturated.Load(), c-l.cpu, time.Duration(now-l.at), runtime.GOMAXPROCS(0)))
	}
	l.cpu, l.at = c, now
	l.next.Store(now + int64(loadSample))
}

// nextSaturated says whether the CPU is saturated, given whether it was and
// the CPU time used over a span of wall time with procs processors.
func nextSaturated(was bool, used, span time.Duration, procs int) bool {
	if span <= 0 || procs <= 0 {
		return was
	}
	use := float64(used) / (float64(span) * float64(procs))
	switch {
	case use >= loadHigh:
		return true
	case use < loadLow:
		return false
	}
	return was
}

// writeHold returns how long a token may wait for the next to share its
// write: 0 unless the CPU is saturated.
func (s *Server) writeHold(now int64) time.Duration {
	if s.WriteHold < 0 || !cpuLoad.saturatedAt(now) {
		return 0
	}
	return cmp.Or(s.WriteHold, DefaultWriteHold)
}

// holdFor returns how long the token its run appended last may wait for
// the next event, after a write at wroteAt (monoNow's time) whose last
// event was last: 0 to write it at once.
func (p *pump) holdFor(last runnel.EventType, wroteAt int64) time.Duration {
	if last != runnel.EventToken {
		return 0
	}
	now := monoNow()
	w := p.s.writeHold(now)
	since := time.Duration(now - wroteAt)
	if w <= 0 || since < burstGap || since >= w {
		return 0
	}
	return w
}
