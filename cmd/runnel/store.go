package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/sqlite"
)

// storeFlags are the flags that choose the articles a command answers from.
type storeFlags struct {
	db       string
	articles string
	// noDefault ignores runnel.db in the current directory (Lambda, whose
	// database is named by RUNNEL_DB alone).
	noDefault bool
}

func (sf *storeFlags) bind(c *config) {
	c.String(&sf.db, "db", "RUNNEL_DB", "", "SQLite database `path`, made by runnel import; empty means "+defaultDB+" if it exists, else a temporary database of the -articles or of the embedded articles")
	c.String(&sf.articles, "articles", "RUNNEL_ARTICLES", "", "comma-separated Markdown/JSONL files or directories to import at start (`paths`)")
}

// paths returns the -articles paths.
func (sf *storeFlags) paths() []string {
	var paths []string
	for _, p := range strings.Split(sf.articles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// defaultDB is the database runnel import writes without -db, and the one
// ask and serve read without -db when it exists.
const defaultDB = "runnel.db"

// open opens the store the flags describe: -db, which must exist; else
// runnel.db in the current directory if there is one (and no -articles);
// else a temporary database, removed by the returned close function, of
// the -articles or of the embedded corpus.
func (sf *storeFlags) open(ctx context.Context, stderr io.Writer) (*sqlite.Store, func(), error) {
	var store *sqlite.Store
	var closeFn func()
	if sf.db == "" && sf.articles == "" && !sf.noDefault {
		if _, err := os.Stat(defaultDB); err == nil {
			sf.db = defaultDB // what runnel import wrote here
			fmt.Fprintf(stderr, "runnel: answering from %s, which runnel import made here (-db chooses another)\n", defaultDB)
		}
	}
	if sf.db != "" && sf.articles == "" {
		if _, err := os.Stat(sf.db); err != nil {
			// Only import creates a database: a typo here would answer
			// every question from an empty one.
			return nil, nil, fmt.Errorf("no database at %s (runnel import --db %s PATH... makes one): %w", sf.db, sf.db, err)
		}
	}
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
	paths := sf.paths()
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
