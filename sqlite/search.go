package sqlite

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
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

	// candidatesPer is how many ranked passages are read per passage
	// returned: enough to fill the slots that perArticle turns down, and
	// a bound that lets SQLite keep only the top rows while it sorts.
	candidatesPer = 10

	// maxMatchTerms bounds the OR expression; runnel.ParseQuestion gives at
	// most 32 terms, and more would only make the query slower.
	maxMatchTerms = 64
)

// rankSQL weighs a match by column: title, heading, tags, meta
// (description and keywords), body. A word in the title or tags says what
// an article is about; the same word once in a body says little.
const rankSQL = `bm25(passages_fts, 10.0, 4.0, 8.0, 2.0, 1.0)`

// titleBoost multiplies the score of passages of an article whose title
// the question names in full: asked "what is websocket?", the article
// titled "WebSocket" should beat "WebSocket vs SSE", whose body may say
// "WebSocket" more often.
const titleBoost = 2.0

// titleNamed reports whether every content word of title is among terms
// (a plural s aside), so the title is the question's subject.
func titleNamed(title string, terms []string) bool {
	words := runnel.Words(title)
	n := 0
	for _, w := range words {
		if runnel.IsStopWord(w) {
			continue
		}
		n++
		if !slices.ContainsFunc(terms, func(t string) bool { return sameWord(w, t) }) {
			return false
		}
	}
	return n > 0
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
	ps, err := s.search(ctx, expr, q.Terms, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search %q: %w", q.Terms, err)
	}
	return ps, nil
}

type hit struct {
	id    int64
	slug  string
	score float64
}

func (s *Store) search(ctx context.Context, expr string, terms []string, limit int) ([]runnel.Passage, error) {
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

	// The join sits outside the ranking so that it runs for the candidates
	// only, not for every match.
	rows, err := tx.QueryContext(ctx, `
		SELECT f.id, p.slug, a.title, f.score
		FROM (
			SELECT rowid AS id, -`+rankSQL+` AS score
			FROM passages_fts WHERE passages_fts MATCH ?
			ORDER BY score DESC, rowid LIMIT ?
		) AS f JOIN passages p ON p.id = f.id JOIN articles a ON a.slug = p.slug`, expr, limit*candidatesPer)
	if err != nil {
		return nil, err
	}
	var hits []hit
	for rows.Next() {
		var h hit
		var title string
		if err := rows.Scan(&h.id, &h.slug, &title, &h.score); err != nil {
			rows.Close()
			return nil, err
		}
		if titleNamed(title, terms) {
			h.score *= titleBoost
		}
		hits = append(hits, h)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
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

	args := make([]any, 0, len(kept)+1)
	args = append(args, expr)
	for _, h := range kept {
		args = append(args, h.id)
	}
	rows, err = tx.QueryContext(ctx, `
		SELECT passages_fts.rowid, snippet(passages_fts, 4, '', '', '...', 24),
			a.title, p.heading, p.text, p.position,
			(SELECT json_group_array(t.tag ORDER BY t.position) FROM article_tags t WHERE t.slug = p.slug)
		FROM passages_fts
			JOIN passages p ON p.id = passages_fts.rowid
			JOIN articles a ON a.slug = p.slug
		WHERE passages_fts MATCH ? AND passages_fts.rowid IN (`+placeholders(len(kept))+`)`,
		args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[int64]runnel.Passage, len(kept))
	for rows.Next() {
		var id int64
		var p runnel.Passage
		var tags string
		if err := rows.Scan(&id, &p.Snippet, &p.Title, &p.Heading, &p.Text, &p.Position, &tags); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(tags), &p.Tags); err != nil {
			return nil, fmt.Errorf("passage %d: tags: %w", id, err)
		}
		p.Tags = nonNil(p.Tags)
		byID[id] = p
	}
	if err := rows.Err(); err != nil {
		return nil, err
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

// matchExpr returns the FTS5 query that matches any of terms, or "" if no
// term has anything to search for. Each term becomes an FTS5 string, so
// that nothing a user types (quotes, *, ^, NEAR, AND, column filters) is
// read as query syntax; the tokenizer then splits the string into words as
// it splits the text.
func matchExpr(terms []string) string {
	var b strings.Builder
	n := 0
	for _, t := range terms {
		// FTS5 reads the expression as a C string: a NUL would end it
		// inside the quotes and leave them unbalanced.
		t = strings.ReplaceAll(strings.ToValidUTF8(t, " "), "\x00", " ")
		if strings.TrimSpace(t) == "" {
			continue
		}
		if n == maxMatchTerms {
			break
		}
		if n > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(t, `"`, `""`))
		b.WriteByte('"')
		n++
	}
	return b.String()
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

// placeholders returns "?, ?, ..." with n parameters.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
