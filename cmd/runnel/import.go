package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/sqlite"
)

func runImport(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c := newConfig("import", env)
	var (
		db        string
		prune     bool
		articleKB int
	)
	c.String(&db, "db", "RUNNEL_DB", defaultDB, "SQLite database `path` to import into (created if missing; ask and serve read "+defaultDB+" here without -db)")
	c.Bool(&prune, "prune", "RUNNEL_PRUNE", false, "remove articles imported earlier from under these paths whose files are gone")
	c.Int(&articleKB, "max-article-kb", "RUNNEL_MAX_ARTICLE_KB", markdown.DefaultMaxBytes>>10,
		"largest article in `KiB` (a Markdown file, or a JSONL record's body); a larger one is reported and skipped")
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage: runnel import [flags] PATH...\n\n"+
			"Import Markdown files (.md, .markdown, with optional YAML front matter; gzipped as\n"+
			".md.gz too) and JSONL files (.jsonl, one article object a line) into the database.\n"+
			"Directories are walked; other files are skipped, and counted by extension in the\n"+
			"summary. Importing again updates changed articles in place. A file that cannot be\n"+
			"read or is over a limit (its size, decompressed size, how deeply it nests, how much\n"+
			"markup a paragraph has) is reported and the rest still imports; the exit status is\n"+
			"then 1. On a terminal, progress is one line with the count, the rate and the time\n"+
			"left; otherwise a line every 100 files or half second.\n\nFlags:\n")
		c.fs.PrintDefaults()
	}
	if err := parse(c.fs, args, stderr); err != nil {
		return err
	}
	if err := c.err(); err != nil {
		return err
	}
	if articleKB < 1 || articleKB > 1<<20 {
		fmt.Fprintf(stderr, "runnel import: --max-article-kb %d: want 1 to %d\n", articleKB, 1<<20)
		return errUsage
	}
	if c.fs.NArg() == 0 {
		fmt.Fprintln(stderr, "runnel import: no PATH given")
		c.fs.Usage()
		return errUsage
	}
	_, statErr := os.Stat(db)
	created := errors.Is(statErr, fs.ErrNotExist)
	store, err := sqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			store.Close()
		}
	}()
	// A database this import created and put nothing in goes again, so that
	// a failed first import leaves no empty file for ask and serve to find.
	discard := func(sum markdown.Summary) {
		if created && sum.Added == 0 {
			store.Close()
			closed = true
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(db + suffix)
			}
		}
	}
	// On a terminal, progress is one line redrawn in place; in a pipe or a
	// log, a line now and then.
	tty := detectTerminal(stderr, env)
	im := &markdown.Importer{Store: store, Prune: prune, Progress: stderr,
		Terminal: tty.width > 0, Width: tty.width,
		Limits: markdown.Limits{MaxBytes: articleKB << 10}}
	sum, err := im.Import(ctx, c.fs.Args()...)
	if err != nil {
		discard(sum)
		return err
	}
	if created && sum.Added == 0 {
		discard(sum)
		fmt.Fprintf(stdout, "%s; nothing imported, so no %s was made\n", sum, db)
	} else {
		fmt.Fprintf(stdout, "%s into %s\n", sum, db)
	}
	if sum.Failed > 0 {
		return exitError{code: 1}
	}
	return nil
}
