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
// write waits for the next event, up to WriteHold, and the two go out in
// one write as soon as the next comes; a token that no other follows
// goes out when the hold ends. The first token does not wait.
func TestWriteHold(t *testing.T) {
	rhttp.Saturate(1)
	defer rhttp.Saturate(rhttp.Saturated)
	const hold = time.Second
	for _, m := range holdModes {
		t.Run(m.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, leakOptions()...)
			gates := [4]chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})}
			emitted := make(chan string, 4)
			s := gateServer(runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
				for i, tok := range []string{"a ", "b ", "c ", "d"} {
					if i > 0 {
						select {
						case <-gates[i-1]:
						case <-ctx.Done():
							return runnel.Done{}, ctx.Err()
						}
					}
					if tok != "c " {
						// Longer after the last write than a burst.
						time.Sleep(5 * time.Millisecond)
					}
					if err := emit(tok); err != nil {
						return runnel.Done{}, err
					}
					emitted <- tok
				}
				select {
				case <-gates[3]:
				case <-ctx.Done():
					return runnel.Done{}, ctx.Err()
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
			<-emitted

			// b waits: nothing reaches the client while c is not there.
			close(gates[0])
			<-emitted
			arrived := make(chan time.Time, 1)
			go func() {
				body.Peek(1)
				arrived <- time.Now()
			}()
			select {
			case <-arrived:
				t.Fatal("b went out before the event after it came")
			case <-time.After(hold / 5):
			}
			// c comes: b and c go out at once, in one write.
			close(gates[1])
			<-emitted
			cameAt := time.Now()
			var at time.Time
			select {
			case at = <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("nothing came after c")
			}
			if waited := at.Sub(cameAt); waited > hold/2 {
				t.Errorf("b and c arrived %v after c came; they should have gone out when it came, not when the hold ended", waited)
			}
			if got, _ := body.Peek(body.Buffered()); !strings.Contains(string(got), `"c "`) {
				t.Errorf("first read after c: %q, want b and c in it", got)
			}
			if got := tokenText(readEvents(t, body, runnel.EventToken)) + tokenText(readEvents(t, body, runnel.EventToken)); got != "b c " {
				t.Errorf("tokens after a: %q, want %q", got, "b c ")
			}

			// d is the last for a while: it goes out when the hold ends.
			close(gates[2])
			<-emitted
			dAt := time.Now()
			if evs := readEvents(t, body, runnel.EventToken); tokenText(evs) != "d" {
				t.Errorf("events after c: %+v, want d", evs)
			}
			if waited := time.Since(dAt); waited < hold/2 {
				t.Errorf("d arrived %v after it came; it should have waited for up to %v to share a write", waited, hold)
			}
			close(gates[3])
			readEvents(t, body, runnel.EventDone)
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
