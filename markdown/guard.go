package markdown

import (
	"bytes"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// goldmark does part of its work in time that grows with the square of a
// count: the inline markers of one paragraph (each closing delimiter looks
// back over every opener before it, each unmatched bracket or backtick
// looks ahead to the end of the paragraph), the link reference definitions
// of one paragraph, and the cells of a table (every row is padded to the
// width of the header, so a header of 500 columns and 60,000 rows of one
// "|" each are 30 million cells from 120 KB). A guard rides
// along with each parse, counts these as goldmark meets them and stops
// them at the limits, so that a parse costs time in proportion to the
// article's size. What it stopped becomes text: a marker past the limit
// is a character, a paragraph that would make too large a table or hold
// too many definitions stays a paragraph. The first limit passed is kept
// for Parse to report; RenderHTML renders on.

// guard is the state of one parse.
type guard struct {
	lim     Limits
	block   ast.Node // the block whose inline content is being parsed
	markers int      // markers met so far in block
	cells   int      // table cells of the article so far
	err     *LimitError
	errAt   int      // offset of the first limit passed, for its line number
	over    ast.Node // the block that passed MaxMarkers, while its markers are counted
}

var guardKey = parser.NewContextKey()

func guardOf(pc parser.Context) *guard {
	g, _ := pc.Get(guardKey).(*guard)
	return g
}

// fail records the first limit passed.
func (g *guard) fail(err *LimitError, at int) {
	if g.err == nil {
		g.err, g.errAt = err, at
	}
}

// guardParser returns the options that put a guard into a goldmark parser:
// an inline parser that runs before every other on the characters that
// start inline markup, and paragraph transformers that run before the
// link reference definitions and the tables are taken out of a paragraph.
func guardParser() []parser.Option {
	return []parser.Option{
		parser.WithInlineParsers(util.Prioritized(markerGuard{}, -1000)),
		parser.WithParagraphTransformers(
			util.Prioritized(definitionGuard{}, 50),
			util.Prioritized(tableGuard{}, 150),
		),
	}
}

// markerGuard counts the markers of each block, a run of emphasis markers
// ("***") as long as it is: a pair of long runs nests emphasis half as
// deep. Other runs ("~~", "“") count one. Within the limit
// it returns nil, so that the parsers after it (emphasis, links, code
// spans, autolinks, raw HTML, strikethrough) try the marker; past it, it
// returns the marker, or the run, as text, and they do not.
type markerGuard struct{}

func (markerGuard) Trigger() []byte { return []byte{'*', '_', '~', '`', '[', ']', '!', '<'} }

func (markerGuard) Parse(parent ast.Node, block text.Reader, pc parser.Context) ast.Node {
	g := guardOf(pc)
	if g == nil {
		return nil
	}
	if parent != g.block {
		g.block, g.markers = parent, 0
	}
	line, seg := block.PeekLine()
	n := 1
	if c := line[0]; c == '*' || c == '_' {
		for n < len(line) && line[n] == c {
			n++
		}
	}
	g.markers = min(g.markers+n, 1<<40)
	if g.markers <= g.lim.MaxMarkers {
		return nil
	}
	switch {
	case g.err == nil:
		at := seg.Start
		if lines := parent.Lines(); lines.Len() > 0 {
			at = lines.At(0).Start
		}
		g.fail(&LimitError{What: "inline markers (* _ ~ ` [ ] ! <) in one paragraph", Actual: g.markers,
			Limit: g.lim.MaxMarkers, Unit: "markers"}, at)
		g.over = parent
	case g.over == parent:
		g.err.Actual = g.markers
	}
	block.Advance(n)
	return ast.NewTextSegment(text.NewSegment(seg.Start, seg.Start+n))
}

// definitionGuard counts the lines of a paragraph that may be link
// reference definitions ("[name]: url"): goldmark takes each out of the
// paragraph by copying the lines after it.
type definitionGuard struct{}

func (definitionGuard) Transform(node *ast.Paragraph, reader text.Reader, pc parser.Context) {
	g := guardOf(pc)
	lines := node.Lines()
	if g == nil || lines.Len() <= g.lim.MaxMarkers {
		return
	}
	src := reader.Source()
	n := 0
	for i := range lines.Len() {
		seg := lines.At(i)
		line := seg.Value(src)
		if j := bytes.IndexFunc(line, func(r rune) bool { return r != ' ' && r != '\t' }); j >= 0 && j <= 3 && line[j] == '[' {
			n++
		}
	}
	if n <= g.lim.MaxMarkers {
		return
	}
	g.fail(&LimitError{What: "link reference definitions in one paragraph", Actual: n, More: false,
		Limit: g.lim.MaxMarkers, Unit: "lines"}, lines.At(0).Start)
	keepParagraph(node, reader)
}

// tableGuard counts the cells that the table transformer may make of a
// paragraph: at most one table, whose header is the line above a delimiter
// row ("|---|:-:|") and whose rows run to the end of the paragraph, each
// as wide as the delimiter row. Which line goldmark takes for the
// delimiter row, the guard does not try to tell: it counts the largest
// table any of them would make.
type tableGuard struct{}

func (tableGuard) Transform(node *ast.Paragraph, reader text.Reader, pc parser.Context) {
	g := guardOf(pc)
	lines := node.Lines()
	if g == nil || lines.Len() < 2 {
		return
	}
	src := reader.Source()
	cells := 0
	for i := 1; i < lines.Len(); i++ {
		seg := lines.At(i)
		if cols := delimiterColumns(seg.Value(src)); cols > 0 {
			cells = max(cells, min(cols*(lines.Len()-i), 1<<40))
		}
	}
	if cells == 0 {
		return
	}
	g.cells = min(g.cells+cells, 1<<40)
	if g.cells <= g.lim.MaxTableCells {
		return
	}
	g.fail(&LimitError{What: "table cells (rows times columns, of this table and those above it)",
		Actual: g.cells, Limit: g.lim.MaxTableCells, Unit: "cells"}, lines.At(0).Start)
	keepParagraph(node, reader)
}

// delimiterColumns returns the number of columns of line if it may be a
// table's delimiter row (only '|', ':', '-' and white space, with at least
// one '-' and one '|'), else 0: the cells between its pipes, and before
// the first and after the last unless they are blank.
func delimiterColumns(line []byte) int {
	dash, pipes := false, 0
	for _, c := range line {
		switch c {
		case '-':
			dash = true
		case '|':
			pipes++
		case ':', ' ', '\t', '\r', '\n':
		default:
			return 0
		}
	}
	if !dash || pipes == 0 {
		return 0
	}
	cols := pipes + 1
	if t := bytes.TrimSpace(line); t[0] == '|' {
		cols--
	}
	if t := bytes.TrimSpace(line); t[len(t)-1] == '|' {
		cols--
	}
	return max(cols, 1)
}

// keepParagraph replaces node, in the middle of being closed, with a plain
// paragraph of the same lines, which the paragraph transformers after the
// guard do not see. It trims the lines as goldmark's paragraph parser
// would have, since goldmark closes only the paragraph it still has.
func keepParagraph(node *ast.Paragraph, reader text.Reader) {
	src := reader.Source()
	lines := node.Lines()
	for i := range lines.Len() {
		seg := lines.At(i)
		lines.Set(i, seg.TrimLeftSpace(src))
	}
	last := lines.Len() - 1
	seg := lines.At(last)
	lines.Set(last, seg.TrimRightSpace(src))
	p := ast.NewParagraph()
	p.SetLines(lines)
	p.SetBlankPreviousLines(node.HasBlankPreviousLines())
	node.Parent().ReplaceChild(node.Parent(), node, p)
}

// parseGuarded parses src with p, a parser built with guardParser, within
// lim. Past a limit it returns the *LimitError, with its line number.
func parseGuarded(p parser.Parser, src []byte, lim Limits) (ast.Node, error) {
	g := &guard{lim: lim.orDefault()}
	pc := parser.NewContext()
	pc.Set(guardKey, g)
	root := p.Parse(text.NewReader(src), parser.WithContext(pc))
	if g.err != nil {
		g.err.Line = bytes.Count(src[:min(g.errAt, len(src))], []byte("\n")) + 1
		return root, g.err
	}
	return root, nil
}
