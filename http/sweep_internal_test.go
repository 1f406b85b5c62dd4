package http

import (
	"context"
	"testing"
	"time"
)

// TestPingSweep checks the parked set's sweep: it runs while driven
// streams with pings are parked, marks the ones silent for an interval,
// not the others, and ends when the set empties.
func TestPingSweep(t *testing.T) {
	var ps parkedSet
	stream := func(lastWrite int64) *pump {
		d := &driver{pings: true}
		d.state.Store(driveEnded) // kicks do nothing but look
		d.lastWrite.Store(lastWrite)
		return &pump{drv: d, ping: 20 * time.Millisecond, pk: &parking{}}
	}
	silent, busy := stream(monoNow()), stream(monoNow()+int64(time.Hour))
	ps.add(silent, context.Background())
	ps.add(busy, context.Background())
	ps.mu.Lock()
	idle := ps.idle
	ps.mu.Unlock()
	if idle == nil {
		t.Fatal("no sweep runs with two driven streams parked")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !silent.drv.pingDue.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not find the silent stream due a ping")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if busy.drv.pingDue.Load() {
		t.Error("the sweep found a stream that wrote since due a ping")
	}
	ps.remove(silent)
	ps.remove(busy)
	select {
	case <-idle:
	default:
		t.Fatal("the set is empty and its sweep was not told to end")
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.idle != nil {
		t.Error("the set is empty and still has a sweep")
	}
}
