package markdown

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// gzipped returns s compressed with gzip.
func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestImportGzip imports a directory shaped like Debian's docker-doc: large
// pages gzipped next to plain ones, images and other files beside them.
// The gzipped pages import with the slugs and titles of plain ones, and
// every other file is counted by its extension.
func TestImportGzip(t *testing.T) {
	dir, store := t.TempDir(), newMemStore()
	writeFiles(t, dir, map[string]string{
		"reference/index.md":            "# Reference\n\nSee [run](run.md).\n",
		"reference/run.md.gz":           gzipped(t, "# Docker run reference\n\n## Options\n\nFlags.\n"),
		"reference/Builder.MARKDOWN.GZ": gzipped(t, "---\ntitle: Dockerfile reference\n---\nFROM.\n"),
		"my-notes.md.gz":                gzipped(t, "Only text.\n"),
		"bad.md.gz":                     "not gzip at all",
		"cut.md.gz":                     gzipped(t, "# Cut\n\nThe end is missing.\n")[:20],
		"images/logo.png":               "\x89PNG",
		"images/icon.png":               "\x89PNG",
		"notes.txt":                     "text",
		"changelog.Debian.gz":           gzipped(t, "changes"),
		"api/v1.25.yaml.gz":             gzipped(t, "swagger: 2.0"),
		"NOTICE":                        "notice",
		".hidden.txt":                   "not counted",
		"data/rows.jsonl.gz":            gzipped(t, `{"slug":"x"}`),
	})
	var progress bytes.Buffer
	sum := mustImport(t, &Importer{Store: store, Progress: &progress}, dir)
	if got, want := counts(sum), "files=6 added=4 updated=0 unchanged=0 pruned=0 failed=2"; got != want {
		t.Errorf("import: %s, want %s", got, want)
	}
	if got, want := store.slugs(), []string{"my-notes", "reference/builder", "reference/index", "reference/run"}; !slices.Equal(got, want) {
		t.Errorf("slugs = %q, want %q", got, want)
	}
	run, _ := store.Get(context.Background(), "reference/run")
	if want := filepath.Join(dir, "reference", "run.md.gz"); run.Source != want || run.Title != "Docker run reference" || len(run.Passages) != 1 {
		t.Errorf("reference/run = source %q, title %q, %d passages; want %q, its heading, 1", run.Source, run.Title, len(run.Passages), want)
	}
	if b, _ := store.Get(context.Background(), "reference/builder"); b.Title != "Dockerfile reference" {
		t.Errorf("reference/builder title = %q, want the front matter's", b.Title)
	}
	if n, _ := store.Get(context.Background(), "my-notes"); n.Title != "my notes" {
		t.Errorf("my-notes title = %q, want the file name without .md.gz", n.Title)
	}
	for _, want := range []string{
		filepath.Join(dir, "bad.md.gz") + ": decompressing: gzip: invalid header",
		filepath.Join(dir, "cut.md.gz") + ": decompressing: unexpected EOF",
	} {
		if !strings.Contains(progress.String(), want+"\n") {
			t.Errorf("progress %q lacks %q", progress.String(), want)
		}
	}
	wantSkipped := map[string]int{".png": 2, ".txt": 1, ".debian.gz": 1, ".yaml.gz": 1, "": 1, ".jsonl.gz": 1}
	if !maps.Equal(sum.Skipped, wantSkipped) {
		t.Errorf("Skipped = %v, want %v", sum.Skipped, wantSkipped)
	}
	if got, want := sum.String(), "6 files: 4 added, 0 updated, 0 unchanged, 0 pruned, 2 failed; "+
		"7 other files skipped (2 .png, 1 without extension, 1 .debian.gz, 1 .jsonl.gz, 1 .txt, 1 .yaml.gz)"; got != want {
		t.Errorf("String() = %q\nwant       %q", got, want)
	}

	// A gzipped file can be named on its own.
	one := newMemStore()
	mustImport(t, &Importer{Store: one}, filepath.Join(dir, "reference", "run.md.gz"))
	if got := one.slugs(); !slices.Equal(got, []string{"run"}) {
		t.Errorf("importing run.md.gz alone: slugs %q, want [run]", got)
	}
}

// TestImportGzipBomb imports 256 MiB of zeros gzipped into 256 KiB: it is
// refused by its decompressed size, having read no more than the limit
// (the memory it took is a small multiple of the limit, not of the data).
func TestImportGzipBomb(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "bomb.md.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 256 {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"ok.md.gz": gzipped(t, "# Fine\n\nSmall.\n")})

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum := mustImport(t, &Importer{Store: newMemStore()}, dir)
	runtime.ReadMemStats(&after)
	if got, want := counts(sum), "files=2 added=1 updated=0 unchanged=0 pruned=0 failed=1"; got != want {
		t.Errorf("import: %s, want %s", got, want)
	}
	want := "bomb.md.gz: the file, decompressed: more than 1048576 bytes (1.0 MiB), over the limit of 1048576 bytes (1.0 MiB)"
	if len(sum.Problems) != 1 || !strings.HasSuffix(sum.Problems[0].Error(), want) {
		t.Errorf("Problems = %v, want one ending %q", sum.Problems, want)
	}
	var le *LimitError
	if len(sum.Problems) == 1 && !errors.As(sum.Problems[0], &le) {
		t.Errorf("problem %v is not a *LimitError", sum.Problems[0])
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("importing a 256 MiB gzip bomb allocated %d MiB, want a few", alloc>>20)
	}
}
