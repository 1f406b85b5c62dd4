// Package memory keeps runs' event logs in the process's memory: the
// runnel.Runs of a single server. Runs live as long as they produce events,
// plus a linger window when their last reader leaves, and ended runs stay
// readable for a retention window bounded in time, bytes and count, the
// oldest evicted first.
package memory

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/runnel/runnel"
)

// Defaults for Options, chosen for a public server: a reader who lost the
// network has half a minute to come back before an abandoned answer stops
// costing anything; an ended answer can be read again for five minutes; the
// runs kept after they end take at most 64 MiB.
const (
	DefaultLinger    = 30 * time.Second
	DefaultRetention = 5 * time.Minute
	DefaultMaxBytes  = 64 << 20
	DefaultMaxRuns   = 10_000
)

// Options configure Runs.
type Options struct {
	// Linger is how long a live run keeps going after its last reader left.
	// If no reader attaches by then, it is canceled as abandoned. 0 cancels
	// it as soon as the last reader leaves, as protocol v1 did.
	Linger time.Duration
	// Retention is how long an ended run stays readable; 0 means
	// DefaultRetention.
	Retention time.Duration
	// MaxBytes bounds the memory held by ended runs (an estimate of their
	// events' size); 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxRuns bounds the number of ended runs kept; 0 means DefaultMaxRuns.
	MaxRuns int
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Runs is an in-memory runnel.Runs. The zero value is not usable; call New.
type Runs struct {
	opt Options

	mu    sync.Mutex
	runs  map[string]*run
	keys  map[string]*run // by idempotency key
	ended []*run          // ended runs still kept, oldest first
	bytes int64           // the size of the ended runs kept
}

var _ runnel.Runs = (*Runs)(nil)

// New returns an empty Runs.
func New(opt Options) *Runs {
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxRuns <= 0 {
		opt.MaxRuns = DefaultMaxRuns
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Linger < 0 {
		opt.Linger = 0
	}
	return &Runs{opt: opt, runs: map[string]*run{}, keys: map[string]*run{}}
}

// Create implements runnel.Runs.
func (rs *Runs) Create(ctx context.Context, key string, stop context.CancelCauseFunc) (runnel.Run, bool, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.prune()
	if r, ok := rs.keys[key]; ok && key != "" {
		return r, false, nil
	}
	r := &run{rs: rs, id: newID(), key: key, stop: stop, state: runnel.RunLive}
	rs.runs[r.id] = r
	if key != "" {
		rs.keys[key] = r
	}
	return r, true, nil
}

// Get implements runnel.Runs.
func (rs *Runs) Get(ctx context.Context, id string) (runnel.Run, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.prune()
	if r, ok := rs.runs[id]; ok {
		return r, nil
	}
	return nil, runnel.Errorf(runnel.ENOTFOUND, "No run %q: it never existed or has expired.", id)
}

// Stats says what Runs holds.
type Stats struct {
	Live  int   // runs still producing
	Ended int   // ended runs kept for their readers
	Bytes int64 // the size of the ended runs kept
}

// Stats returns what Runs holds now, after evicting what has expired.
func (rs *Runs) Stats() Stats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.prune()
	return Stats{Live: len(rs.runs) - len(rs.ended), Ended: len(rs.ended), Bytes: rs.bytes}
}

// prune evicts ended runs past their retention, then the oldest ones while
// the kept runs are over MaxBytes or MaxRuns. rs.mu is held.
func (rs *Runs) prune() {
	now := rs.opt.Now()
	n := 0
	for n < len(rs.ended) {
		r := rs.ended[n]
		if now.Sub(r.endedAt) < rs.opt.Retention && rs.bytes <= rs.opt.MaxBytes && len(rs.ended)-n <= rs.opt.MaxRuns {
			break
		}
		delete(rs.runs, r.id)
		if r.key != "" {
			delete(rs.keys, r.key)
		}
		rs.bytes -= r.size
		n++
	}
	if n > 0 {
		clear(rs.ended[:n])
		rs.ended = rs.ended[n:]
	}
}

// end records that r has ended, at its size then.
func (rs *Runs) end(r *run, size int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r.endedAt = rs.opt.Now()
	r.size = size
	rs.ended = append(rs.ended, r)
	rs.bytes += size
	rs.prune()
}

// run is one run's log. Tokens, nearly all of a log, are kept as their text
// alone. The other events of an answer (its query, tags, titles, sources
// and end) share one Event, each in its own field: an Event is 192 bytes,
// and a run holds its log for the whole answer. An event that cannot share
// it (a second of its type, or one with more than its own field set) is
// kept whole.
type run struct {
	rs   *Runs
	id   string
	key  string // the idempotency key it was created with, if any
	stop context.CancelCauseFunc

	mu      sync.Mutex
	log     eventLog
	head    *runnel.Event // the fields the shared events are read from
	inHead  uint16        // the types head holds, as headBit gives them
	bytes   int64
	state   runnel.RunState
	wake    chan struct{} // closed by the next Append; made by a Read that found nothing
	waiter  func()        // called after the next Append (Notify); the first of them
	waiters []func()      // the others
	readers int
	linger  *time.Timer

	// Set by Runs.end, under rs.mu.
	endedAt time.Time
	size    int64
}

// entry is one event of a log: a token, when full is nil; an event kept
// whole in full, when token is empty; otherwise an event of type token
// whose data is its field of the run's head, full.
type entry struct {
	token string
	full  *runnel.Event
}

// eventLog holds a run's entries in blocks of logBlock: the first grows
// as a slice does, and the others are made whole when the one before is
// full. A slice grown by append instead copies all it holds each time it
// grows, and past 256 entries allocates 1.25 times what it holds, so a
// long answer allocated about five times its entries' bytes as it grew;
// in blocks, each token allocates its own entry and nothing moves.
type eventLog struct {
	first []entry   // entries 0 to logBlock-1
	rest  [][]entry // the blocks after it, each of logBlock entries
	n     int
}

// logBlock is the entries of a block, a power of two: 1.5 KiB of them.
const logBlock = 64

func (l *eventLog) len() int { return l.n }

func (l *eventLog) add(en entry) {
	if l.n < logBlock {
		l.first = append(l.first, en)
	} else {
		i := l.n - logBlock
		if i%logBlock == 0 {
			l.rest = append(l.rest, make([]entry, 0, logBlock))
		}
		b := &l.rest[i/logBlock]
		*b = append(*b, en)
	}
	l.n++
}

// at returns entry seq, which must be under len.
func (l *eventLog) at(seq int) entry {
	if seq < logBlock {
		return l.first[seq]
	}
	i := seq - logBlock
	return l.rest[i/logBlock][i%logBlock]
}

var (
	entrySize = int64(unsafe.Sizeof(entry{}))
	eventSize = int64(unsafe.Sizeof(runnel.Event{}))
)

func (r *run) ID() string { return r.id }

func (r *run) State() runnel.RunState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Append implements runnel.Run.
func (r *run) Append(ctx context.Context, e runnel.Event) (int, error) {
	r.mu.Lock()
	if r.state != runnel.RunLive {
		r.mu.Unlock()
		return 0, runnel.ErrRunEnded
	}
	seq := r.add(&e)
	ended, size := r.state != runnel.RunLive, r.bytes
	w, ws := r.takeWaiters()
	r.mu.Unlock()
	if ended {
		r.rs.end(r, size)
	}
	notify(w, ws)
	return seq, nil
}

// takeWaiters returns the functions Notify registered, and forgets them.
// r.mu is held.
func (r *run) takeWaiters() (func(), []func()) {
	w, ws := r.waiter, r.waiters
	r.waiter, r.waiters = nil, nil
	return w, ws
}

// notify calls what takeWaiters returned, outside the lock.
func notify(w func(), ws []func()) {
	if w != nil {
		w()
	}
	for _, f := range ws {
		f()
	}
}

// Notify implements runnel.Notifier.
func (r *run) Notify(after int, f func()) bool {
	after = max(after, -1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if after+1 < r.log.len() || r.state != runnel.RunLive {
		return false
	}
	if f == nil {
		return true // only asked
	}
	if r.waiter == nil {
		r.waiter = f
	} else {
		r.waiters = append(r.waiters, f)
	}
	return true
}

// add appends e, ends the run on a terminal event and wakes the readers.
// r.mu is held.
func (r *run) add(e *runnel.Event) int {
	seq := r.log.len()
	if e.Type == runnel.EventToken {
		r.log.add(entry{token: e.Token})
		r.bytes += entrySize + int64(len(e.Token))
	} else if bit := headBit(e); bit != 0 && r.inHead&bit == 0 {
		r.addHeaded(e, bit)
	} else {
		full := *e // a copy, so that e itself stays on the stack
		full.Run, full.Seq = r.id, seq
		r.log.add(entry{full: &full})
		r.bytes += entrySize + eventSize + dataSize(e)
	}
	switch e.Type {
	case runnel.EventDone:
		r.state = runnel.RunDone
	case runnel.EventError:
		r.state = runnel.RunFailed
	case runnel.EventCanceled:
		r.state = runnel.RunCanceled
	}
	if r.state != runnel.RunLive && r.linger != nil {
		r.linger.Stop()
		r.linger = nil
	}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	return seq
}

// addHeaded appends e, whose type is bit, as a field of the run's head.
// r.mu is held. It is not inlined into add, which a producer calls for
// every token on a small stack (docs/design.md, "A run's generator waits
// on a small stack").
//
//go:noinline
func (r *run) addHeaded(e *runnel.Event, bit uint16) {
	if r.head == nil {
		r.head = new(runnel.Event)
		r.bytes += eventSize
	}
	setHead(r.head, e)
	r.inHead |= bit
	r.log.add(entry{token: string(e.Type), full: r.head})
	r.bytes += entrySize + dataSize(e)
}

// maxRead bounds the events one Read returns.
const maxRead = 64

// Read implements runnel.Run.
func (r *run) Read(ctx context.Context, after int, dst []runnel.Event) ([]runnel.Event, <-chan struct{}, error) {
	after = max(after, -1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if after+1 >= r.log.len() {
		if r.state != runnel.RunLive {
			return dst, nil, io.EOF
		}
		if r.wake == nil {
			r.wake = make(chan struct{})
		}
		return dst, r.wake, nil
	}
	// The events are written in place: a temporary Event in this frame
	// would be on the stack of the producer that writes a token to a
	// driven stream (docs/design.md, "A run's generator waits on a small
	// stack").
	n := min(r.log.len()-(after+1), maxRead)
	dst = slices.Grow(dst, n)
	for seq := after + 1; seq <= after+n; seq++ {
		dst = dst[:len(dst)+1]
		d := &dst[len(dst)-1]
		switch en := r.log.at(seq); {
		case en.full == nil:
			*d = runnel.Event{Type: runnel.EventToken, Token: en.token, Run: r.id, Seq: seq}
		case en.token == "":
			*d = *en.full
		default:
			fromHead(d, en, r.id, seq)
		}
	}
	return dst, nil, nil
}

// Cancel implements runnel.Run.
func (r *run) Cancel(ctx context.Context, reason string) (runnel.RunState, error) {
	return r.cancel(reason, false), nil
}

// cancel ends the run with a canceled event, unless it has ended; when
// idle is set, only if it still has no reader.
func (r *run) cancel(reason string, idle bool) runnel.RunState {
	r.mu.Lock()
	if r.state != runnel.RunLive || (idle && r.readers > 0) {
		state := r.state
		r.mu.Unlock()
		return state
	}
	r.add(&runnel.Event{Type: runnel.EventCanceled, Canceled: &runnel.Canceled{Reason: reason}})
	size := r.bytes
	w, ws := r.takeWaiters()
	r.mu.Unlock()
	r.rs.end(r, size)
	notify(w, ws)
	if r.stop != nil {
		r.stop(runnel.ErrCanceled)
	}
	return runnel.RunCanceled
}

// Attach implements runnel.Run.
func (r *run) Attach() func() {
	r.mu.Lock()
	r.readers++
	if r.linger != nil {
		r.linger.Stop()
		r.linger = nil
	}
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(r.detach) }
}

func (r *run) detach() {
	r.mu.Lock()
	r.readers--
	if r.readers > 0 || r.state != runnel.RunLive {
		r.mu.Unlock()
		return
	}
	linger := r.rs.opt.Linger
	if linger > 0 {
		r.linger = time.AfterFunc(linger, func() { r.cancel(runnel.CancelAbandon, true) })
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.cancel(runnel.CancelAbandon, true)
}

// headBit returns the bit of e's type among those a run's head holds, or 0
// when e cannot share the head: its type is not one of them, or a field
// other than its own is set.
func headBit(e *runnel.Event) uint16 {
	var own, set uint16
	switch e.Type {
	case runnel.EventQuery:
		own = 1 << 0
	case runnel.EventTags:
		own = 1 << 1
	case runnel.EventTitles:
		own = 1 << 2
	case runnel.EventSources:
		own = 1 << 3
	case runnel.EventDone:
		own = 1 << 4
	case runnel.EventError:
		own = 1 << 5
	case runnel.EventCanceled:
		own = 1 << 6
	default:
		return 0
	}
	for i, ok := range [...]bool{
		e.Query != "", e.Tags != nil, e.Titles != nil, e.Sources != nil,
		e.Done != nil, e.Err != nil, e.Canceled != nil,
	} {
		if ok {
			set |= 1 << i
		}
	}
	if set&^own != 0 || e.Token != "" || e.Raw != nil {
		return 0
	}
	return own
}

// setHead copies e's own field into h.
func setHead(h, e *runnel.Event) {
	switch e.Type {
	case runnel.EventQuery:
		h.Query = e.Query
	case runnel.EventTags:
		h.Tags = e.Tags
	case runnel.EventTitles:
		h.Titles = e.Titles
	case runnel.EventSources:
		h.Sources = e.Sources
	case runnel.EventDone:
		h.Done = e.Done
	case runnel.EventError:
		h.Err = e.Err
	case runnel.EventCanceled:
		h.Canceled = e.Canceled
	}
}

// fromHead sets *d to the event of en, one of the run's head, as event seq
// of run id. It is not inlined into Read, which a producer may call on its
// small stack to drive a parked stream, as add is not.
//
//go:noinline
func fromHead(d *runnel.Event, en entry, id string, seq int) {
	h := en.full
	*d = runnel.Event{Type: runnel.EventType(en.token), Run: id, Seq: seq}
	switch d.Type {
	case runnel.EventQuery:
		d.Query = h.Query
	case runnel.EventTags:
		d.Tags = h.Tags
	case runnel.EventTitles:
		d.Titles = h.Titles
	case runnel.EventSources:
		d.Sources = h.Sources
	case runnel.EventDone:
		d.Done = h.Done
	case runnel.EventError:
		d.Err = h.Err
	case runnel.EventCanceled:
		d.Canceled = h.Canceled
	}
}

// dataSize estimates the bytes an event's data holds.
func dataSize(e *runnel.Event) int64 {
	n := len(e.Query) + len(e.Token) + len(e.Raw)
	for _, s := range e.Tags {
		n += len(s) + 16
	}
	for _, s := range e.Titles {
		n += len(s) + 16
	}
	for _, s := range e.Sources {
		n += len(s.Slug) + len(s.Title) + len(s.URL) + len(s.Snippet) + 96
		for _, t := range s.Tags {
			n += len(t) + 16
		}
	}
	if e.Done != nil {
		n += len(e.Done.FinishReason) + len(e.Done.ID) + 64
	}
	if e.Err != nil {
		n += len(e.Err.Code) + len(e.Err.Message) + 48
	}
	if e.Canceled != nil {
		n += len(e.Canceled.Reason) + 16
	}
	return int64(n)
}

// newID returns 128 random bits, URL-safe: 22 characters of base64url.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Linger returns how long a live run keeps going after its last reader
// left.
func (rs *Runs) Linger() time.Duration { return rs.opt.Linger }
