package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/redis"
	"github.com/runnel/runnel/redis/redistest"
)

var _ runnel.Runs = (*redis.Runs)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replica returns the Runs of one replica on srv, closed when the test ends.
func replica(t *testing.T, srv *redistest.Server, opt redis.Options) *redis.Runs {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, MaxRetries: -1})
	rs := redis.New(t.Context(), c, opt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rs.Close(ctx); err != nil {
			t.Error(err)
		}
		c.Close()
	})
	return rs
}

func create(t *testing.T, rs *redis.Runs, stop context.CancelCauseFunc) runnel.Run {
	t.Helper()
	run, created, err := rs.Create(t.Context(), "", stop)
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	return run
}

var head = []runnel.Event{
	{Type: runnel.EventQuery, Query: "q?"},
	{Type: runnel.EventTags, Tags: []string{"a"}},
	{Type: runnel.EventTitles, Titles: []string{"T"}},
	{Type: runnel.EventSources, Sources: []runnel.Source{{Slug: "s", Title: "T", URL: "/articles/s", Snippet: "snip"}}},
}

// answer appends a whole answer of n tokens to run.
func answer(t *testing.T, run runnel.Run, n int) {
	t.Helper()
	for _, e := range head {
		if _, err := run.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "t" + strconv.Itoa(i) + " "}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventDone, Done: &runnel.Done{FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}
}

// readAll follows run from after on until its terminal event, waiting as a
// pump does, and returns what it read.
func readAll(ctx context.Context, run runnel.Run, after int) ([]runnel.Event, error) {
	var out []runnel.Event
	for {
		evs, more, err := run.Read(ctx, after, nil)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		for _, e := range evs {
			if e.Seq != after+1 {
				return out, fmt.Errorf("event %d after %d", e.Seq, after)
			}
			after = e.Seq
			out = append(out, e)
		}
		if len(evs) == 0 {
			select {
			case <-more:
			case <-ctx.Done():
				return out, ctx.Err()
			}
		}
	}
}

func TestLog(t *testing.T) {
	srv := redistest.Start(t)
	a, b := replica(t, srv, redis.Options{}), replica(t, srv, redis.Options{})
	run := create(t, a, nil)
	if len(run.ID()) != 22 || strings.ContainsAny(run.ID(), "+/=.") {
		t.Errorf("id %q, want 22 URL-safe characters", run.ID())
	}
	evs, more, err := run.Read(t.Context(), -1, nil)
	if len(evs) != 0 || more == nil || err != nil {
		t.Fatalf("Read of an empty live run = %v, %v, %v; want nothing yet and a channel", evs, more, err)
	}
	// A reader on the other replica follows it live.
	other, err := b.Get(t.Context(), run.ID())
	if err != nil {
		t.Fatal(err)
	}
	detach := other.Attach()
	defer detach()
	got := make(chan []runnel.Event, 1)
	go func() {
		evs, err := readAll(t.Context(), other, -1)
		if err != nil {
			t.Error(err)
		}
		got <- evs
	}()
	answer(t, run, 300)
	evs = <-got
	if len(evs) != len(head)+301 {
		t.Fatalf("read %d events, want %d", len(evs), len(head)+301)
	}
	for i, e := range evs {
		if e.Run != run.ID() || e.Seq != i {
			t.Fatalf("event %d is %s.%d", i, e.Run, e.Seq)
		}
	}
	if evs[3].Sources[0].Snippet != "snip" || evs[len(head)+7].Token != "t7 " || evs[len(evs)-1].Type != runnel.EventDone {
		t.Errorf("events did not round-trip: %+v %+v %+v", evs[3], evs[len(head)+7], evs[len(evs)-1])
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "late"}); !errors.Is(err, runnel.ErrRunEnded) {
		t.Errorf("Append after done = %v, want ErrRunEnded", err)
	}
	// An ended run is read to its end from anywhere, and then says EOF.
	if evs, err := readAll(t.Context(), other, 10); err != nil || len(evs) != len(head)+301-11 {
		t.Errorf("resume after 10 = %d events, %v", len(evs), err)
	}
	if _, _, err := other.Read(t.Context(), len(head)+300, nil); !errors.Is(err, io.EOF) {
		t.Errorf("Read after the terminal event = %v, want EOF", err)
	}
	if s := other.State(); s != runnel.RunDone {
		t.Errorf("State = %s, want done", s)
	}
	if _, err := b.Get(t.Context(), "nope"); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("Get(unknown) = %v, want not_found", err)
	}
}

// TestCancelElsewhere cancels on one replica a run another produces: the
// producer's stop is called, its further appends fail, and every reader
// gets the canceled event right after the last event appended.
func TestCancelElsewhere(t *testing.T) {
	srv := redistest.Start(t)
	a, b := replica(t, srv, redis.Options{}), replica(t, srv, redis.Options{})
	stopped := make(chan error, 1)
	run := create(t, a, func(err error) { stopped <- err })
	for _, e := range head {
		run.Append(t.Context(), e)
	}
	// Wait until the head is in Redis, read from b.
	other, _ := b.Get(t.Context(), run.ID())
	defer other.Attach()()
	waitFor(t, other, len(head)-1)
	state, err := other.Cancel(t.Context(), runnel.CancelByClient)
	if err != nil || state != runnel.RunCanceled {
		t.Fatalf("Cancel = %s, %v", state, err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, runnel.ErrCanceled) {
			t.Errorf("stop cause %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the producer was not stopped")
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "x"}); !errors.Is(err, runnel.ErrRunEnded) {
		t.Errorf("Append after a cancel elsewhere = %v, want ErrRunEnded", err)
	}
	evs, err := readAll(t.Context(), run, -1)
	if err != nil || len(evs) != len(head)+1 || evs[len(head)].Type != runnel.EventCanceled || evs[len(head)].Canceled.Reason != runnel.CancelByClient {
		t.Fatalf("log after cancel = %+v, %v", evs, err)
	}
	if state, err := run.Cancel(t.Context(), runnel.CancelByClient); err != nil || state != runnel.RunCanceled {
		t.Errorf("second Cancel = %s, %v", state, err)
	}
}

// waitFor reads run until event seq is in.
func waitFor(t *testing.T, run runnel.Run, seq int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	after := -1
	for after < seq {
		evs, more, err := run.Read(ctx, after, nil)
		if err != nil {
			t.Fatalf("waiting for event %d: %v", seq, err)
		}
		if len(evs) > 0 {
			after = evs[len(evs)-1].Seq
			continue
		}
		select {
		case <-more:
		case <-ctx.Done():
			t.Fatalf("event %d never came", seq)
		}
	}
}

// TestOrphaned: a replica that stops renewing its lease (it died) leaves
// its runs to the readers elsewhere, who end them with a retryable error
// within about a lease.
func TestOrphaned(t *testing.T) {
	srv := redistest.Start(t)
	lease := 600 * time.Millisecond
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer c.Close()
	a := redis.New(t.Context(), c, redis.Options{Lease: lease})
	b := replica(t, srv, redis.Options{Lease: lease})
	run := create(t, a, nil)
	run.Append(t.Context(), head[0])
	other, _ := b.Get(t.Context(), run.ID())
	waitFor(t, other, 0)
	// a dies: its keeper stops, and nothing renews the lease.
	a.Close(t.Context())
	start := time.Now()
	evs, err := readAll(t.Context(), other, 0)
	if err != nil || len(evs) != 1 || evs[0].Type != runnel.EventError || evs[0].Err.Code != runnel.EUNAVAILABLE || !evs[0].Err.Retryable {
		t.Fatalf("after the producer died: %+v, %v; want one retryable unavailable error", evs, err)
	}
	t.Logf("orphaned run ended %v after the producer stopped (lease %v)", time.Since(start).Round(time.Millisecond), lease)
}

// TestRedisGoesAway: with Redis gone mid-run, readers fail with an error
// rather than wait, the producer is stopped after about a lease, and once
// Redis is back (empty) the run is gone and new runs work.
func TestRedisGoesAway(t *testing.T) {
	srv := redistest.Start(t)
	lease := 500 * time.Millisecond
	a, b := replica(t, srv, redis.Options{Lease: lease}), replica(t, srv, redis.Options{Lease: lease})
	stopped := make(chan error, 1)
	run := create(t, a, func(err error) { stopped <- err })
	run.Append(t.Context(), head[0])
	waitFor(t, run, 0)
	other, err := b.Get(t.Context(), run.ID())
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, _, err := other.Read(t.Context(), 0, nil); runnel.ErrorCode(err) != runnel.EUNAVAILABLE {
		t.Errorf("Read elsewhere with Redis down = %v, want unavailable", err)
	}
	run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "x"})
	select {
	case err := <-stopped:
		if runnel.ErrorCode(err) != runnel.EUNAVAILABLE {
			t.Errorf("stop cause %v, want unavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the producer was not stopped with Redis down")
	}
	// The reader on the producing replica read the query from memory; the
	// token never reached Redis, so it never sees it, and ends with an
	// error rather than wait.
	if evs, err := readAll(t.Context(), run, 0); len(evs) != 0 || runnel.ErrorCode(err) != runnel.EUNAVAILABLE {
		t.Errorf("the producer's own reader after Redis went away: %+v, %v; want unavailable", evs, err)
	}
	if _, _, err := a.Create(t.Context(), "", nil); runnel.ErrorCode(err) != runnel.EUNAVAILABLE {
		t.Errorf("Create with Redis down = %v, want unavailable", err)
	}
	srv.Restart()
	if _, err := a.Get(t.Context(), run.ID()); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("Get after Redis lost everything = %v, want not_found", err)
	}
	next := create(t, a, nil)
	answer(t, next, 5)
	if evs, err := readAll(t.Context(), next, -1); err != nil || len(evs) != len(head)+6 {
		t.Errorf("a run after Redis came back: %d events, %v", len(evs), err)
	}
}

func TestLinger(t *testing.T) {
	srv := redistest.Start(t)
	opt := redis.Options{Linger: 300 * time.Millisecond, Lease: time.Second}
	a, b := replica(t, srv, opt), replica(t, srv, opt)
	stopped := make(chan error, 1)
	run := create(t, a, func(err error) { stopped <- err })
	run.Append(t.Context(), head[0])
	detach := run.Attach()
	// The reader moves to replica b: the run lives on.
	other, _ := b.Get(t.Context(), run.ID())
	detachB := other.Attach()
	detach()
	select {
	case <-stopped:
		t.Fatal("a run with a reader on another replica was abandoned")
	case <-time.After(4 * opt.Linger):
	}
	// And when that reader leaves too, it stops after the linger.
	detachB()
	select {
	case err := <-stopped:
		if !errors.Is(err, runnel.ErrCanceled) {
			t.Errorf("stop cause %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an abandoned run was not canceled")
	}
	evs, _ := readAll(t.Context(), other, 0)
	if len(evs) != 1 || evs[0].Type != runnel.EventCanceled || evs[0].Canceled.Reason != runnel.CancelAbandon {
		t.Errorf("abandoned run ends with %+v", evs)
	}
}

func TestNoLinger(t *testing.T) {
	srv := redistest.Start(t)
	a := replica(t, srv, redis.Options{})
	stopped := make(chan error, 1)
	run := create(t, a, func(err error) { stopped <- err })
	detach := run.Attach()
	detach()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("with no linger, a run whose last reader left was not canceled")
	}
}

func TestIdempotencyKey(t *testing.T) {
	srv := redistest.Start(t)
	a, b := replica(t, srv, redis.Options{}), replica(t, srv, redis.Options{})
	first, created, err := a.Create(t.Context(), "k-1", nil)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	again, created, err := b.Create(t.Context(), "k-1", nil)
	if err != nil || created || again.ID() != first.ID() {
		t.Fatalf("Create with the same key elsewhere = %s, %v, %v; want %s, not created", again.ID(), created, err, first.ID())
	}
	if other, created, _ := b.Create(t.Context(), "k-2", nil); !created || other.ID() == first.ID() {
		t.Error("another key got the same run")
	}
}

func TestRetention(t *testing.T) {
	srv := redistest.Start(t)
	a := replica(t, srv, redis.Options{MaxRuns: 3, Retention: time.Minute})
	var ids []string
	for range 5 {
		run := create(t, a, nil)
		answer(t, run, 2)
		waitFor(t, run, len(head)+2)
		ids = append(ids, run.ID())
	}
	for i, id := range ids {
		_, err := a.Get(t.Context(), id)
		if kept := err == nil; kept != (i >= 2) {
			t.Errorf("run %d kept = %v (%v), want the newest 3 kept", i, kept, err)
		}
	}
	short := replica(t, srv, redis.Options{Retention: 200 * time.Millisecond, Prefix: "short:"})
	run := create(t, short, nil)
	answer(t, run, 1)
	waitFor(t, run, len(head)+1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := short.Get(t.Context(), run.ID()); runnel.ErrorCode(err) == runnel.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an ended run outlived its retention")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBurstIsBatched: a fast generator costs a round trip a batch, not an
// event.
func TestBurstIsBatched(t *testing.T) {
	srv := redistest.Start(t)
	a := replica(t, srv, redis.Options{})
	before := evalCalls(t, srv)
	run := create(t, a, nil)
	const n = 20000
	answer(t, run, n)
	waitFor(t, run, len(head)+n)
	calls := evalCalls(t, srv) - before
	t.Logf("%d events took %d append scripts", n+len(head)+1, calls)
	if calls > n/10 {
		t.Errorf("%d events took %d append scripts; want them batched", n, calls)
	}
}

// evalCalls counts the scripts Redis has run by their hash.
func evalCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	info, err := srv.Info("commandstats")
	if err != nil {
		t.Fatal(err)
	}
	v := info["cmdstat_evalsha"]
	calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
	n, _ := strconv.Atoi(calls)
	return n
}

func TestConcurrent(t *testing.T) {
	srv := redistest.Start(t)
	replicas := []*redis.Runs{replica(t, srv, redis.Options{}), replica(t, srv, redis.Options{}), replica(t, srv, redis.Options{})}
	const runs = 60
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := create(t, replicas[i%3], nil)
			other, err := replicas[(i+1)%3].Get(t.Context(), run.ID())
			if err != nil {
				t.Error(err)
				return
			}
			detach := other.Attach()
			defer detach()
			done := make(chan []runnel.Event)
			go func() {
				evs, err := readAll(t.Context(), other, -1)
				if err != nil {
					t.Error(err)
				}
				done <- evs
			}()
			answer(t, run, 100)
			if evs := <-done; len(evs) != len(head)+101 {
				t.Errorf("run %d: read %d events", i, len(evs))
			}
		}()
	}
	wg.Wait()
}

// TestRedisDownAtStart: replicas that start while Redis is down refuse to
// create runs with unavailable, and once it is up they work, the messages
// between replicas (a cancel reaching the producer) included.
func TestRedisDownAtStart(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	opt := redis.Options{Lease: 600 * time.Millisecond}
	a, b := replica(t, srv, opt), replica(t, srv, opt)
	if _, _, err := a.Create(t.Context(), "", nil); runnel.ErrorCode(err) != runnel.EUNAVAILABLE {
		t.Fatalf("Create with Redis down = %v, want unavailable", err)
	}
	srv.Restart()
	stopped := make(chan error, 1)
	var run runnel.Run
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _, err := a.Create(t.Context(), "", func(err error) { stopped <- err })
		if err == nil {
			run = r
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Create after Redis came up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	run.Append(t.Context(), head[0])
	other, err := b.Get(t.Context(), run.ID())
	if err != nil {
		t.Fatal(err)
	}
	// The stop reaches a only if its subscription came back with Redis.
	if state, err := other.Cancel(t.Context(), runnel.CancelByClient); err != nil || state != runnel.RunCanceled {
		t.Fatalf("Cancel = %s, %v", state, err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancel did not reach the producer of a replica that started with Redis down")
	}
}

// TestRedisBackEmpty: Redis restarts empty while a producer retries a
// batch: the producer learns its run is gone and stops, with a retryable
// error, and the replica goes on.
func TestRedisBackEmpty(t *testing.T) {
	srv := redistest.Start(t)
	a := replica(t, srv, redis.Options{Lease: 5 * time.Second})
	stopped := make(chan error, 1)
	run := create(t, a, func(err error) { stopped <- err })
	run.Append(t.Context(), head[0])
	waitFor(t, run, 0)
	srv.Stop()
	run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "x"})
	srv.Restart()
	select {
	case err := <-stopped:
		if e := runnel.AsError(err); e.Code != runnel.EUNAVAILABLE || !e.Retryable {
			t.Errorf("stop cause %v, want a retryable unavailable error", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the producer of a run Redis lost was not stopped")
	}
	if _, _, err := run.Read(t.Context(), 0, nil); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("Read of the lost run = %v, want not_found", err)
	}
	next := create(t, a, nil)
	answer(t, next, 3)
	if evs, err := readAll(t.Context(), next, -1); err != nil || len(evs) != len(head)+4 {
		t.Errorf("a run after Redis came back empty: %d events, %v", len(evs), err)
	}
}

// TestNotify checks that a reader on another replica can wait through
// Notify instead of the channel Read returns: it is called back once an
// append is published, and Notify refuses when the reader's last Read was
// not where it says it is.
func TestNotify(t *testing.T) {
	srv := redistest.Start(t)
	a, b := replica(t, srv, redis.Options{}), replica(t, srv, redis.Options{})
	run := create(t, a, nil)
	other, err := b.Get(t.Context(), run.ID())
	if err != nil {
		t.Fatal(err)
	}
	detach := other.Attach()
	defer detach()
	n, ok := other.(runnel.Notifier)
	if !ok {
		t.Fatal("a run in Redis is not a runnel.Notifier")
	}
	if n.Notify(-1, func() {}) {
		t.Error("Notify before any Read = true, want false")
	}
	if evs, more, err := other.Read(t.Context(), -1, nil); len(evs) != 0 || more == nil || err != nil {
		t.Fatalf("Read of an empty live run = %v, %v, %v", evs, more, err)
	}
	if n.Notify(3, func() {}) {
		t.Error("Notify after 3 when the last Read was after -1 = true, want false")
	}
	if n.Notify(3, nil) || !n.Notify(-1, nil) {
		t.Error("Notify with no function does not answer as Notify with one")
	}
	called := make(chan struct{}, 2)
	if !n.Notify(-1, func() { called <- struct{}{} }) {
		t.Fatal("Notify after the Read that found nothing = false, want true")
	}
	if _, err := run.Append(t.Context(), head[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify's function was not called after an append")
	}
	// Called once: the registration is spent, and the channel it waited
	// on is closed, so Notify refuses until the reader reads again.
	if n.Notify(-1, func() { called <- struct{}{} }) {
		t.Error("Notify on a closed channel = true, want false")
	}
	if n.Notify(-1, nil) {
		t.Error("Notify(-1, nil) on a closed channel = true, want false")
	}
	evs, _, err := other.Read(t.Context(), -1, nil)
	if err != nil || len(evs) != 1 || evs[0].Type != runnel.EventQuery {
		t.Fatalf("Read after the notification = %v, %v; want the query event", evs, err)
	}
	select {
	case <-called:
		t.Error("Notify's function was called twice")
	default:
	}
}
