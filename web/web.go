// Package web is runnel's site for people: the page that asks a question and
// shows the answer as it streams, the articles rendered from Markdown, and
// browsing by tag. Everything is embedded in the binary; nothing is built
// and nothing comes from another origin.
//
// The page's script reads the stream with the JS client in client/, the
// same ES module that is published for other pages and for Node, served
// from here at /static/client/runnel.js.
//
// Every URL the site writes is relative, so it works the same at the root of
// a host and behind a proxy that mounts it under a path.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/markdown"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// The JS client ships in the npm package and in the binary. Only its
// modules are embedded: never its tests or node_modules.
//
//go:embed client/runnel.js client/axios.js
var clientFiles embed.FS

// csp allows only this origin's scripts, styles and connections, and no
// inline script or style at all.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// perPage is the number of articles on one page of a listing.
const perPage = 50

// Limits of the article pages. An article's body is rendered once per
// change and kept, up to cacheBytes for all articles; no more pages render
// at once than there are cores (GOMAXPROCS). Rendering is bounded
// by the importer's limits, except that it takes articles up to
// maxRenderBytes (an import may be given a larger limit than its default)
// and stops at maxPageHTML: the page of a larger article says so instead.
const (
	cacheBytes     = 32 << 20
	maxRenderBytes = 4 << 20
	maxPageHTML    = 8 << 20
)

// Handler returns the site, reading articles from store:
//
//	GET /                    the page that asks (?q= asks at once)
//	GET /static/...          its style, script and the JS client
//	GET /articles?tag=T      articles, newest first, optionally by tag
//	GET /articles/{slug...}  one article, its Markdown rendered (and kept for the next request)
//	GET /tags                every tag with its article count
//
// Any other path gets a page that says it does not exist, with status 404.
// The HTTP server mounts this handler for requests that prefer HTML (see
// rhttp.Server.Pages); it also works on its own.
func Handler(store runnel.Store) http.Handler {
	s := &site{store: store, static: loadStatic(), pages: parseTemplates(),
		bodies: newBodyCache(cacheBytes, runtime.GOMAXPROCS(0)),
		limits: markdown.Limits{MaxBytes: maxRenderBytes, MaxHTML: maxPageHTML}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /static/{file...}", s.file)
	mux.HandleFunc("GET /articles", s.articles)
	mux.HandleFunc("GET /articles/{slug...}", s.article)
	mux.HandleFunc("GET /tags", s.tags)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found",
			Message: "There is no page at this address."})
	})
	return mux
}

type site struct {
	store  runnel.Store
	static map[string]staticFile
	pages  map[string]*template.Template
	bodies *bodyCache
	limits markdown.Limits
}

// staticFile is an embedded file with its type and a strong ETag, so that a
// browser revalidates cheaply and never keeps a stale script after an upgrade.
type staticFile struct {
	body  []byte
	ctype string
	etag  string
}

func loadStatic() map[string]staticFile {
	files := map[string]staticFile{}
	add := func(fsys fs.FS, dir, prefix string) {
		err := fs.WalkDir(fsys, dir, func(name string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, err := fs.ReadFile(fsys, name)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(body)
			ctype := mime.TypeByExtension(path.Ext(name))
			if path.Ext(name) == ".js" {
				ctype = "text/javascript; charset=utf-8" // whatever the system's MIME table says
			}
			files[prefix+strings.TrimPrefix(name, dir+"/")] = staticFile{body: body, ctype: ctype,
				etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
			return nil
		})
		if err != nil {
			panic(err) // the embed patterns guarantee the files
		}
	}
	add(staticFiles, "static", "")
	add(clientFiles, "client", "client/")
	return files
}

func (s *site) file(w http.ResponseWriter, r *http.Request) {
	f, ok := s.static[r.PathValue("file")]
	if !ok {
		s.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found",
			Message: "There is no file at this address."})
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// page is what every template gets: Root is the relative path from the
// request's directory to the site's root ("./", "../", "../../").
type page struct {
	Root string
	Data any
}

type errorPage struct {
	Title, Message string
}

// root returns the relative prefix that leads from the directory of the
// request path back to the root of the site.
func root(r *http.Request) string {
	if n := strings.Count(r.URL.Path, "/") - 1; n > 0 {
		return strings.Repeat("../", n)
	}
	return "./"
}

// render writes the named page with the security headers every page has.
func (s *site) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", page{Root: root(r), Data: data}); err != nil {
		// A template bug; nothing has been written yet.
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// fail renders a store error: the article that is not there, or a fault
// whose details stay out of the page.
func (s *site) fail(w http.ResponseWriter, r *http.Request, err error) {
	if runnel.ErrorCode(err) == runnel.ENOTFOUND {
		s.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found",
			Message: "There is no article at this address."})
		return
	}
	if errors.Is(err, r.Context().Err()) {
		return // the browser left
	}
	s.render(w, r, http.StatusInternalServerError, "error", errorPage{Title: "Something went wrong",
		Message: "The articles could not be read. Try again in a moment."})
}

func (s *site) index(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "index", nil)
}

type articlePage struct {
	Article *runnel.Article
	Date    string
	Body    template.HTML
	Notice  string // instead of Body, when the article cannot be shown
}

func (s *site) article(w http.ResponseWriter, r *http.Request) {
	a, err := s.store.Get(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := articlePage{Article: a, Date: date(*a)}
	// The page depends on the title (a heading repeating it is dropped)
	// and on where the article came from (links to its neighbours), as
	// well as on the body.
	key := a.Title + "\x00" + a.Source + "\x00" + a.Body
	body, err := s.bodies.get(r.Context(), a.Slug, key, func(string) ([]byte, error) {
		return markdown.RenderPage(a.Body, markdown.Page{Title: a.Title, Links: s.links(r.Context(), a)}, s.limits)
	})
	var le *markdown.LimitError
	switch {
	case errors.As(err, &le):
		// The importer's limits keep such articles out; one imported
		// under larger limits, or by an older runnel, is still listed,
		// searched and answered from.
		p.Notice = "This article is too large to show as a page. You can still ask about it."
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		p.Body = template.HTML(body) // RenderHTML escapes text and drops raw HTML
	}
	s.render(w, r, http.StatusOK, "article", p)
}

// links returns what resolves a's relative links to Markdown files: to the
// pages of the articles imported from those files, found by their source
// paths (commandline/run.md from /docs/reference/index.md is the article
// whose source is /docs/reference/commandline/run.md, or run.md.gz). It
// returns nil for an article without a file (embedded, or put by an API).
//
// The links are resolved when the page is rendered, and kept with it: a
// page rendered before the article a link points to was imported keeps
// that link as written until the page's own article changes.
func (s *site) links(ctx context.Context, a *runnel.Article) func([]string) (map[string]string, error) {
	if !filepath.IsAbs(a.Source) {
		return nil
	}
	dir := filepath.Dir(a.Source)
	// From the page, /articles/{slug}, to the site's root.
	up := strings.Repeat("../", strings.Count(a.Slug, "/")+1)
	return func(paths []string) (map[string]string, error) {
		// The file as linked, and gzipped or not: Debian gzips the large
		// pages of a directory whose links still say run.md.
		candidates := func(p string) []string {
			f := filepath.Join(dir, filepath.FromSlash(p))
			if g, ok := strings.CutSuffix(f, ".gz"); ok {
				return []string{f, g}
			}
			return []string{f, f + ".gz"}
		}
		var files []string
		for _, p := range paths {
			files = append(files, candidates(p)...)
		}
		sources, err := s.store.SourcesUnder(ctx, files)
		if err != nil {
			return nil, errTransient{err}
		}
		slugs := make(map[string]string, len(sources)) // source -> slug
		for slug, src := range sources {
			slugs[filepath.Clean(src)] = slug
		}
		urls := map[string]string{}
		for _, p := range paths {
			for _, f := range candidates(p) {
				if slug, ok := slugs[f]; ok {
					urls[p] = up + runnel.ArticleURL("articles/", slug)
					break
				}
			}
		}
		return urls, nil
	}
}

type listItem struct {
	runnel.Article
	Date string
	Link string // relative to the site's root
}

type articlesPage struct {
	Tag        string
	Items      []listItem
	Total      int
	From, To   int    // 1-based positions shown
	Prev, Next string // query strings of the neighbour pages, "" when none
}

func (s *site) articles(w http.ResponseWriter, r *http.Request) {
	tag := r.URL.Query().Get("tag")
	offset := 0
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1e6 {
			s.render(w, r, http.StatusBadRequest, "error", errorPage{Title: "No such page",
				Message: "The page number must be a whole number from 1."})
			return
		}
		offset = (n - 1) * perPage
	}
	list, total, err := s.store.List(r.Context(), runnel.ListOptions{Tag: tag, Limit: perPage, Offset: offset})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := articlesPage{Tag: tag, Total: total, From: offset + 1, To: offset + len(list)}
	for _, a := range list {
		p.Items = append(p.Items, listItem{Article: a, Date: date(a),
			Link: strings.TrimPrefix(runnel.ArticleURL("articles/", a.Slug), "/")})
	}
	pageQuery := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return "?" + q.Encode()
	}
	if offset > 0 {
		p.Prev = pageQuery(offset / perPage) // the page before this one, 1-based
	}
	if offset+len(list) < total {
		p.Next = pageQuery(offset/perPage + 2)
	}
	status := http.StatusOK
	if len(list) == 0 && (offset > 0 || tag != "") {
		status = http.StatusNotFound // an unknown tag or a page past the end
	}
	s.render(w, r, status, "articles", p)
}

func (s *site) tags(w http.ResponseWriter, r *http.Request) {
	tags, err := s.store.Tags(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "tags", tags)
}

func date(a runnel.Article) string {
	if a.Date.IsZero() {
		return ""
	}
	return a.Date.Format(time.DateOnly)
}

// parseTemplates parses each page with the shared layout.
func parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		// tagLink is the relative link to the articles with a tag.
		"tagLink": func(root, tag string) string { return root + "articles?tag=" + url.QueryEscape(tag) },
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	pages := map[string]*template.Template{}
	for _, name := range []string{"index", "article", "articles", "tags", "error"} {
		t := template.Must(layout.Clone())
		pages[name] = template.Must(t.ParseFS(templateFiles, "templates/"+name+".html"))
	}
	return pages
}
