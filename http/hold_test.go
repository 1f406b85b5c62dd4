package http_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

// holdModes are the two ways a stream writes: in the handler's goroutine
// (not parked), and parked (driven by events where this system allows).
var holdModes = []struct {
	name string
	park time.Duration
}{{"unparked", -1}, {"parked", time.Nanosecond}}

// While the CPU is saturated, a token that comes soon after a token's
// write waits up to WriteHold, and goes out with what came meanwhile; the
// first token does not wait.
func TestWriteHold(t *testing.T) {
	rhttp.Saturate(1)
	defer rhttp.Saturate(rhttp.Saturated)
	const hold = 300 * time.Millisecond
	for _, m := range holdModes {
		t.Run(m.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, leakOptions()...)
			gate := make(chan struct{})
			s := gateServer(runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
				if err := emit("a "); err != nil {
					return runnel.Done{}, err
				}
				select {
				case <-gate:
				case <-ctx.Done():
					return runnel.Done{}, ctx.Err()
				}
				// Longer after the write of "a" than a burst.
				time.Sleep(5 * time.Millisecond)
				for _, tok := range []string{"b ", "c"} {
					if err := emit(tok); err != nil {
						return runnel.Done{}, err
					}
				}
				return runnel.Done{}, nil
			}))
			s.ParkAfter, s.WriteHold = m.park, hold
			addr, stop, ran := runServer(t, s)
			body, conn := openStream(t, addr)
			defer conn.Close()
			if evs := readEvents(t, body, runnel.EventToken); evs[len(evs)-1].Token != "a " {
				t.Fatalf("first token %+v, want a", evs[len(evs)-1])
			}
			gotA := time.Now()
			close(gate)
			// b, c and done come in one write, when the hold ends: the
			// first of them arrives the hold (less the time "a" took to
			// reach the client) after "a".
			first, err := body.Peek(1)
			if err != nil || len(first) == 0 {
				t.Fatalf("after a: %v", err)
			}
			waited := time.Since(gotA)
			if n := body.Buffered(); n == 0 {
				t.Fatal("nothing buffered after the peek")
			}
			all := readEvents(t, body, runnel.EventDone)
			if got := tokenText(all); got != "b c" {
				t.Errorf("tokens after a: %q, want %q", got, "b c")
			}
			if waited < hold/2 {
				t.Errorf("b arrived %v after a; it should have waited for up to %v to share a write", waited, hold)
			}
			conn.Close() // a connection given back and idle would hold up the shutdown
			stop()
			ranClean(t, ran)
		})
	}
}

// A stream whose token waits to share a write still ends at once when the
// server shuts down or the client leaves, not when the wait would end.
func TestWriteHoldEnds(t *testing.T) {
	rhttp.Saturate(1)
	defer rhttp.Saturate(rhttp.Saturated)
	for _, m := range holdModes {
		for _, end := range []string{"shutdown", "client leaves"} {
			t.Run(m.name+"/"+end, func(t *testing.T) {
				if end == "client leaves" && m.park > 0 && runtime.GOOS != "linux" {
					t.Skip("a parked stream sees its client leave at its next write here")
				}
				defer goleak.VerifyNone(t, leakOptions()...)
				gate, emitted, stopped := make(chan struct{}), make(chan struct{}), make(chan struct{})
				s := gateServer(runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
					defer close(stopped)
					emit("a ")
					<-gate
					time.Sleep(5 * time.Millisecond)
					emit("b ")
					close(emitted)
					<-ctx.Done() // the shutdown or the client's leaving ends it
					return runnel.Done{}, ctx.Err()
				}))
				s.ParkAfter, s.WriteHold = m.park, time.Hour
				addr, stop, ran := runServer(t, s)
				body, conn := openStream(t, addr)
				defer conn.Close()
				readEvents(t, body, runnel.EventToken)
				close(gate)
				<-emitted
				if end == "client leaves" {
					conn.Close()
					select {
					case <-stopped:
					case <-time.After(20 * time.Second):
						t.Fatal("the generator still runs after the client left during a hold")
					}
					stop()
					ranClean(t, ran)
					return
				}
				stop()
				evs := readEvents(t, body, runnel.EventError)
				if !strings.Contains(tokenText(evs), "b") {
					t.Errorf("events after a: %+v, want b before the error", evs)
				}
				ranClean(t, ran)
			})
		}
	}
}
