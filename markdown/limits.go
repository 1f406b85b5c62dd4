package markdown

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits bound what one article may cost to import and to render. The cost
// of parsing Markdown grows faster than its size in a few shapes (lists or
// quotes nested thousands deep, paragraphs made of thousands of unmatched
// emphasis or link markers, tables whose short rows are padded to a wide
// header), so size alone does not bound it: each shape has a limit of its
// own. A zero field takes its default (the Default* constants).
type Limits struct {
	// MaxBytes is the largest article in bytes: a Markdown file with its
	// front matter, or the body of a JSONL record.
	MaxBytes int
	// MaxFrontMatter is the largest front matter in bytes.
	MaxFrontMatter int
	// MaxDepth is how deeply lists and block quotes may nest.
	MaxDepth int
	// MaxMarkers is how many inline markers (the characters * _ ~ ` [ ] !
	// and < where they may open or close emphasis, code, a link or a tag)
	// one paragraph, heading or table cell may hold.
	MaxMarkers int
	// MaxTableCells is how many cells the tables of one article may have
	// in all, counting each row as wide as its table's header.
	MaxTableCells int
	// MaxHTML is the largest HTML RenderHTML writes, in bytes.
	MaxHTML int
}

// Default limits. The largest Markdown file of Docker's and git's
// documentation is 154 KiB and the largest Node.js changelog 934 KiB; none
// of 1,800 real documents nests deeper than 7 or holds more than 500
// markers in one paragraph or 2,000 table cells.
const (
	DefaultMaxBytes       = 1 << 20
	DefaultMaxFrontMatter = 64 << 10
	DefaultMaxDepth       = 32
	DefaultMaxMarkers     = 500
	DefaultMaxTableCells  = 100_000
	DefaultMaxHTML        = 8 << 20
)

// maxAliasValues is how many values the aliases (*name) of one front
// matter may stand for in all. Front matter that needs more is an alias
// bomb ("billion laughs"): a few hundred bytes that expand to millions.
const maxAliasValues = 10_000

// orDefault returns l with every zero field set to its default.
func (l Limits) orDefault() Limits {
	set := func(p *int, def int) {
		if *p <= 0 {
			*p = def
		}
	}
	set(&l.MaxBytes, DefaultMaxBytes)
	set(&l.MaxFrontMatter, DefaultMaxFrontMatter)
	set(&l.MaxDepth, DefaultMaxDepth)
	set(&l.MaxMarkers, DefaultMaxMarkers)
	set(&l.MaxTableCells, DefaultMaxTableCells)
	set(&l.MaxHTML, DefaultMaxHTML)
	return l
}

// A LimitError says that an article is over one of its Limits.
type LimitError struct {
	Line   int    // 1-based line of the file (of the body, for a JSONL record) where it is; 0 for the whole article
	What   string // what is over the limit: "the article", "the front matter", "nesting" ...
	Actual int    // how much there is; with More set, at least this much
	More   bool   // Actual is a lower bound: reading or counting stopped there
	Limit  int
	Unit   string // "bytes", "levels", "markers", "cells", "values"
}

func (e *LimitError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	more := ""
	if e.More {
		more = "more than "
	}
	fmt.Fprintf(&b, "%s: %s%s, over the limit of %s", e.What, more, quantity(e.Actual, e.Unit), quantity(e.Limit, e.Unit))
	return b.String()
}

// quantity writes n with its unit, and byte counts also in KiB or MiB.
func quantity(n int, unit string) string {
	s := fmt.Sprintf("%d %s", n, unit)
	if unit == "bytes" {
		switch {
		case n >= 1<<20:
			s += fmt.Sprintf(" (%.1f MiB)", float64(n)/(1<<20))
		case n >= 1<<10:
			s += fmt.Sprintf(" (%.1f KiB)", float64(n)/(1<<10))
		}
	}
	return s
}

// readArticle reads r, a file of size bytes as its Stat says (-1 if
// unknown), reading no more than max+1 bytes: a file over the limit is
// refused by its size before anything is read, and one that grew since it
// was measured once the byte after the limit arrives.
func readArticle(r io.Reader, size int64, limit int) ([]byte, error) {
	if size > int64(limit) {
		return nil, &LimitError{What: "the file", Actual: int(min(size, 1<<62)), Limit: limit, Unit: "bytes"}
	}
	lr := io.LimitReader(r, int64(limit)+1)
	// Room for the file and for the byte that shows it grew past the limit.
	buf := make([]byte, 0, max(size, 0)+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4<<10)
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(buf) > limit {
		return nil, &LimitError{What: "the file", Actual: limit, More: true, Limit: limit, Unit: "bytes"}
	}
	return buf, nil
}

// checkAliases refuses front matter whose aliases stand for more than
// maxAliasValues values, or that refers to itself, before anything walks
// it: an alias bomb is a few hundred bytes that would expand to millions
// of values. yaml.v3 expands nothing when it decodes into a Node, so the
// cost here is one visit of each node.
func checkAliases(doc *yaml.Node) error {
	sizes := map[*yaml.Node]int{} // values under a node, aliases expanded
	const visiting = -1
	var size func(n *yaml.Node) (int, error)
	size = func(n *yaml.Node) (int, error) {
		if s, ok := sizes[n]; ok {
			if s == visiting {
				return 0, fmt.Errorf("front matter: line %d: an alias refers to a value that contains it", n.Line)
			}
			return s, nil
		}
		sizes[n] = visiting
		s := 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			t, err := size(n.Alias)
			if err != nil {
				return 0, err
			}
			s = t
		}
		for _, c := range n.Content {
			t, err := size(c)
			if err != nil {
				return 0, err
			}
			s = min(s+t, 1<<40)
		}
		sizes[n] = s
		return s, nil
	}
	// Walk the tree itself (aliases not followed) and add up what each
	// alias stands for.
	aliased := 0
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s, err := size(n.Alias)
			if err != nil {
				return err
			}
			if aliased = min(aliased+s, 1<<40); aliased > maxAliasValues {
				return &LimitError{Line: n.Line, What: "front matter aliases", Actual: maxAliasValues, More: true,
					Limit: maxAliasValues, Unit: "values"}
			}
			return nil
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(doc)
}

// checkDepth returns a *LimitError for the first line of body that nests
// lists and block quotes deeper than limit. The parsers' own cost grows
// with the square of the depth, so this check comes before them, in one
// pass that looks at each line once and keeps no more than limit levels.
//
// It follows CommonMark's rules for which lines continue which open list
// item or quote, leaning always towards more levels, so as never to count
// fewer than a Markdown parser nests: a line continues a list item if it
// is indented past the item's marker (not only to its content) or with a
// tab, markers
// open levels however far they are indented (even in code), and a line
// that might lazily continue a paragraph closes nothing.
func checkDepth(body string, limit int) error {
	type level struct {
		quote   bool
		within  int // a list item: the column a line must reach to continue it
		content int // a list item: the column its content starts at
	}
	var open []level
	prevBlank := true
	for lineNo := 1; body != ""; lineNo++ {
		line, rest, _ := strings.Cut(body, "\n")
		body = rest
		blank := strings.TrimLeft(line, " \t") == ""
		breakFrom, breakTo := thematicBreaks(line)
		i, col := 0, 0
		matched := 0
		for matched < len(open) {
			l := open[matched]
			j, c := indent(line, i, col)
			switch {
			case l.quote:
				if c-col > 3 || j >= len(line) || line[j] != '>' {
					break
				}
				i, col = quoteContent(line, j+1, c+1)
				matched++
				continue
			case blank:
				matched++
				continue
			case c >= l.within || tabbed(line, j):
				// Parsers differ on how wide a tab is, so a line indented
				// with one continues the item. Indentation past the item's
				// content belongs to the content.
				i, col = j, c
				if c > l.content {
					i, col = back(line, j, l.content)
				}
				matched++
				continue
			}
			break
		}
		opened := 0
		depth := matched
		for {
			j, c := indent(line, i, col)
			if j >= len(line) {
				break
			}
			var l level
			if line[j] == '>' {
				l.quote = true
				i, col = quoteContent(line, j+1, c+1)
			} else if m := listMarker(line[j:]); m > 0 && (j < breakFrom || j > breakTo) {
				i, col = itemContent(line, j+m, c+m)
				l.within, l.content = c+1, col
			} else {
				break
			}
			opened++
			depth++
			if depth > limit {
				// Count the rest of this line's levels for the message,
				// without keeping them.
				continue
			}
			if opened == 1 {
				open = open[:matched]
			}
			open = append(open, l)
		}
		if depth > limit {
			return &LimitError{Line: lineNo, What: "lists and block quotes nested", Actual: depth, Limit: limit, Unit: "levels"}
		}
		// A line that continues fewer levels than are open closes the
		// rest, unless it may be a lazy continuation of a paragraph.
		if opened == 0 && matched < len(open) && (blank || prevBlank) {
			open = open[:matched]
		}
		prevBlank = blank
	}
	return nil
}

// tabbed reports whether the white space before byte j of line holds a
// tab.
func tabbed(line string, j int) bool {
	for k := j - 1; k >= 0 && (line[k] == ' ' || line[k] == '\t'); k-- {
		if line[k] == '\t' {
			return true
		}
	}
	return false
}

// indent skips spaces and tabs from byte i of line, at column col, and
// returns where the first other byte is and its column (tabs stop every 4
// columns).
func indent(line string, i, col int) (int, int) {
	for ; i < len(line); i++ {
		switch line[i] {
		case ' ':
			col++
		case '\t':
			col += 4 - col%4
		default:
			return i, col
		}
	}
	return i, col
}

// back returns the byte and column at which col is reached in the
// indentation that ends at byte j of line. A tab that spans col is left
// in part: the byte returned is the tab's, and indent counts the columns
// of it that remain.
func back(line string, j, col int) (int, int) {
	i, c := 0, 0
	for i < j {
		next := c + 1
		if line[i] == '\t' {
			next = c + 4 - c%4
		}
		if next > col {
			return i, col
		}
		i, c = i+1, next
	}
	return i, c
}

// quoteContent returns where the content of a block quote starts after
// its '>' at byte i, column col: after one optional space.
func quoteContent(line string, i, col int) (int, int) {
	if i < len(line) && line[i] == ' ' {
		return i + 1, col + 1
	}
	return i, col
}

// itemContent returns where the content of a list item starts after its
// marker, which ends at byte i, column col: after one to four spaces, or
// after one if the item is empty or its content is indented code.
func itemContent(line string, i, col int) (int, int) {
	j, c := indent(line, i, col)
	if j >= len(line) || c-col > 4 {
		return min(i+1, len(line)), col + 1
	}
	return j, c
}

// listMarker returns the length of the list item marker that s starts
// with ("-", "+", "*", or one to nine digits and "." or ")"), followed by
// a space, a tab or the end of the line; 0 if there is none.
func listMarker(s string) int {
	n := 0
	switch {
	case s[0] == '-' || s[0] == '+' || s[0] == '*':
		n = 1
	default:
		for n < len(s) && n < 9 && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 || n >= len(s) || (s[n] != '.' && s[n] != ')') {
			return 0
		}
		n++
	}
	if n < len(s) && s[n] != ' ' && s[n] != '\t' {
		return 0
	}
	return n
}

// thematicBreaks returns the range of bytes from..to of line from which
// the rest of it is a thematic break ("- - -", "***"), which wins over a
// list item that starts the same way; from > to if there is none. One
// pass from the end finds it, so that a line of many markers costs no
// more than its length.
func thematicBreaks(line string) (from, to int) {
	var mark byte
	marks := 0
	from, to = len(line), -1
	for i := len(line) - 1; i >= 0; i-- {
		switch c := line[i]; c {
		case ' ', '\t':
			continue
		case '-', '*', '_':
			if mark != 0 && c != mark {
				return from, to
			}
			mark = c
			if marks++; marks == 3 {
				to = i
			}
			if marks >= 3 {
				from = i
			}
		default:
			return from, to
		}
	}
	return from, to
}
