package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/runnel/runnel"
)

// keepChanges is how many rows of the changes table survive the pruning
// at Open: a store that has seen fewer rows than are pruned since builds
// its index again from the articles.
const keepChanges = 100_000

// buildIndex builds the index from every article, and prunes the changes
// table of rows no store will need.
func (s *Store) buildIndex(ctx context.Context) error {
	if _, err := s.rw.ExecContext(ctx,
		`DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?`, keepChanges); err != nil {
		return err
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.rebuildLocked(ctx)
}

// rebuildLocked replaces the index with one built from the articles in one
// snapshot, with the changes up to that snapshot applied.
func (s *Store) rebuildLocked(ctx context.Context) error {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return err
	}
	arts, err := loadArticles(ctx, tx, nil)
	if err != nil {
		return err
	}
	ix := newIndex()
	for _, a := range arts {
		ix.put(a)
	}
	ix.seq = seq
	s.idx.Store(ix)
	return nil
}

// catchUp applies the rows of the changes table the index has not seen:
// the writes of other processes to the same file. It costs one indexed
// query when there are none.
func (s *Store) catchUp(ctx context.Context) error {
	// max() alone, so that SQLite reads the last row of the table rather
	// than all of them. The check does not stop when ctx is canceled: it
	// is one indexed read of microseconds, and with a context that cannot
	// be canceled neither database/sql nor the driver starts a goroutine
	// to watch it, nor registers a context of the query's own under the
	// question's, which would keep a map there for the rest of the answer.
	rows, err := s.query(context.WithoutCancel(ctx), nil, `SELECT coalesce(max(seq), 0) FROM changes`)
	if err != nil {
		return err
	}
	var last int64
	for rows.Next() {
		if err := rows.Scan(&last); err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if last <= s.idx.Load().seqNow() {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ix := s.idx.Load()
	from := ix.seqNow()
	if last <= from {
		return nil // another search caught up meanwhile
	}
	var first int64
	if err := s.read.QueryRowContext(ctx, `SELECT coalesce(min(seq), 0) FROM changes`).Scan(&first); err != nil {
		return err
	}
	if first > from+1 {
		// The rows since this index was built have been pruned.
		return s.rebuildLocked(ctx)
	}
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rs, err := tx.QueryContext(ctx, `SELECT seq, slug FROM changes WHERE seq > ? ORDER BY seq`, from)
	if err != nil {
		return err
	}
	var slugs []string
	seen := map[string]bool{}
	upto := from
	for rs.Next() {
		var slug string
		if err := rs.Scan(&upto, &slug); err != nil {
			rs.Close()
			return err
		}
		if !seen[slug] {
			seen[slug] = true
			slugs = append(slugs, slug)
		}
	}
	if err := rs.Close(); err != nil {
		return err
	}
	arts, err := loadArticles(ctx, tx, slugs)
	if err != nil {
		return err
	}
	found := map[string]bool{}
	for _, a := range arts {
		found[a.slug] = true
		ix.put(a)
	}
	for _, slug := range slugs {
		if !found[slug] {
			ix.remove(slug)
		}
	}
	ix.setSeq(upto)
	return nil
}

func (ix *index) seqNow() int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.seq
}

func (ix *index) setSeq(seq int64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.seq = max(ix.seq, seq)
}

// applied records that the store itself wrote the change seq and put it in
// the index: when it is the next row, the index has seen every row up to
// it. When another process wrote rows in between, the next search applies
// them, and this one again, which changes nothing.
func (ix *index) applied(seq int64) { ix.appliedBatch(seq, seq) }

// appliedBatch is applied for the changes first to last, which one
// transaction wrote.
func (ix *index) appliedBatch(first, last int64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.seq == first-1 {
		ix.seq = last
	}
}

// loadArticles reads the articles with slugs (all of them if slugs is nil)
// as the index takes them. Slugs that name no article are left out.
func loadArticles(ctx context.Context, tx *sql.Tx, slugs []string) ([]indexArticle, error) {
	where, args := "", []any{}
	if slugs != nil {
		if len(slugs) == 0 {
			return nil, nil
		}
		b, err := json.Marshal(slugs)
		if err != nil {
			return nil, err
		}
		where, args = ` WHERE slug IN (SELECT value FROM json_each(?))`, []any{string(b)}
	}
	byslug := map[string]*indexArticle{}
	var order []string
	rows, err := tx.QueryContext(ctx, `SELECT slug, title, lang, description, keywords FROM articles`+where+` ORDER BY slug`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a indexArticle
		var desc, keywords string
		if err := rows.Scan(&a.slug, &a.title, &a.lang, &desc, &keywords); err != nil {
			rows.Close()
			return nil, err
		}
		var kw []string
		if err := json.Unmarshal([]byte(keywords), &kw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("article %s: keywords: %w", a.slug, err)
		}
		a.meta = metaText(desc, kw)
		byslug[a.slug] = &a
		order = append(order, a.slug)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT slug, tag, norm FROM article_tags`+where+` ORDER BY slug, position`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var slug, tag, norm string
		if err := rows.Scan(&slug, &tag, &norm); err != nil {
			rows.Close()
			return nil, err
		}
		if a := byslug[slug]; a != nil {
			a.tagList = append(a.tagList, tag)
			a.norms = append(a.norms, norm)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT id, slug, position, heading, text FROM passages`+where+` ORDER BY slug, position`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var p indexPassage
		var slug string
		if err := rows.Scan(&p.id, &slug, &p.position, &p.heading, &p.text); err != nil {
			rows.Close()
			return nil, err
		}
		if a := byslug[slug]; a != nil {
			a.passages = append(a.passages, p)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	out := make([]indexArticle, 0, len(order))
	for _, slug := range order {
		a := byslug[slug]
		a.tags = tagText(a.tagList, a.norms)
		out = append(out, *a)
	}
	return out, nil
}

// tagText is what the tags field holds: each tag, and its normalised form
// when that differs ("web-socket" is read as "web" and "socket"; "websocket"
// lets the question's spelling find it too).
func tagText(tags, norms []string) string {
	parts := make([]string, 0, 2*len(tags))
	for i, t := range tags {
		parts = append(parts, t)
		if n := norms[i]; n != "" && n != strings.ToLower(t) {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, " ")
}

// metaText is what the meta field holds: the description and keywords.
func metaText(desc string, keywords []string) string {
	return strings.TrimSpace(desc + " " + strings.Join(keywords, " "))
}

// normsOf returns runnel.NormalizeTag of each tag.
func normsOf(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = runnel.NormalizeTag(t)
	}
	return out
}
