package markdown

import (
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runnel/runnel"
)

// progressEvery and progressFiles bound how often Import reports progress:
// a line at most every 500 ms, or after every 100 files. On a terminal the
// line is redrawn in place, at most every terminalEvery.
const (
	progressEvery = 500 * time.Millisecond
	progressFiles = 100
	terminalEvery = 100 * time.Millisecond
)

// Importer puts Markdown and JSONL files into a Store.
type Importer struct {
	Store runnel.Store
	// Prune deletes, after an import, the articles whose source lies under
	// the imported paths but that were not imported this time (their file
	// or JSONL line is gone).
	Prune bool
	// Progress receives progress lines ("imported 300/1200 files") and each
	// problem ("path: reason") as it happens; nil means silent.
	Progress io.Writer
	// Terminal says that Progress is a terminal: progress is then one line
	// redrawn in place ("\r", then erase to its end) with the count, the
	// rate and the time left, at most every 100 ms, and left on the screen
	// with a newline when the import ends. Width, if positive, is the
	// terminal's width in columns; the line is cut to fit.
	Terminal bool
	Width    int
	// Now returns the current time, for the progress pace; nil means
	// time.Now.
	Now func() time.Time
	// Limits bound each article; zero fields take their defaults. A file
	// or JSONL record over a limit is a Problem, whose error is a
	// *LimitError, and the rest still imports. A Markdown file is refused
	// by its size before it is read, and never read past the limit.
	Limits Limits
}

// Summary counts what an import did. Files counts the files read; Added,
// Updated, Unchanged and Pruned count articles (a JSONL file holds many);
// Failed counts the files and JSONL lines that could not be imported, one
// per Problem. Skipped counts the files found in the directories walked
// that are not articles (images, .txt, .html ...), by their extension in
// lower case (".png", ".yaml.gz"; "" for none); hidden files and
// node_modules are not counted.
type Summary struct {
	Files, Added, Updated, Unchanged, Pruned, Failed int
	Problems                                         []Problem
	Skipped                                          map[string]int
}

// maxSkippedKinds is how many extensions Summary.String names.
const maxSkippedKinds = 5

// String returns the one-line summary a command prints at the end:
// "42 files: 40 added, 1 updated, 0 unchanged, 0 pruned, 1 failed", and
// when files were skipped, which: "; 8 other files skipped (5 .png,
// 2 .txt, 1 .html)".
func (s Summary) String() string {
	out := fmt.Sprintf("%d %s: %d added, %d updated, %d unchanged, %d pruned, %d failed",
		s.Files, plural(s.Files, "file"), s.Added, s.Updated, s.Unchanged, s.Pruned, s.Failed)
	if n := s.SkippedFiles(); n > 0 {
		out += fmt.Sprintf("; %d other %s skipped (%s)", n, plural(n, "file"), s.skippedKinds())
	}
	return out
}

// SkippedFiles returns how many files were skipped, of every extension.
func (s Summary) SkippedFiles() int {
	n := 0
	for _, c := range s.Skipped {
		n += c
	}
	return n
}

// skippedKinds lists the extensions skipped, most files first:
// "5 .png, 2 .txt, 1 without extension, 3 others".
func (s Summary) skippedKinds() string {
	exts := make([]string, 0, len(s.Skipped))
	for ext := range s.Skipped {
		exts = append(exts, ext)
	}
	slices.SortFunc(exts, func(a, b string) int {
		return cmp.Or(cmp.Compare(s.Skipped[b], s.Skipped[a]), strings.Compare(a, b))
	})
	var parts []string
	rest := 0
	for i, ext := range exts {
		switch {
		case i >= maxSkippedKinds && len(exts) > maxSkippedKinds+1:
			rest += s.Skipped[ext]
		case ext == "":
			parts = append(parts, fmt.Sprintf("%d without extension", s.Skipped[ext]))
		default:
			parts = append(parts, fmt.Sprintf("%d %s", s.Skipped[ext], ext))
		}
	}
	if rest > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", rest, plural(rest, "other")))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Problem is a file, or a line of a JSONL file, that could not be imported.
type Problem struct {
	Path string // as found from the paths given to Import
	Line int    // 1-based line of a JSONL file; 0 for a whole file
	Err  error
}

// Error returns "path:line: reason", or "path: reason" for a whole file.
func (p Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", p.Path, p.Line, p.Err)
	}
	return fmt.Sprintf("%s: %v", p.Path, p.Err)
}

func (p Problem) Unwrap() error { return p.Err }

// Import imports each path: a .md, .markdown or .jsonl file (Markdown
// gzipped as .md.gz or .markdown.gz too, as Debian ships large docs), or a
// directory walked recursively for such files (hidden files and
// directories and node_modules are skipped; other files are counted in
// Summary.Skipped). Slugs are the files' paths relative to the
// directory given (see Slug); a file named on its own gets the slug of its
// base name. Article.Source is the file's absolute, cleaned path; for JSONL
// too, without the line number.
//
// A file that cannot be read or parsed, a bad JSONL line and a slug already
// imported in this run from another file are Problems: they are reported to
// Progress at once and counted, and the rest is imported. Import returns an
// error only when it cannot go on: a path that does not exist or is not a
// file it can import (checked before anything is imported), a store
// failure, or ctx done (checked between files). The Summary then counts
// what was done until then, and nothing is pruned.
func (im *Importer) Import(ctx context.Context, paths ...string) (Summary, error) {
	r := &importRun{
		Importer: im,
		ctx:      ctx,
		now:      im.Now,
		slugs:    map[string]string{},
	}
	if r.now == nil {
		r.now = time.Now
	}
	if im.Store == nil {
		return r.sum, errors.New("import: no store")
	}
	if len(paths) == 0 {
		return r.sum, runnel.Errorf(runnel.EINVALID, "Nothing to import: name a file or a directory.")
	}
	files, roots, err := r.collect(paths)
	if err != nil {
		return r.sum, err
	}
	r.bar = progress{total: len(files), start: r.now(), width: im.Width}
	r.bar.last = r.bar.start
	defer r.endProgress()
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return r.sum, fmt.Errorf("import: %w", err)
		}
		r.sum.Files++
		if err := r.importFile(f); err != nil {
			return r.sum, err
		}
		r.progress(i + 1)
	}
	if b, ok := im.Store.(BatchPutter); ok {
		if err := r.flush(b); err != nil {
			return r.sum, err
		}
	}
	if im.Prune {
		if err := r.prune(roots); err != nil {
			return r.sum, err
		}
	}
	return r.sum, nil
}

// importRun is the state of one Import.
type importRun struct {
	*Importer
	ctx    context.Context
	now    func() time.Time
	sum    Summary
	slugs  map[string]string // slug -> where it was imported from in this run
	failed []string          // absolute paths with problems: never pruned

	pending      []*runnel.Article // put but not yet written (BatchPutter)
	pendingAt    []string          // where each pending article came from
	pendingBytes int

	bar progress
}

// file is a file to import.
type file struct {
	show string // the path as found from the arguments, for messages
	abs  string // absolute and clean: the article's Source
	root string // absolute directory slugs are relative to, or abs itself
}

// printf writes a line to Progress, first erasing the progress line
// drawn on a terminal (the next update draws it again).
func (r *importRun) printf(format string, args ...any) {
	if r.Progress == nil {
		return
	}
	if r.bar.drawn {
		io.WriteString(r.Progress, "\r\x1b[K")
		r.bar.drawn = false
	}
	fmt.Fprintf(r.Progress, format, args...)
}

// problem records and reports a problem with the file at abs.
func (r *importRun) problem(show, abs string, line int, err error) {
	p := Problem{Path: show, Line: line, Err: err}
	r.sum.Problems = append(r.sum.Problems, p)
	r.sum.Failed++
	r.failed = append(r.failed, abs)
	r.printf("%s\n", p.Error())
}

// supported reports whether name has an extension Import reads.
func supported(name string) bool {
	ext, _ := articleExt(name)
	return ext != ""
}

// articleExt returns the extension of an article file in lower case (".md",
// ".markdown" or ".jsonl"), and whether it is gzipped (".md.gz",
// ".markdown.gz"); "" for any other file.
func articleExt(name string) (ext string, gz bool) {
	ext = strings.ToLower(filepath.Ext(name))
	if ext == ".gz" {
		name, gz = name[:len(name)-len(ext)], true
		ext = strings.ToLower(filepath.Ext(name))
	}
	switch {
	case ext == ".md", ext == ".markdown", ext == ".jsonl" && !gz:
		return ext, gz
	}
	return "", false
}

// trimArticleExt returns name without its article extension (".md",
// ".md.gz" ...) or, for other files, without its last extension.
func trimArticleExt(name string) string {
	if ext, gz := articleExt(name); gz {
		return name[:len(name)-len(ext)-len(".gz")]
	}
	return strings.TrimSuffix(name, filepath.Ext(name))
}

// skippedExt is how Summary.Skipped names the kind of a file that is not an
// article: its extension in lower case, both of them for a gzipped file
// (".yaml.gz"), "" for none.
func skippedExt(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if ext == ".gz" {
		if inner := filepath.Ext(strings.TrimSuffix(name, filepath.Ext(name))); len(inner) > 1 && len(inner) <= 9 {
			ext = strings.ToLower(inner) + ext
		}
	}
	if len(ext) > 16 || strings.TrimLeft(ext, ".") == "" {
		return "" // "a.b-c-d-e-f-g-h-i-j" or "name.": not an extension
	}
	return ext
}

// skip counts a file the walk found that is not an article.
func (r *importRun) skip(name string) {
	if r.sum.Skipped == nil {
		r.sum.Skipped = map[string]int{}
	}
	r.sum.Skipped[skippedExt(name)]++
}

// collect lists the files to import, before any is imported, so that a
// bad argument stops the import early and progress can show a total. It
// returns the absolute paths given, which prune looks under.
func (r *importRun) collect(paths []string) (files []file, roots []string, err error) {
	seen := map[string]bool{}
	add := func(f file) {
		if !seen[f.abs] {
			seen[f.abs] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, fmt.Errorf("import %s: %w", p, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("import: %w", err)
		}
		roots = append(roots, abs)
		if !fi.IsDir() {
			if !fi.Mode().IsRegular() || !supported(p) {
				return nil, nil, runnel.Errorf(runnel.EINVALID, "%s is not a .md, .markdown, .md.gz, .markdown.gz or .jsonl file.", p)
			}
			add(file{show: p, abs: abs, root: abs})
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == p {
					return err
				}
				// An unreadable directory: say so and import the rest.
				r.problem(path, filepath.Join(abs, rel(p, path)), 0, err)
				return nil
			}
			if path != p && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				// Follow links to files, not to directories (no loops).
				fi, err := os.Stat(path)
				if err != nil {
					if supported(path) {
						r.problem(path, filepath.Join(abs, rel(p, path)), 0, err)
					}
					return nil
				}
				if !fi.Mode().IsRegular() {
					return nil
				}
			} else if !d.Type().IsRegular() {
				return nil
			}
			if !supported(path) {
				r.skip(path)
				return nil
			}
			add(file{show: path, abs: filepath.Join(abs, rel(p, path)), root: abs})
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("import: %w", err)
		}
	}
	return files, roots, nil
}

// rel returns path relative to root, which WalkDir found it under.
func rel(root, path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return r
}

// importFile imports one file. Its problems are recorded; the error is
// fatal.
func (r *importRun) importFile(f file) error {
	ext, gz := articleExt(f.abs)
	if ext == ".jsonl" {
		return r.importJSONL(f)
	}
	src, err := r.read(f.abs, gz)
	if err != nil {
		r.problem(f.show, f.abs, 0, err)
		return nil
	}
	a, err := parse(f.abs, src, r.Limits)
	if err != nil {
		r.problem(f.show, f.abs, 0, err)
		return nil
	}
	slug := Slug(f.root, f.abs)
	if slug == "" {
		r.problem(f.show, f.abs, 0, errors.New("no slug can be made from the file name: it has no a-z, 0-9, -, _ or ."))
		return nil
	}
	setSlug(a, slug)
	a.Source = f.abs
	return r.put(a, f, 0)
}

// read reads the Markdown file at path, no more of it than the size limit;
// of a gzipped file, no more than the limit decompressed (a small file may
// stand for gigabytes).
func (r *importRun) read(path string, gz bool) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	limit := r.Limits.orDefault().MaxBytes
	if gz {
		return readGzip(fh, limit)
	}
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	return readArticle(fh, fi.Size(), limit)
}

// readGzip decompresses a gzipped article from r, reading no more than
// limit+1 bytes out of the decompressor. It checks the data's checksum
// when it fits.
func readGzip(r io.Reader, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	defer zr.Close()
	src, err := readArticle(zr, 0, limit)
	var le *LimitError
	if errors.As(err, &le) {
		le.What = "the file, decompressed"
		return nil, le
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return src, nil
}

func (r *importRun) importJSONL(f file) error {
	fh, err := os.Open(f.abs)
	if err != nil {
		r.problem(f.show, f.abs, 0, err)
		return nil
	}
	defer fh.Close()
	var fatal error
	err = parseJSONL(f.abs, fh, r.Limits, func(a *runnel.Article, line int) error {
		fatal = r.put(a, f, line)
		return fatal
	})
	if fatal != nil {
		return fatal
	}
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if le, ok := e.(*LineError); ok {
			r.problem(f.show, f.abs, le.Line, le.Err)
		} else {
			r.problem(f.show, f.abs, 0, e)
		}
	}
	return nil
}

// put stores a, unless its slug was already imported in this run, and
// counts it. Only store failures are returned.
func (r *importRun) put(a *runnel.Article, f file, line int) error {
	where := f.show
	if line > 0 {
		where += ":" + strconv.Itoa(line)
	}
	if prev, ok := r.slugs[a.Slug]; ok {
		r.problem(f.show, f.abs, line, fmt.Errorf("duplicate slug %q: already imported from %s", a.Slug, prev))
		return nil
	}
	r.slugs[a.Slug] = where
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if b, ok := r.Store.(BatchPutter); ok {
		r.pending = append(r.pending, a)
		r.pendingAt = append(r.pendingAt, where)
		r.pendingBytes += len(a.Body)
		if len(r.pending) < batchArticles && r.pendingBytes < batchBytes {
			return nil
		}
		return r.flush(b)
	}
	res, err := r.Store.Put(r.ctx, a)
	if err != nil {
		return fmt.Errorf("import %s: %w", where, err)
	}
	r.count(res)
	return nil
}

// BatchPutter is implemented by a store that can put many articles in one
// transaction (sqlite.Store): the importer then writes in batches, which
// is several times faster for small articles. Readers see a batch at once.
type BatchPutter interface {
	PutBatch(ctx context.Context, as []*runnel.Article) ([]runnel.PutResult, error)
}

// Limits of a batch: enough articles to make the commit cheap, few enough
// bytes to keep a transaction short.
const (
	batchArticles = 100
	batchBytes    = 4 << 20
)

// flush puts the pending articles in one batch.
func (r *importRun) flush(b BatchPutter) error {
	if len(r.pending) == 0 {
		return nil
	}
	res, err := b.PutBatch(r.ctx, r.pending)
	if err != nil {
		where := r.pendingAt[0]
		if n := len(r.pendingAt); n > 1 {
			where += " to " + r.pendingAt[n-1]
		}
		return fmt.Errorf("import %s: %w", where, err)
	}
	for _, x := range res {
		r.count(x)
	}
	r.pending, r.pendingAt, r.pendingBytes = r.pending[:0], r.pendingAt[:0], 0
	return nil
}

func (r *importRun) count(res runnel.PutResult) {
	switch res {
	case runnel.PutAdded:
		r.sum.Added++
	case runnel.PutUpdated:
		r.sum.Updated++
	default:
		r.sum.Unchanged++
	}
}

// prune deletes the articles under roots that this run did not import,
// except those from files that had problems: a file that failed to parse
// still exists, and its articles stay until it is fixed or removed.
func (r *importRun) prune(roots []string) error {
	sources, err := r.Store.SourcesUnder(r.ctx, roots)
	if err != nil {
		return fmt.Errorf("import: prune: %w", err)
	}
	slugs := make([]string, 0, len(sources))
	for slug := range sources {
		slugs = append(slugs, slug)
	}
	slices.Sort(slugs)
	for _, slug := range slugs {
		src := sourcePath(sources[slug])
		if _, ok := r.slugs[slug]; ok || slices.ContainsFunc(r.failed, func(p string) bool { return within(src, p) }) {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("import: prune: %w", err)
		}
		if err := r.Store.Delete(r.ctx, slug); err != nil && runnel.ErrorCode(err) != runnel.ENOTFOUND {
			return fmt.Errorf("import: prune %s: %w", slug, err)
		}
		r.sum.Pruned++
		r.printf("pruned %s (%s is gone)\n", slug, src)
	}
	return nil
}

// sourcePath returns the file of a Source, without a ":line" suffix that
// a JSONL source may carry.
func sourcePath(src string) string {
	if i := strings.LastIndexByte(src, ':'); i > 0 {
		if _, err := strconv.Atoi(src[i+1:]); err == nil && strings.EqualFold(filepath.Ext(src[:i]), ".jsonl") {
			return src[:i]
		}
	}
	return src
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}
