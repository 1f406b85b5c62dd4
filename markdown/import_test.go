package markdown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
)

// memStore is an in-memory runnel.Store: just enough for the importer.
type memStore struct {
	mu       sync.Mutex
	articles map[string]runnel.Article
	failPut  error
}

var _ runnel.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{articles: map[string]runnel.Article{}} }

func (s *memStore) Put(ctx context.Context, a *runnel.Article) (runnel.PutResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil {
		return runnel.PutUnchanged, s.failPut
	}
	old, ok := s.articles[a.Slug]
	if ok && reflect.DeepEqual(old, *a) {
		return runnel.PutUnchanged, nil
	}
	s.articles[a.Slug] = *a
	if ok {
		return runnel.PutUpdated, nil
	}
	return runnel.PutAdded, nil
}

func (s *memStore) Get(ctx context.Context, slug string) (*runnel.Article, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.articles[slug]
	if !ok {
		return nil, runnel.Errorf(runnel.ENOTFOUND, "no article %q", slug)
	}
	return &a, nil
}

func (s *memStore) List(ctx context.Context, opt runnel.ListOptions) ([]runnel.Article, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []runnel.Article
	for _, slug := range slices.Sorted(maps.Keys(s.articles)) {
		out = append(out, s.articles[slug])
	}
	return out, len(out), nil
}

func (s *memStore) Tags(ctx context.Context) ([]runnel.TagCount, error) { return nil, nil }

func (s *memStore) Delete(ctx context.Context, slug string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.articles[slug]; !ok {
		return runnel.Errorf(runnel.ENOTFOUND, "no article %q", slug)
	}
	delete(s.articles, slug)
	return nil
}

func (s *memStore) SourcesUnder(ctx context.Context, roots []string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for slug, a := range s.articles {
		for _, r := range roots {
			if within(a.Source, r) {
				out[slug] = a.Source
			}
		}
	}
	return out, nil
}

func (s *memStore) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	return nil, nil
}

func (s *memStore) TagsNamed(ctx context.Context, names []string) ([]string, error) { return nil, nil }

func (s *memStore) slugs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.articles))
}

// writeFiles creates files (path relative to dir -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// docs returns a temporary directory with a small collection of articles.
func docs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"intro.md":                     "---\ntitle: Intro\ntags: [start]\n---\nWelcome.\n",
		"guides/websockets.md":         "# WebSockets\n\nFull duplex.\n\n## Handshake\n\nUpgrade.\n",
		"guides/Server Sent Events.md": "SSE streams text.\n",
		"notes/old.markdown":           "---\ntitle: Old\n---\nOld note.\n",
		"data/faq.jsonl":               "{\"slug\":\"faq/one\",\"title\":\"One\",\"body\":\"First answer.\"}\n{\"title\":\"Two\",\"body\":\"Second answer.\"}\n",
		"README.txt":                   "not imported",
		".git/HEAD.md":                 "# hidden dir",
		".hidden.md":                   "# hidden file",
		"node_modules/pkg/README.md":   "# a dependency",
	})
	return dir
}

func mustImport(t *testing.T, im *Importer, paths ...string) Summary {
	t.Helper()
	sum, err := im.Import(context.Background(), paths...)
	if err != nil {
		t.Fatalf("Import(%q) = %v, %v", paths, sum, err)
	}
	return sum
}

// counts is the part of a Summary most tests check.
func counts(s Summary) string {
	return fmt.Sprintf("files=%d added=%d updated=%d unchanged=%d pruned=%d failed=%d",
		s.Files, s.Added, s.Updated, s.Unchanged, s.Pruned, s.Failed)
}

func TestImport(t *testing.T) {
	// data/faq.jsonl holds faq/one and two (slug from its title).
	allSlugs := []string{"faq/one", "guides/server-sent-events", "guides/websockets", "intro", "notes/old", "two"}

	t.Run("walk and re-import", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		im := &Importer{Store: store}
		if got, want := counts(mustImport(t, im, dir)), "files=5 added=6 updated=0 unchanged=0 pruned=0 failed=0"; got != want {
			t.Errorf("first import: %s, want %s", got, want)
		}
		if got := store.slugs(); !slices.Equal(got, allSlugs) {
			t.Errorf("slugs = %q, want %q", got, allSlugs)
		}
		a, _ := store.Get(context.Background(), "guides/websockets")
		if want := filepath.Join(dir, "guides", "websockets.md"); a.Source != want {
			t.Errorf("Source = %q, want %q", a.Source, want)
		}
		if len(a.Passages) != 2 || a.Passages[0].Slug != "guides/websockets" {
			t.Errorf("passages = %+v, want 2 with the importer's slug", a.Passages)
		}
		faq, _ := store.Get(context.Background(), "faq/one")
		if want := filepath.Join(dir, "data", "faq.jsonl"); faq.Source != want {
			t.Errorf("JSONL Source = %q, want %q", faq.Source, want)
		}
		if got, want := counts(mustImport(t, im, dir)), "files=5 added=0 updated=0 unchanged=6 pruned=0 failed=0"; got != want {
			t.Errorf("second import: %s, want %s", got, want)
		}
	})

	t.Run("edit one file", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		im := &Importer{Store: store}
		mustImport(t, im, dir)
		writeFiles(t, dir, map[string]string{"intro.md": "---\ntitle: Intro\ntags: [start]\n---\nWelcome back.\n"})
		if got, want := counts(mustImport(t, im, dir)), "files=5 added=0 updated=1 unchanged=5 pruned=0 failed=0"; got != want {
			t.Errorf("after an edit: %s, want %s", got, want)
		}
		a, _ := store.Get(context.Background(), "intro")
		if a.Passages[0].Text != "Welcome back." {
			t.Errorf("intro text = %q, want the edited text", a.Passages[0].Text)
		}
	})

	t.Run("delete and prune", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		// An article from elsewhere is not touched by pruning this directory.
		store.articles["other"] = runnel.Article{Slug: "other", Source: "/elsewhere/other.md"}
		var progress bytes.Buffer
		im := &Importer{Store: store, Prune: true, Progress: &progress}
		mustImport(t, im, dir)
		if err := os.Remove(filepath.Join(dir, "notes", "old.markdown")); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"data/faq.jsonl": "{\"slug\":\"faq/one\",\"title\":\"One\",\"body\":\"First answer.\"}\n"})
		if got, want := counts(mustImport(t, im, dir)), "files=4 added=0 updated=0 unchanged=4 pruned=2 failed=0"; got != want {
			t.Errorf("after deleting: %s, want %s", got, want)
		}
		want := slices.Concat(slices.DeleteFunc(slices.Clone(allSlugs), func(s string) bool { return s == "notes/old" || s == "two" }), []string{"other"})
		slices.Sort(want)
		if got := store.slugs(); !slices.Equal(got, want) {
			t.Errorf("slugs = %q, want %q", got, want)
		}
		if !strings.Contains(progress.String(), "pruned notes/old") {
			t.Errorf("progress %q does not mention the pruned article", progress.String())
		}
	})

	t.Run("without prune nothing is deleted", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		im := &Importer{Store: store}
		mustImport(t, im, dir)
		os.Remove(filepath.Join(dir, "intro.md"))
		if got, want := counts(mustImport(t, im, dir)), "files=4 added=0 updated=0 unchanged=5 pruned=0 failed=0"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		if len(store.slugs()) != len(allSlugs) {
			t.Errorf("slugs = %q, want all %d kept", store.slugs(), len(allSlugs))
		}
	})

	t.Run("malformed file reported, the rest imported", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		writeFiles(t, dir, map[string]string{
			"bad/yaml.md":  "---\ntitle: [oops\n---\ntext\n",
			"bad/empty.md": "",
		})
		var progress bytes.Buffer
		im := &Importer{Store: store, Progress: &progress}
		sum := mustImport(t, im, dir)
		if got, want := counts(sum), "files=7 added=6 updated=0 unchanged=0 pruned=0 failed=2"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		for _, name := range []string{"yaml.md", "empty.md"} {
			p := filepath.Join(dir, "bad", name)
			if !strings.Contains(progress.String(), p+": ") {
				t.Errorf("progress %q does not report %s", progress.String(), p)
			}
			if !slices.ContainsFunc(sum.Problems, func(pr Problem) bool { return pr.Path == p && pr.Line == 0 }) {
				t.Errorf("Problems = %v, want one for %s", sum.Problems, p)
			}
		}
	})

	t.Run("a file that stops parsing is not pruned", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		im := &Importer{Store: store, Prune: true}
		mustImport(t, im, dir)
		writeFiles(t, dir, map[string]string{"intro.md": "---\ntitle: [broken\n---\n"})
		if got, want := counts(mustImport(t, im, dir)), "files=5 added=0 updated=0 unchanged=5 pruned=0 failed=1"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		if _, err := store.Get(context.Background(), "intro"); err != nil {
			t.Errorf("intro was pruned although its file still exists: %v", err)
		}
	})

	t.Run("JSONL with a bad line", func(t *testing.T) {
		dir, store := t.TempDir(), newMemStore()
		writeFiles(t, dir, map[string]string{"a.jsonl": "{\"slug\":\"one\"}\n{oops}\n\n{\"slug\":\"three\"}\n"})
		var progress bytes.Buffer
		im := &Importer{Store: store, Progress: &progress}
		sum := mustImport(t, im, filepath.Join(dir, "a.jsonl"))
		if got, want := counts(sum), "files=1 added=2 updated=0 unchanged=0 pruned=0 failed=1"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		want := filepath.Join(dir, "a.jsonl") + ":2: invalid JSON"
		if len(sum.Problems) != 1 || !strings.HasPrefix(sum.Problems[0].Error(), want) {
			t.Errorf("Problems = %v, want one starting %q", sum.Problems, want)
		}
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress %q, want it to report %q", progress.String(), want)
		}
	})

	t.Run("duplicate slug", func(t *testing.T) {
		dir, store := t.TempDir(), newMemStore()
		writeFiles(t, dir, map[string]string{
			"a/Note.md": "# First\n",
			"a/note.md": "# Second\n", // the same slug, on a case-sensitive file system
			"b.jsonl":   "{\"slug\":\"a/note\",\"title\":\"Third\"}\n",
		})
		sum := mustImport(t, &Importer{Store: store}, dir)
		if got, want := counts(sum), "files=3 added=1 updated=0 unchanged=0 pruned=0 failed=2"; got != want {
			t.Errorf("%s, want %s", got, want)
		}
		for _, p := range sum.Problems {
			if !strings.Contains(p.Error(), `duplicate slug "a/note"`) || !strings.Contains(p.Error(), filepath.Join(dir, "a", "Note.md")) {
				t.Errorf("problem %q should name the slug and the first file", p)
			}
		}
		if len(sum.Problems) == 2 && sum.Problems[1].Line != 1 {
			t.Errorf("JSONL duplicate reported at line %d, want 1", sum.Problems[1].Line)
		}
	})

	t.Run("single file gets its base name", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		mustImport(t, &Importer{Store: store}, filepath.Join(dir, "guides", "websockets.md"))
		if got := store.slugs(); !slices.Equal(got, []string{"websockets"}) {
			t.Errorf("slugs = %q, want [websockets]", got)
		}
	})

	t.Run("relative path", func(t *testing.T) {
		dir, store := docs(t), newMemStore()
		t.Chdir(dir)
		mustImport(t, &Importer{Store: store}, "guides")
		a, err := store.Get(context.Background(), "websockets")
		if err != nil || a.Source != filepath.Join(dir, "guides", "websockets.md") {
			t.Errorf("Get(websockets) = %+v, %v; want an absolute Source", a, err)
		}
	})
}

func TestImportFatal(t *testing.T) {
	dir := docs(t)
	tests := []struct {
		name  string
		paths []string
		store func(*memStore)
		ctx   func() context.Context
		want  string
	}{
		{name: "missing path", paths: []string{dir, filepath.Join(dir, "nope")}, want: "no such file"},
		{name: "wrong kind of file", paths: []string{filepath.Join(dir, "README.txt")}, want: "not a .md"},
		{name: "no paths", want: "Nothing to import"},
		{name: "store failure", paths: []string{dir}, store: func(s *memStore) { s.failPut = errors.New("disk full") }, want: "disk full"},
		{name: "canceled", paths: []string{dir}, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, want: "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			if tt.store != nil {
				tt.store(store)
			}
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			sum, err := (&Importer{Store: store, Prune: true}).Import(ctx, tt.paths...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Import(%q) = %v, want an error mentioning %q", tt.paths, err, tt.want)
			}
			if n := len(store.slugs()); n != 0 || sum.Added != 0 {
				t.Errorf("after a fatal error: %d articles stored, %d added; want none", n, sum.Added)
			}
		})
	}
}

func TestImportProgress(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 250 {
		files[fmt.Sprintf("n/%03d.md", i)] = fmt.Sprintf("# Note %d\n\nText %d.\n", i, i)
	}
	writeFiles(t, dir, files)

	t.Run("every 100 files", func(t *testing.T) {
		var progress bytes.Buffer
		now := time.Unix(0, 0) // the clock never moves
		im := &Importer{Store: newMemStore(), Progress: &progress, Now: func() time.Time { return now }}
		mustImport(t, im, dir)
		if got, want := progress.String(), "imported 100/250 files\nimported 200/250 files\n"; got != want {
			t.Errorf("progress = %q, want %q", got, want)
		}
	})

	t.Run("every 500 ms", func(t *testing.T) {
		var progress bytes.Buffer
		now := time.Unix(0, 0)
		im := &Importer{Store: newMemStore(), Progress: &progress, Now: func() time.Time {
			now = now.Add(600 * time.Millisecond) // every file takes longer than 500 ms
			return now
		}}
		sum := mustImport(t, im, dir)
		lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
		if len(lines) != 249 || lines[0] != "imported 1/250 files" || lines[248] != "imported 249/250 files" {
			t.Errorf("progress lines = %d, first %q; want one after every file but the last", len(lines), lines[0])
		}
		if got, want := sum.String(), "250 files: 250 added, 0 updated, 0 unchanged, 0 pruned, 0 failed"; got != want {
			t.Errorf("Summary.String() = %q, want %q", got, want)
		}
	})
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		sum  Summary
		want string
	}{
		{Summary{Files: 42, Added: 40, Updated: 1, Failed: 1}, "42 files: 40 added, 1 updated, 0 unchanged, 0 pruned, 1 failed"},
		{Summary{Files: 1, Unchanged: 1}, "1 file: 0 added, 0 updated, 1 unchanged, 0 pruned, 0 failed"},
		{Summary{Pruned: 3}, "0 files: 0 added, 0 updated, 0 unchanged, 3 pruned, 0 failed"},
		{Summary{Files: 160, Added: 157, Failed: 3, Skipped: map[string]int{".png": 5, ".txt": 2, ".html": 1}},
			"160 files: 157 added, 0 updated, 0 unchanged, 0 pruned, 3 failed; 8 other files skipped (5 .png, 2 .txt, 1 .html)"},
		{Summary{Files: 1, Added: 1, Skipped: map[string]int{"": 1}},
			"1 file: 1 added, 0 updated, 0 unchanged, 0 pruned, 0 failed; 1 other file skipped (1 without extension)"},
		{Summary{Skipped: map[string]int{".a": 7, ".b": 6, ".c": 5, ".d": 4, ".e": 3, ".f": 2, ".g": 1}},
			"0 files: 0 added, 0 updated, 0 unchanged, 0 pruned, 0 failed; 28 other files skipped (7 .a, 6 .b, 5 .c, 4 .d, 3 .e, 3 others)"},
		{Summary{Skipped: map[string]int{".a": 6, ".b": 5, ".c": 4, ".d": 3, ".e": 2, ".f": 1}},
			"0 files: 0 added, 0 updated, 0 unchanged, 0 pruned, 0 failed; 21 other files skipped (6 .a, 5 .b, 4 .c, 3 .d, 2 .e, 1 .f)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.sum.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	p := Problem{Path: "a.jsonl", Line: 3, Err: errors.New("bad")}
	if got := p.Error(); got != "a.jsonl:3: bad" {
		t.Errorf("Problem.Error() = %q, want %q", got, "a.jsonl:3: bad")
	}
}

func TestSourcePath(t *testing.T) {
	for src, want := range map[string]string{
		"/d/a.jsonl:12": "/d/a.jsonl",
		"/d/a.jsonl":    "/d/a.jsonl",
		"/d/a:b.md":     "/d/a:b.md",
		"/d/x.md:3":     "/d/x.md:3",
	} {
		if got := sourcePath(src); got != want {
			t.Errorf("sourcePath(%q) = %q, want %q", src, got, want)
		}
	}
}

// batchStore is a memStore that also puts in batches, as sqlite.Store does.
type batchStore struct {
	*memStore
	batches []int // the size of each batch
}

func (b *batchStore) PutBatch(ctx context.Context, as []*runnel.Article) ([]runnel.PutResult, error) {
	b.batches = append(b.batches, len(as))
	out := make([]runnel.PutResult, len(as))
	for i, a := range as {
		res, err := b.Put(ctx, a)
		if err != nil {
			return nil, err
		}
		out[i] = res
	}
	return out, nil
}

func TestImportBatches(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := range 250 {
		lines = append(lines, fmt.Sprintf(`{"slug":"n%03d","title":"Note %d","body":"Text %d."}`, i, i, i))
	}
	writeFiles(t, dir, map[string]string{"notes.jsonl": strings.Join(lines, "\n"), "one.md": "# One\n\nText.\n"})
	store := &batchStore{memStore: newMemStore()}
	im := &Importer{Store: store}
	if got, want := counts(mustImport(t, im, dir)), "files=2 added=251 updated=0 unchanged=0 pruned=0 failed=0"; got != want {
		t.Errorf("import: %s, want %s", got, want)
	}
	if !slices.Equal(store.batches, []int{100, 100, 51}) {
		t.Errorf("batches %v, want 100, 100 and the rest", store.batches)
	}
	if len(store.slugs()) != 251 {
		t.Errorf("%d articles stored, want 251", len(store.slugs()))
	}
	// A failing batch stops the import and names where its articles came from.
	store.failPut = errors.New("disk full")
	_, err := im.Import(context.Background(), filepath.Join(dir, "notes.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "notes.jsonl:1 to ") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Import with a failing store = %v, want the batch's lines and the cause", err)
	}
}
