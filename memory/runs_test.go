package memory_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/memory"
)

var _ runnel.Runs = (*memory.Runs)(nil)

// clock is a fake time for retention.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func create(t *testing.T, rs *memory.Runs) runnel.Run {
	t.Helper()
	run, created, err := rs.Create(t.Context(), "", nil)
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	return run
}

// answer appends a whole answer of n tokens to run.
func answer(t *testing.T, run runnel.Run, n int, tok string) {
	t.Helper()
	ctx := t.Context()
	for _, e := range []runnel.Event{
		{Type: runnel.EventQuery, Query: "q?"},
		{Type: runnel.EventTags, Tags: []string{"a"}},
		{Type: runnel.EventTitles, Titles: []string{"T"}},
		{Type: runnel.EventSources, Sources: []runnel.Source{{Slug: "s", Title: "T", URL: "/articles/s", Snippet: "snip"}}},
	} {
		if _, err := run.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if _, err := run.Append(ctx, runnel.Event{Type: runnel.EventToken, Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run.Append(ctx, runnel.Event{Type: runnel.EventDone, Done: &runnel.Done{FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}
}

func TestLog(t *testing.T) {
	rs := memory.New(memory.Options{})
	run := create(t, rs)
	if len(run.ID()) != 22 || strings.ContainsAny(run.ID(), "+/=.") {
		t.Errorf("id %q, want 22 URL-safe characters", run.ID())
	}
	evs, more, err := run.Read(t.Context(), -1, nil)
	if len(evs) != 0 || more == nil || err != nil {
		t.Fatalf("Read of an empty live run = %v, %v, %v; want nothing yet and a channel", evs, more, err)
	}
	answer(t, run, 3, "tok ")
	select {
	case <-more:
	default:
		t.Error("the channel Read returned was not closed by an Append")
	}
	evs, _, err = run.Read(t.Context(), 3, nil)
	if err != nil || len(evs) != 4 || evs[0].Type != runnel.EventToken || evs[0].Seq != 4 || evs[0].Run != run.ID() || evs[3].Type != runnel.EventDone {
		t.Fatalf("Read after 3 = %+v, %v; want tokens 4-6 and done 7, numbered, with the run", evs, err)
	}
	if _, _, err := run.Read(t.Context(), 7, nil); !errors.Is(err, io.EOF) {
		t.Errorf("Read after the terminal event = %v, want io.EOF", err)
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "late"}); !errors.Is(err, runnel.ErrRunEnded) {
		t.Errorf("Append after done = %v, want ErrRunEnded", err)
	}
	if state, _ := run.Cancel(t.Context(), runnel.CancelByClient); state != runnel.RunDone {
		t.Errorf("Cancel after done = %s, want done", state)
	}
	got, err := rs.Get(t.Context(), run.ID())
	if err != nil || got.ID() != run.ID() {
		t.Errorf("Get = %v, %v", got, err)
	}
	if _, err := rs.Get(t.Context(), "nope"); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("Get of an unknown run = %v, want not_found", err)
	}
}

// TestReadBack appends events of every kind, those a run keeps in its
// shared head and those it keeps whole (a second event of a type, one
// with a field of another type's, one of a type it does not know), and
// reads each back as it was appended.
func TestReadBack(t *testing.T) {
	rs := memory.New(memory.Options{})
	run := create(t, rs)
	in := []runnel.Event{
		{Type: runnel.EventQuery, Query: "q?"},
		{Type: runnel.EventTags, Tags: []string{"a", "b"}},
		{Type: runnel.EventTitles},
		{Type: runnel.EventTitles, Titles: []string{"T"}},
		{Type: runnel.EventSources, Sources: []runnel.Source{{Slug: "s", Title: "T", URL: "/articles/s", Tags: []string{}, Score: 1.5, Snippet: "snip"}}},
		{Type: runnel.EventQuery, Query: "again?"},
		{Type: runnel.EventToken, Token: "tok "},
		{Type: runnel.EventTags, Tags: []string{"c"}, Query: "both"},
		{Type: "future", Raw: []byte(`{"x":1}`)},
		{Type: runnel.EventToken, Token: "tok"},
		{Type: runnel.EventDone, Done: &runnel.Done{FinishReason: "stop", ID: "req"}},
	}
	for i, e := range in {
		seq, err := run.Append(t.Context(), e)
		if err != nil || seq != i {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
	}
	for after := -1; after < len(in)-1; after++ {
		got, _, err := run.Read(t.Context(), after, nil)
		if err != nil {
			t.Fatalf("Read after %d: %v", after, err)
		}
		want := make([]runnel.Event, 0, len(in))
		for i, e := range in[after+1:] {
			e.Run, e.Seq = run.ID(), after+1+i
			want = append(want, e)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Read after %d =\n%+v\nwant\n%+v", after, got, want)
		}
	}
}

// TestLongLog reads back a log of many blocks (runs keep their entries
// in blocks of 64) from every point, each event where it was appended.
func TestLongLog(t *testing.T) {
	rs := memory.New(memory.Options{})
	run := create(t, rs)
	ctx := t.Context()
	const n = 1000
	for i := range n {
		e := runnel.Event{Type: runnel.EventToken, Token: strconv.Itoa(i)}
		if i%100 == 7 {
			e = runnel.Event{Type: runnel.EventQuery, Query: strconv.Itoa(i)}
		}
		if seq, err := run.Append(ctx, e); err != nil || seq != i {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
	}
	for _, after := range []int{-1, 0, 62, 63, 64, 126, 127, 128, 500, 991, 998} {
		var got []runnel.Event
		for at := after; ; {
			evs, more, err := run.Read(ctx, at, nil)
			if err != nil || (len(evs) == 0 && more == nil) {
				t.Fatalf("Read after %d = %d events, %v", at, len(evs), err)
			}
			if len(evs) == 0 {
				break
			}
			got = append(got, evs...)
			at = evs[len(evs)-1].Seq
		}
		if len(got) != n-1-after {
			t.Fatalf("read %d events after %d, want %d", len(got), after, n-1-after)
		}
		for j, e := range got {
			seq := after + 1 + j
			text := e.Token
			if e.Type == runnel.EventQuery {
				text = e.Query
			}
			if e.Seq != seq || text != strconv.Itoa(seq) {
				t.Fatalf("after %d, event %d is %d %q, want %d", after, j, e.Seq, text, seq)
			}
		}
	}
}

func TestCancel(t *testing.T) {
	rs := memory.New(memory.Options{})
	var cause error
	stopped := make(chan struct{})
	run, _, _ := rs.Create(t.Context(), "", func(err error) { cause = err; close(stopped) })
	run.Append(t.Context(), runnel.Event{Type: runnel.EventQuery, Query: "q?"})
	if state, err := run.Cancel(t.Context(), runnel.CancelByClient); state != runnel.RunCanceled || err != nil {
		t.Fatalf("Cancel = %s, %v", state, err)
	}
	<-stopped
	if !errors.Is(cause, runnel.ErrCanceled) {
		t.Errorf("stop got %v, want ErrCanceled", cause)
	}
	evs, _, _ := run.Read(t.Context(), 0, nil)
	if len(evs) != 1 || evs[0].Type != runnel.EventCanceled || evs[0].Canceled.Reason != runnel.CancelByClient || evs[0].Seq != 1 {
		t.Errorf("events after the query = %+v, want canceled by client, numbered 1", evs)
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "x"}); !errors.Is(err, runnel.ErrRunEnded) {
		t.Errorf("Append after cancel = %v, want ErrRunEnded", err)
	}
}

func TestLinger(t *testing.T) {
	t.Run("zero cancels when the last reader leaves", func(t *testing.T) {
		rs := memory.New(memory.Options{})
		stopped := make(chan error, 1)
		run, _, _ := rs.Create(t.Context(), "", func(err error) { stopped <- err })
		a, b := run.Attach(), run.Attach()
		a()
		a() // detach twice is once
		if run.State() != runnel.RunLive {
			t.Fatal("canceled while a reader was still attached")
		}
		b()
		if err := <-stopped; !errors.Is(err, runnel.ErrCanceled) || run.State() != runnel.RunCanceled {
			t.Errorf("after the last reader left: %v, state %s", err, run.State())
		}
	})
	t.Run("a reader back within the window keeps it", func(t *testing.T) {
		rs := memory.New(memory.Options{Linger: time.Hour})
		run := create(t, rs)
		run.Attach()()
		detach := run.Attach()
		defer detach()
		answer(t, run, 1, "x")
		if run.State() != runnel.RunDone {
			t.Errorf("state %s, want done", run.State())
		}
	})
	t.Run("nobody back within the window", func(t *testing.T) {
		rs := memory.New(memory.Options{Linger: 20 * time.Millisecond})
		stopped := make(chan error, 1)
		run, _, _ := rs.Create(t.Context(), "", func(err error) { stopped <- err })
		run.Attach()()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			t.Fatal("not canceled 20 s after a 20 ms linger window")
		}
		evs, _, _ := run.Read(t.Context(), -1, nil)
		if len(evs) != 1 || evs[0].Canceled == nil || evs[0].Canceled.Reason != runnel.CancelAbandon {
			t.Errorf("events %+v, want one canceled event, abandoned", evs)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	rs := memory.New(memory.Options{})
	a, created, _ := rs.Create(t.Context(), "k1", nil)
	b, again, _ := rs.Create(t.Context(), "k1", nil)
	c, _, _ := rs.Create(t.Context(), "k2", nil)
	if !created || again || a.ID() != b.ID() || a.ID() == c.ID() {
		t.Errorf("Create k1, k1, k2 = %s (%v), %s (%v), %s; want the same run for the same key", a.ID(), created, b.ID(), again, c.ID())
	}
}

// TestRetention keeps 1,000 ended runs under a byte cap smaller than they
// take, evicting the oldest; and forgets runs past the retention window.
func TestRetention(t *testing.T) {
	const maxBytes = 1 << 20
	clk := &clock{now: time.Unix(1e9, 0)}
	rs := memory.New(memory.Options{MaxBytes: maxBytes, Retention: time.Minute, Now: clk.Now})
	var ids []string
	tok := strings.Repeat("w", 20) + " "
	for i := range 1000 {
		run := create(t, rs)
		answer(t, run, 100, tok)
		ids = append(ids, run.ID())
		if st := rs.Stats(); st.Bytes > maxBytes {
			t.Fatalf("after %d runs: %d bytes kept, over the cap of %d", i+1, st.Bytes, maxBytes)
		}
	}
	st := rs.Stats()
	if st.Ended == 0 || st.Ended == 1000 || st.Live != 0 {
		t.Fatalf("stats %+v: want some, not all, of the 1,000 runs kept", st)
	}
	per := st.Bytes / int64(st.Ended)
	if per < int64(100*len(tok)) {
		t.Errorf("%d bytes a run: the estimate misses the tokens", per)
	}
	// The newest are kept, the oldest evicted.
	if _, err := rs.Get(t.Context(), ids[999]); err != nil {
		t.Errorf("the newest run: %v", err)
	}
	if _, err := rs.Get(t.Context(), ids[0]); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("the oldest run: %v, want not_found", err)
	}
	t.Logf("%d of 1,000 runs kept in %d bytes (%d a run)", st.Ended, st.Bytes, per)

	clk.advance(time.Minute)
	if _, err := rs.Get(t.Context(), ids[999]); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("a run past the retention window: %v, want not_found", err)
	}
	if st := rs.Stats(); st.Ended != 0 || st.Bytes != 0 {
		t.Errorf("stats past the window %+v, want nothing kept", st)
	}
}

func TestMaxRuns(t *testing.T) {
	rs := memory.New(memory.Options{MaxRuns: 10})
	for range 25 {
		answer(t, create(t, rs), 1, "x")
	}
	live := create(t, rs) // live runs are never evicted
	for range 25 {
		answer(t, create(t, rs), 1, "x")
	}
	if st := rs.Stats(); st.Ended != 10 || st.Live != 1 {
		t.Errorf("stats %+v, want 10 ended and 1 live", st)
	}
	if _, err := rs.Get(t.Context(), live.ID()); err != nil {
		t.Errorf("the live run: %v", err)
	}
}

// TestConcurrent appends and reads at once (run with -race).
func TestConcurrent(t *testing.T) {
	rs := memory.New(memory.Options{})
	run := create(t, rs)
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after := -1
			var got strings.Builder
			for {
				evs, more, err := run.Read(context.Background(), after, nil)
				if errors.Is(err, io.EOF) {
					break
				}
				for _, e := range evs {
					got.WriteString(e.Token)
					after = e.Seq
				}
				if more != nil {
					<-more
				}
			}
			if want := strings.Repeat("t", 500); got.String() != want {
				t.Errorf("reader %d read %d bytes of tokens, want %d", r, got.Len(), len(want))
			}
		}()
	}
	for range 500 {
		run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "t"})
	}
	run.Append(t.Context(), runnel.Event{Type: runnel.EventDone})
	wg.Wait()

}

// TestNotify checks that a reader waiting through Notify is called once
// per registration, on the next Append and on a Cancel, and that Notify
// refuses when there is something to read already.
func TestNotify(t *testing.T) {
	rs := memory.New(memory.Options{})
	run := create(t, rs)
	n, ok := run.(runnel.Notifier)
	if !ok {
		t.Fatal("a run in memory is not a runnel.Notifier")
	}
	calls := make([]int, 3)
	for i := range calls {
		if !n.Notify(-1, func() { calls[i]++ }) {
			t.Fatalf("Notify %d on an empty run = false, want true", i)
		}
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventQuery, Query: "q"}); err != nil {
		t.Fatal(err)
	}
	if calls[0] != 1 || calls[1] != 1 || calls[2] != 1 {
		t.Fatalf("calls after one Append = %v, want each once", calls)
	}
	if _, err := run.Append(t.Context(), runnel.Event{Type: runnel.EventToken, Token: "t"}); err != nil {
		t.Fatal(err)
	}
	if calls[0] != 1 {
		t.Errorf("a registration was called again by a second Append: %v", calls)
	}
	if n.Notify(0, func() { t.Error("called, though Notify refused") }) {
		t.Error("Notify after 0 with event 1 in the log = true, want false")
	}
	// With no function Notify only answers: an Append after it calls
	// nobody (a nil function kept would panic here).
	if n.Notify(0, nil) {
		t.Error("Notify(0, nil) with event 1 in the log = true, want false")
	}
	if !n.Notify(1, nil) {
		t.Error("Notify(1, nil) after the last event = false, want true")
	}
	canceled := 0
	if !n.Notify(1, func() { canceled++ }) {
		t.Fatal("Notify after the last event = false, want true")
	}
	if _, err := run.Cancel(t.Context(), runnel.CancelByClient); err != nil {
		t.Fatal(err)
	}
	if canceled != 1 {
		t.Errorf("the waiter was called %d times by Cancel, want once", canceled)
	}
	if n.Notify(2, func() {}) {
		t.Error("Notify on an ended run = true, want false")
	}
}
