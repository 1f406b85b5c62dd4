package runnel

import (
	"context"
	"errors"
)

// A run is one answer with an identity of its own. Its events are numbered
// from 0 (the query event) and kept in a log while the run is live and for a
// while after it ends, so that any number of readers can follow it from any
// point, over any transport, and come back after a dropped connection. The
// producer of a run appends; readers read; anyone who knows the id may
// cancel it.

// RunState says where a run is in its life.
type RunState string

// Run states. Every state but RunLive is final.
const (
	RunLive     RunState = "live"     // still producing events
	RunDone     RunState = "done"     // ended with done
	RunFailed   RunState = "error"    // ended with error
	RunCanceled RunState = "canceled" // ended with canceled
)

// Why a run was canceled: the data of its canceled event.
const (
	CancelByClient = "client"    // a client asked for it
	CancelAbandon  = "abandoned" // no reader came back within the linger window
)

// ErrCanceled is what readers return for a run that ended with a canceled
// event: the answer is neither complete nor failed. Test for it with
// errors.Is.
var ErrCanceled = errors.New("runnel: the answer was canceled")

// ErrRunEnded is returned by Run.Append once the run has its terminal
// event: nothing more can be added, and the producer should stop.
var ErrRunEnded = errors.New("runnel: the run has ended")

// Runs creates runs and finds them again by id.
type Runs interface {
	// Create starts the log of a new run with a new id of at least 128
	// random bits. stop is called, once, when the run is canceled (by
	// Cancel or because it was abandoned) so that its producer stops at
	// once; it is given ErrCanceled.
	//
	// key, when not empty, is the client's idempotency key for the
	// request that asks: while a run created with the same key is kept,
	// Create returns that run with created false and does not keep stop,
	// so a client whose connection broke before it learned the run's id
	// can ask again without the answer being produced twice.
	Create(ctx context.Context, key string, stop context.CancelCauseFunc) (run Run, created bool, err error)

	// Get returns the run with id, live or ended. It returns an *Error with
	// ENOTFOUND for an id it does not know or whose retention has expired.
	Get(ctx context.Context, id string) (Run, error)
}

// Run is the log of one run's events, shared by its producer and readers.
// Its methods are safe for concurrent use.
type Run interface {
	// ID returns the run's id: URL-safe, never empty.
	ID() string

	// Append adds e as the run's next event and returns its number. A
	// terminal event (done, error, canceled) ends the run. Append returns
	// ErrRunEnded once the run has ended, for instance after a Cancel.
	Append(ctx context.Context, e Event) (seq int, err error)

	// Read appends to dst the events numbered after after, in order, each
	// with its Run and Seq set, and returns dst. When there are none yet it
	// returns dst unchanged and a channel that is closed when there may be
	// more. After the terminal event has been read (after is its number or
	// beyond) it returns io.EOF. Read never blocks.
	Read(ctx context.Context, after int, dst []Event) ([]Event, <-chan struct{}, error)

	// Cancel ends a live run with a canceled event giving reason (one of
	// the Cancel* constants) and stops its producer. It returns the state
	// the run ended in: RunCanceled, or the state it had already ended in.
	Cancel(ctx context.Context, reason string) (RunState, error)

	// State returns the run's state.
	State() RunState

	// Attach counts a reader of the run until detach is called. A live run
	// whose last reader detached, and that gets none back within the
	// implementation's linger window, is canceled as abandoned.
	Attach() (detach func())
}

// A Notifier is a Run that can call a function when it may have more to
// read, instead of closing the channel Read returns: a reader that waits
// this way needs no goroutine of its own while the run is quiet. Runs kept
// in this process's memory and runs in Redis implement it.
type Notifier interface {
	// Notify arranges for f to be called once, when there may be an event
	// after after (or the run ended), as the channel the last Read after
	// after returned would be closed. It reports false, and keeps nothing,
	// when the caller should Read instead: there is more already, or
	// (runs in Redis) the last Read was not after after. f may Read and
	// Notify again; it must not block the goroutine it is called in,
	// which is the one that appends (runs in memory, after their locks are
	// released) or one of its own (runs in Redis, where a Read is a round
	// trip).
	//
	// With f nil, Notify keeps nothing: it only reports whether the
	// caller may wait (true: nothing after after yet, as far as it can
	// tell without a round trip) or should Read (false). A reader that has
	// just read events asks it before reading again, rather than make a
	// Read find nothing.
	Notify(after int, f func()) bool
}
