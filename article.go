package runnel

import (
	"context"
	"time"
)

// Article is a document runnel answers from: a Markdown file or a JSONL
// record, imported into a Store.
type Article struct {
	Slug        string    `json:"slug"`
	Title       string    `json:"title"`
	Date        time.Time `json:"date,omitzero"`
	Tags        []string  `json:"tags"`
	Description string    `json:"description,omitempty"`
	Keywords    []string  `json:"keywords,omitempty"`
	Section     string    `json:"section,omitempty"`
	// Lang is the article's language, a BCP 47 tag ("de", "zh-Hans"); ""
	// means English, unless the store detects Chinese, Japanese or Korean
	// text (DetectLang). Only English is stemmed when indexed.
	Lang string `json:"lang,omitempty"`
	Body string `json:"body,omitempty"` // Markdown, without front matter

	// Source is where the article was imported from: the absolute path of
	// its Markdown or JSONL file. The importer uses it to prune.
	Source string `json:"-"`
	// Passages is the body split for retrieval, one per section, in order.
	Passages []Passage `json:"-"`
}

// Passage is a section of an article: the unit of retrieval.
type Passage struct {
	Slug     string   // the article's slug
	Title    string   // the article's title
	Heading  string   // the section heading; "" for the text before the first heading
	Text     string   // plain text, paragraphs separated by blank lines
	Tags     []string // the article's tags
	Position int      // 0-based index within the article

	// Set by Search.
	Score   float64 // relevance, higher is better
	Snippet string  // a short extract around the matched words
}

// ListOptions selects a page of articles.
type ListOptions struct {
	Tag    string // only articles with this tag, if set
	Limit  int    // at most this many; 0 means the store's default
	Offset int
}

// TagCount is a tag and the number of articles that carry it.
type TagCount struct {
	Tag   string `json:"tag"`
	Count int    `json:"count"`
}

// Store keeps articles and finds passages. Implementations are safe for
// concurrent use, including readers while a writer imports.
type Store interface {
	Searcher

	// Put inserts a, or replaces the article with the same slug, together
	// with its passages, and reports which it did. Putting an unchanged
	// article again writes nothing and returns PutUnchanged.
	Put(ctx context.Context, a *Article) (PutResult, error)
	// Get returns the article with the slug, with its body.
	// It returns ENOTFOUND if there is none.
	Get(ctx context.Context, slug string) (*Article, error)
	// List returns a page of articles without bodies, newest first, and the
	// number of articles that match opt.Tag in all.
	List(ctx context.Context, opt ListOptions) (page []Article, total int, err error)
	// Tags returns every tag with its article count, most used first.
	Tags(ctx context.Context) ([]TagCount, error)
	// Delete removes the article with the slug. It returns ENOTFOUND if there is none.
	Delete(ctx context.Context, slug string) error
	// SourcesUnder returns the slug and source of every article whose source
	// path lies under one of roots (used by import --prune).
	SourcesUnder(ctx context.Context, roots []string) (map[string]string, error)
}

// PutResult says what Store.Put did.
type PutResult int

// Results of Store.Put.
const (
	PutUnchanged PutResult = iota // the same article was already stored
	PutAdded                      // no article had the slug
	PutUpdated                    // the article with the slug was replaced
)

func (r PutResult) String() string {
	switch r {
	case PutAdded:
		return "added"
	case PutUpdated:
		return "updated"
	}
	return "unchanged"
}

// TermCounter is implemented by a Searcher that can tell how common terms
// are: the Answerer gives the counts to the generator (Prompt.TermDocs).
type TermCounter interface {
	// CountTerms returns, for each of terms, how many passages contain it
	// (matched as Search matches it), and how many passages there are.
	CountTerms(ctx context.Context, terms []string) (docs []int, total int, err error)
}

// Searcher is the read side the answer pipeline needs.
type Searcher interface {
	// Search returns up to limit passages that match q, best first.
	// It returns EINVALID if q has no searchable terms.
	Search(ctx context.Context, q Query, limit int) ([]Passage, error)
	// TagsNamed returns the tags whose normalised form (NormalizeTag) is one
	// of names, in no particular order.
	TagsNamed(ctx context.Context, names []string) ([]string, error)
}
