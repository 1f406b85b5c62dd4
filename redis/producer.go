package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/runnel/runnel"
)

// Bounds on what a producer holds before Redis has it: a batch flushed in
// one script, and the unflushed events past which Append waits.
const (
	maxBatchEvents = 512
	maxBatchBytes  = 256 << 10
	maxPending     = 1 << 20
)

// producer is the replica's side of a run it produces: the events
// appended and not yet flushed, numbered already, and the events flushed,
// which the replica's own readers read from memory. A reader here sees an
// event only once Redis has it, so that what it read is what a reader
// anywhere reads, and a reader that resumes elsewhere misses nothing.
type producer struct {
	rs   *Runs
	id   string
	stop context.CancelCauseFunc

	mu      sync.Mutex
	next    int      // the number the next Append gets
	flushed int      // the number of the first event not yet in Redis
	pending []string // encoded events flushed..next-1
	bytes   int      // of pending
	log     []entry  // every event appended, 0..next-1; readers read 0..flushed-1
	done    bool     // the terminal event is flushed
	dropped bool     // the run ended in Redis without this replica: read the rest there
	ending  runnel.RunState
	state   runnel.RunState // live until a terminal event is appended or the run ends in Redis
	queued  bool            // in rs.ready or being flushed
	room    chan struct{}   // closed by the next flush, for an Append over maxPending
	failing time.Time       // when flushes began to fail; zero while they work

	lastReader time.Time // the last time the run was known to have a reader
	hadReader  bool      // a reader attached here once
}

func (p *producer) append(ctx context.Context, e runnel.Event) (int, error) {
	v, err := encodeEvent(e)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	for p.bytes > maxPending && p.state == runnel.RunLive {
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		p.mu.Lock()
	}
	if p.state != runnel.RunLive {
		p.mu.Unlock()
		return 0, runnel.ErrRunEnded
	}
	seq := p.next
	p.next++
	p.pending = append(p.pending, v)
	p.bytes += len(v)
	if e.Type == runnel.EventToken {
		p.log = append(p.log, entry{token: e.Token})
	} else {
		full := e
		full.Run, full.Seq = p.id, seq
		p.log = append(p.log, entry{full: &full})
	}
	switch e.Type {
	case runnel.EventDone:
		p.state, p.ending = runnel.RunDone, runnel.RunDone
	case runnel.EventError:
		p.state, p.ending = runnel.RunFailed, runnel.RunFailed
	case runnel.EventCanceled:
		p.state, p.ending = runnel.RunCanceled, runnel.RunCanceled
	}
	queue := !p.queued
	p.queued = true
	p.mu.Unlock()
	if queue {
		p.rs.enqueue(p)
	}
	return seq, nil
}

// entry is an event of the local log: a token's text alone, nearly all of
// a log, or any other event whole.
type entry struct {
	token string
	full  *runnel.Event
}

// read appends to dst the flushed events after after. It reports false
// when the rest of the run is only in Redis (it ended there), eof when
// the terminal event has been read.
func (p *producer) read(after int, dst []runnel.Event) (_ []runnel.Event, local, eof bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq := after + 1; seq < p.flushed && seq-after <= maxRead; seq++ {
		if en := p.log[seq]; en.full != nil {
			dst = append(dst, *en.full)
		} else {
			dst = append(dst, runnel.Event{Type: runnel.EventToken, Token: en.token, Run: p.id, Seq: seq})
		}
	}
	switch {
	case after+1 < p.flushed:
		return dst, true, false
	case p.done:
		return dst, true, true
	case p.dropped:
		return dst, false, false
	}
	return dst, true, false
}

// batch is what one flush sends for one producer.
type batch struct {
	p      *producer
	first  int
	events []string
	bytes  int
	ending runnel.RunState // set when the batch holds the terminal event
	cmd    *goredis.Cmd
}

// take returns the producer's next batch, or false when it has nothing to
// flush.
func (p *producer) take() (batch, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		p.queued = false
		return batch{}, false
	}
	b := batch{p: p, first: p.flushed}
	for _, v := range p.pending {
		if len(b.events) == maxBatchEvents || (len(b.events) > 0 && b.bytes+len(v) > maxBatchBytes) {
			break
		}
		b.events = append(b.events, v)
		b.bytes += len(v)
	}
	if b.first+len(b.events) == p.next {
		b.ending = p.ending
	}
	return b, true
}

func (rs *Runs) enqueue(p *producer) {
	rs.mu.Lock()
	rs.ready = append(rs.ready, p)
	rs.mu.Unlock()
	rs.signal()
}

func (rs *Runs) signal() {
	select {
	case rs.kick <- struct{}{}:
	default:
	}
}

// flushRuns bounds the runs one flush carries.
const flushRuns = 256

// flush sends the producers' batches to Redis, the batches of many runs
// in one pipeline, one pipeline after the other: while one is in flight,
// the next batches grow, so a fast generator costs a round trip a batch,
// not a token. It returns once Close was called and nothing is left.
func (rs *Runs) flush() {
	defer rs.wg.Done()
	for {
		rs.mu.Lock()
		n := min(len(rs.ready), flushRuns)
		ps := make([]*producer, n)
		copy(ps, rs.ready)
		rs.ready = rs.ready[n:]
		if len(rs.ready) == 0 {
			rs.ready = nil
		} else {
			rs.signal() // another flusher can take the rest
		}
		closed := rs.closed
		rs.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			select {
			case <-rs.kick:
			case <-rs.stopped:
			}
			continue
		}
		rs.send(ps)
	}
}

// send flushes one batch of each producer, in one pipeline.
func (rs *Runs) send(ps []*producer) {
	var batches []batch
	for _, p := range ps {
		if b, ok := p.take(); ok {
			batches = append(batches, b)
		}
	}
	if len(batches) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rs.opt.Lease)
	defer cancel()
	run := func() error {
		pipe := rs.c.Pipeline()
		t := now()
		for i := range batches {
			b := &batches[i]
			args := make([]any, 0, 10+len(b.events))
			args = append(args, rs.opt.Prefix, b.p.id, b.first, t, ms(rs.liveTTL()), ms(rs.opt.Retention),
				rs.opt.MaxRuns, rs.opt.MaxBytes, string(b.ending), b.bytes)
			for _, v := range b.events {
				args = append(args, v)
			}
			b.cmd = appendScript.EvalSha(ctx, pipe, []string{rs.key("run", b.p.id), rs.key("log", b.p.id)}, args...)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := run()
	if err != nil && isNoScript(err) {
		// Redis restarted and forgot the scripts.
		rs.loadScripts(ctx)
		err = run()
	}
	for _, b := range batches {
		rs.flushed(b)
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func (rs *Runs) loadScripts(ctx context.Context) {
	for _, s := range scripts {
		if err := s.Load(ctx, rs.c).Err(); err != nil {
			rs.opt.Logger.Warn("load redis script", "err", err)
		}
	}
}

// errLost stops the producer of a run Redis no longer has: it restarted
// empty, or evicted the run.
var errLost = &runnel.Error{Code: runnel.EUNAVAILABLE, Message: "The store of answers (Redis) lost this answer; ask again.", Retryable: true}

// retryFlush is the pause before a failed batch is sent again.
const retryFlush = 100 * time.Millisecond

// flushed records the outcome of a batch.
func (rs *Runs) flushed(b batch) {
	p := b.p
	res, err := b.cmd.Slice()
	p.mu.Lock()
	if p.dropped {
		// Canceled or lost meanwhile: what Redis holds past p.flushed is
		// read there.
		p.mu.Unlock()
		rs.notify(p.id)
		return
	}
	if err != nil {
		// Redis is away: keep the events and try again, for a lease. By
		// then the run is lost: the readers see its lease lapse.
		if p.failing.IsZero() {
			p.failing = time.Now()
		}
		if time.Since(p.failing) < rs.opt.Lease {
			p.mu.Unlock()
			time.AfterFunc(retryFlush, func() { rs.enqueue(p) })
			return
		}
		rs.opt.Logger.Error("run lost: its events could not be written to redis", "run", p.id, "err", err)
		p.mu.Unlock()
		rs.drop(p, runnel.RunFailed, &runnel.Error{Code: runnel.EUNAVAILABLE, Message: "The store of answers (Redis) cannot be reached.", Retryable: true})
		return
	}
	p.failing = time.Time{}
	code, _ := at(res, 0).(int64)
	if code != 3 {
		// {0}: the run is gone (Redis lost it, or it expired); {1, state}:
		// it ended elsewhere; {2, next}: another writer.
		state, cause := runnel.RunFailed, error(errLost)
		switch code {
		case 1:
			if s, ok := at(res, 1).(string); ok {
				state = runnel.RunState(s)
			}
			cause = runnel.ErrCanceled
		case 2:
			rs.opt.Logger.Error("run's events out of order in redis", "run", p.id, "first", b.first, "redis_next", at(res, 1))
		default:
			rs.opt.Logger.Warn("run lost: redis no longer has it", "run", p.id)
		}
		p.mu.Unlock()
		rs.drop(p, state, cause)
		return
	}
	n := len(b.events)
	clear(p.pending[:n])
	p.pending = p.pending[n:]
	p.bytes -= b.bytes
	p.flushed += n
	if b.ending != "" && p.flushed == p.next {
		p.done = true
	}
	if p.room != nil && p.bytes <= maxPending {
		close(p.room)
		p.room = nil
	}
	more := len(p.pending) > 0
	if !more {
		p.queued = false
	}
	ended := b.ending != "" && !more
	p.mu.Unlock()
	rs.notify(p.id)
	if more {
		rs.enqueue(p)
	}
	if ended {
		rs.mu.Lock()
		delete(rs.local, p.id)
		rs.mu.Unlock()
	}
}

// drop forgets a run this replica can no longer produce: it ended in Redis
// (canceled, orphaned, expired) or Redis was away too long. Its producer
// is stopped with cause, and its unflushed events are dropped.
func (rs *Runs) drop(p *producer, state runnel.RunState, cause error) {
	p.mu.Lock()
	p.state = state
	p.dropped = true
	clear(p.log[p.flushed:])
	p.log = p.log[:p.flushed]
	p.pending, p.bytes, p.queued = nil, 0, false
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
	stop := p.stop
	p.mu.Unlock()
	rs.mu.Lock()
	delete(rs.local, p.id)
	rs.mu.Unlock()
	if stop != nil {
		stop(cause)
	}
	rs.notify(p.id)
}

// stopLocal stops the producer of a run canceled in Redis, if this
// replica has it.
func (rs *Runs) stopLocal(id string) {
	rs.mu.Lock()
	p := rs.local[id]
	rs.mu.Unlock()
	if p != nil {
		rs.drop(p, runnel.RunCanceled, runnel.ErrCanceled)
	}
}

// follow is what a replica knows of a run it has readers of.
type follow struct {
	readers    int
	wake       chan struct{} // closed when there may be more; made by a Read
	waiters    []func()      // called when wake is closed (Notify)
	subscribed bool
}

// wait registers f to be called, in a goroutine of its own, when wake (a
// channel wakeFor returned for run id) is closed. It reports false if it
// is closed already.
func (rs *Runs) wait(id string, wake <-chan struct{}, f func()) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	fl := rs.follows[id]
	if fl == nil || fl.wake == nil || (<-chan struct{})(fl.wake) != wake {
		return false
	}
	fl.waiters = append(fl.waiters, f)
	return true
}

// wakeFor returns the channel closed at the next notification for run id.
func (rs *Runs) wakeFor(id string) <-chan struct{} {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	f := rs.follows[id]
	if f == nil {
		f = &follow{}
		rs.follows[id] = f
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	return f.wake
}

// notify wakes the readers of run id.
func (rs *Runs) notify(id string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if f := rs.follows[id]; f != nil {
		if f.wake != nil {
			close(f.wake)
			f.wake = nil
		}
		for _, w := range f.waiters {
			go w()
		}
		f.waiters = nil
		if f.readers == 0 {
			delete(rs.follows, id)
		}
	}
}

// attach counts a reader of run id on this replica. The first one
// subscribes to the run's notifications, when another replica produces it,
// and enters the replica in the run's readers set.
func (rs *Runs) attach(id string) {
	rs.mu.Lock()
	f := rs.follows[id]
	if f == nil {
		f = &follow{}
		rs.follows[id] = f
	}
	f.readers++
	first := f.readers == 1
	_, local := rs.local[id]
	if first && !local {
		f.subscribed = true
	}
	if p := rs.local[id]; p != nil {
		p.mu.Lock()
		p.lastReader, p.hadReader = time.Now(), true
		p.mu.Unlock()
	}
	rs.mu.Unlock()
	if !first {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rs.opt.Lease)
	defer cancel()
	if !local {
		// Synchronous, so that the reader's first Read comes after it: an
		// append published in between would otherwise go unseen until the
		// next tick.
		if err := rs.ps.Subscribe(ctx, rs.key("events", id)); err != nil {
			rs.opt.Logger.Warn("subscribe to a run", "run", id, "err", err)
		}
	}
	rs.markReaders(ctx, id)
}

// markReaders enters this replica in the readers set of run id.
func (rs *Runs) markReaders(ctx context.Context, id string) {
	k := rs.key("readers", id)
	pipe := rs.c.Pipeline()
	pipe.ZAdd(ctx, k, goredis.Z{Score: float64(now() + 3*ms(rs.opt.Lease)), Member: rs.node})
	pipe.PExpire(ctx, k, rs.liveTTL())
	if _, err := pipe.Exec(ctx); err != nil {
		rs.opt.Logger.Debug("mark readers", "run", id, "err", err)
	}
}

// detach counts a reader gone. The last one on this replica unsubscribes
// and leaves the readers set; for a run produced here with no linger, the
// run is canceled at once if no replica has a reader.
func (rs *Runs) detach(id string) {
	rs.mu.Lock()
	f := rs.follows[id]
	if f == nil {
		rs.mu.Unlock()
		return
	}
	f.readers--
	if f.readers > 0 {
		rs.mu.Unlock()
		return
	}
	sub := f.subscribed
	if f.wake == nil {
		delete(rs.follows, id)
	} else {
		f.subscribed = false
	}
	p := rs.local[id]
	if p != nil {
		p.mu.Lock()
		p.lastReader = time.Now()
		p.mu.Unlock()
	}
	rs.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), rs.opt.Lease)
	defer cancel()
	if sub {
		if err := rs.ps.Unsubscribe(ctx, rs.key("events", id)); err != nil {
			rs.opt.Logger.Debug("unsubscribe from a run", "run", id, "err", err)
		}
	}
	rs.c.ZRem(ctx, rs.key("readers", id), rs.node)
	if p != nil && rs.opt.Linger == 0 {
		rs.abandonIdle(ctx, []*producer{p})
	}
}

// listen takes the replicas' messages: a run's appends, for its readers
// here, and stops, for its producer here.
func (rs *Runs) listen() {
	defer rs.wg.Done()
	ch := rs.ps.Channel()
	stop := rs.opt.Prefix + "stop"
	events := rs.opt.Prefix + "events:"
	for {
		select {
		case <-rs.stopped:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch {
			case m.Channel == stop:
				rs.stopLocal(m.Payload)
			case strings.HasPrefix(m.Channel, events):
				rs.notify(m.Channel[len(events):])
			}
		}
	}
}

// keep renews the leases of the runs this replica produces and its entries
// in the readers sets, cancels the runs it produces that have had no
// reader for the linger window, and wakes every waiting reader, so that
// each looks again: a notification lost while the connection was down
// costs a tick, and a reader finds out that a producer died.
func (rs *Runs) keep() {
	defer rs.wg.Done()
	tick := time.NewTicker(rs.opt.Lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-rs.stopped:
			return
		case <-tick.C:
		}
		rs.mu.Lock()
		var producing []*producer
		for _, p := range rs.local {
			producing = append(producing, p)
		}
		var reading, waiting []string
		for id, f := range rs.follows {
			if f.readers > 0 {
				reading = append(reading, id)
			}
			if f.wake != nil {
				waiting = append(waiting, id)
			}
		}
		rs.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), rs.opt.Lease/3)
		pipe := rs.c.Pipeline()
		states := make([]*goredis.StringCmd, len(producing))
		for i, p := range producing {
			pipe.Set(ctx, rs.key("lease", p.id), rs.node, rs.opt.Lease)
			states[i] = pipe.HGet(ctx, rs.key("run", p.id), "state")
		}
		score := float64(now() + 3*ms(rs.opt.Lease))
		for _, id := range reading {
			pipe.ZAdd(ctx, rs.key("readers", id), goredis.Z{Score: score, Member: rs.node})
		}
		if pipe.Len() > 0 {
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
				rs.opt.Logger.Warn("renew leases", "err", err)
			} else {
				rs.reconcile(producing, states)
			}
		}
		var idle []*producer
		for _, p := range producing {
			p.mu.Lock()
			// With no linger, a run is abandoned when its last reader
			// leaves, not before its first one comes.
			if (rs.opt.Linger > 0 || p.hadReader) && time.Since(p.lastReader) >= rs.opt.Linger && p.state == runnel.RunLive {
				idle = append(idle, p)
			}
			p.mu.Unlock()
		}
		rs.abandonIdle(ctx, idle)
		cancel()
		for _, id := range waiting {
			rs.notify(id)
		}
	}
}

// reconcile stops the producers whose runs ended in Redis without them:
// the stop message is published once, and a replica whose subscription was
// reconnecting then misses it; so a cancel reaches an idle producer within
// a tick even then. A producer that is still appending learns it from its
// next batch anyway.
func (rs *Runs) reconcile(ps []*producer, states []*goredis.StringCmd) {
	for i, p := range ps {
		state, err := states[i].Result()
		p.mu.Lock()
		done := p.done || p.dropped
		p.mu.Unlock()
		switch {
		case done:
		case errors.Is(err, goredis.Nil):
			rs.drop(p, runnel.RunFailed, errLost)
		case err == nil && state != string(runnel.RunLive):
			rs.drop(p, runnel.RunState(state), runnel.ErrCanceled)
		}
	}
}

// abandonIdle cancels those of ps, runs produced here past their linger,
// that no replica reads.
func (rs *Runs) abandonIdle(ctx context.Context, ps []*producer) {
	if len(ps) == 0 {
		return
	}
	rs.mu.Lock()
	var candidates []*producer
	for _, p := range ps {
		if f := rs.follows[p.id]; f == nil || f.readers == 0 {
			candidates = append(candidates, p)
		}
	}
	rs.mu.Unlock()
	if len(candidates) == 0 {
		return
	}
	pipe := rs.c.Pipeline()
	cards := make([]*goredis.IntCmd, len(candidates))
	for i, p := range candidates {
		k := rs.key("readers", p.id)
		pipe.ZRemRangeByScore(ctx, k, "-inf", strconv.FormatInt(now(), 10))
		cards[i] = pipe.ZCard(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return // next time
	}
	for i, p := range candidates {
		if cards[i].Val() > 0 {
			p.mu.Lock()
			p.lastReader = time.Now()
			p.mu.Unlock()
			continue
		}
		r := &run{rs: rs, id: p.id, p: p}
		if _, err := r.Cancel(ctx, runnel.CancelAbandon); err != nil {
			rs.opt.Logger.Warn("cancel an abandoned run", "run", p.id, "err", err)
		}
	}
}
