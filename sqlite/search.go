package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
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

	// candidatesPer is how many ranked passages are read per passage
	// returned: enough to fill the slots that perArticle turns down, and
	// a bound that lets SQLite keep only the top rows while it sorts.
	candidatesPer = 10

	// maxTagNames bounds the names a question may give tags by.
	maxTagNames = 200

	// maxMatchTerms bounds the OR expression; runnel.ParseQuestion gives at
	// most 32 terms, and more would only make the query slower.
	maxMatchTerms = 64
)

// Ranking weighs the parts of a passage's score. A word of the question
// in the article's title or a tag says what the article is about; the
// same word once in a body says little.
type Ranking struct {
	// Column weights of the bm25 score, for a question word in the
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
}

// DefaultRanking is the ranking a new Store uses, tuned on the labelled
// questions of make eval (docs/quality.md).
var DefaultRanking = Ranking{Title: 10, Heading: 4, Tags: 8, Meta: 2, Body: 1, TitleBoost: 2}

// SetRanking makes the store rank searches by r from now on. It is safe to
// call while searches run.
func (s *Store) SetRanking(r Ranking) { s.ranking.Store(&r) }

func (s *Store) rankingNow() Ranking {
	if r := s.ranking.Load(); r != nil {
		return *r
	}
	return DefaultRanking
}

// rankSQL returns the bm25 call for r on index, with the tags column or
// without.
func (r Ranking) rankSQL(index string, tags bool) string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	t := 0.0
	if tags {
		t = r.Tags
	}
	return "bm25(" + index + ", " + f(r.Title) + ", " + f(r.Heading) + ", " + f(t) + ", " + f(r.Meta) + ", " + f(r.Body) + ")"
}

// titleShare returns the share of terms that title holds when every
// content word of title is among terms (a plural s aside), and 0 when one
// is not: then the title is not the question's subject.
func titleShare(title string, terms []string) float64 {
	words := runnel.Words(title)
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

func sameWord(a, b string) bool {
	return a == b || a+"s" == b || a == b+"s"
}

// Search returns up to limit passages that match any of q.Terms, best first.
// A limit of 0 or less means 10, and more than 100 means 100. No article
// contributes more than three passages unless fewer than limit passages
// would come back otherwise. Score is the bm25 relevance (positive, higher
// is better); Snippet is about 24 words of the passage around the matches,
// plain text with "..." where it cuts.
func (s *Store) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	expr := matchExpr(q.Terms)
	if expr == "" {
		return nil, runnel.Errorf(runnel.EINVALID, "The question has no words to search for.")
	}
	switch {
	case limit <= 0:
		limit = defaultSearchLimit
	case limit > maxSearchLimit:
		limit = maxSearchLimit
	}
	ps, err := s.search(ctx, expr, q, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search %q: %w", q.Terms, err)
	}
	return ps, nil
}

type hit struct {
	id    int64
	slug  string
	score float64
	index string // the full-text table that holds the passage
}

// indexes are the full-text tables: English articles, stemmed, and the
// others (migrations/0002_lang.sql). A passage is in one of them.
var indexes = []string{"passages_fts", "passages_intl"}

// rankIn returns the best n passages of the index that match expr, with
// their articles' titles. tags is the JSON array of the names the question
// may give tags by, "" when no article has such a tag: then one bm25 per
// match does. The join sits outside the ranking so that it runs for the
// candidates only, not for every match.
func (s *Store) rankIn(ctx context.Context, tx *sql.Tx, index string, rk Ranking, tags, expr string, n int) ([]hit, []string, error) {
	var rows *sql.Rows
	var err error
	if tags == "" {
		rows, err = s.query(ctx, tx, `
			SELECT f.id, p.slug, a.title, f.score, f.score, 0
			FROM (
				SELECT rowid AS id, -`+rk.rankSQL(index, false)+` AS score
				FROM `+index+` WHERE `+index+` MATCH ?
				ORDER BY score DESC, rowid LIMIT ?
			) AS f JOIN passages p ON p.id = f.id JOIN articles a ON a.slug = p.slug`, expr, n)
	} else {
		rows, err = s.query(ctx, tx, `
			SELECT f.id, p.slug, a.title, f.score, f.plain,
				EXISTS (SELECT 1 FROM article_tags t WHERE t.slug = p.slug AND t.norm IN (SELECT value FROM json_each(?)))
			FROM (
				SELECT rowid AS id, -`+rk.rankSQL(index, true)+` AS score, -`+rk.rankSQL(index, false)+` AS plain
				FROM `+index+` WHERE `+index+` MATCH ?
				ORDER BY score DESC, rowid LIMIT ?
			) AS f JOIN passages p ON p.id = f.id JOIN articles a ON a.slug = p.slug`, tags, expr, n)
	}
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var hits []hit
	var titles []string
	for rows.Next() {
		h := hit{index: index}
		var title string
		var plain float64
		var tagged bool
		if err := rows.Scan(&h.id, &h.slug, &title, &h.score, &plain, &tagged); err != nil {
			return nil, nil, err
		}
		if !tagged {
			// A tag that only shares a stem with a question word does
			// not count.
			h.score = plain
		}
		hits = append(hits, h)
		titles = append(titles, title)
	}
	return hits, titles, rows.Err()
}

// namedTags returns names as a JSON array if an article has a tag of one
// of those names, else "".
func (s *Store) namedTags(ctx context.Context, tx *sql.Tx, names []string) (string, error) {
	if len(names) == 0 {
		return "", nil
	}
	b, err := json.Marshal(names)
	if err != nil {
		return "", err
	}
	rows, err := s.query(ctx, tx, `SELECT EXISTS (SELECT 1 FROM article_tags WHERE norm IN (SELECT value FROM json_each(?)))`, string(b))
	if err != nil {
		return "", err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		if err := rows.Scan(&found); err != nil {
			return "", err
		}
	}
	if err := rows.Err(); err != nil || !found {
		return "", err
	}
	return string(b), nil
}

func (s *Store) search(ctx context.Context, expr string, q runnel.Query, limit int) ([]runnel.Passage, error) {
	rk := s.rankingNow()
	tags := runnel.TagCandidates(q.Text)
	if len(tags) > maxTagNames {
		tags = tags[:maxTagNames]
	}
	// Two queries in one snapshot. The first ranks and keeps only ids:
	// snippet() there would run for every match before the sort, which
	// more than doubles the cost of a query that matches thousands of
	// passages. The second builds the snippets and reads the text of the
	// few passages kept.
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	named, err := s.namedTags(ctx, tx, tags)
	if err != nil {
		return nil, err
	}
	var hits []hit
	var titles []string
	for _, ix := range indexes {
		h, t, err := s.rankIn(ctx, tx, ix, rk, named, expr, limit*candidatesPer)
		if err != nil {
			return nil, err
		}
		hits, titles = append(hits, h...), append(titles, t...)
	}
	for i := range hits {
		if share := titleShare(titles[i], q.Terms); share > 0 {
			hits[i].score *= 1 + (rk.TitleBoost-1)*share
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return cmp.Compare(a.id, b.id)
	})
	var kept, spare []hit
	count := map[string]int{}
	for _, h := range hits {
		if len(kept) == limit {
			break
		}
		if count[h.slug] < perArticle {
			count[h.slug]++
			kept = append(kept, h)
		} else {
			spare = append(spare, h)
		}
	}
	if len(kept) < limit {
		// Too few other articles match: better more of the same article
		// than fewer passages.
		kept = append(kept, spare[:min(len(spare), limit-len(kept))]...)
		slices.SortStableFunc(kept, func(a, b hit) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return 0
		})
	}
	if len(kept) == 0 {
		return []runnel.Passage{}, nil
	}

	byID := make(map[int64]runnel.Passage, len(kept))
	for _, ix := range indexes {
		if err := s.readKept(ctx, tx, ix, expr, kept, byID); err != nil {
			return nil, err
		}
	}
	out := make([]runnel.Passage, 0, len(kept))
	for _, h := range kept {
		p, ok := byID[h.id]
		if !ok {
			continue // cannot happen inside one snapshot; never return a blank passage
		}
		p.Slug, p.Score = h.slug, h.score
		out = append(out, p)
	}
	return out, nil
}

// readKept reads the passages of kept that index holds into byID, with
// their snippets.
func (s *Store) readKept(ctx context.Context, tx *sql.Tx, index, expr string, kept []hit, byID map[int64]runnel.Passage) error {
	var ids []int64
	for _, h := range kept {
		if h.index == index {
			ids = append(ids, h.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	idList, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := s.query(ctx, tx, `
		SELECT `+index+`.rowid, snippet(`+index+`, 4, '', '', '...', 24),
			a.title, p.heading, p.text, p.position,
			(SELECT json_group_array(t.tag ORDER BY t.position) FROM article_tags t WHERE t.slug = p.slug)
		FROM `+index+`
			JOIN passages p ON p.id = `+index+`.rowid
			JOIN articles a ON a.slug = p.slug
		WHERE `+index+` MATCH ? AND `+index+`.rowid IN (SELECT value FROM json_each(?))`,
		expr, string(idList))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var p runnel.Passage
		var tags string
		if err := rows.Scan(&id, &p.Snippet, &p.Title, &p.Heading, &p.Text, &p.Position, &tags); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(tags), &p.Tags); err != nil {
			return fmt.Errorf("passage %d: tags: %w", id, err)
		}
		p.Tags = nonNil(p.Tags)
		p.Snippet = runnel.JoinCJK(unfence(p.Snippet))
		byID[id] = p
	}
	return rows.Err()
}

// matchExpr returns the FTS5 query that matches any of terms, or "" if no
// term has anything to search for. Each term becomes an FTS5 string, so
// that nothing a user types (quotes, *, ^, NEAR, AND, column filters) is
// read as query syntax; the tokenizer then splits the string into words as
// it splits the text.
func matchExpr(terms []string) string {
	var b strings.Builder
	n := 0
	seen := map[string]bool{}
	for _, t := range terms {
		// FTS5 reads the expression as a C string: a NUL would end it
		// inside the quotes and leave them unbalanced.
		t = strings.ReplaceAll(strings.ToValidUTF8(t, " "), "\x00", " ")
		// Chinese, Japanese and Korean are indexed as pairs of characters,
		// and a question written without spaces is one term: each of its
		// pairs is a term of its own.
		for _, piece := range cjkPieces(t) {
			if strings.TrimSpace(piece) == "" || seen[piece] {
				continue
			}
			if n == maxMatchTerms {
				return b.String()
			}
			seen[piece] = true
			if n > 0 {
				b.WriteString(" OR ")
			}
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(piece, `"`, `""`))
			b.WriteByte('"')
			n++
		}
	}
	return b.String()
}

// cjkPieces returns t as one piece, or, when it has CJK characters, as
// the pieces runnel.SegmentCJK cuts it into.
func cjkPieces(t string) []string {
	seg := runnel.SegmentCJK(t)
	if seg == t {
		return []string{t}
	}
	return strings.Fields(seg)
}

// CountTerms returns how many passages contain each of terms, as Search
// matches it (stemmed, in any column), and how many passages there are.
// It implements runnel.TermCounter.
func (s *Store) CountTerms(ctx context.Context, terms []string) ([]int, int, error) {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: count terms: %w", err)
	}
	defer tx.Rollback()
	total := 0
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM passages`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count terms: %w", err)
	}
	docs := make([]int, len(terms))
	for i, t := range terms {
		expr := matchExpr([]string{t})
		if expr == "" {
			continue
		}
		if err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM passages_fts WHERE passages_fts MATCH ?1) +
			(SELECT count(*) FROM passages_intl WHERE passages_intl MATCH ?1)`, expr).Scan(&docs[i]); err != nil {
			return nil, 0, fmt.Errorf("sqlite: count terms %q: %w", t, err)
		}
	}
	return docs, total, nil
}

// TagsNamed returns the distinct tags whose normalised form is one of
// names, sorted.
func (s *Store) TagsNamed(ctx context.Context, names []string) ([]string, error) {
	// A long question yields many candidate names; query them in batches
	// well under SQLite's limit on bound parameters.
	const batch = 200
	var uniq []string
	seen := map[string]bool{}
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			uniq = append(uniq, n)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	var tags []string
	for chunk := range slices.Chunk(uniq, batch) {
		args := make([]any, len(chunk))
		for i, n := range chunk {
			args[i] = n
		}
		rows, err := s.read.QueryContext(ctx,
			`SELECT DISTINCT tag FROM article_tags WHERE norm IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: tags named: %w", err)
		}
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: tags named: %w", err)
			}
			tags = append(tags, t)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: tags named: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: tags named: %w", err)
		}
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
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

// placeholders returns "?, ?, ..." with n parameters.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
