package http

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/runnel/runnel"
)

func TestNextSaturated(t *testing.T) {
	const span = 100 * time.Millisecond
	for _, c := range []struct {
		was   bool
		used  time.Duration
		procs int
		want  bool
	}{
		{false, 95 * time.Millisecond, 1, true},   // 95%: saturated
		{false, 89 * time.Millisecond, 1, false},  // under loadHigh
		{true, 70 * time.Millisecond, 1, true},    // between: as it was
		{false, 70 * time.Millisecond, 1, false},  // the same
		{true, 59 * time.Millisecond, 1, false},   // under loadLow
		{false, 150 * time.Millisecond, 2, false}, // 75% of two cores
		{false, 190 * time.Millisecond, 2, true},  // 95% of two
		{true, 0, 0, true},                        // nothing to go by
	} {
		if got := nextSaturated(c.was, c.used, span, c.procs); got != c.want {
			t.Errorf("nextSaturated(%v, %v, %v, %d) = %v, want %v", c.was, c.used, span, c.procs, got, c.want)
		}
	}
}

func TestHoldFor(t *testing.T) {
	defer cpuLoad.forced.Store(cpuLoad.forced.Load())
	p := &pump{s: &Server{WriteHold: 20 * time.Millisecond}}
	ago := func(d time.Duration) int64 { return monoNow() - int64(d) }
	cpuLoad.forced.Store(-1)
	if d := p.holdFor(runnel.EventToken, ago(5*time.Millisecond)); d != 0 {
		t.Errorf("not saturated: hold %v, want 0", d)
	}
	cpuLoad.forced.Store(1)
	if d := p.holdFor(runnel.EventToken, ago(5*time.Millisecond)); d != 20*time.Millisecond {
		t.Errorf("a token 5ms after a token's write: hold %v, want 20ms", d)
	}
	for _, c := range []struct {
		last runnel.EventType
		ago  time.Duration
	}{
		{runnel.EventSources, 5 * time.Millisecond}, // the first token
		{runnel.EventToken, 30 * time.Millisecond},  // after a longer silence than the hold
		{runnel.EventToken, 100 * time.Microsecond}, // a burst
	} {
		if d := p.holdFor(c.last, ago(c.ago)); d != 0 {
			t.Errorf("after %s written %v ago: hold %v, want 0", c.last, c.ago, d)
		}
	}
	p.s.WriteHold = -1
	if d := p.holdFor(runnel.EventToken, ago(5*time.Millisecond)); d != 0 {
		t.Errorf("WriteHold -1: hold %v, want 0", d)
	}
	p.s.WriteHold = 0
	if d := p.holdFor(runnel.EventToken, ago(5*time.Millisecond)); d != DefaultWriteHold {
		t.Errorf("WriteHold 0: hold %v, want %v", d, DefaultWriteHold)
	}
}

// TestLoadMeasures: the CPU is measured when asked, at most once each
// loadSample, over the span since the last measure.
func TestLoadMeasures(t *testing.T) {
	if !cpuClock {
		t.Skip("no CPU clock here")
	}
	procs := time.Duration(runtime.GOMAXPROCS(0))
	var cpu time.Duration
	reads := 0
	l := load{clock: func() time.Duration { reads++; return cpu }}
	ms := int64(time.Millisecond)
	step := func(at int64, used time.Duration, want bool, wantReads int) {
		t.Helper()
		cpu += used
		if got := l.saturatedAt(at); got != want || reads != wantReads {
			t.Errorf("at %d ms: saturated %v after %d reads, want %v after %d", at/ms, got, reads, want, wantReads)
		}
	}
	step(1*ms, 0, false, 1)                          // the first read: nothing to compare
	step(50*ms, 50*time.Millisecond*procs, false, 1) // not due: no read, the state as it was
	step(101*ms, 45*time.Millisecond*procs, true, 2) // 95 of 100 ms busy
	step(150*ms, 0, true, 2)                         // not due
	step(201*ms, 70*time.Millisecond*procs, true, 3) // 70%: still saturated (over loadLow)
	step(301*ms, 10*time.Millisecond*procs, false, 4)
	// A quiet spell, then a busy 100 ms: the long span reads as idle,
	// and the next measure sees the load.
	step(10_000*ms, 100*time.Millisecond*procs, false, 5)
	step(10_100*ms, 100*time.Millisecond*procs, true, 6)
}

// TestStreamStateSizes: every open stream keeps a pump, and every parked
// one a driver too; each is kept within its size class (the one it fits
// today), so that a field added later is a choice, not an accident.
func TestStreamStateSizes(t *testing.T) {
	if s := unsafe.Sizeof(pump{}); s > 320 {
		t.Errorf("pump is %d bytes, over the 320-byte size class", s)
	}
	if s := unsafe.Sizeof(driver{}); s > 112 {
		t.Errorf("driver is %d bytes, over the 112-byte size class", s)
	}
}
