package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
)

// mustOpen opens a new store in a temporary directory and closes it when the
// test ends.
func mustOpen(tb testing.TB) *Store {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "runnel.db"))
}

func mustOpenPath(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustPut(tb testing.TB, s *Store, a *runnel.Article) {
	tb.Helper()
	if _, err := s.Put(context.Background(), a); err != nil {
		tb.Fatalf("Put(%q): %v", a.Slug, err)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := runnel.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	in := &runnel.Article{
		Slug:        "guides/websockets",
		Title:       "WebSockets in practice",
		Date:        time.Date(2024, 3, 5, 10, 30, 0, 0, time.FixedZone("", 2*3600)),
		Tags:        []string{"websocket", "networking", "websocket", ""},
		Description: "Full-duplex messages over one connection.",
		Keywords:    []string{"ws, wss", "upgrade"},
		Section:     "guides",
		Body:        "# Intro\n\nA socket.\n\n# Close\n\nClose it.",
		Source:      "docs/websockets.md",
		Passages: []runnel.Passage{
			{Heading: "Intro", Text: "A socket."},
			{Heading: "Close", Text: "Close it.", Position: 7},
		},
	}
	res, err := s.Put(ctx, in)
	if err != nil || res != runnel.PutAdded {
		t.Fatalf("Put = %v, %v; want added, nil", res, err)
	}
	got, err := s.Get(ctx, in.Slug)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !got.Date.Equal(in.Date) {
		t.Errorf("Date = %v, want %v", got.Date, in.Date)
	}
	if _, off := got.Date.Zone(); off != 2*3600 {
		t.Errorf("Date offset = %d, want %d", off, 2*3600)
	}
	want := *in
	want.Date = got.Date
	want.Tags = []string{"websocket", "networking"}
	tags := want.Tags
	want.Passages = []runnel.Passage{
		{Slug: in.Slug, Title: in.Title, Tags: tags, Heading: "Intro", Text: "A socket.", Position: 0},
		{Slug: in.Slug, Title: in.Title, Tags: tags, Heading: "Close", Text: "Close it.", Position: 1},
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("Get = %+v\nwant  %+v", got, &want)
	}
}

func TestPutInvalid(t *testing.T) {
	s := mustOpen(t)
	for _, a := range []*runnel.Article{
		nil,
		{Title: "No slug"},
		{Slug: "no-title"},
		{Slug: "blank-title", Title: " \t"},
	} {
		res, err := s.Put(context.Background(), a)
		if res != runnel.PutUnchanged {
			t.Errorf("Put(%+v) = %v, want unchanged", a, res)
		}
		wantCode(t, err, runnel.EINVALID)
	}
}

func TestPutIdempotent(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	a := &runnel.Article{Slug: "a", Title: "A", Tags: []string{"x"}, Body: "alpha",
		Passages: []runnel.Passage{{Text: "alpha"}}}
	for i, want := range []runnel.PutResult{runnel.PutAdded, runnel.PutUnchanged, runnel.PutUnchanged} {
		res, err := s.Put(ctx, a)
		if err != nil || res != want {
			t.Fatalf("Put #%d = %v, %v; want %v, nil", i+1, res, err, want)
		}
	}
	// Empty and nil store the same.
	same := *a
	same.Keywords, same.Tags = []string{}, []string{"x", "x", ""}
	if res, err := s.Put(ctx, &same); err != nil || res != runnel.PutUnchanged {
		t.Fatalf("Put with empty keywords and duplicate tags = %v, %v; want unchanged, nil", res, err)
	}

	edits := []func(a *runnel.Article){
		func(a *runnel.Article) { a.Title = "A2" },
		func(a *runnel.Article) { a.Date = day("2024-01-01") },
		func(a *runnel.Article) { a.Tags = []string{"x", "y"} },
		func(a *runnel.Article) { a.Tags = []string{"y", "x"} }, // order is stored
		func(a *runnel.Article) { a.Description = "d" },
		func(a *runnel.Article) { a.Keywords = []string{"k"} },
		func(a *runnel.Article) { a.Keywords = []string{"k", ""} },
		func(a *runnel.Article) { a.Section = "s" },
		func(a *runnel.Article) { a.Body = "alpha beta" },
		func(a *runnel.Article) { a.Source = "a.md" },
		func(a *runnel.Article) { a.Passages[0].Heading = "H" },
		func(a *runnel.Article) { a.Passages[0].Text = "alpha beta" },
		func(a *runnel.Article) { a.Passages = append(a.Passages, runnel.Passage{Text: "gamma"}) },
	}
	for i, edit := range edits {
		edit(a)
		res, err := s.Put(ctx, a)
		if err != nil || res != runnel.PutUpdated {
			t.Fatalf("Put after edit %d = %v, %v; want updated, nil", i, res, err)
		}
		res, err = s.Put(ctx, a)
		if err != nil || res != runnel.PutUnchanged {
			t.Fatalf("Put again after edit %d = %v, %v; want unchanged, nil", i, res, err)
		}
	}
	// Fields Put ignores do not count as changes.
	a.Passages[0].Score, a.Passages[0].Slug, a.Passages[0].Position = 3, "zzz", 9
	if res, err := s.Put(ctx, a); err != nil || res != runnel.PutUnchanged {
		t.Errorf("Put with ignored fields = %v, %v; want unchanged, nil", res, err)
	}
}

func TestPutReplacesPassages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	a := &runnel.Article{Slug: "a", Title: "Animals", Tags: []string{"zoo"}, Passages: []runnel.Passage{
		{Heading: "Stripes", Text: "The zebra grazes."},
		{Heading: "Spots", Text: "The leopard hunts."},
	}}
	mustPut(t, s, a)
	a.Tags = []string{"farm"}
	a.Passages = []runnel.Passage{{Heading: "Hair", Text: "The yak is woolly."}}
	mustPut(t, s, a)

	for _, term := range []string{"zebra", "leopard", "stripes", "zoo"} {
		ps, err := s.Search(ctx, runnel.Query{Terms: []string{term}}, 10)
		if err != nil || len(ps) != 0 {
			t.Errorf("Search(%q) = %v, %v; want nothing", term, ps, err)
		}
	}
	ps, err := s.Search(ctx, runnel.Query{Terms: []string{"yak"}}, 10)
	if err != nil || len(ps) != 1 || ps[0].Text != "The yak is woolly." || ps[0].Position != 0 {
		t.Fatalf("Search(yak) = %+v, %v; want the new passage", ps, err)
	}
	var n int
	if err := s.read.QueryRow(`SELECT count(*) FROM passages`).Scan(&n); err != nil || n != 1 {
		t.Errorf("passages = %d, %v; want 1", n, err)
	}
	if ix := s.idx.Load(); ix.live != 1 {
		t.Errorf("index holds %d passages, want 1", ix.live)
	}
}

func TestPutBodyOnly(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "b", Title: "Body only", Body: "Nothing but a walrus."})
	a, err := s.Get(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	want := []runnel.Passage{{Slug: "b", Title: "Body only", Tags: []string{}, Text: "Nothing but a walrus."}}
	if !reflect.DeepEqual(a.Passages, want) {
		t.Errorf("Passages = %+v, want %+v", a.Passages, want)
	}
	ps, err := s.Search(ctx, runnel.Query{Terms: []string{"walrus"}}, 5)
	if err != nil || len(ps) != 1 {
		t.Errorf("Search(walrus) = %v, %v; want 1 passage", ps, err)
	}

	mustPut(t, s, &runnel.Article{Slug: "empty", Title: "Empty"})
	if a, err := s.Get(ctx, "empty"); err != nil || len(a.Passages) != 0 || a.Tags == nil {
		t.Errorf("Get(empty) = %+v, %v; want no passages and non-nil tags", a, err)
	}
}

func TestGetNotFound(t *testing.T) {
	s := mustOpen(t)
	_, err := s.Get(context.Background(), "nope")
	wantCode(t, err, runnel.ENOTFOUND)
}

func TestList(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for _, a := range []runnel.Article{
		{Slug: "old", Title: "Old", Date: day("2020-01-01"), Tags: []string{"go"}},
		{Slug: "new", Title: "New", Date: day("2024-06-01"), Tags: []string{"go", "web"}},
		{Slug: "mid-b", Title: "Mid B", Date: day("2022-01-01"), Tags: []string{"web"}},
		{Slug: "mid-a", Title: "Mid A", Date: day("2022-01-01")},
		{Slug: "undated", Title: "Undated", Tags: []string{"go"}},
		// An earlier instant written with a later-looking local time.
		{Slug: "tz", Title: "TZ", Date: time.Date(2024, 6, 1, 5, 0, 0, 0, time.FixedZone("", 10*3600))},
	} {
		a.Body = "body of " + a.Slug
		mustPut(t, s, &a)
	}
	slugs := func(page []runnel.Article) []string {
		var out []string
		for _, a := range page {
			out = append(out, a.Slug)
			if a.Body != "" {
				t.Errorf("List returned the body of %s", a.Slug)
			}
			if a.Tags == nil {
				t.Errorf("List returned nil tags for %s", a.Slug)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		opt   runnel.ListOptions
		want  []string
		total int
	}{
		{"all", runnel.ListOptions{}, []string{"new", "tz", "mid-a", "mid-b", "old", "undated"}, 6},
		{"first page", runnel.ListOptions{Limit: 2}, []string{"new", "tz"}, 6},
		{"second page", runnel.ListOptions{Limit: 2, Offset: 2}, []string{"mid-a", "mid-b"}, 6},
		{"past the end", runnel.ListOptions{Limit: 2, Offset: 10}, nil, 6},
		{"tag", runnel.ListOptions{Tag: "go"}, []string{"new", "old", "undated"}, 3},
		{"tag page", runnel.ListOptions{Tag: "go", Limit: 1, Offset: 1}, []string{"old"}, 3},
		{"tag exact", runnel.ListOptions{Tag: "Go"}, nil, 0},
		{"unknown tag", runnel.ListOptions{Tag: "rust"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, total, err := s.List(ctx, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := slugs(page); !reflect.DeepEqual(got, tt.want) || total != tt.total {
				t.Errorf("List(%+v) = %v, %d; want %v, %d", tt.opt, got, total, tt.want, tt.total)
			}
		})
	}

	page, _, err := s.List(ctx, runnel.ListOptions{Tag: "web", Limit: 1})
	if err != nil || len(page) != 1 || !reflect.DeepEqual(page[0].Tags, []string{"go", "web"}) {
		t.Errorf("List(web) = %+v, %v; want new with tags [go web]", page, err)
	}
	for _, opt := range []runnel.ListOptions{{Offset: -1}, {Limit: -1}} {
		_, _, err := s.List(ctx, opt)
		wantCode(t, err, runnel.EINVALID)
	}
}

func TestListLimits(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for i := range 130 {
		mustPut(t, s, &runnel.Article{Slug: fmt.Sprintf("a%03d", i), Title: fmt.Sprintf("A %03d", i)})
	}
	for _, tt := range []struct{ limit, want int }{{0, 20}, {5, 5}, {100, 100}, {1000, 100}} {
		page, total, err := s.List(ctx, runnel.ListOptions{Limit: tt.limit})
		if err != nil || len(page) != tt.want || total != 130 {
			t.Errorf("List(Limit: %d) = %d articles, total %d, %v; want %d, 130", tt.limit, len(page), total, err, tt.want)
		}
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	if tags, err := s.Tags(ctx); err != nil || tags == nil || len(tags) != 0 {
		t.Errorf("Tags of an empty store = %#v, %v; want empty", tags, err)
	}
	mustPut(t, s, &runnel.Article{Slug: "1", Title: "1", Tags: []string{"go", "web", "b"}})
	mustPut(t, s, &runnel.Article{Slug: "2", Title: "2", Tags: []string{"web", "a", "go"}})
	mustPut(t, s, &runnel.Article{Slug: "3", Title: "3", Tags: []string{"web"}})
	got, err := s.Tags(ctx)
	want := []runnel.TagCount{{Tag: "web", Count: 3}, {Tag: "go", Count: 2}, {Tag: "a", Count: 1}, {Tag: "b", Count: 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Tags = %v, %v; want %v", got, err, want)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "gone", Title: "Gone", Tags: []string{"ghost"}, Body: "A spectre haunts."})
	mustPut(t, s, &runnel.Article{Slug: "kept", Title: "Kept", Tags: []string{"ghost"}, Body: "A spectre stays."})
	if err := s.Delete(ctx, "gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx, "gone")
	wantCode(t, err, runnel.ENOTFOUND)
	wantCode(t, s.Delete(ctx, "gone"), runnel.ENOTFOUND)

	ps, err := s.Search(ctx, runnel.Query{Terms: []string{"spectre"}}, 10)
	if err != nil || len(ps) != 1 || ps[0].Slug != "kept" {
		t.Errorf("Search after Delete = %+v, %v; want only kept", ps, err)
	}
	if tags, err := s.Tags(ctx); err != nil || !reflect.DeepEqual(tags, []runnel.TagCount{{Tag: "ghost", Count: 1}}) {
		t.Errorf("Tags after Delete = %v, %v", tags, err)
	}
	var n int
	if err := s.read.QueryRow(`SELECT count(*) FROM passages`).Scan(&n); err != nil || n != 1 {
		t.Errorf("passages = %d, %v; want 1", n, err)
	}
	if ix := s.idx.Load(); ix.live != 1 {
		t.Errorf("index holds %d passages, want 1", ix.live)
	}
	// Deleting and putting again is a change, not a no-op.
	if res, err := s.Put(ctx, &runnel.Article{Slug: "gone", Title: "Gone", Tags: []string{"ghost"}, Body: "A spectre haunts."}); err != nil || res != runnel.PutAdded {
		t.Errorf("Put after Delete = %v, %v; want added", res, err)
	}
}

func TestSourcesUnder(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	sources := map[string]string{
		"a":      "docs/a.md",
		"b":      "docs/sub/b.md",
		"c":      "docs2/c.md",
		"d":      "other/d.md",
		"e":      "data/all.jsonl:12",
		"f":      "/abs/docs/f.md",
		"g":      "./docs/../docs/g.md",
		"nosrc":  "",
		"colons": "docs:x/h.md",
	}
	for slug, src := range sources {
		mustPut(t, s, &runnel.Article{Slug: slug, Title: slug, Source: src})
	}
	tests := []struct {
		roots []string
		want  []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"docs"}, []string{"a", "b", "g"}},
		{[]string{"docs/"}, []string{"a", "b", "g"}},
		{[]string{"./docs/sub"}, []string{"b"}},
		{[]string{"docs/a.md"}, []string{"a"}},
		{[]string{"doc"}, nil},
		{[]string{"data/all.jsonl"}, []string{"e"}},
		{[]string{"data"}, []string{"e"}},
		{[]string{"/abs"}, []string{"f"}},
		{[]string{"/"}, []string{"f"}},
		{[]string{"other", "docs2"}, []string{"c", "d"}},
		{[]string{"."}, []string{"a", "b", "c", "colons", "d", "e", "g"}},
	}
	for _, tt := range tests {
		got, err := s.SourcesUnder(ctx, tt.roots)
		if err != nil {
			t.Fatalf("SourcesUnder(%q): %v", tt.roots, err)
		}
		want := map[string]string{}
		for _, slug := range tt.want {
			want[slug] = sources[slug]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("SourcesUnder(%q) = %v, want %v", tt.roots, got, want)
		}
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runnel.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a := &runnel.Article{Slug: "a", Title: "Persistent", Body: "It stays."}
	mustPut(t, s, a)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s := mustOpenPath(t, path)
		if got, err := s.Get(ctx, "a"); err != nil || got.Title != "Persistent" {
			t.Fatalf("Get after reopening = %+v, %v", got, err)
		}
		if res, err := s.Put(ctx, a); err != nil || res != runnel.PutUnchanged {
			t.Errorf("Put of the same article after reopening = %v, %v; want unchanged", res, err)
		}
		ms, _ := migrations()
		var v int
		if err := s.read.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != len(ms) {
			t.Errorf("user_version = %d, %v; want %d", v, err, len(ms))
		}
		s.Close()
	}
}

func TestOpenNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runnel.db")
	mustOpenPath(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from the future succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v; want one that says the schema is newer", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := Open(ctx, path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?name#50%.db")
	s := mustOpenPath(t, path)
	mustPut(t, s, &runnel.Article{Slug: "a", Title: "A"})
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for name, db := range map[string]*sql.DB{"read": s.read, "write": s.rw} {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"foreign_keys": "1",
			"busy_timeout": "5000",
			"synchronous":  "1", // NORMAL
		} {
			var got string
			if err := db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
				t.Errorf("%s: PRAGMA %s = %q, %v; want %q", name, pragma, got, err, want)
			}
		}
	}
	if _, err := s.read.ExecContext(ctx, `DELETE FROM articles`); err == nil {
		t.Error("a reader connection could write")
	}
}

// TestConcurrentReadersDuringWrites runs searches, lists and gets while an
// import writes: WAL must let them all proceed without SQLITE_BUSY.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "seed", Title: "Seed", Tags: []string{"t0"}, Body: "socket seed"})

	const articles = 60
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 2 { // two writers, to check they queue instead of failing
		wg.Go(func() {
			for i := w; i < articles; i += 2 {
				a := &runnel.Article{
					Slug:  fmt.Sprintf("a%d", i),
					Title: fmt.Sprintf("Article %d", i),
					Tags:  []string{fmt.Sprintf("t%d", i%7)},
					Passages: []runnel.Passage{
						{Heading: "One", Text: fmt.Sprintf("socket number %d opens", i)},
						{Heading: "Two", Text: "then the socket closes"},
					},
				}
				if _, err := s.Put(ctx, a); err != nil {
					errs <- fmt.Errorf("Put: %w", err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	var searches [3]int
	for r := range len(searches) {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Search(ctx, runnel.Query{Terms: []string{"socket", "opens"}}, 8); err != nil {
					errs <- fmt.Errorf("Search: %w", err)
					return
				}
				if _, _, err := s.List(ctx, runnel.ListOptions{Tag: "t3"}); err != nil {
					errs <- fmt.Errorf("List: %w", err)
					return
				}
				if _, err := s.Get(ctx, "seed"); err != nil {
					errs <- fmt.Errorf("Get: %w", err)
					return
				}
				searches[r]++
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for r, n := range searches {
		if n == 0 {
			t.Errorf("reader %d never completed a search", r)
		}
	}
	_, total, err := s.List(ctx, runnel.ListOptions{})
	if err != nil || total != articles+1 {
		t.Errorf("List total = %d, %v; want %d", total, err, articles+1)
	}
}

func TestContextCanceled(t *testing.T) {
	s := mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Put(ctx, &runnel.Article{Slug: "a", Title: "A"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v; want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), "a"); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("Get after a canceled Put = %v; want ENOTFOUND", err)
	}
}
