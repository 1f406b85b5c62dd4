package http

import (
	"context"
	"sync"
	"time"
)

// runContext is a run's context: canceled by the run's cancel, the
// server's base, or the server's deadlines at the run's maximum duration,
// and reporting that deadline to the pipeline (a generator that would
// retry looks at it). It is one context where WithTimeoutCause under the
// run's cancel would be two, the outer holding a map of its one child, and
// it waits for its maximum duration in the server's list, not on a timer
// of its own: a run keeps its context for the whole answer, and at
// thousands of open streams each of these was a few hundred bytes of every
// one (docs/design.md, "What a run holds while it waits"). At its maximum
// duration the cancel ends it with the cause errTooLong; its Err is then
// context.Canceled, and finish reads the cause.
type runContext struct {
	context.Context
	cancel     context.CancelCauseFunc
	due        int64       // the maximum duration's end, in monoNow's time
	prev, next *runContext // in the server's deadlines, while listed
}

func (c *runContext) Deadline() (time.Time, bool) {
	return processStart.Add(time.Duration(c.due)), true
}

// deadlines ends each run at its maximum duration: a list of the runs
// open, due first first, and one timer for the first. Runs mostly start
// with the same maximum, so one is mostly added at the end; a run whose
// request's deadline comes sooner (AWS Lambda) is placed among them.
type deadlines struct {
	mu         sync.Mutex
	head, tail *runContext
	timer      *time.Timer
	armed      int64 // when the timer fires, in monoNow's time; 0 when it is not set
}

// add lists c, due at c.due.
func (ds *deadlines) add(c *runContext) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	at := ds.tail
	for at != nil && at.due > c.due {
		at = at.prev
	}
	// c goes after at, or first when at is nil.
	c.prev = at
	if at == nil {
		c.next, ds.head = ds.head, c
	} else {
		c.next, at.next = at.next, c
	}
	if c.next == nil {
		ds.tail = c
	} else {
		c.next.prev = c
	}
	if ds.head == c && (ds.armed == 0 || c.due < ds.armed) {
		ds.arm(c.due)
	}
}

// remove takes c off the list, if it is on it. Unless the list is then
// empty, the timer is left as it is: when it fires and finds nothing due,
// it is set for the next.
func (ds *deadlines) remove(c *runContext) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if c.prev == nil && ds.head != c {
		return // not listed, or taken off by expire
	}
	if c.prev == nil {
		ds.head = c.next
	} else {
		c.prev.next = c.next
	}
	if c.next == nil {
		ds.tail = c.prev
	} else {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	if ds.head == nil && ds.armed != 0 {
		ds.timer.Stop() // nothing is due: the timer would keep the server
		ds.armed = 0
	}
}

// arm sets the timer for due. ds.mu is held.
func (ds *deadlines) arm(due int64) {
	ds.armed = due
	wait := time.Duration(due - monoNow())
	if ds.timer == nil {
		ds.timer = time.AfterFunc(wait, ds.expire)
		return
	}
	ds.timer.Reset(wait)
}

// expire cancels the runs that are due, and sets the timer for the next.
func (ds *deadlines) expire() {
	now := monoNow()
	var due *runContext // those taken off, linked by next
	ds.mu.Lock()
	ds.armed = 0
	for c := ds.head; c != nil && c.due <= now; c = ds.head {
		ds.head = c.next
		if ds.head == nil {
			ds.tail = nil
		} else {
			ds.head.prev = nil
		}
		c.prev, c.next = nil, due
		due = c
	}
	if ds.head != nil {
		ds.arm(ds.head.due)
	}
	ds.mu.Unlock()
	for c := due; c != nil; {
		next := c.next
		c.next = nil
		c.cancel(errTooLong)
		c = next
	}
}
