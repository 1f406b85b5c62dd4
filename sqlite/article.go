package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runnel/runnel"
)

// List page sizes.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// stored is an article as the store keeps it: the fields Put writes, in a
// fixed shape, so that its hash changes exactly when what is stored does.
type stored struct {
	Title       string
	Date        string
	Tags        []string
	Description string
	Keywords    []string
	Section     string
	Lang        string // as declared, else as detected; "" for English
	Body        string
	Source      string
	Passages    []storedPassage
}

type storedPassage struct {
	Heading string
	Text    string
}

// storedForm returns what Put stores for a: tags without empty ones and
// duplicates, and at least one passage when there is a body.
func storedForm(a *runnel.Article) stored {
	st := stored{
		Title:       a.Title,
		Tags:        []string{},
		Description: a.Description,
		Keywords:    slices.Clip(a.Keywords),
		Section:     a.Section,
		Body:        a.Body,
		Source:      a.Source,
	}
	if len(st.Keywords) == 0 {
		st.Keywords = nil // nil and empty store the same, so they hash the same
	}
	if !a.Date.IsZero() {
		st.Date = a.Date.Format(time.RFC3339Nano)
	}
	seen := map[string]bool{}
	for _, t := range a.Tags {
		if strings.TrimSpace(t) != "" && !seen[t] {
			seen[t] = true
			st.Tags = append(st.Tags, t)
		}
	}
	for _, p := range a.Passages {
		st.Passages = append(st.Passages, storedPassage{Heading: p.Heading, Text: p.Text})
	}
	if len(st.Passages) == 0 && strings.TrimSpace(a.Body) != "" {
		// An importer that does not split still gets its article found.
		st.Passages = []storedPassage{{Text: a.Body}}
	}
	st.Lang = a.Lang
	if st.Lang == "" {
		st.Lang = runnel.DetectLang(st.sample())
	}
	return st
}

// sample returns the start of st's text, enough to tell its script by.
func (st stored) sample() string {
	var b strings.Builder
	b.WriteString(st.Title)
	for _, p := range st.Passages {
		if b.Len() >= 8<<10 {
			break
		}
		b.WriteString("\n")
		b.WriteString(p.Heading)
		b.WriteString("\n")
		b.WriteString(p.Text[:min(len(p.Text), 8<<10)])
	}
	return b.String()
}

// hash returns the content hash of st. The version prefix lets a change of
// what the hash covers, or of how the index holds it, invalidate old hashes
// instead of colliding: v2 added the language and its own index.
func (st stored) hash() string {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // strings and slices of strings always marshal
	}
	sum := sha256.Sum256(append([]byte("v2\n"), b...))
	return hex.EncodeToString(sum[:])
}

// Put stores a with its passages, replacing any article with the same slug.
// It writes nothing and reports false if the stored article is the same.
// Passages are numbered by their order in a.Passages; their Slug, Title and
// Tags fields are ignored (the article's own are used). If a has a body but
// no passages, the body becomes a single passage.
func (s *Store) Put(ctx context.Context, a *runnel.Article) (runnel.PutResult, error) {
	res, err := s.PutBatch(ctx, []*runnel.Article{a})
	if err != nil {
		return runnel.PutUnchanged, err
	}
	return res[0], nil
}

// PutBatch puts the articles in one transaction, which an import of many
// small articles needs: the commit, not the writing, is most of the cost of
// a Put of its own. It reports what it did to each, in order. It stores
// nothing if one of them is invalid (a missing slug or title: the error
// names it) or if the store fails; readers see all of them or none.
// Articles with the same slug are put in order, the last one winning.
func (s *Store) PutBatch(ctx context.Context, as []*runnel.Article) ([]runnel.PutResult, error) {
	for _, a := range as {
		if a == nil || a.Slug == "" {
			return nil, runnel.Errorf(runnel.EINVALID, "An article needs a slug.")
		}
		if strings.TrimSpace(a.Title) == "" {
			return nil, runnel.Errorf(runnel.EINVALID, "Article %q needs a title.", a.Slug)
		}
	}
	// A write and its update of the index go together: two writes of one
	// article must reach the index in the order they committed.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.rw.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: put: %w", err)
	}
	defer tx.Rollback()
	results := make([]runnel.PutResult, len(as))
	var changed []indexArticle
	var last int64 // the last change logged
	for i, a := range as {
		res, ia, seq, err := s.putTx(ctx, tx, a.Slug, storedForm(a), a.Date)
		if err != nil {
			return nil, fmt.Errorf("sqlite: put %s: %w", a.Slug, err)
		}
		results[i] = res
		if res != runnel.PutUnchanged {
			changed = append(changed, ia)
			last = seq
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: put: %w", err)
	}
	if len(changed) == 0 {
		return results, nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ix := s.idx.Load()
	for _, ia := range changed {
		ix.put(ia)
	}
	ix.appliedBatch(last-int64(len(changed))+1, last)
	return results, nil
}

// putTx writes an article in tx, unless the stored one is the same, and
// returns what the index needs to take it and the number of its change.
func (s *Store) putTx(ctx context.Context, tx *sql.Tx, slug string, st stored, date time.Time) (runnel.PutResult, indexArticle, int64, error) {
	const none = runnel.PutUnchanged
	hash := st.hash()
	res := runnel.PutUpdated
	var old string
	switch err := tx.QueryRowContext(ctx, `SELECT hash FROM articles WHERE slug = ?`, slug).Scan(&old); {
	case errors.Is(err, sql.ErrNoRows):
		res = runnel.PutAdded
	case err != nil:
		return none, indexArticle{}, 0, err
	case old == hash:
		return none, indexArticle{}, 0, nil
	}

	keywords, err := json.Marshal(nonNil(st.Keywords))
	if err != nil {
		return none, indexArticle{}, 0, err
	}
	var dateUnix any // NULL for an unknown date, so that it sorts last
	if st.Date != "" {
		dateUnix = date.Unix()
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO articles (slug, title, date, date_unix, description, keywords, section, lang, body, source, hash, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (slug) DO UPDATE SET
			title = excluded.title, date = excluded.date, date_unix = excluded.date_unix,
			description = excluded.description, keywords = excluded.keywords,
			section = excluded.section, lang = excluded.lang, body = excluded.body, source = excluded.source,
			hash = excluded.hash, updated_at = excluded.updated_at`,
		slug, st.Title, st.Date, dateUnix, st.Description, string(keywords), st.Section, st.Lang,
		st.Body, st.Source, hash, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return none, indexArticle{}, 0, err
	}

	// Replace rather than diff: an article has a handful of tags and
	// passages.
	if _, err := tx.ExecContext(ctx, `DELETE FROM article_tags WHERE slug = ?`, slug); err != nil {
		return none, indexArticle{}, 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM passages WHERE slug = ?`, slug); err != nil {
		return none, indexArticle{}, 0, err
	}
	norms := normsOf(st.Tags)
	for i, t := range st.Tags {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO article_tags (slug, position, tag, norm) VALUES (?, ?, ?, ?)`,
			slug, i, t, norms[i]); err != nil {
			return none, indexArticle{}, 0, err
		}
	}
	ia := indexArticle{slug: slug, title: st.Title, lang: st.Lang, tags: tagText(st.Tags, norms),
		meta: metaText(st.Description, st.Keywords), tagList: st.Tags, norms: norms}
	for i, p := range st.Passages {
		r, err := tx.ExecContext(ctx, `INSERT INTO passages (slug, position, heading, text) VALUES (?, ?, ?, ?)`,
			slug, i, p.Heading, p.Text)
		if err != nil {
			return none, indexArticle{}, 0, err
		}
		id, err := r.LastInsertId()
		if err != nil {
			return none, indexArticle{}, 0, err
		}
		ia.passages = append(ia.passages, indexPassage{id: id, position: i, heading: p.Heading, text: p.Text})
	}
	seq, err := logChange(ctx, tx, slug)
	if err != nil {
		return none, indexArticle{}, 0, err
	}
	return res, ia, seq, nil
}

// logChange adds the change of slug to the changes table, for the other
// processes' indexes, and returns its number.
// Every pruneEvery changes, the rows older than the last keepChanges go,
// so that a store that runs for months does not keep every change.
func logChange(ctx context.Context, tx *sql.Tx, slug string) (int64, error) {
	r, err := tx.ExecContext(ctx, `INSERT INTO changes (slug) VALUES (?)`, slug)
	if err != nil {
		return 0, err
	}
	seq, err := r.LastInsertId()
	if err != nil {
		return 0, err
	}
	if seq%pruneEvery == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq <= ?`, seq-keepChanges); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

const pruneEvery = 4096

// articleColumns are the columns scanArticle reads, body excluded.
const articleColumns = `a.slug, a.title, a.date, a.description, a.keywords, a.section, a.lang, a.source,
	(SELECT json_group_array(t.tag ORDER BY t.position) FROM article_tags t WHERE t.slug = a.slug)`

type scanner interface{ Scan(dest ...any) error }

// scanArticle reads articleColumns, then the extra destinations.
func scanArticle(row scanner, extra ...any) (*runnel.Article, error) {
	var a runnel.Article
	var date, keywords, tags string
	dest := append([]any{&a.Slug, &a.Title, &date, &a.Description, &keywords, &a.Section, &a.Lang, &a.Source, &tags}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if date != "" {
		d, err := time.Parse(time.RFC3339Nano, date)
		if err != nil {
			return nil, fmt.Errorf("article %s: date: %w", a.Slug, err)
		}
		a.Date = d
	}
	if err := json.Unmarshal([]byte(keywords), &a.Keywords); err != nil {
		return nil, fmt.Errorf("article %s: keywords: %w", a.Slug, err)
	}
	if len(a.Keywords) == 0 {
		a.Keywords = nil
	}
	if err := json.Unmarshal([]byte(tags), &a.Tags); err != nil {
		return nil, fmt.Errorf("article %s: tags: %w", a.Slug, err)
	}
	a.Tags = nonNil(a.Tags)
	return &a, nil
}

// Get returns the article with the slug, with its body, tags and passages.
func (s *Store) Get(ctx context.Context, slug string) (*runnel.Article, error) {
	a, err := s.get(ctx, slug)
	if err != nil {
		var e *runnel.Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlite: get %s: %w", slug, err)
	}
	return a, nil
}

func (s *Store) get(ctx context.Context, slug string) (*runnel.Article, error) {
	// One snapshot for the article and its passages, so that a concurrent
	// Put cannot pair the old body with the new passages.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var body string
	a, err := scanArticle(tx.QueryRowContext(ctx,
		`SELECT `+articleColumns+`, a.body FROM articles a WHERE a.slug = ?`, slug), &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, runnel.Errorf(runnel.ENOTFOUND, "There is no article %q.", slug)
	}
	if err != nil {
		return nil, err
	}
	a.Body = body
	rows, err := tx.QueryContext(ctx,
		`SELECT position, heading, text FROM passages WHERE slug = ? ORDER BY position`, slug)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		p := runnel.Passage{Slug: a.Slug, Title: a.Title, Tags: slices.Clone(a.Tags)}
		if err := rows.Scan(&p.Position, &p.Heading, &p.Text); err != nil {
			return nil, err
		}
		a.Passages = append(a.Passages, p)
	}
	return a, rows.Err()
}

// List returns a page of articles without bodies, newest first (then by
// title), and how many articles carry opt.Tag in all. The tag must match
// exactly: NormalizeTag would make "c" and "c++" the same tag. Limit 0 means
// 20; more than 100 means 100.
func (s *Store) List(ctx context.Context, opt runnel.ListOptions) ([]runnel.Article, int, error) {
	switch {
	case opt.Offset < 0:
		return nil, 0, runnel.Errorf(runnel.EINVALID, "The offset must not be negative.")
	case opt.Limit < 0:
		return nil, 0, runnel.Errorf(runnel.EINVALID, "The limit must not be negative.")
	case opt.Limit == 0:
		opt.Limit = defaultListLimit
	case opt.Limit > maxListLimit:
		opt.Limit = maxListLimit
	}
	page, total, err := s.list(ctx, opt)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list: %w", err)
	}
	return page, total, nil
}

func (s *Store) list(ctx context.Context, opt runnel.ListOptions) ([]runnel.Article, int, error) {
	// One snapshot, so that the total and the page agree.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()

	var total int
	where, args := "", []any{}
	if opt.Tag != "" {
		where = `WHERE a.slug IN (SELECT slug FROM article_tags WHERE tag = ?)`
		args = append(args, opt.Tag)
		err = tx.QueryRowContext(ctx, `SELECT count(*) FROM article_tags WHERE tag = ?`, opt.Tag).Scan(&total)
	} else {
		err = tx.QueryRowContext(ctx, `SELECT count(*) FROM articles`).Scan(&total)
	}
	if err != nil {
		return nil, 0, err
	}

	rows, err := tx.QueryContext(ctx, `SELECT `+articleColumns+` FROM articles a `+where+`
		ORDER BY a.date_unix DESC, a.title, a.slug LIMIT ? OFFSET ?`,
		append(args, opt.Limit, opt.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	page := []runnel.Article{}
	for rows.Next() {
		a, err := scanArticle(rows)
		if err != nil {
			return nil, 0, err
		}
		page = append(page, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return page, total, nil
}

// Tags returns every tag with the number of articles that carry it, most
// used first, then in alphabetical order.
func (s *Store) Tags(ctx context.Context) ([]runnel.TagCount, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT tag, count(*) AS n FROM article_tags GROUP BY tag ORDER BY n DESC, tag`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: tags: %w", err)
	}
	defer rows.Close()
	tags := []runnel.TagCount{}
	for rows.Next() {
		var tc runnel.TagCount
		if err := rows.Scan(&tc.Tag, &tc.Count); err != nil {
			return nil, fmt.Errorf("sqlite: tags: %w", err)
		}
		tags = append(tags, tc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: tags: %w", err)
	}
	return tags, nil
}

// Delete removes the article with the slug, its tags and its passages.
func (s *Store) Delete(ctx context.Context, slug string) error {
	if err := s.delete(ctx, slug); err != nil {
		if runnel.ErrorCode(err) == runnel.ENOTFOUND {
			return err
		}
		return fmt.Errorf("sqlite: delete %s: %w", slug, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, slug string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.rw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Tags and passages go by the foreign keys' cascade.
	res, err := tx.ExecContext(ctx, `DELETE FROM articles WHERE slug = ?`, slug)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return runnel.Errorf(runnel.ENOTFOUND, "There is no article %q.", slug)
	}
	seq, err := logChange(ctx, tx, slug)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ix := s.idx.Load()
	ix.remove(slug)
	ix.applied(seq)
	return nil
}

// SourcesUnder returns the slug and source of every article whose source is
// one of roots or lies inside one of them, comparing cleaned paths. A JSONL
// source "file.jsonl:12" counts as the file "file.jsonl".
func (s *Store) SourcesUnder(ctx context.Context, roots []string) (map[string]string, error) {
	out := map[string]string{}
	if len(roots) == 0 {
		return out, nil
	}
	rows, err := s.read.QueryContext(ctx, `SELECT slug, source FROM articles WHERE source <> ''`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sources: %w", err)
	}
	defer rows.Close()
	var clean []string
	for _, r := range roots {
		if r != "" { // Clean would make it ".", every relative path
			clean = append(clean, filepath.Clean(r))
		}
	}
	for rows.Next() {
		var slug, source string
		if err := rows.Scan(&slug, &source); err != nil {
			return nil, fmt.Errorf("sqlite: sources: %w", err)
		}
		if under(source, clean) {
			out[slug] = source
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: sources: %w", err)
	}
	return out, nil
}

// under reports whether source, or the file of a "file:line" source, is one
// of the cleaned roots or inside one. The comparison is lexical, like the
// paths the importer records.
func under(source string, roots []string) bool {
	paths := []string{filepath.Clean(source)}
	if i := strings.LastIndexByte(source, ':'); i > 0 && i < len(source)-1 &&
		strings.Trim(source[i+1:], "0123456789") == "" {
		paths = append(paths, filepath.Clean(source[:i]))
	}
	for _, root := range roots {
		for _, p := range paths {
			rel, err := filepath.Rel(root, p)
			if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return true
			}
		}
	}
	return false
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
