package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/sqlite"
)

// storeFlags are the flags that choose the articles a command answers from.
type storeFlags struct {
	db       string
	articles string
}

func (sf *storeFlags) bind(c *config) {
	c.String(&sf.db, "db", "RUNNEL_DB", "", "SQLite database `path`; empty means a temporary database of the -articles, or of the embedded articles")
	c.String(&sf.articles, "articles", "RUNNEL_ARTICLES", "", "comma-separated Markdown/JSONL files or directories to import at start (`paths`)")
}

// open opens the store the flags describe. With no -db it builds a
// temporary database, removed by the returned close function, from the
// -articles or else from the embedded corpus.
func (sf *storeFlags) open(ctx context.Context, stderr io.Writer) (*sqlite.Store, func(), error) {
	var store *sqlite.Store
	var closeFn func()
	tmp := sf.db == ""
	var err error
	if tmp {
		store, closeFn, err = sqlite.OpenTemp(ctx)
	} else {
		store, err = sqlite.Open(ctx, sf.db)
		closeFn = func() { store.Close() }
	}
	if err != nil {
		return nil, nil, err
	}
	var paths []string
	for _, p := range strings.Split(sf.articles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	switch {
	case len(paths) > 0:
		im := &markdown.Importer{Store: store, Progress: stderr}
		sum, err := im.Import(ctx, paths...)
		if err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("import: %w", err)
		}
		fmt.Fprintln(stderr, "articles:", sum)
	case tmp:
		if _, err := markdown.PutFS(ctx, store, corpus.FS()); err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("load embedded articles: %w", err)
		}
	}
	return store, closeFn, nil
}
