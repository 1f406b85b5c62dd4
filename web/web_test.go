package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/sqlite"
	"github.com/runnel/runnel/web"
)

// fakeStore holds articles in memory: enough for the pages, which only read.
type fakeStore struct {
	runnel.Store // the methods the pages never call
	articles     []runnel.Article
}

func (s *fakeStore) Get(_ context.Context, slug string) (*runnel.Article, error) {
	for _, a := range s.articles {
		if a.Slug == slug {
			return &a, nil
		}
	}
	return nil, runnel.Errorf(runnel.ENOTFOUND, "No article %q.", slug)
}

func (s *fakeStore) List(_ context.Context, opt runnel.ListOptions) ([]runnel.Article, int, error) {
	var all []runnel.Article
	for _, a := range s.articles {
		if opt.Tag == "" || slices.Contains(a.Tags, opt.Tag) {
			a.Body = ""
			all = append(all, a)
		}
	}
	lo := min(opt.Offset, len(all))
	return all[lo:min(lo+opt.Limit, len(all))], len(all), nil
}

func (s *fakeStore) Tags(context.Context) ([]runnel.TagCount, error) {
	n := map[string]int{}
	for _, a := range s.articles {
		for _, t := range a.Tags {
			n[t]++
		}
	}
	var out []runnel.TagCount
	for t, c := range n {
		out = append(out, runnel.TagCount{Tag: t, Count: c})
	}
	slices.SortFunc(out, func(a, b runnel.TagCount) int { return strings.Compare(a.Tag, b.Tag) })
	return out, nil
}

func newSite(t *testing.T) http.Handler {
	t.Helper()
	store := &fakeStore{articles: []runnel.Article{
		{Slug: "websocket", Title: "WebSocket <basics>", Date: time.Date(2025, 7, 2, 0, 0, 0, 0, time.UTC),
			Tags: []string{"websocket", "a&b"}, Description: "Full duplex.",
			Body: "Intro with `code`.\n\n## The handshake\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" +
				"<script>alert(1)</script>\n\n[bad](javascript:alert(1)) and [good](https://example.com/x).\n"},
		{Slug: "notes/deep", Title: "Deep", Tags: []string{"websocket"}, Body: "Nested."},
	}}
	return web.Handler(store)
}

type response struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, h http.Handler, path string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

func TestIndex(t *testing.T) {
	r := get(t, newSite(t), "/")
	if r.status != 200 || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %s", r.status, r.header.Get("Content-Type"))
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "style-src 'self'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, want := range []string{
		`<script type="module" src="./static/app.js">`, `href="./static/style.css"`,
		`id="q"`, `id="stop"`, `aria-live="polite"`, `role="alert"`, `name="viewport"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("GET / lacks %s", want)
		}
	}
	for _, bad := range []string{`src="/`, `href="/`, `src="http`, `href="http`, "<style", " style="} {
		if strings.Contains(r.body, bad) {
			t.Errorf("GET / has %s: URLs must be relative, styles in the stylesheet", bad)
		}
	}
}

func TestStatic(t *testing.T) {
	h := newSite(t)
	for path, ctype := range map[string]string{
		"/static/app.js":           "text/javascript; charset=utf-8",
		"/static/client/runnel.js": "text/javascript; charset=utf-8",
		"/static/client/axios.js":  "text/javascript; charset=utf-8",
		"/static/style.css":        "text/css; charset=utf-8",
		"/static/favicon.svg":      "image/svg+xml",
	} {
		r := get(t, h, path)
		if r.status != 200 || r.header.Get("Content-Type") != ctype || r.header.Get("ETag") == "" {
			t.Errorf("GET %s = %d %q ETag %q, want 200 %q and an ETag", path, r.status,
				r.header.Get("Content-Type"), r.header.Get("ETag"), ctype)
			continue
		}
		if again := get(t, h, path, "If-None-Match", r.header.Get("ETag")); again.status != http.StatusNotModified {
			t.Errorf("GET %s with its ETag = %d, want 304", path, again.status)
		}
	}
	r := get(t, h, "/static/client/runnel.js")
	if !strings.Contains(r.body, "export function ask(") {
		t.Errorf("/static/client/runnel.js is not the client module")
	}
	for _, path := range []string{"/static/nope.js", "/static/client/package.json", "/static/client/test/node/client.test.js"} {
		if r := get(t, h, path); r.status != 404 {
			t.Errorf("GET %s = %d, want 404", path, r.status)
		}
	}
}

func TestArticle(t *testing.T) {
	h := newSite(t)
	r := get(t, h, "/articles/websocket")
	if r.status != 200 {
		t.Fatalf("GET /articles/websocket = %d", r.status)
	}
	for _, want := range []string{
		"<h1>WebSocket &lt;basics&gt;</h1>",
		`<time datetime="2025-07-02">2025-07-02</time>`,
		`<h2 id="the-handshake">The handshake</h2>`,
		"<code>code</code>",
		"<table>",
		`<a class="chip" href="../articles?tag=a%26b">a&amp;b</a>`,
		`href="../static/style.css"`,
		`<a href="https://example.com/x">good</a>`,
		`<a href="../?q=WebSocket%20%3cbasics%3e">`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("article page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script>alert", "javascript:"} {
		if strings.Contains(r.body, bad) {
			t.Errorf("article page has %s: raw HTML and dangerous links must not be rendered", bad)
		}
	}

	// A nested slug: the relative links climb one more level.
	r = get(t, h, "/articles/notes/deep")
	if r.status != 200 || !strings.Contains(r.body, `href="../../static/style.css"`) {
		t.Errorf("GET /articles/notes/deep = %d, want links relative to ../../", r.status)
	}

	r = get(t, h, "/articles/nope")
	if r.status != 404 || !strings.Contains(r.body, "<h1>Not found</h1>") {
		t.Errorf("GET /articles/nope = %d, want the 404 page", r.status)
	}
}

func TestListings(t *testing.T) {
	h := newSite(t)
	r := get(t, h, "/articles")
	if r.status != 200 || !strings.Contains(r.body, `href="./articles/websocket"`) ||
		!strings.Contains(r.body, `href="./articles/notes/deep"`) {
		t.Errorf("GET /articles = %d, want both articles linked relatively:\n%s", r.status, r.body)
	}
	r = get(t, h, "/articles?tag=a%26b")
	if r.status != 200 || !strings.Contains(r.body, "WebSocket &lt;basics&gt;") || strings.Contains(r.body, "Deep") {
		t.Errorf("GET /articles?tag=a&b = %d, want only the article with the tag", r.status)
	}
	if r := get(t, h, "/articles?tag=none"); r.status != 404 || !strings.Contains(r.body, "No article has this tag") {
		t.Errorf("GET /articles?tag=none = %d, want 404 and a sentence", r.status)
	}
	for _, page := range []string{"0", "-1", "x", "99999999"} {
		if r := get(t, h, "/articles?page="+page); r.status != 400 {
			t.Errorf("GET /articles?page=%s = %d, want 400", page, r.status)
		}
	}
	r = get(t, h, "/tags")
	if r.status != 200 || !strings.Contains(r.body, `href="./articles?tag=websocket"`) || !strings.Contains(r.body, `aria-label="2 articles"`) {
		t.Errorf("GET /tags = %d, want linked tags with counts:\n%s", r.status, r.body)
	}
	if r := get(t, h, "/nope"); r.status != 404 || !strings.Contains(r.body, "<h1>Not found</h1>") {
		t.Errorf("GET /nope = %d, want the 404 page", r.status)
	}
}

func TestHead(t *testing.T) {
	req := httptest.NewRequest("HEAD", "/articles/websocket", nil)
	rec := httptest.NewRecorder()
	newSite(t).ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD /articles/websocket = %d with %d bytes, want 200 and no body", rec.Code, rec.Body.Len())
	}
}

// TestArticlePagesFollowImports imports articles into a real SQLite file
// and shows their pages: a large one is rendered once and then served
// from the cache, and a re-import that changes an article changes its page.
func TestArticlePagesFollowImports(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	big.WriteString("---\ntitle: Big\n---\n")
	for i := 0; big.Len() < 256<<10; i++ {
		fmt.Fprintf(&big, "## Part %d\n\nSome *text* with `code` and [a link](https://example.com/%d).\n\n- one\n- two\n  - nested\n\n", i, i)
	}
	big.WriteString("The last line.\n")
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("big.md", big.String())
	write("note.md", "# Note\n\nThe first version.\n")

	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "runnel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	im := &markdown.Importer{Store: store}
	if sum, err := im.Import(t.Context(), dir); err != nil || sum.Added != 2 {
		t.Fatalf("Import = %v, %v; want 2 added", sum, err)
	}
	h := web.Handler(store)

	// The first request renders; the second reads the page from SQLite
	// and the rendered body from the cache, which allocates a fraction.
	alloc := func(path string) (response, uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := get(t, h, path)
		runtime.ReadMemStats(&after)
		return r, after.TotalAlloc - before.TotalAlloc
	}
	first, rendering := alloc("/articles/big")
	second, cached := alloc("/articles/big")
	if first.status != 200 || !strings.Contains(first.body, `<h2 id="part-0">Part 0</h2>`) ||
		!strings.Contains(first.body, "<p>The last line.</p>") || strings.Contains(first.body, `class="notice"`) {
		t.Fatalf("GET /articles/big = %d, want the whole article rendered", first.status)
	}
	if second.body != first.body {
		t.Error("the second request got another page")
	}
	t.Logf("rendering %d KiB, cached %d KiB", rendering>>10, cached>>10)
	if cached > rendering/3 {
		t.Errorf("the cached page allocated %d KiB, the rendered one %d KiB: want less than a third", cached>>10, rendering>>10)
	}

	if r := get(t, h, "/articles/note"); !strings.Contains(r.body, "The first version.") {
		t.Fatalf("GET /articles/note = %d, want the first version", r.status)
	}
	write("note.md", "# Note\n\nThe second version.\n")
	if sum, err := im.Import(t.Context(), dir); err != nil || sum.Updated != 1 {
		t.Fatalf("re-import = %v, %v; want 1 updated", sum, err)
	}
	if r := get(t, h, "/articles/note"); !strings.Contains(r.body, "The second version.") || strings.Contains(r.body, "first version") {
		t.Errorf("GET /articles/note after the re-import = %d, want the second version only", r.status)
	}
}

// TestArticleTooLargeToShow is an article that the importer would refuse
// but that is in the store anyway (imported by an older runnel or under
// larger limits): its page says it cannot be shown, at once.
func TestArticleTooLargeToShow(t *testing.T) {
	store := &fakeStore{articles: []runnel.Article{
		{Slug: "deep", Title: "Deep", Body: strings.Repeat(">", 200_000) + " x\n"},
		{Slug: "huge", Title: "Huge", Body: strings.Repeat("Many words. ", 500_000)},
	}}
	h := web.Handler(store)
	for _, slug := range []string{"deep", "huge"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := get(t, h, "/articles/"+slug)
		runtime.ReadMemStats(&after)
		if r.status != 200 || !strings.Contains(r.body, `<p class="notice">This article is too large to show as a page.`) ||
			strings.Contains(r.body, "<blockquote>") {
			t.Errorf("GET /articles/%s = %d, want the page with a notice instead of the body", slug, r.status)
		}
		// Rendering the 200,000 nested quotes would take 20 s and 300 MB.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
			t.Errorf("GET /articles/%s allocated %d MiB, want less than 32", slug, alloc>>20)
		}
	}
}

// gzipped returns s compressed with gzip.
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestArticlePagesOfDocs imports a directory shaped like Debian's
// docker-doc into SQLite and shows its pages: relative links between the
// files (gzipped or not, up and down, with fragments) lead to the articles
// imported from them, other links stay as written, and a page whose body
// opens with its title shows the title once.
func TestArticlePagesOfDocs(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"reference/index.md": []byte("# Reference\n\n[run](run.md#ulimit) · [cli](commandline/cli.md) · " +
			"[builder](builder.md.gz) · [gone](nope.md) · [docs](https://docs.docker.com/engine/run.md) · " +
			"[logo](../images/logo.png) · [home](../README.md)\n"),
		"reference/run.md.gz":             gzipped(t, "<!-- This file is maintained within the docker/cli GitHub\n     repository. -->\n\n# Docker run reference\n\n## ulimit\n\nLimits.\n"),
		"reference/builder.md.gz":         gzipped(t, "---\ntitle: Dockerfile reference\n---\n# Dockerfile   REFERENCE\n\nFROM.\n"),
		"reference/commandline/cli.md.gz": gzipped(t, "# Use the Docker command line\n\nSee [run](../run.md#ulimit) and [index](../index.md).\n"),
		"README.md":                       []byte("---\ntitle: Docker docs\n---\n# Overview\n\nStart at [the reference](reference/index.md).\n"),
		"images/logo.png":                 []byte("\x89PNG"),
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "runnel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sum, err := (&markdown.Importer{Store: store}).Import(t.Context(), dir)
	if err != nil || sum.Added != 5 || sum.SkippedFiles() != 1 {
		t.Fatalf("Import = %v, %v; want 5 added and the image skipped", sum, err)
	}
	h := web.Handler(store)

	page := func(path string) string {
		t.Helper()
		r := get(t, h, path)
		if r.status != 200 {
			t.Fatalf("GET %s = %d", path, r.status)
		}
		return r.body
	}
	index := page("/articles/reference/index")
	for _, want := range []string{
		`<a href="../../articles/reference/run#ulimit">run</a>`,
		`<a href="../../articles/reference/commandline/cli">cli</a>`,
		`<a href="../../articles/reference/builder">builder</a>`,
		`<a href="../../articles/readme">home</a>`,
		`<a href="nope.md">gone</a>`,
		`<a href="https://docs.docker.com/engine/run.md">docs</a>`,
		`<a href="../images/logo.png">logo</a>`,
	} {
		if !strings.Contains(index, want) {
			t.Errorf("reference/index lacks %s", want)
		}
	}
	cli := page("/articles/reference/commandline/cli")
	for _, want := range []string{
		`<a href="../../../articles/reference/run#ulimit">run</a>`,
		`<a href="../../../articles/reference/index">index</a>`,
	} {
		if !strings.Contains(cli, want) {
			t.Errorf("reference/commandline/cli lacks %s", want)
		}
	}
	if got := strings.Count(cli, "Use the Docker command line</h"); got != 1 {
		t.Errorf("reference/commandline/cli shows its title in %d headings, want 1", got)
	}
	for _, slug := range []string{"reference/builder", "reference/run"} {
		if got := strings.Count(page("/articles/"+slug), "<h1"); got != 1 {
			t.Errorf("%s has %d <h1>, want 1: the body's heading repeats the title", slug, got)
		}
	}
	readme := page("/articles/readme")
	if !strings.Contains(readme, "<h1>Docker docs</h1>") || !strings.Contains(readme, `<h1 id="overview">Overview</h1>`) {
		t.Errorf("readme: want both its title and its own, different, heading")
	}
	if !strings.Contains(readme, `<a href="../articles/reference/index">the reference</a>`) {
		t.Errorf("readme lacks its link to reference/index")
	}
}
