// Package paced is the token source of the load-test servers: a
// runnel.Generator, and the same tokens for servers that are not runnel,
// whose every token's text is the time it was emitted, so that a client on
// the same machine can tell how long each token took to reach it.
//
// A token reads "t=1733090000123456789 ": "t=", the Unix time in
// nanoseconds when the server emitted it, and a space, so the answer is
// still text that a client can concatenate.
package paced

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/runnel/runnel"
)

// Generator emits Tokens tokens, Interval apart (0: no pause), each
// stamped with the time it was emitted. It answers every prompt the same
// way and draws nothing from the passages: it exists to load the server,
// not to answer.
type Generator struct {
	Tokens   int
	Interval time.Duration
}

var _ runnel.Generator = Generator{}

// Generate implements runnel.Generator: it calls emit with each token the
// moment the token is stamped, returns emit's error as soon as emit
// fails, and returns ctx.Err() as soon as ctx is done, also in the middle
// of a pause.
func (g Generator) Generate(ctx context.Context, _ runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	err := Run(ctx, g.Tokens, g.Interval, func(tok []byte) error { return emit(string(tok)) })
	if err != nil {
		return runnel.Done{}, err
	}
	return runnel.Done{FinishReason: runnel.FinishStop}, nil
}

// Run calls emit n times, interval apart (0: no pause), with a token
// stamped just before the call. The slice emit gets is reused by the next
// call. Run stops with emit's error, or ctx.Err() once ctx is done.
func Run(ctx context.Context, n int, interval time.Duration, emit func(tok []byte) error) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	buf := make([]byte, 0, 32)
	for i := range n {
		if i > 0 && interval > 0 {
			if timer == nil {
				timer = time.NewTimer(interval)
			} else {
				timer.Reset(interval)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(Stamp(buf[:0], time.Now())); err != nil {
			return err
		}
	}
	return nil
}

// Stamp appends the token for time t to dst.
func Stamp(dst []byte, t time.Time) []byte {
	dst = append(dst, "t="...)
	dst = strconv.AppendInt(dst, t.UnixNano(), 10)
	return append(dst, ' ')
}

// Parse returns the Unix nanoseconds a token's text carries, and false
// when the text is not a stamped token.
func Parse(tok []byte) (int64, bool) {
	if len(tok) < 3 || tok[0] != 't' || tok[1] != '=' {
		return 0, false
	}
	var ns int64
	n := 0
	for _, c := range tok[2:] {
		if c < '0' || c > '9' {
			break
		}
		d := int64(c - '0')
		if ns > (math.MaxInt64-d)/10 {
			return 0, false // more than an int64 holds
		}
		ns = ns*10 + d
		n++
	}
	return ns, n > 0
}
