package markdown

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	east "github.com/yuin/goldmark/extension"
	xast "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"

	"github.com/runnel/runnel"
)

// MaxPassage is the length in characters above which a section is split,
// at paragraph boundaries, into several passages with the same heading.
// Passages of about this size keep search snippets and the extractive
// generator's input focused.
const MaxPassage = 2000

// mdParser is immutable once built and safe for concurrent use. GitHub's
// tables, strikethrough and task lists are understood; attributes let
// "## Usage {#usage}" have the heading text "Usage".
// The guard keeps its cost within an article's Limits.
var mdParser = goldmark.New(
	goldmark.WithExtensions(east.Table, east.Strikethrough, east.TaskList),
	goldmark.WithParserOptions(append(guardParser(), parser.WithAttribute())...),
).Parser()

// block is a top-level heading (level > 0) or a paragraph of plain text.
type block struct {
	level int
	text  string
}

// document is a Markdown body reduced to headings and plain paragraphs.
type document []block

// parseBody parses Markdown into a document. Headings count only at the
// top level: a "#" line inside a list or quote is text of that block. A
// body over lim is a *LimitError, its line numbered from the body's first.
func parseBody(body string, lim Limits) (document, error) {
	lim = lim.orDefault()
	if err := checkDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	src := []byte(body)
	root, err := parseGuarded(mdParser, src, lim)
	if err != nil {
		return nil, err
	}
	w := &walker{src: src}
	for n := root.FirstChild(); n != nil; n = n.NextSibling() {
		if h, ok := n.(*ast.Heading); ok {
			w.doc = append(w.doc, block{level: h.Level, text: inlineText(h, src)})
			continue
		}
		w.block(n)
	}
	return w.doc, nil
}

// title returns the text of the first H1, or else of the first heading.
func (d document) title() string {
	first := ""
	for _, b := range d {
		if b.level == 1 && b.text != "" {
			return b.text
		}
		if b.level > 0 && first == "" {
			first = b.text
		}
	}
	return first
}

// passages splits d into a's passages: the text before the first heading
// (Heading ""), then one section per heading. An H1 that opens the document
// and is the article's title is not a section of its own: the text under it
// is the lead. Empty sections are skipped and long ones split.
func (d document) passages(a *runnel.Article) []runnel.Passage {
	type section struct {
		heading string
		paras   []string
	}
	secs := []section{{}}
	for i, b := range d {
		switch {
		case b.level == 0:
			secs[len(secs)-1].paras = append(secs[len(secs)-1].paras, b.text)
		case i == 0 && b.level == 1 && strings.EqualFold(b.text, a.Title):
			// the title itself
		default:
			secs = append(secs, section{heading: b.text})
		}
	}
	var out []runnel.Passage
	for _, s := range secs {
		for _, chunk := range splitSection(s.paras) {
			out = append(out, runnel.Passage{
				Slug:     a.Slug,
				Title:    a.Title,
				Heading:  s.heading,
				Text:     strings.Join(chunk, "\n\n"),
				Tags:     a.Tags,
				Position: len(out),
			})
		}
	}
	return out
}

// setSlug gives a and its passages a new slug.
func setSlug(a *runnel.Article, slug string) {
	a.Slug = slug
	for i := range a.Passages {
		a.Passages[i].Slug = slug
	}
}

// walker collects the plain-text paragraphs of non-heading blocks.
type walker struct {
	src []byte
	doc document
}

func (w *walker) para(s string) {
	if s != "" {
		w.doc = append(w.doc, block{text: s})
	}
}

// block adds the paragraphs of n. Every list item, table row and code block
// is a paragraph of its own, so that a sentence splitter never runs two of
// them together.
func (w *walker) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock, *ast.Heading:
		w.para(inlineText(n, w.src))
	case *ast.FencedCodeBlock:
		w.para(codeText(n.Lines(), w.src, string(n.Language(w.src))))
	case *ast.CodeBlock:
		w.para(codeText(n.Lines(), w.src, ""))
	case *ast.HTMLBlock:
		var b bytes.Buffer
		lines := n.Lines()
		for i := range lines.Len() {
			seg := lines.At(i)
			b.Write(seg.Value(w.src))
		}
		if n.HasClosure() {
			b.Write(n.ClosureLine.Value(w.src))
		}
		w.para(htmlText(b.String()))
	case *xast.Table:
		w.para(tableText(n, w.src))
	case *ast.ThematicBreak:
	default: // lists, list items, block quotes
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			w.block(c)
		}
	}
}

// tableText returns a table as GitHub's Markdown writes one, a row a line
// with its header's delimiter row, in a paragraph of its own: its rows are
// a listing, not sentences, and a reader (the offline generator, a model,
// a snippet) can tell. A "|" in a cell is escaped.
func tableText(n *xast.Table, src []byte) string {
	var b strings.Builder
	for row := n.FirstChild(); row != nil; row = row.NextSibling() {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		cols := 0
		b.WriteByte('|')
		for c := row.FirstChild(); c != nil; c = c.NextSibling() {
			b.WriteString(" " + strings.ReplaceAll(inlineText(c, src), "|", `\|`) + " |")
			cols++
		}
		if _, header := row.(*xast.TableHeader); header {
			b.WriteString("\n|" + strings.Repeat(" --- |", cols))
		}
	}
	return b.String()
}

// inlineText returns the plain text of n's inline content, white space
// collapsed: emphasis dropped, links as their text, images as their alt
// text, code spans as their code, HTML tags removed.
func inlineText(n ast.Node, src []byte) string {
	var b strings.Builder
	writeInline(&b, n, src)
	return collapseSpace(b.String())
}

func writeInline(b *strings.Builder, n ast.Node, src []byte) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			if c.IsRaw() {
				b.Write(c.Value(src))
			} else {
				b.WriteString(unescape(c.Value(src)))
			}
			if c.SoftLineBreak() || c.HardLineBreak() {
				b.WriteByte(' ')
			}
		case *ast.String:
			if c.IsCode() || c.IsRaw() {
				b.Write(c.Value)
			} else {
				b.WriteString(unescape(c.Value))
			}
		case *ast.CodeSpan:
			for t := c.FirstChild(); t != nil; t = t.NextSibling() {
				switch t := t.(type) {
				case *ast.Text:
					b.Write(t.Value(src))
				case *ast.String:
					b.Write(t.Value)
				}
			}
		case *ast.AutoLink:
			b.Write(c.Label(src))
		case *ast.RawHTML:
			// Tags go; a line break tag still separates words.
			if c.Segments.Len() > 0 {
				seg := c.Segments.At(0)
				if isBreakTag(seg.Value(src)) {
					b.WriteByte(' ')
				}
			}
		case *xast.TaskCheckBox:
		default: // emphasis, links, images (whose children are the alt text), strikethrough
			writeInline(b, c, src)
		}
	}
}

var breakTag = regexp.MustCompile(`(?i)^<br\s*/?>$`)

func isBreakTag(b []byte) bool { return breakTag.Match(b) }

// unescape resolves backslash escapes and character references, which
// goldmark leaves in the source text for its renderer.
func unescape(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 && bytes.IndexByte(v, '&') < 0 {
		return string(v)
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && isASCIIPunct(v[i+1]) {
			b.WriteByte(v[i+1])
			i++
			continue
		}
		if c == '&' {
			if j := bytes.IndexByte(v[i:min(len(v), i+40)], ';'); j > 1 {
				ref := string(v[i : i+j+1])
				if u := html.UnescapeString(ref); u != ref {
					b.WriteString(u)
					i += j
					continue
				}
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isASCIIPunct(c byte) bool {
	return c >= '!' && c <= '/' || c >= ':' && c <= '@' || c >= '[' && c <= '`' || c >= '{' && c <= '~'
}

// codeText returns a code block as a fenced block of its own: the fence
// tells a generator where code starts and ends (the extractive one quotes
// it whole after the sentence that introduces it, or not at all), and
// blank lines are dropped so that the block stays one paragraph of the
// passage. The info string keeps only the language's name. It returns ""
// for a block with no code.
func codeText(lines *text.Segments, src []byte, lang string) string {
	var code []string
	for i := range lines.Len() {
		seg := lines.At(i)
		line := strings.TrimRight(string(seg.Value(src)), " \t\r\n")
		if strings.TrimSpace(line) != "" {
			code = append(code, line)
		}
	}
	if len(code) == 0 {
		return ""
	}
	return fence(code, lang)
}

// fence wraps lines of code in a fence longer than any run of backticks in
// them, so that no line of the code can close it.
func fence(lines []string, lang string) string {
	run := 0
	for _, l := range lines {
		n := 0
		for i := 0; i < len(l); i++ {
			if l[i] == '`' {
				n++
				run = max(run, n)
			} else {
				n = 0
			}
		}
	}
	f := strings.Repeat("`", max(3, run+1))
	lang = strings.Map(func(r rune) rune {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("+-_.#", r)) {
			return r
		}
		return -1
	}, lang)
	return f + lang + "\n" + strings.Join(lines, "\n") + "\n" + f
}

// isFenced reports whether p is a block that fence made, and returns its
// lines of code, fence and language.
func isFenced(p string) (code []string, lang string, ok bool) {
	first, rest, found := strings.Cut(p, "\n")
	n := 0
	for n < len(first) && first[n] == '`' {
		n++
	}
	if !found || n < 3 {
		return nil, "", false
	}
	f := first[:n]
	body, ok := strings.CutSuffix(rest, "\n"+f)
	if !ok || strings.Contains(first[n:], "`") {
		return nil, "", false
	}
	return strings.Split(body, "\n"), first[n:], true
}

var (
	htmlComment = regexp.MustCompile(`(?s)<!--.*?(-->|$)`)
	htmlScript  = regexp.MustCompile(`(?is)<(script|style)\b.*?(</(script|style)\s*>|$)`)
	htmlTag     = regexp.MustCompile(`(?s)<[^>]*>`)
)

// htmlText returns the text of an HTML block: comments, scripts and styles
// removed, tags replaced by spaces, character references resolved.
func htmlText(s string) string {
	s = htmlComment.ReplaceAllString(s, " ")
	s = htmlScript.ReplaceAllString(s, " ")
	s = htmlTag.ReplaceAllString(s, " ")
	return collapseSpace(html.UnescapeString(s))
}

// collapseSpace trims s and turns every run of white space into one space.
func collapseSpace(s string) string {
	if isCollapsed(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// isCollapsed reports whether s has no white space but single inner spaces.
func isCollapsed(s string) bool {
	prev := byte(' ') // a leading space is not collapsed
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return false // let the slow path judge non-ASCII spaces
		case c == ' ' && prev == ' ', c != ' ' && c <= ' ':
			return false
		}
		prev = c
	}
	return prev != ' ' || s == ""
}

// splitSection groups a section's paragraphs into passages of at most
// MaxPassage characters. A section that needs n passages is cut into n
// parts of about equal length rather than n-1 full ones and a scrap. A
// single paragraph longer than MaxPassage is cut at a line break, a
// sentence end or a space.
func splitSection(paras []string) [][]string {
	var pieces []string
	total := 0
	for _, p := range paras {
		for _, q := range splitLong(p) {
			pieces = append(pieces, q)
			total += utf8.RuneCountInString(q) + 2
		}
	}
	if len(pieces) == 0 {
		return nil
	}
	total -= 2
	if total <= MaxPassage {
		return [][]string{pieces}
	}
	target := total / ((total + MaxPassage - 1) / MaxPassage)
	var out [][]string
	var cur []string
	n := 0
	for _, p := range pieces {
		l := utf8.RuneCountInString(p)
		if len(cur) > 0 && n+2+l > MaxPassage {
			out, cur, n = append(out, cur), nil, 0
		}
		if len(cur) > 0 {
			n += 2
		}
		cur, n = append(cur, p), n+l
		if n >= target {
			out, cur, n = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// splitLong cuts p into pieces of at most MaxPassage characters, preferring
// to cut after a line break, then after a sentence end, then at a space.
func splitLong(p string) []string {
	if utf8.RuneCountInString(p) <= MaxPassage {
		return []string{p}
	}
	if code, lang, ok := isFenced(p); ok {
		return splitCode(code, lang)
	}
	var out []string
	for utf8.RuneCountInString(p) > MaxPassage {
		limit := runeOffset(p, MaxPassage)
		head := p[:limit]
		cut := -1
		for _, sep := range []string{"\n", ". ", "? ", "! ", " "} {
			if i := strings.LastIndex(head, sep); i > limit/2 {
				cut = i + len(sep)
				break
			}
		}
		if cut < 0 {
			cut = limit
		}
		if q := strings.TrimSpace(p[:cut]); q != "" {
			out = append(out, q)
		}
		p = strings.TrimSpace(p[cut:])
	}
	if p != "" {
		out = append(out, p)
	}
	return out
}

// splitCode cuts a long block of code between lines into fenced pieces of
// at most MaxPassage characters, so that every passage opens and closes
// its own fences. A single line too long for a piece is cut too.
func splitCode(lines []string, lang string) []string {
	overhead := utf8.RuneCountInString(fence([]string{""}, lang)) + 16 // a longer fence, if a piece needs one
	limit := MaxPassage - overhead
	var out, cur []string
	n := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, fence(cur, lang))
			cur, n = nil, 0
		}
	}
	for _, l := range lines {
		for utf8.RuneCountInString(l) > limit {
			flush()
			i := runeOffset(l, limit)
			out = append(out, fence([]string{l[:i]}, lang))
			l = l[i:]
		}
		k := utf8.RuneCountInString(l) + 1
		if n+k > limit {
			flush()
		}
		cur, n = append(cur, l), n+k
	}
	flush()
	return out
}

// runeOffset returns the byte offset of the n-th rune of s.
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}
