package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"unicode/utf8"

	"golang.org/x/term"
	"golang.org/x/text/width"
)

// terminal is what ask needs to know of where it writes.
type terminal struct {
	width int  // columns to wrap the answer at; 0 for no wrapping
	color bool // bold and dim are welcome
}

// ttyWriter is a writer that knows it is a terminal and how wide. An
// *os.File is asked through golang.org/x/term; tests pass a fake.
type ttyWriter interface {
	io.Writer
	// TerminalWidth returns the terminal's width in columns, and false
	// if the writer is not a terminal.
	TerminalWidth() (int, bool)
}

// detectTerminal says how to write to w: wrapped to the terminal's width
// (else $COLUMNS, else 80) and with colour unless NO_COLOR is set to
// anything (https://no-color.org), when w is a terminal; as it comes, when
// it is a pipe or a file.
func detectTerminal(w io.Writer, env func(string) string) terminal {
	var cols int
	switch w := w.(type) {
	case ttyWriter:
		n, ok := w.TerminalWidth()
		if !ok {
			return terminal{}
		}
		cols = n
	case *os.File:
		fd := int(w.Fd())
		if !term.IsTerminal(fd) {
			return terminal{}
		}
		cols, _, _ = term.GetSize(fd)
	default:
		return terminal{}
	}
	if cols <= 0 {
		cols, _ = strconv.Atoi(env("COLUMNS"))
	}
	if cols <= 0 {
		cols = 80
	}
	return terminal{width: cols, color: env("NO_COLOR") == ""}
}

// The SGR sequences ask uses: modest on purpose.
const (
	sgrBold    = "\x1b[1m"
	sgrDim     = "\x1b[2m"
	sgrNormal  = "\x1b[22m" // neither bold nor dim
	sgrReset   = "\x1b[0m"
	boldMarker = "**"
)

// style wraps s in an SGR sequence when colour is on.
func (t terminal) style(sgr, s string) string {
	if !t.color || s == "" {
		return s
	}
	return sgr + s + sgrReset
}

// wrapper word-wraps text that arrives in pieces, as an answer's tokens do:
// it holds the current word until the space or newline after it, and
// breaks the line before a word that would cross the width. It keeps the
// text's own newlines, leaves fenced code blocks (``` or ~~~) and table
// rows (|) as they are, and breaks only a word longer than a whole line.
// With colour it shows **strong** text in bold, without the markers.
type wrapper struct {
	w     io.Writer
	width int  // 0: no wrapping
	bold  bool // render **x** in bold

	col     int    // columns written on the current line
	gap     []byte // the spaces after the last word written
	word    []byte // the word being held
	partial []byte // the start of a rune split between writes
	fresh   bool   // no word written on this line yet
	fence   bool   // inside a fenced code block
	verbat  bool   // this line is written as it is (a table row, a fence)
	inBold  bool   // between ** markers
	err     error
}

func newWrapper(w io.Writer, t terminal) *wrapper {
	return &wrapper{w: w, width: t.width, bold: t.color, fresh: true}
}

func (w *wrapper) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.partial) > 0 {
		p = append(w.partial, p...)
		w.partial = nil
	}
	for len(p) > 0 {
		if !utf8.FullRune(p) {
			w.partial = append([]byte(nil), p...)
			break
		}
		r, size := utf8.DecodeRune(p)
		switch r {
		case '\n':
			w.flushWord()
			if w.verbat || w.fence {
				w.put(w.gap)
			}
			w.put([]byte{'\n'})
			w.col, w.gap, w.fresh, w.verbat = 0, w.gap[:0], true, false
		case ' ', '\t':
			w.flushWord()
			w.gap = append(w.gap, p[:size]...)
		default:
			w.word = append(w.word, p[:size]...)
		}
		p = p[size:]
	}
	return n, w.err
}

// Flush writes the word held back, at the end of the text, and ends bold.
func (w *wrapper) Flush() error {
	w.word = append(w.word, w.partial...)
	w.partial = nil
	w.flushWord()
	if w.inBold {
		w.put([]byte(sgrNormal))
		w.inBold = false
	}
	return w.err
}

// atLineStart reports whether nothing follows the last newline written.
func (w *wrapper) atLineStart() bool { return w.col == 0 && len(w.word) == 0 }

func (w *wrapper) flushWord() {
	if len(w.word) == 0 {
		return
	}
	word := w.word
	if w.fresh {
		if bytes.HasPrefix(word, []byte("```")) || bytes.HasPrefix(word, []byte("~~~")) {
			w.fence = !w.fence
			w.verbat = true
		} else if word[0] == '|' {
			w.verbat = true
		}
	}
	if w.fence || w.verbat || w.width <= 0 {
		w.put(w.gap)
		w.col += cols(w.gap)
		w.putWord(word)
	} else {
		n := cols(stripMarkers(word, w.bold))
		if w.col > 0 && w.col+cols(w.gap)+n > w.width {
			w.put([]byte{'\n'})
			w.col = 0
		} else {
			w.put(w.gap)
			w.col += cols(w.gap)
		}
		switch {
		case n > w.width:
			w.putLong(word)
		case n > w.width-w.col: // it fits a line, not after this indentation
			w.put([]byte{'\n'})
			w.col = 0
			fallthrough
		default:
			w.putWord(word)
			w.col += n
		}
	}
	w.word, w.gap, w.fresh = w.word[:0], w.gap[:0], false
}

// putWord writes word, its ** markers turned into bold when that is on
// and the line is not code.
func (w *wrapper) putWord(word []byte) {
	if !w.bold || w.fence || w.verbat {
		w.put(word)
		return
	}
	for {
		i := bytes.Index(word, []byte(boldMarker))
		if i < 0 {
			w.put(word)
			return
		}
		w.put(word[:i])
		w.inBold = !w.inBold
		if w.inBold {
			w.put([]byte(sgrBold))
		} else {
			w.put([]byte(sgrNormal))
		}
		word = word[i+len(boldMarker):]
	}
}

// putLong writes a word longer than a line, broken at the width.
func (w *wrapper) putLong(word []byte) {
	word = stripMarkers(word, w.bold)
	for len(word) > 0 {
		r, size := utf8.DecodeRune(word)
		c := runeCols(r)
		if w.col+c > w.width && w.col > 0 {
			w.put([]byte{'\n'})
			w.col = 0
		}
		w.put(word[:size])
		w.col += c
		word = word[size:]
	}
}

func (w *wrapper) put(b []byte) {
	if w.err == nil && len(b) > 0 {
		_, w.err = w.w.Write(b)
	}
}

// stripMarkers returns word without its ** markers when they are shown as
// bold, for measuring.
func stripMarkers(word []byte, bold bool) []byte {
	if !bold || !bytes.Contains(word, []byte(boldMarker)) {
		return word
	}
	return bytes.ReplaceAll(word, []byte(boldMarker), nil)
}

// cols returns how many terminal columns b takes: two for a wide (East
// Asian) character, one for others.
func cols(b []byte) int {
	n := 0
	for _, r := range string(b) {
		n += runeCols(r)
	}
	return n
}

func runeCols(r rune) int {
	if r == '\t' {
		return 8 // at most; a tab in prose is rare
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}
