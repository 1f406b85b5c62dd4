package http_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
	"net/http/httptest"
)

// memStore is an in-memory runnel.Store for the transport tests: it matches
// passages by plain word overlap, enough to drive the pipeline.
type memStore struct {
	mu       sync.Mutex
	articles map[string]*runnel.Article
}

var _ runnel.Store = (*memStore)(nil)

func newMemStore(articles ...runnel.Article) *memStore {
	s := &memStore{articles: map[string]*runnel.Article{}}
	for _, a := range articles {
		s.Put(context.Background(), &a)
	}
	return s
}

func (s *memStore) Put(_ context.Context, a *runnel.Article) (runnel.PutResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *a
	s.articles[a.Slug] = &c
	return runnel.PutAdded, nil
}

func (s *memStore) Get(_ context.Context, slug string) (*runnel.Article, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.articles[slug]
	if !ok {
		return nil, runnel.Errorf(runnel.ENOTFOUND, "No article %q.", slug)
	}
	c := *a
	return &c, nil
}

func (s *memStore) sorted(tag string) []runnel.Article {
	var out []runnel.Article
	for _, a := range s.articles {
		if tag == "" || slices.Contains(a.Tags, tag) {
			c := *a
			c.Body = ""
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b runnel.Article) int { return strings.Compare(a.Slug, b.Slug) })
	return out
}

func (s *memStore) List(_ context.Context, opt runnel.ListOptions) ([]runnel.Article, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.sorted(opt.Tag)
	lo := min(opt.Offset, len(all))
	hi := min(lo+max(opt.Limit, 1), len(all))
	return all[lo:hi], len(all), nil
}

func (s *memStore) Tags(context.Context) ([]runnel.TagCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{}
	for _, a := range s.articles {
		for _, t := range a.Tags {
			n[t]++
		}
	}
	var out []runnel.TagCount
	for t, c := range n {
		out = append(out, runnel.TagCount{Tag: t, Count: c})
	}
	slices.SortFunc(out, func(a, b runnel.TagCount) int { return strings.Compare(a.Tag, b.Tag) })
	return out, nil
}

func (s *memStore) Delete(_ context.Context, slug string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.articles, slug)
	return nil
}

func (s *memStore) SourcesUnder(context.Context, []string) (map[string]string, error) {
	return nil, nil
}

func (s *memStore) Search(_ context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []runnel.Passage
	for _, a := range s.sorted("") {
		text := strings.ToLower(a.Title + " " + s.articles[a.Slug].Body)
		score := 0.0
		for _, t := range q.Terms {
			score += float64(strings.Count(text, t))
		}
		if score > 0 {
			out = append(out, runnel.Passage{Slug: a.Slug, Title: a.Title, Tags: a.Tags,
				Text: s.articles[a.Slug].Body, Score: score, Snippet: a.Title})
		}
	}
	slices.SortStableFunc(out, func(a, b runnel.Passage) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return out[:min(limit, len(out))], nil
}

func (s *memStore) TagsNamed(_ context.Context, names []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, a := range s.articles {
		for _, t := range a.Tags {
			if slices.Contains(names, runnel.NormalizeTag(t)) && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

var testArticles = []runnel.Article{
	{Slug: "websocket", Title: "WebSockets in practice", Tags: []string{"web-socket", "streaming"},
		Body: "A WebSocket is a full-duplex channel over one TCP connection."},
	{Slug: "sse", Title: "Server-Sent Events", Tags: []string{"sse", "streaming"},
		Body: "Server-Sent Events stream text from server to browser; unlike a websocket they flow one way."},
	{Slug: "dns", Title: "DNS resolution", Tags: []string{"dns"},
		Body: "DNS turns names into addresses."},
}

// words is a generator that emits the given tokens, one by one.
func words(tokens ...string) runnel.Generator {
	return runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		for _, t := range tokens {
			if err := emit(t); err != nil {
				return runnel.Done{}, err
			}
		}
		return runnel.Done{FinishReason: runnel.FinishStop}, nil
	})
}

// newServer starts a test server with gen as the generator; opt may adjust
// the Server before it starts.
func newServer(t testing.TB, gen runnel.Generator, opt ...func(*rhttp.Server)) (*rhttp.Server, *httptest.Server) {
	t.Helper()
	store := newMemStore(testArticles...)
	s := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: gen},
		Store:    store,
		Runs:     memory.New(memory.Options{}),
	}
	for _, o := range opt {
		o(s)
	}
	s.Runs = sharedRuns(t, s.Runs)
	testParking(s)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// collect asks question and returns the events the client passed on.
// runServer serves s with Run on a loopback port (its streams parked as
// testParking says) until stop, and returns the address and what Run
// returns.
func runServer(t *testing.T, s *rhttp.Server) (addr string, stop context.CancelFunc, ran <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	testParking(s)
	go func() { errc <- s.Run(ctx, ln) }()
	return ln.Addr().String(), stop, errc
}

// ranClean checks that Run returned nil, soon after its shutdown began.
func ranClean(t *testing.T, ran <-chan error) {
	t.Helper()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
}

func collect(t *testing.T, url, question string) ([]runnel.Event, error) {
	t.Helper()
	var got []runnel.Event
	err := rhttp.NewClient(url).Ask(t.Context(), question, func(e runnel.Event) error {
		got = append(got, e)
		return nil
	})
	return got, err
}

func types(events []runnel.Event) []runnel.EventType {
	out := make([]runnel.EventType, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}
