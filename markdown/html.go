package markdown

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
)

// htmlMarkdown renders an article's page: GitHub's Markdown (tables,
// strikethrough, task lists, bare links) with an id on every heading. Not
// WithUnsafe: raw HTML in an article is dropped, and links with dangerous
// schemes (javascript:) are not rendered.
var htmlMarkdown = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithParserOptions(append(guardParser(), parser.WithAutoHeadingID())...),
)

// errTooMuchHTML stops a renderer that has written MaxHTML bytes.
var errTooMuchHTML = errors.New("too much HTML")

// RenderHTML renders an article's body as the HTML of its page. Its cost
// is bounded by lim (zero fields take their defaults), as Parse's is: a
// body larger than lim.MaxBytes or nested deeper than lim.MaxDepth is not
// rendered, and rendering stops once it has written lim.MaxHTML bytes;
// each is a *LimitError and no HTML. Markers and table cells past their
// limits do not stop it: they are rendered as text, so that an article
// imported under other limits still has its page.
func RenderHTML(body string, lim Limits) ([]byte, error) {
	return RenderPage(body, Page{}, lim)
}

// Page is what RenderPage knows of an article besides its body.
type Page struct {
	// Title is the article's title, which the page shows above the body:
	// a heading that opens the body and says the same (ignoring case and
	// white space) is not rendered a second time.
	Title string
	// Links, if set, maps the relative links to Markdown files in the body
	// (commandline/run.md, ../run.md.gz, as written, cleaned, without
	// their #fragment) to the URLs of the articles imported from them. It
	// is called once per render, with each path once; a path it leaves out
	// keeps its link as written, and a link to an article keeps its
	// fragment. Its error stops the render.
	Links func(paths []string) (map[string]string, error)
}

// RenderPage is RenderHTML for the page of an article: without the
// heading that repeats its title, and with links between imported files
// turned into links between their articles (see Page).
func RenderPage(body string, p Page, lim Limits) ([]byte, error) {
	lim = lim.orDefault()
	if len(body) > lim.MaxBytes {
		return nil, &LimitError{What: "the article", Actual: len(body), Limit: lim.MaxBytes, Unit: "bytes"}
	}
	if err := checkDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	src := []byte(body)
	root, _ := parseGuarded(htmlMarkdown.Parser(), src, lim)
	dropTitle(root, src, p.Title)
	if p.Links != nil {
		if err := relink(root, p.Links); err != nil {
			return nil, fmt.Errorf("links: %w", err)
		}
	}
	out := &cappedBuffer{max: lim.MaxHTML}
	if err := htmlMarkdown.Renderer().Render(out, src, root); err != nil || out.over {
		if out.over {
			return nil, &LimitError{What: "the page", Actual: lim.MaxHTML, More: true, Limit: lim.MaxHTML, Unit: "bytes"}
		}
		return nil, err
	}
	return out.Bytes(), nil
}

// cappedBuffer is a bytes.Buffer that refuses to grow past max bytes.
type cappedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.over || b.Len()+len(p) > b.max {
		b.over = true
		return 0, errTooMuchHTML
	}
	return b.Buffer.Write(p)
}

func (b *cappedBuffer) WriteString(s string) (int, error) {
	if b.over || b.Len()+len(s) > b.max {
		b.over = true
		return 0, errTooMuchHTML
	}
	return b.Buffer.WriteString(s)
}

// dropTitle removes the heading that opens the document at root if it
// says title. Raw HTML before it (the comment that docs generated from
// another repository open with) does not count: the page drops it.
func dropTitle(root ast.Node, src []byte, title string) {
	n := root.FirstChild()
	for n != nil && n.Kind() == ast.KindHTMLBlock {
		n = n.NextSibling()
	}
	h, ok := n.(*ast.Heading)
	if ok && title != "" && sameText(inlineText(h, src), title) {
		root.RemoveChild(root, h)
	}
}

// sameText reports whether a and b are the same words, ignoring case and
// white space.
func sameText(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// relink points the links to Markdown files under root to the URLs that
// links gives for them.
func relink(root ast.Node, links func([]string) (map[string]string, error)) error {
	type target struct {
		link     *ast.Link
		path     string
		fragment string // escaped, without "#"
	}
	var targets []target
	var paths []string
	seen := map[string]bool{}
	ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		l, ok := n.(*ast.Link)
		if !entering || !ok {
			return ast.WalkContinue, nil
		}
		if p, frag, ok := markdownPath(string(l.Destination)); ok {
			targets = append(targets, target{l, p, frag})
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		return ast.WalkContinue, nil
	})
	if len(paths) == 0 {
		return nil
	}
	urls, err := links(paths)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if u, ok := urls[t.path]; ok {
			if t.fragment != "" {
				u += "#" + t.fragment
			}
			t.link.Destination = []byte(u)
		}
	}
	return nil
}

// markdownPath returns the cleaned path of a link destination that is a
// relative path to a Markdown file (.md, .markdown, either gzipped), and
// its fragment, escaped; ok is false for any other link (a URL with a
// scheme or host, an absolute path, a query, another kind of file).
func markdownPath(dest string) (p, fragment string, ok bool) {
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Path == "" || strings.HasPrefix(u.Path, "/") {
		return "", "", false
	}
	if ext, _ := articleExt(u.Path); ext != ".md" && ext != ".markdown" {
		return "", "", false
	}
	return path.Clean(u.Path), u.EscapedFragment(), true
}
