package markdown

import (
	"bytes"
	"errors"

	"github.com/yuin/goldmark"
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
	lim = lim.orDefault()
	if len(body) > lim.MaxBytes {
		return nil, &LimitError{What: "the article", Actual: len(body), Limit: lim.MaxBytes, Unit: "bytes"}
	}
	if err := checkDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	src := []byte(body)
	root, _ := parseGuarded(htmlMarkdown.Parser(), src, lim)
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
