package sqlite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/runnel/runnel"
)

// Search limits.
const (
	defaultSearchLimit = 10
	maxSearchLimit     = 100

	// perArticle is how many passages one article may contribute while
	// others still have matches, so that a long article on the subject
	// leaves room for the next best articles.
	perArticle = 3

	// candidatesPer is how many ranked passages are kept per passage
	// returned: enough to fill the slots that perArticle turns down.
	candidatesPer = 10

	// maxTagNames bounds the names a question may give tags by.
	maxTagNames = 200

	// maxQueryWords bounds the words a search looks up; runnel.ParseQuestion
	// gives at most 32 terms, and a CJK term gives a word per pair of
	// characters.
	maxQueryWords = 64
)

// Ranking weighs the parts of a passage's score. A word of the question
// in the article's title or a tag says what the article is about; the
// same word once in a body says little.
type Ranking struct {
	// Field weights of the BM25 score, for a question word in the
	// article's title, the passage's heading, the article's tags, its
	// description and keywords, and the passage's text. Tags count only
	// for an article with a tag the question names (runnel.TagCandidates:
	// exactly, or as its words joined): the index stems tags like the rest,
	// and "generating" must not find the tag "general".
	Title, Heading, Tags, Meta, Body float64
	// TitleBoost multiplies the score of a passage whose article's title
	// the question names in full ("what is websocket?" and the article
	// "WebSocket", not "WebSocket vs SSE"), scaled by the share of the
	// question's terms the title holds: a one-word title such as
	// "Overview" names little of "overview of docker networking".
	TitleBoost float64
	// Definition multiplies the score of a passage that opens by defining
	// what the question asks to define ("what is a WebSocket?" and "A
	// WebSocket is ..."; define.go). 0 or 1 leaves it out.
	Definition float64
}

// DefaultRanking is the ranking a new Store uses, tuned on the labelled
// questions of make eval (docs/quality.md).
var DefaultRanking = Ranking{Title: 10, Heading: 4, Tags: 8, Meta: 2, Body: 1, TitleBoost: 2, Definition: 1.5}

// SetRanking makes the store rank searches by r from now on. It is safe to
// call while searches run.
func (s *Store) SetRanking(r Ranking) { s.ranking.Store(&r) }

func (s *Store) rankingNow() Ranking {
	if r := s.ranking.Load(); r != nil {
		return *r
	}
	return DefaultRanking
}

// titleShare returns the share of terms that a title (its words) holds
// when every content word of the title is among terms (a plural s aside),
// and 0 when one is not: then the title is not the question's subject.
func titleShare(words []string, terms []string) float64 {
	n := 0
	for _, w := range words {
		if runnel.IsStopWord(w) {
			continue
		}
		n++
		if !slices.ContainsFunc(terms, func(t string) bool { return sameWord(w, t) }) {
			return 0
		}
	}
	if n == 0 || len(terms) == 0 {
		return 0
	}
	return min(1, float64(n)/float64(len(terms)))
}

// sameWord reports whether a and b are the same word, or one is the other
// with an s.
func sameWord(a, b string) bool {
	plural := func(w, s string) bool { return len(w) == len(s)+1 && w[len(s)] == 's' && w[:len(s)] == s }
	return a == b || plural(b, a) || plural(a, b)
}

// queryWords returns the words the index looks up for terms, folded as the
// index folds them: a term's words (the pairs of characters of a CJK
// term), a version number whole. At most maxQueryWords, no duplicates.
func queryWords(terms []string) []string {
	var out []string
	add := func(w string) {
		if w != "" && len(out) < maxQueryWords && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	for _, t := range terms {
		t = strings.ToValidUTF8(t, " ")
		if runnel.IsVersion(t) {
			add(fold(t))
			continue
		}
		words(t, add)
	}
	return out
}

// wordWeights returns the weight of each of qwords: the largest weight
// (Query.Weight) of a term of q that yields it. It returns nil when q
// weighs every term alike.
func wordWeights(q runnel.Query, qwords []string) []float64 {
	if q.Weights == nil {
		return nil
	}
	w := make([]float64, len(qwords))
	for i, t := range q.Terms {
		for _, qw := range queryWords([]string{t}) {
			if j := slices.Index(qwords, qw); j >= 0 {
				w[j] = max(w[j], q.Weight(i))
			}
		}
	}
	return w
}

// Search returns up to limit passages that match any of q.Terms, best first,
// each term's BM25 weighted by q.Weights when it has them. A limit of 0 or less means 10, and more than 100 means 100. No article
// contributes more than three passages unless fewer than limit passages
// would come back otherwise. Score is the BM25 relevance (positive, higher
// is better); Snippet is about 24 words of the passage around the matches,
// plain text with "..." where it cuts.
func (s *Store) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	qwords := queryWords(q.Terms)
	if len(qwords) == 0 {
		return nil, runnel.Errorf(runnel.EINVALID, "The question has no words to search for.")
	}
	switch {
	case limit <= 0:
		limit = defaultSearchLimit
	case limit > maxSearchLimit:
		limit = maxSearchLimit
	}
	// A search is all CPU, a millisecond or so of it, and a crowd of them
	// at once (a thousand questions in a second) would share the cores
	// with every open stream's writes: first bytes and tokens would wait
	// behind searches. So searches take turns, one a core, and each first
	// yields once, letting what is ready to run (writes of the streams
	// already open, new requests' first bytes) go before it.
	select {
	case s.turns <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	runtime.Gosched()
	ps, err := s.searchApart(ctx, qwords, q, limit)
	<-s.turns
	if err != nil {
		return nil, fmt.Errorf("sqlite: search %q: %w", q.Terms, err)
	}
	return ps, nil
}

// hit is a ranked passage.
type hit struct {
	doc           uint32
	id            int64
	art           *artInfo
	heading, text string
	position      int
	score         float64
}

// searchApart runs search on one of the store's search goroutines and
// waits for it. A search needs a deep stack (SQLite's, for the index's
// catch-up, and the ranking's), and a goroutine's stack keeps the size it
// grew to until a collection finds it mostly unused: run in the
// question's goroutine, which then waits for its generator for the rest
// of the answer, the search would leave every open stream holding 16 KiB
// of stack or more instead of 8 (docs/design.md, "Searches run apart").
// The search goroutines keep their stacks from one search to the next;
// there are as many as searches may run at once (turns), started as they
// are first needed, and they end when the store closes.
func (s *Store) searchApart(ctx context.Context, qwords []string, q runnel.Query, limit int) ([]runnel.Passage, error) {
	j := &searchJob{ctx: ctx, qwords: qwords, q: q, limit: limit, done: make(chan struct{})}
	select {
	case s.searches <- j:
	default:
		if s.searchers.Add(1) <= int32(cap(s.turns)) {
			go s.searcher(j)
		} else {
			s.searchers.Add(-1)
			select {
			case s.searches <- j: // one is about to be free: the caller holds a turn
			case <-s.closed:
				return nil, errors.New("the store is closed")
			}
		}
	}
	<-j.done
	if j.panic != "" {
		panic("sqlite: search: " + j.panic)
	}
	return j.ps, j.err
}

// searchJob is one search for a search goroutine.
type searchJob struct {
	ctx    context.Context
	qwords []string
	q      runnel.Query
	limit  int
	done   chan struct{}

	ps    []runnel.Passage
	err   error
	panic string // a panic in the search, with its stack, panicked again by searchApart
}

// searcher runs j and the searches that come after it, until the store
// closes.
func (s *Store) searcher(j *searchJob) {
	defer s.searchers.Add(-1)
	for {
		s.run(j)
		select {
		case j = <-s.searches:
		case <-s.closed:
			return
		}
	}
}

// run runs one search job; a panic becomes the job's, not the process's.
func (s *Store) run(j *searchJob) {
	defer close(j.done)
	defer func() {
		if v := recover(); v != nil {
			j.panic = fmt.Sprintf("%v\n\n%s", v, debug.Stack())
		}
	}()
	j.ps, j.err = s.search(j.ctx, j.qwords, j.q, j.limit)
}

func (s *Store) search(ctx context.Context, qwords []string, q runnel.Query, limit int) ([]runnel.Passage, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	rk := s.rankingNow()
	tags := q.TagNames()
	if len(tags) > maxTagNames {
		tags = tags[:maxTagNames]
	}

	ix := s.idx.Load()
	ix.mu.RLock()
	ranked := ix.rank(qwords, wordWeights(q, qwords), rk, ix.tagged(tags), limit*candidatesPer)
	hits := make([]hit, len(ranked))
	subject := definitionSubject(q.Text)
	var keys map[*analyzer]string // the subject's key in each article's language
	for i, r := range ranked {
		d := &ix.docs[r.doc]
		hits[i] = hit{doc: r.doc, id: d.id, art: d.art, heading: d.heading, text: d.text, position: int(d.position), score: r.score}
		if subject == nil || len(d.defs) == 0 {
			continue
		}
		key, ok := keys[d.art.an]
		if !ok {
			if keys == nil {
				keys = map[*analyzer]string{}
			}
			key = subjectKey(d.art.an, subject)
			keys[d.art.an] = key
		}
		if slices.Contains(d.defs, key) && rk.Definition > 0 {
			hits[i].score *= rk.Definition
		}
	}
	ix.mu.RUnlock()

	for i := range hits {
		if share := titleShare(hits[i].art.titleWords, q.Terms); share > 0 {
			hits[i].score *= 1 + (rk.TitleBoost-1)*share
		}
	}
	byScore := func(a, b hit) int { return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.id, b.id)) }
	slices.SortStableFunc(hits, byScore)
	var kept, spare []hit
	count := map[*artInfo]int{}
	for _, h := range hits {
		if len(kept) == limit {
			break
		}
		if count[h.art] < perArticle {
			count[h.art]++
			kept = append(kept, h)
		} else {
			spare = append(spare, h)
		}
	}
	if len(kept) < limit {
		// Too few other articles match: better more of the same article
		// than fewer passages.
		kept = append(kept, spare[:min(len(spare), limit-len(kept))]...)
		slices.SortStableFunc(kept, byScore)
	}
	if len(kept) == 0 {
		return []runnel.Passage{}, nil
	}
	return s.passages(kept, qwords), nil
}

// passages makes the kept passages, with their snippets.
func (s *Store) passages(kept []hit, qwords []string) []runnel.Passage {
	// The words and terms of the index are never removed, so the index
	// as it is now reads the snippets of passages it ranked before.
	ix := s.idx.Load()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	keys := map[int32]bool{}
	for _, an := range ix.analyzers() {
		for _, w := range qwords {
			if id, ok := ix.termID[an.term(w)]; ok {
				keys[id] = true
			}
		}
	}
	sk := newSnippetKeys(keys, ix.first)
	out := make([]runnel.Passage, 0, len(kept))
	for _, h := range kept {
		out = append(out, runnel.Passage{
			Slug:     h.art.slug,
			Title:    h.art.title,
			Heading:  h.heading,
			Text:     h.text,
			Tags:     slices.Clone(nonNil(h.art.tags)),
			Position: h.position,
			Score:    h.score,
			Snippet:  snippet(untable(unfence(h.text)), ix.words[h.art.an], sk),
		})
	}
	return out
}

// CountTerms returns how many passages contain each of terms, as Search
// matches it (stemmed, in any field), and how many passages there are.
// It implements runnel.TermCounter.
//
// Like TagsNamed it reads the index as the question's Search left it: the
// Answerer calls them right after Search, and one look at the changes
// table a question is enough.
func (s *Store) CountTerms(ctx context.Context, terms []string) ([]int, int, error) {
	ix := s.idx.Load()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	docs := make([]int, len(terms))
	for i, t := range terms {
		docs[i], _ = ix.docCount(queryWords([]string{t}))
	}
	return docs, ix.live, nil
}

// TagsNamed returns the distinct tags whose normalised form is one of
// names, sorted.
// It reads the index as the last Search left it.
func (s *Store) TagsNamed(ctx context.Context, names []string) ([]string, error) {
	ix := s.idx.Load()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.tagsNamed(names), nil
}

// fenceLine matches a line that opens or closes a fenced code block.
var fenceLine = regexp.MustCompile("(?m)^[ \t]*(?:`{3,}|~{3,})[^`\n]*\n?")

// unfence removes the fence lines from a snippet: the importer keeps code
// fenced in the passage, and a snippet is a short extract, not Markdown.
func unfence(s string) string {
	if !strings.Contains(s, "```") && !strings.Contains(s, "~~~") {
		return s
	}
	return strings.TrimSpace(fenceLine.ReplaceAllString(s, ""))
}

// untable writes the tables the importer keeps in a passage as lines of
// their cells: "| a | b |" becomes "a | b", and the delimiter row under a
// header goes. A snippet is a short extract, not Markdown.
func untable(s string) string {
	if !strings.HasPrefix(s, "|") && !strings.Contains(s, "\n|") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for line := range strings.Lines(s) {
		t := strings.TrimRight(line, "\n")
		if !strings.HasPrefix(t, "|") {
			b.WriteString(line)
			continue
		}
		if strings.Trim(t, "|:- \t") == "" {
			continue // the delimiter row
		}
		t = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(t, "|"), "|"))
		b.WriteString(strings.ReplaceAll(t, `\|`, "|"))
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	return strings.TrimSpace(b.String())
}
