// Package redis keeps runs' event logs in Redis, so that every replica of a
// runnel deployment can follow, resume and cancel every answer: the
// runnel.Runs of many servers.
//
// The replica that creates a run produces it and owns it: it appends the
// run's events to a Redis stream, a batch a round trip, and keeps a lease on
// the run alive. Readers anywhere read the stream; a reader with nothing to
// read waits for the notification the append publishes. A cancel from any
// replica ends the run in Redis and tells its owner to stop. If the owner
// dies, its lease lapses, and the next reader to look ends the run with a
// retryable error, so that no reader waits for an answer nobody produces.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/runnel/runnel"
)

// Defaults for Options. The linger, retention and bounds are those of the
// in-memory runs; the lease is how long a replica's death can go unnoticed.
const (
	DefaultLinger      = 30 * time.Second
	DefaultRetention   = 5 * time.Minute
	DefaultMaxBytes    = 64 << 20
	DefaultMaxRuns     = 10_000
	DefaultLease       = 5 * time.Second
	DefaultMaxDuration = 5 * time.Minute
	DefaultPrefix      = "runnel:"
)

// Options configure Runs.
type Options struct {
	// Linger is how long a live run keeps going after its last reader,
	// on any replica, left. 0 cancels it as soon as the last reader leaves.
	Linger time.Duration
	// Retention is how long an ended run stays readable.
	Retention time.Duration
	// MaxBytes and MaxRuns bound the ended runs kept, over all replicas:
	// the oldest are evicted first.
	MaxBytes int64
	MaxRuns  int
	// Lease is how long a run outlives its producing replica's last sign
	// of life: its followers get a terminal error within about that long
	// of the replica's death. The replica renews it three times a lease.
	Lease time.Duration
	// MaxDuration is the longest a run can be live (the server's maximum
	// stream duration); a live run's keys expire after it plus Retention
	// whatever happens to its producer.
	MaxDuration time.Duration
	// Prefix begins every key and channel, so that deployments can share
	// a Redis.
	Prefix string
	// Logger gets what goes wrong with Redis; nil discards it.
	Logger *slog.Logger
}

// Runs is a runnel.Runs in Redis. Create it with New and Close it when the
// server has stopped.
type Runs struct {
	c    goredis.UniversalClient
	opt  Options
	node string // this replica's name in the owner and readers fields

	mu      sync.Mutex
	local   map[string]*producer // runs this replica produces
	follows map[string]*follow   // runs this replica has readers of
	ready   []*producer          // producers with events to flush
	closed  bool

	kick    chan struct{} // a producer became ready
	ps      *goredis.PubSub
	stopped chan struct{} // Close was called
	wg      sync.WaitGroup
}

var _ runnel.Runs = (*Runs)(nil)

// flushers is how many batches a replica has in flight at once; each
// carries the ready events of many runs.
const flushers = 4

// New returns the runs kept in the Redis that c talks to. It loads the
// scripts and subscribes to the channels the replicas talk on, but does not
// fail if Redis is unreachable: every operation then fails with
// EUNAVAILABLE until Redis is back.
func New(ctx context.Context, c goredis.UniversalClient, opt Options) *Runs {
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxRuns <= 0 {
		opt.MaxRuns = DefaultMaxRuns
	}
	if opt.Lease <= 0 {
		opt.Lease = DefaultLease
	}
	if opt.MaxDuration <= 0 {
		opt.MaxDuration = DefaultMaxDuration
	}
	if opt.Linger < 0 {
		opt.Linger = 0
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	rs := &Runs{
		c: c, opt: opt, node: newID()[:12],
		local: map[string]*producer{}, follows: map[string]*follow{},
		kick: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
	rs.ps = c.Subscribe(ctx, opt.Prefix+"stop")
	rs.wg.Add(2 + flushers)
	go rs.listen()
	go rs.keep()
	for range flushers {
		go rs.flush()
	}
	return rs
}

// Ping reports whether Redis answers.
func (rs *Runs) Ping(ctx context.Context) error {
	return rs.c.Ping(ctx).Err()
}

// Close flushes what the producers appended, bounded by ctx, and stops the
// replica's work. Call it after the server's producers have ended.
func (rs *Runs) Close(ctx context.Context) error {
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		return nil
	}
	rs.closed = true
	rs.mu.Unlock()
	rs.signal()
	// The flushers go on until nothing is left to flush; the rest stop
	// now.
	close(rs.stopped)
	done := make(chan struct{})
	go func() { rs.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("redis runs: close: %w", ctx.Err())
	}
	rs.ps.Close()
	return err
}

func (rs *Runs) key(kind, id string) string { return rs.opt.Prefix + kind + ":" + id }

func ms(d time.Duration) int64 { return d.Milliseconds() }

func now() int64 { return time.Now().UnixMilli() }

// liveTTL is how long a live run's keys last if nobody ends it.
func (rs *Runs) liveTTL() time.Duration { return rs.opt.MaxDuration + rs.opt.Retention }

// unavailable is the error of an operation Redis did not answer.
func unavailable(op string, err error) error {
	return fmt.Errorf("redis: %s: %w", op, &runnel.Error{Code: runnel.EUNAVAILABLE,
		Message: "The store of answers (Redis) cannot be reached; try again.", Retryable: true})
}

// Create implements runnel.Runs. The run is this replica's to produce.
func (rs *Runs) Create(ctx context.Context, key string, stop context.CancelCauseFunc) (runnel.Run, bool, error) {
	id := newID()
	res, err := createScript.Run(ctx, rs.c, []string{rs.key("run", id), rs.key("lease", id)},
		rs.opt.Prefix, id, key, rs.node, now(), ms(rs.liveTTL()), ms(rs.opt.Lease)).Slice()
	if err != nil {
		return nil, false, unavailable("create run", err)
	}
	if created, _ := at(res, 0).(int64); created == 0 {
		old, _ := at(res, 1).(string)
		return &run{rs: rs, id: old}, false, nil
	}
	p := &producer{rs: rs, id: id, stop: stop, state: runnel.RunLive, lastReader: time.Now()}
	rs.mu.Lock()
	rs.local[id] = p
	rs.mu.Unlock()
	return &run{rs: rs, id: id, p: p}, true, nil
}

// Get implements runnel.Runs.
func (rs *Runs) Get(ctx context.Context, id string) (runnel.Run, error) {
	rs.mu.Lock()
	p := rs.local[id]
	rs.mu.Unlock()
	if p != nil {
		return &run{rs: rs, id: id, p: p}, nil
	}
	n, err := rs.c.Exists(ctx, rs.key("run", id)).Result()
	if err != nil {
		return nil, unavailable("get run", err)
	}
	if n == 0 {
		return nil, runnel.Errorf(runnel.ENOTFOUND, "No run %q: it never existed or has expired.", id)
	}
	return &run{rs: rs, id: id}, nil
}

// Stats says what a replica holds.
type Stats struct {
	Producing int // runs this replica produces
	Following int // runs this replica has readers of
}

// Stats returns what this replica holds now.
func (rs *Runs) Stats() Stats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return Stats{Producing: len(rs.local), Following: len(rs.follows)}
}

// run is a handle on a run: with p, this replica produces it.
type run struct {
	rs *Runs
	id string
	p  *producer

	// What the last read from Redis found of a live run: the number of
	// the next event, and the channel taken before that read. Until that
	// channel is closed, there is nothing past seen, and a Read that asks
	// for it costs no round trip.
	mu       sync.Mutex
	seen     int
	seenWake <-chan struct{}

	// The channel the last Read that found nothing returned, and the
	// event it read after: what Notify waits on.
	lastWake  <-chan struct{}
	lastAfter int
}

// waiting records that a Read after after found nothing, and returns its
// channel.
func (r *run) waiting(after int, wake <-chan struct{}) <-chan struct{} {
	r.mu.Lock()
	r.lastWake, r.lastAfter = wake, after
	r.mu.Unlock()
	return wake
}

// Notify implements runnel.Notifier: f is called, in a goroutine of its
// own, when the channel the last Read after after returned is closed (an
// append was published, or a third of a lease went by). It reports false
// when there was no such Read, or the channel is closed already: a read
// is a round trip to Redis, which the goroutine that notifies must not
// wait for. With f nil it registers nothing and reports the same.
func (r *run) Notify(after int, f func()) bool {
	after = max(after, -1)
	r.mu.Lock()
	wake, at := r.lastWake, r.lastAfter
	r.mu.Unlock()
	if wake == nil || at != after {
		return false
	}
	if f == nil { // only asked
		select {
		case <-wake:
			return false
		default:
			return true
		}
	}
	return r.rs.wait(r.id, wake, f)
}

func (r *run) ID() string { return r.id }

// Append implements runnel.Run. It queues e for the next batch and returns
// at once, unless the run's unflushed events are over the bound: then it
// waits for a flush, so that a generator faster than Redis slows down
// rather than fill the memory.
func (r *run) Append(ctx context.Context, e runnel.Event) (int, error) {
	if r.p == nil {
		return 0, runnel.ErrRunEnded // produced elsewhere
	}
	return r.p.append(ctx, e)
}

// maxRead bounds the events one Read returns.
const maxRead = 64

// Read implements runnel.Run. Each call is one round trip to Redis; the
// channel it returns when there is nothing new is closed when an append
// is published, and at least every third of a lease, so that a reader
// looks again and sees whether the producer still lives.
func (r *run) Read(ctx context.Context, after int, dst []runnel.Event) ([]runnel.Event, <-chan struct{}, error) {
	after = max(after, -1)
	if r.p != nil {
		wake := r.rs.wakeFor(r.id)
		dst, local, eof := r.p.read(after, dst)
		switch {
		case eof:
			return dst, nil, io.EOF
		case !local:
			// Canceled or orphaned in Redis: the rest is there.
		case len(dst) > 0:
			return dst, nil, nil
		default:
			return dst, r.waiting(after, wake), nil
		}
	}
	r.mu.Lock()
	seen, seenWake := r.seen, r.seenWake
	r.mu.Unlock()
	if seenWake != nil && after+1 >= seen {
		select {
		case <-seenWake:
		default:
			return dst, r.waiting(after, seenWake), nil
		}
	}
	for try := 0; ; try++ {
		wake := r.rs.wakeFor(r.id)
		start := "-"
		if after >= 0 {
			start = "(0-" + strconv.Itoa(after+1)
		}
		res, err := readScript.Run(ctx, r.rs.c, []string{r.rs.key("run", r.id), r.rs.key("log", r.id)},
			r.rs.opt.Prefix, r.id, start, maxRead).Slice()
		if err != nil {
			return dst, nil, unavailable("read run", err)
		}
		if ok, _ := at(res, 0).(int64); ok == 0 {
			return dst, nil, runnel.Errorf(runnel.ENOTFOUND, "The run %q has expired.", r.id)
		}
		state, _ := at(res, 1).(string)
		next, _ := at(res, 2).(int64)
		lease, _ := at(res, 3).(int64)
		entries, _ := at(res, 4).([]any)
		if state == string(runnel.RunLive) && lease == 1 {
			r.mu.Lock()
			r.seen, r.seenWake = int(next), wake
			r.mu.Unlock()
		}
		n := len(dst)
		dst, err = r.decode(dst, entries)
		if err != nil {
			return dst[:n], nil, err
		}
		switch {
		case len(dst) > n:
			return dst, nil, nil
		case state != string(runnel.RunLive):
			if int64(after+1) >= next {
				return dst, nil, io.EOF
			}
			return dst, nil, fmt.Errorf("redis: run %s: events %d to %d are missing", r.id, after+1, next-1)
		case lease == 0 && try == 0:
			// Its producer is gone: end it, and read the error.
			if err := r.rs.orphan(ctx, r.id); err != nil {
				return dst, nil, err
			}
			continue
		}
		return dst, r.waiting(after, wake), nil
	}
}

// decode appends the events of stream entries to dst.
func (r *run) decode(dst []runnel.Event, entries []any) ([]runnel.Event, error) {
	for _, x := range entries {
		ent, _ := x.([]any)
		if len(ent) != 2 {
			return dst, fmt.Errorf("redis: run %s: malformed entry %v", r.id, x)
		}
		sid, _ := ent[0].(string)
		fields, _ := ent[1].([]any)
		seq, err := strconv.Atoi(strings.TrimPrefix(sid, "0-"))
		if err != nil || len(fields) != 2 {
			return dst, fmt.Errorf("redis: run %s: malformed entry %v", r.id, x)
		}
		v, _ := fields[1].(string)
		e, err := decodeEvent(v)
		if err != nil {
			return dst, fmt.Errorf("redis: run %s: event %d: %w", r.id, seq-1, err)
		}
		e.Run, e.Seq = r.id, seq-1
		dst = append(dst, e)
	}
	return dst, nil
}

// Cancel implements runnel.Run: from any replica, it ends the run in
// Redis and tells its owner to stop.
func (r *run) Cancel(ctx context.Context, reason string) (runnel.RunState, error) {
	b, _ := (&runnel.Event{Type: runnel.EventCanceled, Canceled: &runnel.Canceled{Reason: reason}}).AppendJSON([]byte{'j'})
	state, err := r.rs.end(ctx, r.id, "cancel", string(b), runnel.RunCanceled)
	if err != nil {
		return "", err
	}
	if state == runnel.RunCanceled {
		r.rs.stopLocal(r.id)
	}
	return state, nil
}

// State implements runnel.Run.
func (r *run) State() runnel.RunState {
	if r.p != nil {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		return r.p.state
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := r.rs.c.HGet(ctx, r.rs.key("run", r.id), "state").Result()
	if err != nil {
		return runnel.RunLive // unknown: readers find out as they read
	}
	return runnel.RunState(s)
}

// Attach implements runnel.Run: the replica counts the run's readers and
// tells the producer's replica, through the readers set, that it has some.
func (r *run) Attach() func() {
	r.rs.attach(r.id)
	var once sync.Once
	return func() { once.Do(func() { r.rs.detach(r.id) }) }
}

// end ends a live run with one last event and returns the state it ended
// in (the one it had, if it had ended already).
func (rs *Runs) end(ctx context.Context, id, mode, event string, state runnel.RunState) (runnel.RunState, error) {
	res, err := endScript.Run(ctx, rs.c, []string{rs.key("run", id), rs.key("log", id)},
		rs.opt.Prefix, id, now(), ms(rs.opt.Retention), rs.opt.MaxRuns, rs.opt.MaxBytes, mode, event, string(state)).Slice()
	if err != nil {
		return "", unavailable("end run", err)
	}
	switch code, _ := at(res, 0).(int64); code {
	case 0:
		return "", runnel.Errorf(runnel.ENOTFOUND, "No run %q: it never existed or has expired.", id)
	case 1:
		s, _ := at(res, 1).(string)
		return runnel.RunState(s), nil
	case 2:
		return runnel.RunLive, nil
	}
	return state, nil
}

// errOrphaned is the error event of a run whose producer stopped renewing
// its lease.
var errOrphaned = &runnel.Error{Code: runnel.EUNAVAILABLE,
	Message: "The server producing this answer stopped; ask again.", Retryable: true}

// orphan ends a live run whose lease has lapsed with errOrphaned.
func (rs *Runs) orphan(ctx context.Context, id string) error {
	b, _ := (&runnel.Event{Type: runnel.EventError, Err: errOrphaned}).AppendJSON([]byte{'j'})
	state, err := rs.end(ctx, id, "orphan", string(b), runnel.RunFailed)
	if err == nil && state == runnel.RunFailed {
		rs.opt.Logger.Warn("run orphaned: its producer's lease lapsed", "run", id)
	}
	return err
}

// encodeEvent is how an event is kept in a stream entry.
func encodeEvent(e runnel.Event) (string, error) {
	if e.Type == runnel.EventToken {
		return "t" + e.Token, nil
	}
	b, err := e.AppendJSON([]byte{'j'})
	return string(b), err
}

func decodeEvent(v string) (runnel.Event, error) {
	switch {
	case strings.HasPrefix(v, "t"):
		return runnel.Event{Type: runnel.EventToken, Token: v[1:]}, nil
	case strings.HasPrefix(v, "j"):
		var e runnel.Event
		err := e.UnmarshalJSON([]byte(v[1:]))
		return e, err
	}
	return runnel.Event{}, errors.New("unknown encoding")
}

// newID returns 128 random bits, URL-safe: 22 characters of base64url.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// at returns a script's result i, nil past its end: a reply of another
// shape reads as zero values rather than panicking.
func at(res []any, i int) any {
	if i < len(res) {
		return res[i]
	}
	return nil
}
