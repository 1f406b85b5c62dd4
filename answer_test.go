package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/runnel/runnel"
)

// fakeSearcher returns canned passages and named tags and records how it
// was asked. Like a real store, it fails once ctx is done.
type fakeSearcher struct {
	passages []runnel.Passage
	named    []string
	err      error // returned by Search
	tagsErr  error // returned by TagsNamed

	searches int
	q        runnel.Query
	limit    int
	names    []string
}

var _ runnel.Searcher = (*fakeSearcher)(nil)

func (s *fakeSearcher) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	s.searches++
	s.q, s.limit = q, limit
	if s.err != nil {
		return nil, s.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.passages, nil
}

func (s *fakeSearcher) TagsNamed(ctx context.Context, names []string) ([]string, error) {
	s.names = names
	if s.tagsErr != nil {
		return nil, s.tagsErr
	}
	return s.named, ctx.Err()
}

// fakeGenerator emits canned tokens and returns done and err.
type fakeGenerator struct {
	tokens []string
	done   runnel.Done
	err    error

	// afterFirst, if set, runs after the first token is emitted.
	afterFirst func()
	// waitCtx makes the generator wait after the first token until ctx is
	// done, then return ctx.Err() as the Generator contract asks.
	waitCtx bool
	// ignoreEmitErr breaks the Generator contract: it keeps emitting after
	// emit fails.
	ignoreEmitErr bool

	calls   int
	prompt  runnel.Prompt
	emitErr error // the first error emit returned
}

var _ runnel.Generator = (*fakeGenerator)(nil)

func (g *fakeGenerator) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	g.calls++
	g.prompt = p
	for i, tok := range g.tokens {
		if err := emit(tok); err != nil {
			if g.emitErr == nil {
				g.emitErr = err
			}
			if !g.ignoreEmitErr {
				return runnel.Done{}, err
			}
		}
		if i == 0 && g.afterFirst != nil {
			g.afterFirst()
		}
		if i == 0 && g.waitCtx {
			<-ctx.Done()
			return runnel.Done{}, ctx.Err()
		}
	}
	return g.done, g.err
}

var errGone = errors.New("write: broken pipe")

// recorder is the emit callback. From event failAt on (counting from 0)
// emit fails with errGone, as a writer to a client that left does; a
// negative failAt never fails. With once, only event failAt fails.
type recorder struct {
	failAt int
	once   bool
	events []runnel.Event // every event emit was called with
}

func (r *recorder) emit(e runnel.Event) error {
	r.events = append(r.events, e)
	n := len(r.events) - 1
	if r.failAt >= 0 && (n == r.failAt || (n > r.failAt && !r.once)) {
		return errGone
	}
	return nil
}

// ndjson returns the events as the lines of a stream.
func ndjson(t *testing.T, events []runnel.Event) string {
	t.Helper()
	var b []byte
	for _, e := range events {
		var err error
		if b, err = e.AppendJSON(b); err != nil {
			t.Fatalf("AppendJSON(%+v) error = %v", e, err)
		}
		b = append(b, '\n')
	}
	return string(b)
}

func types(events []runnel.Event) []runnel.EventType {
	var out []runnel.EventType
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func find(events []runnel.Event, typ runnel.EventType) (runnel.Event, bool) {
	for _, e := range events {
		if e.Type == typ {
			return e, true
		}
	}
	return runnel.Event{}, false
}

func mustParse(t *testing.T, question string) runnel.Query {
	t.Helper()
	q, err := runnel.ParseQuestion(question, 0)
	if err != nil {
		t.Fatalf("ParseQuestion(%q) error = %v", question, err)
	}
	return q
}

// passage returns a passage of the article slug, titled after it.
func passage(slug string, score float64, tags ...string) runnel.Passage {
	return runnel.Passage{Slug: slug, Title: strings.ToUpper(slug), Tags: tags, Score: score, Snippet: "about " + slug}
}

func TestAnswer(t *testing.T) {
	q := mustParse(t, "what is web socket")
	s := &fakeSearcher{
		passages: []runnel.Passage{
			{Slug: "websocket", Title: "WebSocket", Tags: []string{"web-socket", "browser"}, Score: 12.3456, Snippet: "A WebSocket starts as HTTP."},
			{Slug: "websocket", Title: "WebSocket", Tags: []string{"web-socket", "browser"}, Score: 10, Snippet: "Either side may close."},
			{Slug: "sse", Title: "Server-Sent Events", Tags: []string{"http", "browser"}, Score: 5, Snippet: "One-way <stream>."},
			{Slug: "a b/c", Title: "Odd & slug", Score: 0.5},
		},
		named: []string{"web-socket"},
	}
	g := &fakeGenerator{tokens: []string{"WebSocket ", "", "is a protocol.\n", "Done."}, done: runnel.Done{ID: "req-1"}}
	a := &runnel.Answerer{Searcher: s, Generator: g}
	r := &recorder{failAt: -1}

	if err := a.Answer(context.Background(), q, r.emit); err != nil {
		t.Fatalf("Answer(%q) error = %v", q.Text, err)
	}

	want := `{"type":"query","data":"what is web socket?"}
{"type":"tags","data":["web-socket","browser","http"]}
{"type":"titles","data":["WebSocket","Server-Sent Events","Odd \u0026 slug"]}
{"type":"sources","data":[{"slug":"websocket","title":"WebSocket","url":"/articles/websocket","tags":["web-socket","browser"],"score":12.35,"snippet":"A WebSocket starts as HTTP."},{"slug":"sse","title":"Server-Sent Events","url":"/articles/sse","tags":["http","browser"],"score":5,"snippet":"One-way \u003cstream\u003e."},{"slug":"a b/c","title":"Odd \u0026 slug","url":"/articles/a%20b/c","tags":[],"score":0.5,"snippet":""}]}
{"type":"token","data":"WebSocket "}
{"type":"token","data":"is a protocol.\n"}
{"type":"token","data":"Done."}
{"type":"done","data":{"finish_reason":"stop","id":"req-1"}}
`
	if got := ndjson(t, r.events); got != want {
		t.Errorf("Answer(%q) streamed\n%s\nwant\n%s", q.Text, got, want)
	}

	if s.limit != 8 || s.q.Text != q.Text || !slices.Equal(s.q.Terms, q.Terms) {
		t.Errorf("Search(%+v, %d), want Search(%+v, 8)", s.q, s.limit, q)
	}
	for _, name := range []string{"web", "socket", "websocket"} {
		if !slices.Contains(s.names, name) {
			t.Errorf("TagsNamed(%q), want the names to include %q", s.names, name)
		}
	}
	if slices.Contains(s.names, "what") {
		t.Errorf("TagsNamed(%q), want no stop words", s.names)
	}
	if g.calls != 1 || g.prompt.Question != q.Text || !slices.Equal(g.prompt.Terms, q.Terms) || len(g.prompt.Passages) != len(s.passages) {
		t.Errorf("Generate called %d times with %+v, want once with the question, its terms and all %d passages", g.calls, g.prompt, len(s.passages))
	}
	for i := range g.prompt.Passages {
		if g.prompt.Passages[i].Slug != s.passages[i].Slug || g.prompt.Passages[i].Score != s.passages[i].Score {
			t.Errorf("Generate got passage %d = %+v, want %+v", i, g.prompt.Passages[i], s.passages[i])
		}
	}
}

// TestPrepareThenGenerate runs the two halves of an answer in different
// goroutines, as a server does: Prepare emits the events up to sources and
// leaves the generator alone; Generate emits the tokens and done.
func TestPrepareThenGenerate(t *testing.T) {
	s := &fakeSearcher{passages: []runnel.Passage{passage("a", 1, "x"), passage("b", 0.5, "y")}}
	g := &fakeGenerator{tokens: []string{"one ", "two"}}
	a := &runnel.Answerer{Searcher: s, Generator: g}
	r := &recorder{failAt: -1}
	gen, err := a.Prepare(context.Background(), mustParse(t, "websocket"), r.emit)
	if err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	want := []runnel.EventType{runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources}
	if got := types(r.events); !slices.Equal(got, want) || g.calls != 0 {
		t.Fatalf("Prepare emitted %v and called the generator %d times, want %v and no call", got, g.calls, want)
	}
	errc := make(chan error)
	go func() { errc <- gen.Generate(context.Background()) }()
	if err := <-errc; err != nil {
		t.Fatalf("Generate = %v", err)
	}
	want = append(want, runnel.EventToken, runnel.EventToken, runnel.EventDone)
	if got := types(r.events); !slices.Equal(got, want) || g.calls != 1 || len(g.prompt.Passages) != 2 {
		t.Errorf("after Generate: events %v, %d calls, %d passages; want %v, one call with both passages", got, g.calls, len(g.prompt.Passages), want)
	}
}

// TestGenerationLetsThePromptGo checks that a waiting generation does not
// keep its prompt alive: once the generator drops it, the passages it
// carried (their text, in a store's answer) can be collected while the
// generator waits for the rest of a long answer.
func TestGenerationLetsThePromptGo(t *testing.T) {
	passages := make(chan weak.Pointer[runnel.Passage])
	release := make(chan struct{})
	gen := runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		passages <- weak.Make(&p.Passages[0])
		p = runnel.Prompt{} // done with it, as a generator is once its request is sent
		<-release
		return runnel.Done{}, emit("late")
	})
	a := &runnel.Answerer{Searcher: &fakeSearcher{passages: []runnel.Passage{passage("a", 1, "x")}}, Generator: gen}
	r := &recorder{failAt: -1}
	g, err := a.Prepare(context.Background(), mustParse(t, "websocket"), r.emit)
	if err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	errc := make(chan error)
	go func() { errc <- g.Generate(context.Background()) }()
	wp := <-passages
	for range 3 {
		runtime.GC()
	}
	alive := wp.Value() != nil
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Generate = %v", err)
	}
	if alive {
		t.Error("the prompt's passages are still reachable while the generator waits without them")
	}
	runtime.KeepAlive(g)
}

func TestAnswerSources(t *testing.T) {
	tests := []struct {
		name        string
		answerer    runnel.Answerer
		passages    []runnel.Passage
		wantTitles  string
		wantSources string
	}{
		{
			name:        "none",
			wantTitles:  `{"type":"titles","data":[]}`,
			wantSources: `{"type":"sources","data":[]}`,
		},
		{
			name:        "one per article, in the order of its best passage",
			passages:    []runnel.Passage{passage("a", 3), passage("b", 2), passage("a", 1.5), passage("c", 1), passage("b", 0.5)},
			wantTitles:  `{"type":"titles","data":["A","B","C"]}`,
			wantSources: `{"type":"sources","data":[{"slug":"a","title":"A","url":"/articles/a","tags":[],"score":3,"snippet":"about a"},{"slug":"b","title":"B","url":"/articles/b","tags":[],"score":2,"snippet":"about b"},{"slug":"c","title":"C","url":"/articles/c","tags":[],"score":1,"snippet":"about c"}]}`,
		},
		{
			name:        "at most Articles",
			answerer:    runnel.Answerer{Articles: 2},
			passages:    []runnel.Passage{passage("a", 3), passage("a", 2.5), passage("a", 2.2), passage("b", 2), passage("c", 1)},
			wantTitles:  `{"type":"titles","data":["A","B"]}`,
			wantSources: `{"type":"sources","data":[{"slug":"a","title":"A","url":"/articles/a","tags":[],"score":3,"snippet":"about a"},{"slug":"b","title":"B","url":"/articles/b","tags":[],"score":2,"snippet":"about b"}]}`,
		},
		{
			name:       "at most 5 by default",
			passages:   []runnel.Passage{passage("a", 7), passage("b", 6), passage("c", 5), passage("d", 4), passage("e", 3), passage("f", 2), passage("g", 1)},
			wantTitles: `{"type":"titles","data":["A","B","C","D","E"]}`,
		},
		{
			name:        "score rounded, tags kept, slug escaped",
			passages:    []runnel.Passage{passage("a b/c?d", 12.34567, "x", "y")},
			wantTitles:  `{"type":"titles","data":["A B/C?D"]}`,
			wantSources: `{"type":"sources","data":[{"slug":"a b/c?d","title":"A B/C?D","url":"/articles/a%20b/c%3Fd","tags":["x","y"],"score":12.35,"snippet":"about a b/c?d"}]}`,
		},
		{
			name:        "scores to 4 significant digits",
			passages:    []runnel.Passage{passage("a", 123456.7), passage("b", 2.0/3), passage("c", 0.000123456), passage("d", -3.14159)},
			wantTitles:  `{"type":"titles","data":["A","B","C","D"]}`,
			wantSources: `{"type":"sources","data":[{"slug":"a","title":"A","url":"/articles/a","tags":[],"score":123500,"snippet":"about a"},{"slug":"b","title":"B","url":"/articles/b","tags":[],"score":0.6667,"snippet":"about b"},{"slug":"c","title":"C","url":"/articles/c","tags":[],"score":0.0001235,"snippet":"about c"},{"slug":"d","title":"D","url":"/articles/d","tags":[],"score":-3.142,"snippet":"about d"}]}`,
		},
		{
			name:        "BaseURL",
			answerer:    runnel.Answerer{BaseURL: "https://example.com/docs/"},
			passages:    []runnel.Passage{passage("ws", 1)},
			wantTitles:  `{"type":"titles","data":["WS"]}`,
			wantSources: `{"type":"sources","data":[{"slug":"ws","title":"WS","url":"https://example.com/docs/ws","tags":[],"score":1,"snippet":"about ws"}]}`,
		},
		{
			name:        "the same slug under the default base after BaseURL",
			passages:    []runnel.Passage{passage("ws", 1)},
			wantTitles:  `{"type":"titles","data":["WS"]}`,
			wantSources: `{"type":"sources","data":[{"slug":"ws","title":"WS","url":"/articles/ws","tags":[],"score":1,"snippet":"about ws"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.answerer
			a.Searcher = &fakeSearcher{passages: tt.passages}
			a.Generator = &fakeGenerator{}
			r := &recorder{failAt: -1}
			if err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit); err != nil {
				t.Fatalf("Answer error = %v", err)
			}
			titles, _ := find(r.events, runnel.EventTitles)
			sources, _ := find(r.events, runnel.EventSources)
			if got := strings.TrimSuffix(ndjson(t, []runnel.Event{titles}), "\n"); got != tt.wantTitles {
				t.Errorf("titles event = %s, want %s", got, tt.wantTitles)
			}
			if got := strings.TrimSuffix(ndjson(t, []runnel.Event{sources}), "\n"); tt.wantSources != "" && got != tt.wantSources {
				t.Errorf("sources event = %s, want %s", got, tt.wantSources)
			}
			if len(titles.Titles) != len(sources.Sources) {
				t.Fatalf("%d titles and %d sources, want as many", len(titles.Titles), len(sources.Sources))
			}
			for i, src := range sources.Sources {
				if titles.Titles[i] != src.Title {
					t.Errorf("titles[%d] = %q, sources[%d].Title = %q, want the same", i, titles.Titles[i], i, src.Title)
				}
			}
		})
	}
}

// TestAnswerListsWhatItReads checks that the generator is given the
// passages of the listed articles only, so that an answer never quotes an
// article the client was not told about.
func TestAnswerListsWhatItReads(t *testing.T) {
	ps := []runnel.Passage{passage("a", 9), passage("b", 8), passage("a", 7), passage("c", 6),
		passage("d", 5), passage("b", 4), passage("e", 3), passage("f", 2)}
	for _, c := range []struct {
		articles int
		want     string // the slugs of the passages the generator reads
	}{
		{0, "a b a c d b e"}, // 5 articles by default
		{2, "a b a b"},
		{6, "a b a c d b e f"},
	} {
		g := &fakeGenerator{}
		a := runnel.Answerer{Searcher: &fakeSearcher{passages: ps}, Generator: g, Articles: c.articles}
		r := &recorder{failAt: -1}
		if err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit); err != nil {
			t.Fatal(err)
		}
		var read, listed []string
		for _, p := range g.prompt.Passages {
			read = append(read, p.Slug)
		}
		sources, _ := find(r.events, runnel.EventSources)
		for _, s := range sources.Sources {
			listed = append(listed, s.Slug)
		}
		if got := strings.Join(read, " "); got != c.want {
			t.Errorf("Articles %d: generator read %q, want %q", c.articles, got, c.want)
		}
		for _, slug := range read {
			if !slices.Contains(listed, slug) {
				t.Errorf("Articles %d: generator read %s, which the sources %q do not list", c.articles, slug, listed)
			}
		}
	}
}

// countingSearcher is a fakeSearcher that counts terms.
type countingSearcher struct {
	fakeSearcher
	docs  []int
	total int
	err   error
	after bool // whether the sources were emitted before CountTerms ran
	r     *recorder
}

func (s *countingSearcher) CountTerms(ctx context.Context, terms []string) ([]int, int, error) {
	_, s.after = find(s.r.events, runnel.EventSources)
	return s.docs, s.total, s.err
}

func TestAnswerTermCounts(t *testing.T) {
	r := &recorder{failAt: -1}
	s := &countingSearcher{fakeSearcher: fakeSearcher{passages: []runnel.Passage{passage("a", 1)}}, docs: []int{7, 0}, total: 90, r: r}
	g := &fakeGenerator{}
	a := runnel.Answerer{Searcher: s, Generator: g}
	if err := a.Answer(context.Background(), mustParse(t, "websocket close"), r.emit); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.prompt.TermDocs, []int{7, 0}) || g.prompt.Docs != 90 {
		t.Errorf("prompt counts = %v of %d, want [7 0] of 90", g.prompt.TermDocs, g.prompt.Docs)
	}
	if !s.after {
		t.Error("terms counted before the sources were emitted; the counts should not delay the titles")
	}
	// A failure to count is the store's failure: no answer from half a prompt.
	r = &recorder{failAt: -1}
	s = &countingSearcher{fakeSearcher: fakeSearcher{passages: []runnel.Passage{passage("a", 1)}}, err: errors.New("disk gone"), r: r}
	a = runnel.Answerer{Searcher: s, Generator: &fakeGenerator{}}
	if err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("Answer error = %v, want the count's", err)
	}
}

func TestAnswerTags(t *testing.T) {
	tests := []struct {
		name     string
		answerer runnel.Answerer
		named    []string
		passages []runnel.Passage
		want     []string
	}{
		{"none", runnel.Answerer{}, nil, []runnel.Passage{passage("a", 1)}, []string{}},
		{
			"named tag beats inferred tags",
			runnel.Answerer{}, []string{"websocket"},
			[]runnel.Passage{passage("a", 100, "browser", "http"), passage("b", 0.1, "websocket")},
			[]string{"websocket", "browser", "http"},
		},
		{
			"named tag of no passage still first",
			runnel.Answerer{}, []string{"rfc6455"},
			[]runnel.Passage{passage("a", 100, "browser")},
			[]string{"rfc6455", "browser"},
		},
		{
			"named tags ordered by their passages",
			runnel.Answerer{}, []string{"a", "b"},
			[]runnel.Passage{passage("x", 2, "b"), passage("y", 9, "z")},
			[]string{"b", "a", "z"},
		},
		{
			"inferred tags by summed score",
			runnel.Answerer{}, nil,
			[]runnel.Passage{passage("a", 3, "x", "y"), passage("b", 2, "y"), passage("c", 4, "z")},
			[]string{"y", "z", "x"},
		},
		{
			"tags of the listed articles only",
			runnel.Answerer{Articles: 1}, nil,
			[]runnel.Passage{passage("a", 1, "x"), passage("b", 5, "y")},
			[]string{"x"},
		},
		{
			"ties in name order",
			runnel.Answerer{}, nil,
			[]runnel.Passage{passage("a", 1, "c", "a", "b")},
			[]string{"a", "b", "c"},
		},
		{
			"zero and negative scores still count",
			runnel.Answerer{}, nil,
			[]runnel.Passage{passage("a", 0, "x"), passage("b", -5, "y"), passage("c", 0.5, "z")},
			[]string{"z", "x", "y"},
		},
		{
			"at most Tags",
			runnel.Answerer{Tags: 2}, []string{"n"},
			[]runnel.Passage{passage("a", 3, "x", "y", "z")},
			[]string{"n", "x"},
		},
		{
			"at most 5 by default",
			runnel.Answerer{}, nil,
			[]runnel.Passage{passage("a", 1, "t1", "t2", "t3", "t4", "t5", "t6", "t7")},
			[]string{"t1", "t2", "t3", "t4", "t5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.answerer
			a.Searcher = &fakeSearcher{passages: tt.passages, named: tt.named}
			a.Generator = &fakeGenerator{}
			r := &recorder{failAt: -1}
			if err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit); err != nil {
				t.Fatalf("Answer error = %v", err)
			}
			tags, ok := find(r.events, runnel.EventTags)
			if !ok {
				t.Fatalf("Answer streamed %v, want a tags event", types(r.events))
			}
			if tags.Tags == nil || !slices.Equal(tags.Tags, tt.want) {
				t.Errorf("tags for named %q and passages %v = %#v, want %#v", tt.named, tt.passages, tags.Tags, tt.want)
			}
		})
	}
}

func TestAnswerSearchLimit(t *testing.T) {
	for _, tt := range []struct {
		passages, want int
	}{{0, 8}, {-1, 8}, {3, 3}, {50, 50}} {
		s := &fakeSearcher{}
		a := &runnel.Answerer{Searcher: s, Generator: &fakeGenerator{}, Passages: tt.passages}
		if err := a.Answer(context.Background(), mustParse(t, "websocket"), (&recorder{failAt: -1}).emit); err != nil {
			t.Fatalf("Answer error = %v", err)
		}
		if s.limit != tt.want {
			t.Errorf("Answerer{Passages: %d} searched with limit %d, want %d", tt.passages, s.limit, tt.want)
		}
	}
}

func TestAnswerEmitError(t *testing.T) {
	all := []runnel.EventType{
		runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources,
		runnel.EventToken, runnel.EventToken, runnel.EventDone,
	}
	for failAt, typ := range all {
		t.Run(fmt.Sprintf("%d_%s", failAt, typ), func(t *testing.T) {
			s := &fakeSearcher{passages: []runnel.Passage{passage("a", 1, "x")}}
			g := &fakeGenerator{tokens: []string{"one ", "two"}}
			a := &runnel.Answerer{Searcher: s, Generator: g}
			r := &recorder{failAt: failAt}

			err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit)
			if err != errGone {
				t.Errorf("Answer with emit failing at event %d = %v, want the emit error %v itself", failAt, err, errGone)
			}
			if got, want := types(r.events), all[:failAt+1]; !slices.Equal(got, want) {
				t.Errorf("Answer with emit failing at event %d emitted %v, want %v and nothing after", failAt, got, want)
			}
			if failAt == 0 && s.searches != 0 {
				t.Errorf("Search called %d times after the query event failed, want 0", s.searches)
			}
			if failAt <= 3 && g.calls != 0 {
				t.Errorf("Generate called %d times after event %d failed, want 0", g.calls, failAt)
			}
			if (failAt == 4 || failAt == 5) && g.emitErr != errGone {
				t.Errorf("generator's emit returned %v, want %v", g.emitErr, errGone)
			}
		})
	}
}

// TestAnswerEmitErrorGeneratorKeepsGoing checks that Answer stops at once
// when emit fails even if the generator, breaking its contract, ignores the
// error and keeps emitting tokens.
func TestAnswerEmitErrorGeneratorKeepsGoing(t *testing.T) {
	for _, once := range []bool{false, true} {
		t.Run(map[bool]string{false: "emit keeps failing", true: "emit fails once"}[once], func(t *testing.T) {
			g := &fakeGenerator{tokens: []string{"one ", "two ", "three"}, ignoreEmitErr: true}
			a := &runnel.Answerer{Searcher: &fakeSearcher{passages: []runnel.Passage{passage("a", 1)}}, Generator: g}
			r := &recorder{failAt: 4, once: once} // the first token

			err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit)
			if err != errGone {
				t.Errorf("Answer = %v, want the emit error %v", err, errGone)
			}
			if len(r.events) != 5 {
				t.Errorf("emit called with %v, want nothing after the failed token", types(r.events))
			}
		})
	}
}

func TestAnswerSearchError(t *testing.T) {
	errDisk := errors.New("disk I/O error")
	invalid := runnel.Errorf(runnel.EINVALID, "The question has no words to search for.")
	tests := []struct {
		name       string
		s          *fakeSearcher
		wantPrefix string
		wantErr    error
	}{
		{"search", &fakeSearcher{err: errDisk}, "search: ", errDisk},
		{"search *Error", &fakeSearcher{err: invalid}, "search: ", invalid},
		{"tags", &fakeSearcher{passages: []runnel.Passage{passage("a", 1)}, tagsErr: errDisk}, "tags: ", errDisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGenerator{tokens: []string{"x"}}
			a := &runnel.Answerer{Searcher: tt.s, Generator: g}
			r := &recorder{failAt: -1}

			err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit)
			if !errors.Is(err, tt.wantErr) || err == tt.wantErr || !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Errorf("Answer = %v, want %v wrapped with %q", err, tt.wantErr, tt.wantPrefix)
			}
			if got, want := runnel.ErrorCode(err), runnel.ErrorCode(tt.wantErr); got != want {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, got, want)
			}
			if got := types(r.events); !slices.Equal(got, []runnel.EventType{runnel.EventQuery}) {
				t.Errorf("Answer emitted %v, want only the query event", got)
			}
			if g.calls != 0 {
				t.Errorf("Generate called %d times after a search error, want 0", g.calls)
			}
		})
	}
}

func TestAnswerGeneratorError(t *testing.T) {
	upstream := &runnel.Error{Code: runnel.EUPSTREAM, Message: "The model did not answer.", Retryable: true}
	g := &fakeGenerator{tokens: []string{"partial "}, err: upstream, done: runnel.Done{FinishReason: runnel.FinishStop}}
	a := &runnel.Answerer{Searcher: &fakeSearcher{passages: []runnel.Passage{passage("a", 1)}}, Generator: g}
	r := &recorder{failAt: -1}

	err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit)
	if !errors.Is(err, upstream) || !strings.HasPrefix(err.Error(), "generate: ") {
		t.Errorf("Answer = %v, want %v wrapped with %q", err, upstream, "generate: ")
	}
	if e := runnel.AsError(err); e != upstream {
		t.Errorf("AsError(%v) = %#v, want the generator's %#v", err, e, upstream)
	}
	want := []runnel.EventType{runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources, runnel.EventToken}
	if got := types(r.events); !slices.Equal(got, want) {
		t.Errorf("Answer emitted %v, want %v and no terminal event", got, want)
	}
}

func TestAnswerDone(t *testing.T) {
	usage := &runnel.Usage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120}
	tests := []struct {
		name string
		done runnel.Done
		want runnel.Done
	}{
		{"empty finish reason becomes stop", runnel.Done{}, runnel.Done{FinishReason: runnel.FinishStop}},
		{"stop", runnel.Done{FinishReason: runnel.FinishStop}, runnel.Done{FinishReason: runnel.FinishStop}},
		{"length", runnel.Done{FinishReason: runnel.FinishLength}, runnel.Done{FinishReason: runnel.FinishLength}},
		{"usage and id kept", runnel.Done{Usage: usage, ID: "r1"}, runnel.Done{FinishReason: runnel.FinishStop, Usage: usage, ID: "r1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &runnel.Answerer{Searcher: &fakeSearcher{}, Generator: &fakeGenerator{tokens: []string{"x"}, done: tt.done}}
			r := &recorder{failAt: -1}
			if err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit); err != nil {
				t.Fatalf("Answer error = %v", err)
			}
			last := r.events[len(r.events)-1]
			if last.Type != runnel.EventDone || last.Done == nil || *last.Done != tt.want {
				t.Errorf("last event = %+v (done %+v), want done %+v", last, last.Done, tt.want)
			}
			if n := len(r.events); n != 6 {
				t.Errorf("Answer emitted %v, want 6 events", types(r.events))
			}
		})
	}
}

func TestAnswerEmptyTokens(t *testing.T) {
	tokens := []string{"", "Web", "", "", "Socket", " ", ""}
	a := &runnel.Answerer{Searcher: &fakeSearcher{}, Generator: &fakeGenerator{tokens: tokens}}
	r := &recorder{failAt: -1}
	if err := a.Answer(context.Background(), mustParse(t, "websocket"), r.emit); err != nil {
		t.Fatalf("Answer error = %v", err)
	}
	var got []string
	for _, e := range r.events {
		if e.Type == runnel.EventToken {
			got = append(got, e.Token)
		}
	}
	if want := []string{"Web", "Socket", " "}; !slices.Equal(got, want) {
		t.Errorf("generator tokens %q gave token events %q, want %q", tokens, got, want)
	}
}

func TestAnswerContext(t *testing.T) {
	before := []runnel.EventType{runnel.EventQuery, runnel.EventTags, runnel.EventTitles, runnel.EventSources, runnel.EventToken}
	tests := []struct {
		name     string
		setup    func(g *fakeGenerator) (context.Context, context.CancelFunc)
		wantErr  error
		wantCode string
		want     []runnel.EventType
	}{
		{
			name: "canceled before the answer",
			setup: func(*fakeGenerator) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled, wantCode: runnel.ECANCELED,
			want: []runnel.EventType{runnel.EventQuery},
		},
		{
			name: "canceled while generating, generator returns ctx.Err()",
			setup: func(g *fakeGenerator) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				g.afterFirst, g.waitCtx = cancel, true
				return ctx, cancel
			},
			wantErr: context.Canceled, wantCode: runnel.ECANCELED,
			want: before,
		},
		{
			name: "canceled while generating, generator ignores ctx",
			setup: func(g *fakeGenerator) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				g.afterFirst = cancel
				return ctx, cancel
			},
			wantErr: context.Canceled, wantCode: runnel.ECANCELED,
			want: append(slices.Clone(before), runnel.EventToken),
		},
		{
			name: "deadline while generating",
			setup: func(g *fakeGenerator) (context.Context, context.CancelFunc) {
				g.waitCtx = true
				return context.WithTimeout(context.Background(), 100*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded, wantCode: runnel.ETIMEOUT,
			want: before,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGenerator{tokens: []string{"one ", "two"}}
			ctx, cancel := tt.setup(g)
			defer cancel()
			a := &runnel.Answerer{Searcher: &fakeSearcher{passages: []runnel.Passage{passage("a", 1)}}, Generator: g}
			r := &recorder{failAt: -1}

			err := a.Answer(ctx, mustParse(t, "websocket"), r.emit)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Answer = %v, want %v", err, tt.wantErr)
			}
			if got := runnel.ErrorCode(err); got != tt.wantCode {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, got, tt.wantCode)
			}
			if got := types(r.events); !slices.Equal(got, tt.want) {
				t.Errorf("Answer emitted %v, want %v and no done", got, tt.want)
			}
		})
	}
}

func TestArticleURL(t *testing.T) {
	tests := []struct {
		base, slug, want string
	}{
		{"/articles/", "websocket", "/articles/websocket"},
		{"/articles/", "a b/c", "/articles/a%20b/c"},
		{"/articles/", "go/2024/ranges", "/articles/go/2024/ranges"},
		{"/articles/", "q?x#y", "/articles/q%3Fx%23y"},
		{"/articles/", "100%", "/articles/100%25"},
		{"/articles/", "füße", "/articles/f%C3%BC%C3%9Fe"},
		{"https://example.com/a/", "x y", "https://example.com/a/x%20y"},
	}
	for _, tt := range tests {
		t.Run(tt.slug, func(t *testing.T) {
			if got := runnel.ArticleURL(tt.base, tt.slug); got != tt.want {
				t.Errorf("ArticleURL(%q, %q) = %q, want %q", tt.base, tt.slug, got, tt.want)
			}
		})
	}
}
