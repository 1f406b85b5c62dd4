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
// stream's last write waits, up to Server.WriteHold, to go out with the
// next one. Under load the write system call is most of what a stream
// costs (on loopback about 10 µs, the receiving side's TCP work
// included, against 2-3 µs for everything else a token does); sending two
// or three tokens a write leaves that CPU to the producers and the
// searches, so the tokens keep their pace and new questions get their
// titles sooner, for a token arriving at most WriteHold later. While the
// CPU has time nothing waits: an idle server writes every token alone,
// at once.
//
// Only tokens wait, and only ones that follow a token: the first events
// of an answer (query to sources, and the first token) and an answer's
// end after silence go out at once. A burst (events within burstGap of
// a write) is batched as before, by the writer catching up.
//
// Saturation is the process's CPU time over the last loadSample against
// what GOMAXPROCS allows (getrusage; on systems without it nothing waits):
// saturated from loadHigh on, and again not once it falls below loadLow,
// so that the relief the waiting brings does not switch it off at once.
// The sampling runs while some stream is open.

// DefaultWriteHold is how long a token may wait for the next to share a
// write, when the CPU is saturated and Server.WriteHold is 0.
const DefaultWriteHold = 20 * time.Millisecond

const (
	loadSample = 100 * time.Millisecond
	loadHigh   = 0.9
	loadLow    = 0.6
)

// cpuLoad is the process's.
var cpuLoad load

// load watches whether the process's CPU is saturated.
type load struct {
	mu        sync.Mutex
	streams   int  // streams open that may hold their writes
	running   bool // watch is running
	saturated atomic.Bool
	// forced, when not 0, overrides the measure: 1 saturated, -1 not
	// (the tests).
	forced atomic.Int32
}

// enter counts a stream as open and starts watching, if it is not.
func (l *load) enter() {
	l.mu.Lock()
	l.streams++
	start := !l.running && l.streams == 1 && cpuClock
	if start {
		l.running = true
	}
	l.mu.Unlock()
	if start {
		go l.watch()
	}
}

// leave counts a stream as closed.
func (l *load) leave() {
	l.mu.Lock()
	l.streams--
	l.mu.Unlock()
}

// watch samples the CPU until no stream is open.
func (l *load) watch() {
	t := time.NewTicker(loadSample)
	defer t.Stop()
	cpu, at := processCPU(), time.Now()
	for range t.C {
		l.mu.Lock()
		if l.streams == 0 {
			l.running = false
			l.saturated.Store(false)
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		c, now := processCPU(), time.Now()
		l.saturated.Store(nextSaturated(l.saturated.Load(), c-cpu, now.Sub(at), runtime.GOMAXPROCS(0)))
		cpu, at = c, now
	}
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

// isSaturated reports whether the CPU is saturated now.
func (l *load) isSaturated() bool {
	switch l.forced.Load() {
	case 1:
		return true
	case -1:
		return false
	}
	return l.saturated.Load()
}

// writeHold returns how long a token may wait for the next to share its
// write: 0 unless the CPU is saturated.
func (s *Server) writeHold() time.Duration {
	if s.WriteHold < 0 || !cpuLoad.isSaturated() {
		return 0
	}
	return cmp.Or(s.WriteHold, DefaultWriteHold)
}

// holdFor returns how long the stream should wait before it writes what
// its run appended last, after a write at wroteAt (monoNow's time) whose
// last event was last: 0 to write at once.
func (p *pump) holdFor(last runnel.EventType, wroteAt int64) time.Duration {
	if last != runnel.EventToken {
		return 0
	}
	w := p.s.writeHold()
	since := time.Duration(monoNow() - wroteAt)
	if w <= 0 || since < burstGap || since >= w {
		return 0
	}
	return w - since
}
