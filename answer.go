package runnel

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Answerer is the answer pipeline: a question becomes the query, tags,
// titles and sources events, then the generator's tokens, then done.
type Answerer struct {
	Searcher  Searcher
	Generator Generator

	Passages int    // passages retrieved for the generator; default 8
	Articles int    // articles named in titles and sources, the only ones the generator reads; default 5
	Tags     int    // tags in the tags event; default 5
	BaseURL  string // prefix of source URLs; default "/articles/"

	// Rewriter, when set, rewrites a question asked after earlier turns
	// into a standalone one before the search; when nil, the Generator is
	// used if it is a Rewriter. A rewrite that fails or takes longer than
	// RewriteTimeout (default 10 s) is logged and the query is searched
	// as ParseConversation read it: a rewrite never fails an answer.
	Rewriter       Rewriter
	RewriteTimeout time.Duration
	// Logger receives what goes wrong without failing the answer (a
	// rewrite); nil means slog.Default().
	Logger *slog.Logger
}

// DefaultRewriteTimeout bounds a rewrite when Answerer.RewriteTimeout is 0.
const DefaultRewriteTimeout = 10 * time.Second

// Answer streams the answer to q through emit: query, tags, titles, sources,
// tokens, done. If emit fails (the client left) it stops at once and returns
// that error. Any other failure is returned without a terminal event: the
// transport reports it as an error event, because only the transport knows
// whether the stream has begun.
//
// Answer is Prepare and then Generate, in the goroutine that calls it.
func (a *Answerer) Answer(ctx context.Context, q Query, emit func(Event) error) error {
	g, err := a.Prepare(ctx, q, emit)
	if err != nil {
		return err
	}
	return g.Generate(ctx)
}

// A Generation is an answer whose query, tags, titles and sources are
// emitted, waiting for its generator: [Answerer.Prepare] returns it, and
// its Generate emits the tokens and done.
//
// The two halves may run in different goroutines. The preparation needs a
// deep stack (the search, the prompt), and a goroutine keeps the stack it
// grew to while it waits; a server that keeps many answers open starts
// each generation in a goroutine of its own, whose stack holds only what
// the generator needs while it waits.
type Generation struct {
	gen Generator
	// prompt is the generator's until Generate hands it over. It is kept
	// apart, not in the Generation, which lives as long as the answer:
	// the prompt's 120 bytes would stay with it.
	prompt *Prompt
	emit   func(Event) error
	failed error // the emit that failed, once one has
}

// Prepare emits the answer's query, tags, titles and sources through emit
// and returns what generates the rest. Its errors are Answer's.
func (a *Answerer) Prepare(ctx context.Context, q Query, emit func(Event) error) (*Generation, error) {
	if err := emit(Event{Type: EventQuery, Query: q.Text}); err != nil {
		return nil, err
	}
	sq := a.searchQuery(ctx, q)
	passages, err := a.Searcher.Search(ctx, sq, cmpOr(a.Passages, 8))
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	// The sources name every article the answer may draw on: the passages
	// of articles past the limit are not given to the generator.
	passages = listed(passages, cmpOr(a.Articles, 5))
	named, err := a.Searcher.TagsNamed(ctx, sq.TagNames())
	if err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	sources := a.sources(passages)
	titles := make([]string, len(sources))
	for i, s := range sources {
		titles[i] = s.Title
	}
	for _, e := range []Event{
		{Type: EventTags, Tags: rankTags(named, passages, cmpOr(a.Tags, 5))},
		{Type: EventTitles, Titles: titles},
		{Type: EventSources, Sources: sources},
	} {
		if err := emit(e); err != nil {
			return nil, err
		}
	}
	// The generator reads the question as asked, with the earlier turns,
	// and weighs the passages by the terms they were found by.
	g := &Generation{gen: a.Generator, emit: emit,
		prompt: &Prompt{Question: q.Text, Terms: sq.Terms, Passages: passages, History: q.History}}
	if tc, ok := a.Searcher.(TermCounter); ok {
		// After the sources: the counts cost the first token, not the
		// titles.
		if g.prompt.TermDocs, g.prompt.Docs, err = tc.CountTerms(ctx, sq.Terms); err != nil {
			return nil, fmt.Errorf("count terms: %w", err)
		}
	}
	return g, nil
}

// Generate runs the generator and emits its tokens and then done. A
// Generation is generated once.
func (g *Generation) Generate(ctx context.Context) error {
	// The generation keeps no hold on the prompt: the generator has it for
	// as long as it needs it, and its passages (their text) can go once it
	// has built its request.
	prompt := g.prompt
	g.prompt = nil
	done, err := g.gen.Generate(ctx, *prompt, g.token)
	if g.failed != nil {
		return g.failed
	}
	return g.end(ctx, done, err)
}

// token emits one token; after a failed emit it returns that failure again
// without emitting, for a generator that ignores it.
func (g *Generation) token(tok string) error {
	if g.failed != nil {
		return g.failed // the generator ignored a failed emit
	}
	if tok == "" {
		return nil
	}
	if err := g.emit(Event{Type: EventToken, Token: tok}); err != nil {
		g.failed = err
		return err
	}
	return nil
}

// end emits done after the generator returned, or returns its error. It
// is not inlined, so that Generate's frame, below the generator's for the
// whole answer, stays small.
//
//go:noinline
func (g *Generation) end(ctx context.Context, done Done, err error) error {
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if done.FinishReason == "" {
		done.FinishReason = FinishStop
	}
	return g.emit(Event{Type: EventDone, Done: &done})
}

// searchQuery returns the query to search for q: with earlier user turns
// and a Rewriter, the question rewritten to stand alone; otherwise (or if
// the rewrite fails) q as ParseConversation read it.
func (a *Answerer) searchQuery(ctx context.Context, q Query) Query {
	rw := a.Rewriter
	if rw == nil {
		rw, _ = a.Generator.(Rewriter)
	}
	if rw == nil || !slices.ContainsFunc(q.History, func(m Message) bool { return m.Role == RoleUser }) {
		return q
	}
	rctx, cancel := context.WithTimeout(ctx, time.Duration(cmpOr(int(a.RewriteTimeout), int(DefaultRewriteTimeout))))
	defer cancel()
	text, err := rw.Rewrite(rctx, q.History, q.Text)
	if err == nil {
		var rq Query
		if rq, err = ParseQuestion(text, 0); err == nil {
			rq.History = q.History
			return rq
		}
	}
	if ctx.Err() == nil {
		cmp.Or(a.Logger, slog.Default()).LogAttrs(ctx, slog.LevelWarn, "rewrite failed; searching by the follow-up rule",
			slog.String("question", q.Text), slog.Any("err", err))
	}
	return q
}

// listed returns the passages of the first max articles, in the order of
// each article's first passage, keeping the passages' order.
func listed(passages []Passage, max int) []Passage {
	var slugs []string
	out := passages[:0:0]
	for _, p := range passages {
		if !slices.Contains(slugs, p.Slug) {
			if len(slugs) == max {
				continue
			}
			slugs = append(slugs, p.Slug)
		}
		out = append(out, p)
	}
	return out
}

// sources returns one Source per article, in the order of each article's
// first passage (the search's best first).
func (a *Answerer) sources(passages []Passage) []Source {
	base := a.BaseURL
	if base == "" {
		base = "/articles/"
	}
	// The list is made at its length: a stream holds it for the whole
	// answer. There are a handful of articles, so looking back over those
	// seen costs less than a map.
	n := 0
	for i, p := range passages {
		if !slices.ContainsFunc(passages[:i], func(q Passage) bool { return q.Slug == p.Slug }) {
			n++
		}
	}
	out := make([]Source, 0, n)
	for _, p := range passages {
		if slices.ContainsFunc(out, func(s Source) bool { return s.Slug == p.Slug }) {
			continue
		}
		out = append(out, Source{
			Slug:    p.Slug,
			Title:   p.Title,
			URL:     sourceURL(base, p.Slug),
			Tags:    nonNil(p.Tags),
			Score:   roundScore(p.Score),
			Snippet: p.Snippet,
		})
	}
	return out
}

// rankTags orders tags by relevance: tags the question names first, then the
// tags of the retrieved passages weighted by their scores. It returns at most
// max tags.
func rankTags(named []string, passages []Passage, max int) []string {
	score := map[string]float64{}
	for _, t := range named {
		score[t] += 1e9 // a tag the user named outranks any inferred one
	}
	for _, p := range passages {
		w := p.Score
		if w <= 0 {
			w = 1e-6
		}
		for _, t := range p.Tags {
			score[t] += w
		}
	}
	tags := make([]string, 0, len(score))
	for t := range score {
		tags = append(tags, t)
	}
	slices.SortFunc(tags, func(x, y string) int {
		if score[x] != score[y] {
			if score[x] > score[y] {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	if len(tags) > max {
		// A copy at its length: the tags event is held for the whole
		// answer, and the list of every tag the passages carry is longer.
		tags = slices.Clone(tags[:max])
	}
	return tags
}

// roundScore keeps four significant digits: enough to compare sources,
// without the noise of a full float. Scores from small corpora can be tiny,
// so rounding to a fixed number of decimals would flatten them to zero.
func roundScore(x float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	return r
}

// sourceURLs keeps the URL of each article the answers named, by base
// and slug. A stream holds its sources for the whole answer, and each
// answer that named an article built its own copy of the same URL: at
// thousands of open streams, about 150 bytes of each. The cache is
// bounded, and starts again empty when it is full (a corpus of more
// articles than that, or one whose slugs change, builds some again).
var sourceURLs struct {
	sync.RWMutex
	m map[urlKey]string
}

type urlKey struct{ base, slug string }

// maxSourceURLs bounds sourceURLs.
const maxSourceURLs = 4096

// sourceURL is ArticleURL, from sourceURLs.
func sourceURL(base, slug string) string {
	k := urlKey{base, slug}
	sourceURLs.RLock()
	u, ok := sourceURLs.m[k]
	sourceURLs.RUnlock()
	if ok {
		return u
	}
	u = ArticleURL(base, slug)
	sourceURLs.Lock()
	if sourceURLs.m == nil || len(sourceURLs.m) >= maxSourceURLs {
		sourceURLs.m = make(map[urlKey]string)
	}
	sourceURLs.m[k] = u
	sourceURLs.Unlock()
	return u
}

// ArticleURL returns the URL of the article with the slug under base,
// escaping each segment of the slug.
func ArticleURL(base, slug string) string {
	parts := strings.Split(slug, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return base + strings.Join(parts, "/")
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
