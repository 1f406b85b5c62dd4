package extractive

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/neurosnap/sentences"

	"github.com/runnel/runnel"
)

// maxPassageBytes bounds the text read from one passage, so that a huge
// section cannot make one answer slow; the best sentences of a section are
// rarely deep inside it.
const maxPassageBytes = 64 << 10

// block is a paragraph, a list item or a block of code of a passage.
type block struct {
	text string // the lines of the block, as in the passage
	code bool   // fenced code; text is the code without its fences
	lang string // the fence's language, for code
}

// isCode reports whether b is code: fenced, or (in text from an importer
// that does not fence code) looking like it.
func (b block) isCode() bool { return b.code || looksLikeCode(b.text) }

// blocks splits a passage's plain text into the pieces the sentence splitter
// may see. The splitter joins list items and code into its neighbours'
// sentences, so structure is resolved first: paragraphs end at blank lines,
// every list item and every fenced block of code is a block of its own, and
// table rows, headings and horizontal rules are dropped. The lines of a
// block are kept so that looksLikeCode can judge them one by one.
func blocks(text string) []block {
	if len(text) > maxPassageBytes {
		n := maxPassageBytes
		for n > 0 && !utf8.RuneStart(text[n]) {
			n-- // never cut a character in two
		}
		text = text[:n]
		if i := strings.LastIndexByte(text, '\n'); i > 0 {
			text = text[:i]
		}
	}
	var (
		out   []block
		cur   []string
		fence string // the marker that opened the code fence, if one is open
		lang  string
	)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, block{text: strings.Join(cur, "\n")})
			cur = cur[:0]
		}
	}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		t := strings.TrimSpace(line)
		if fence != "" {
			if closesFence(t, fence) {
				if len(cur) > 0 {
					out = append(out, block{text: strings.Join(cur, "\n"), code: true, lang: lang})
				}
				cur, fence = cur[:0], ""
				continue
			}
			cur = append(cur, line)
			continue
		}
		switch {
		case strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~"):
			flush()
			fence, lang = openFence(t)
		case t == "" || strings.HasPrefix(t, "|") || isHeading(t):
			flush()
		case isRule(t):
			// A line of "===" or "---" under text makes that text a
			// (setext) heading: drop both. Other rules end a paragraph.
			if t[0] == '=' || t[0] == '-' {
				cur = cur[:0]
			}
			flush()
		case isListItem(t):
			flush()
			cur = append(cur, line)
		default:
			cur = append(cur, line)
		}
	}
	if fence != "" {
		// A fence never closed (a passage cut inside it) is not quoted:
		// its end is unknown.
		cur = cur[:0]
	}
	flush()
	return out
}

// openFence returns the fence that line t opens (its run of backticks or
// tildes) and the language named after it.
func openFence(t string) (fence, lang string) {
	n := 0
	for n < len(t) && t[n] == t[0] {
		n++
	}
	lang, _, _ = strings.Cut(strings.TrimSpace(t[n:]), " ")
	return t[:n], lang
}

// closesFence reports whether line t closes fence: a run of the same
// character at least as long, and nothing else.
func closesFence(t, fence string) bool {
	n := 0
	for n < len(t) && t[n] == fence[0] {
		n++
	}
	return n >= len(fence) && strings.TrimSpace(t[n:]) == ""
}

// isHeading reports whether t is an ATX heading ("## Title").
func isHeading(t string) bool {
	n := 0
	for n < len(t) && t[n] == '#' {
		n++
	}
	return n >= 1 && n <= 6 && (n == len(t) || t[n] == ' ' || t[n] == '\t')
}

// isRule reports whether t is made of one repeated '=', '-', '*' or '_'
// (spaces allowed), at least three times: a setext underline or a rule.
func isRule(t string) bool {
	var c byte
	n := 0
	for i := 0; i < len(t); i++ {
		switch {
		case t[i] == ' ':
		case c == 0 && strings.IndexByte("=-*_", t[i]) >= 0:
			c = t[i]
			n++
		case t[i] == c:
			n++
		default:
			return false
		}
	}
	return n >= 3
}

// isListItem reports whether t starts with a bullet ("- ", "* ", "+ ") or
// a number ("1. ", "2) ").
func isListItem(t string) bool {
	if len(t) >= 2 && strings.IndexByte("-*+", t[0]) >= 0 && t[1] == ' ' {
		return true
	}
	n := 0
	for n < len(t) && n < 9 && t[n] >= '0' && t[n] <= '9' {
		n++
	}
	return n > 0 && n+1 < len(t) && (t[n] == '.' || t[n] == ')') && t[n+1] == ' '
}

// codeSymbols are characters that are common in code and rare in prose.
const codeSymbols = "{}()[];=<>|\\$&"

// isCodeSymbol holds codeSymbols by byte.
var isCodeSymbol = func() (t [utf8.RuneSelf]bool) {
	for i := range len(codeSymbols) {
		t[codeSymbols[i]] = true
	}
	return t
}()

// looksLikeCode reports whether a block is more likely code, a command or
// data than prose: dense in symbols, or mostly made of lines that end or
// begin the way code does. Such blocks make poor sentences to read aloud.
func looksLikeCode(block string) bool {
	letters, symbols := 0, 0
	for _, r := range block {
		switch {
		case r < 0x80 && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'):
			letters++ // the only ASCII letters, without a table look-up
		case r >= 0x80 && unicode.IsLetter(r):
			letters++
		case r < 0x80 && isCodeSymbol[r]:
			symbols++
		}
	}
	if letters == 0 || symbols*100 > letters*12 {
		return true
	}
	first, _, _ := strings.Cut(block, "\n")
	if (strings.HasPrefix(first, "    ") || strings.HasPrefix(first, "\t")) && !isListItem(strings.TrimSpace(first)) {
		return true // an indented code block, not a nested list item
	}
	lines, code := 0, 0
	for line := range strings.Lines(block) {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		lines++
		if isCodeLine(t) {
			code++
		}
	}
	return code*2 > lines
}

func isCodeLine(t string) bool {
	for _, s := range []string{"$ ", "// ", "#!", "func ", "import ", "const ", "let ", "var ", "def "} {
		if strings.HasPrefix(t, s) {
			return true
		}
	}
	if strings.HasSuffix(t, "{") || strings.HasSuffix(t, "}") || strings.HasSuffix(t, ";") {
		return true
	}
	return hasCodePair(t) || hasFlag(t) && strings.IndexByte(".!?:", t[len(t)-1]) < 0
}

// hasCodePair reports whether t holds one of ":=", "=>", "==", "!=", "&&",
// "||", "();", "){" or "->", in one pass over it.
func hasCodePair(t string) bool {
	for i := 0; i+1 < len(t); i++ {
		next := t[i+1]
		switch t[i] {
		case ':', '!':
			if next == '=' {
				return true
			}
		case '=':
			if next == '>' || next == '=' {
				return true
			}
		case '&', '|':
			if next == t[i] {
				return true
			}
		case '(':
			if next == ')' && i+2 < len(t) && t[i+2] == ';' {
				return true
			}
		case ')':
			if next == '{' {
				return true
			}
		case '-':
			if next == '>' {
				return true
			}
		}
	}
	return false
}

// hasFlag reports whether t has a command-line flag ("--access", "-g"). An
// importer turns a code block into a plain paragraph, and a shell command
// has few symbols to give it away; unlike prose that mentions a flag, it
// does not end like a sentence.
func hasFlag(t string) bool {
	for i := 0; i+2 < len(t); i++ {
		if t[i] != ' ' || t[i+1] != '-' {
			continue
		}
		j := i + 2
		if t[j] == '-' {
			j++
		}
		if j < len(t) && isASCIILetter(t[j]) && (j == i+3 || j+1 == len(t) || t[j+1] == ' ') {
			return true
		}
	}
	return false
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

var (
	// reLink matches a Markdown link or image; the text is kept.
	reLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)\s]*\)`)
	// reMarker matches the markers that may start a line of Markdown:
	// bullets, numbers, quotes and heading hashes, possibly nested.
	reMarker = regexp.MustCompile(`^(?:(?:[-*+]|\d{1,9}[.)]|>+|#{1,6})\s+)+`)
)

// clean turns a block or a sentence into plain prose: Markdown markers
// at the start of each line, link syntax, backticks and emphasis stars
// removed, and white space collapsed into single spaces. Importers usually
// strip Markdown, but passages may come from anywhere, and a stray "- " or
// "`" reads badly in an answer.
func clean(s string) string {
	if strings.IndexByte(s, '\n') < 0 {
		s = cleanLine(s) // one line, most sentences: nothing to join
	} else {
		var b strings.Builder
		b.Grow(len(s))
		for line := range strings.Lines(s) {
			line = cleanLine(line)
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(line)
		}
		s = b.String()
	}
	if strings.Contains(s, "](") {
		s = reLink.ReplaceAllString(s, "$1")
	}
	if strings.ContainsAny(s, "`*") {
		s = strings.Map(func(r rune) rune {
			if r == '`' || r == '*' {
				return -1
			}
			return r
		}, s)
	}
	return collapseSpace(s)
}

// collapseSpace is strings.Join(strings.Fields(s), " "), without copying
// a text that is collapsed already: ASCII or UTF-8 with single spaces
// between words and none at either end, as most cleaned text is.
func collapseSpace(s string) string {
	prev := byte(' ') // a space at the start is one too many
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				return strings.Join(strings.Fields(s), " ")
			}
			i += size - 1
			prev = 0
			continue
		}
		if c == ' ' && prev == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' {
			return strings.Join(strings.Fields(s), " ")
		}
		prev = c
	}
	if prev == ' ' {
		return strings.Join(strings.Fields(s), " ")
	}
	return s
}

// cleanLine trims a line and removes the Markdown markers it begins with.
func cleanLine(line string) string {
	line = strings.TrimSpace(line)
	if line != "" && strings.IndexByte("-*+>#0123456789", line[0]) >= 0 {
		line = reMarker.ReplaceAllString(line, "")
	}
	return line
}

// finish gives a sentence the end of a sentence: list items and sentences
// that lead into a list (ending in ':') would otherwise run into the next.
func finish(s string) string {
	s = strings.TrimRight(s, " ,;:")
	if s == "" {
		return s
	}
	if r, _ := utf8.DecodeLastRuneInString(s); cjkEnd(r) {
		return s
	} else if runnel.IsCJK(r) {
		return s + "。"
	}
	switch s[len(s)-1] {
	case '.', '!', '?':
		return s
	case '"', '\'', ')':
		// Punctuation may sit inside the closing quote or parenthesis.
		if len(s) >= 2 && strings.IndexByte(".!?", s[len(s)-2]) >= 0 {
			return s
		}
	}
	return s + "."
}

// stem reduces an English word (lower case) to a crude stem so that the
// forms a question and an article use meet: "sockets" and "socket",
// "streaming", "streamed" and "stream", "proxies" and "proxy", "caches" and
// "cache". It only removes plural and verb endings; it needs to be
// consistent, not linguistically right, because both sides go through it.
func stem(w string) string {
	if len(w) <= 3 {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
	case strings.HasSuffix(w, "s"):
		w = w[:len(w)-1]
	}
	switch {
	case strings.HasSuffix(w, "ied") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "eed"):
	case strings.HasSuffix(w, "ing") && len(w) >= 6 && hasVowel(w[:len(w)-3]):
		w = undouble(w[:len(w)-3])
	case strings.HasSuffix(w, "ed") && len(w) >= 5 && hasVowel(w[:len(w)-2]):
		w = undouble(w[:len(w)-2])
	}
	for _, suf := range []string{"able", "ible"} {
		// "resumable" and "resume", "readable" and "read"; not "table"
		// or "enable", whose rest is too short to be the word.
		if r, ok := strings.CutSuffix(w, suf); ok && len(r) >= 4 {
			w = r
			break
		}
	}
	if len(w) > 3 && w[len(w)-1] == 'e' {
		w = w[:len(w)-1]
	}
	return w
}

func hasVowel(s string) bool { return strings.ContainsAny(s, "aeiouy") }

// undouble turns "runn" (from "running") into "run", but keeps "call",
// "pass", "buzz" and short stems such as "add".
func undouble(w string) string {
	n := len(w)
	if n >= 4 && w[n-1] == w[n-2] && strings.IndexByte("bdfgkmnprt", w[n-1]) >= 0 {
		return w[:n-1]
	}
	return w
}

// sentenceStopWords are words a sentence (rarely a question) contains that
// carry too little meaning to count as a match or as overlap, on top of
// the question stop words runnel.IsStopWord knows.
var sentenceStopWords = map[string]bool{
	"also": true, "may": true, "might": true, "must": true, "one": true,
	"two": true, "per": true, "via": true, "yes": true,
}

// contentWord reports whether a lower-case word carries meaning for
// matching: not a stop word, and longer than one letter unless the letter
// may be a name ("c", "r"; not "s" from "it's").
func contentWord(w string) bool {
	return (len(w) > 1 || nameLetter(w)) && !runnel.IsStopWord(w) && !sentenceStopWords[w]
}

// nameLetter reports whether a one-letter word may name something: a
// letter other than the article, the pronoun and what contractions leave
// ("a", "i", "s", "t", "d", "m", "v" of "it's", "don't", "I'd", "I'm").
func nameLetter(w string) bool {
	return len(w) == 1 && isASCIILetter(w[0]) && strings.IndexByte("aistdmv", w[0]) < 0
}

// wordsOf returns the words of s in lower case, each run of Chinese,
// Japanese or Korean characters as its overlapping pairs of characters:
// the way the store indexes them (runnel.SegmentCJK), so that a question
// and a sentence written without spaces share terms.
func wordsOf(s string) []string { return runnel.Words(runnel.SegmentCJK(s)) }

func hasCJK(s string) bool {
	for _, r := range s {
		if runnel.IsCJK(r) {
			return true
		}
	}
	return false
}

// wordCount returns the number of words of a sentence, for its length
// limits and the token budget: words between spaces, and a word for every
// two CJK characters, which have no spaces between words.
func wordCount(s string) int {
	n := strings.Count(s, " ") + 1
	cjk := 0
	for i := 0; i < len(s); i++ {
		if s[i] < 0xe1 {
			continue // ASCII, or a character below U+1100, the first CJK one
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if runnel.IsCJK(r) {
			cjk++
		}
		i += size - 1
	}
	return n + cjk/2
}

// cjkEnd reports whether r ends a sentence in Chinese or Japanese.
func cjkEnd(r rune) bool { return r == '。' || r == '！' || r == '？' || r == '．' }

// sentencesOf splits a block into sentences: with the punkt splitter, and
// then after each full stop of CJK text ("。"), which is not followed by a
// space and which punkt does not know.
func sentencesOf(split interface {
	Tokenize(string) []*sentences.Sentence
}, text string) []string {
	var out []string
	for _, s := range split.Tokenize(text) {
		t := s.Text
		if !hasCJK(t) {
			out = append(out, t)
			continue
		}
		start := 0
		for i, r := range t {
			if cjkEnd(r) {
				end := i + utf8.RuneLen(r)
				if piece := strings.TrimSpace(t[start:end]); piece != "" {
					out = append(out, piece)
				}
				start = end
			}
		}
		if piece := strings.TrimSpace(t[start:]); piece != "" {
			out = append(out, piece)
		}
	}
	return out
}

// memo remembers the results of a pure function of a text for the texts
// seen lately: the same passages answer many questions, and splitting them
// into sentences and words is most of the cost of an answer. It forgets
// everything at once when it holds maxMemoTexts texts or maxMemoBytes of
// them, which is simpler than an LRU and as good for a cache that mostly
// hits the popular passages. What it returns is shared: callers only read
// it.
type memo[V any] struct {
	mu    sync.Mutex
	m     map[string]V
	bytes int
}

const (
	maxMemoTexts = 4096
	maxMemoBytes = 8 << 20
)

func (c *memo[V]) get(text string, f func(string) V) V {
	c.mu.Lock()
	v, ok := c.m[text]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = f(text)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxMemoTexts || c.bytes+2*len(text) > maxMemoBytes {
		c.m, c.bytes = map[string]V{}, 0
	}
	c.m[text] = v
	c.bytes += 2 * len(text) // the key, and about as much again for the value
	c.mu.Unlock()
	return v
}

var (
	sentenceMemo memo[[]string] // block -> its sentences
	setMemo      memo[[]string] // text -> textSet
	wordsMemo    memo[[]string] // sentence -> wordsOf
)

// cachedSentences is sentencesOf through a memo.
func cachedSentences(split interface {
	Tokenize(string) []*sentences.Sentence
}, text string) []string {
	return sentenceMemo.get(text, func(t string) []string { return sentencesOf(split, t) })
}

// cachedTextSet is textSet through a memo.
func cachedTextSet(text string) []string { return setMemo.get(text, textSet) }

// cachedWords is wordsOf through a memo.
func cachedWords(text string) []string { return wordsMemo.get(text, wordsOf) }

// textSet returns the stems of the content words of s and its version
// numbers, sorted: what a term is looked up in.
func textSet(s string) []string { return withVersions(stemSet(wordsOf(s)), s) }

// hasDottedDigits reports whether text has a digit, a dot and a digit in a
// row, which every version number reVersion matches has.
func hasDottedDigits(text string) bool {
	for i := strings.IndexByte(text, '.'); i >= 0; {
		if i > 0 && i+1 < len(text) && isASCIIDigit(text[i-1]) && isASCIIDigit(text[i+1]) {
			return true
		}
		j := strings.IndexByte(text[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func isASCIIDigit(c byte) bool { return '0' <= c && c <= '9' }

// reVersion matches a version number in text, as runnel.ParseQuestion
// keeps one whole.
var reVersion = regexp.MustCompile(`(?i)\bv?\d+(?:\.\d+)+\b`)

// withVersions adds the version numbers of text to the sorted set.
func withVersions(set []string, text string) []string {
	if !hasDottedDigits(text) {
		return set // the regexp is most of the cost of a sentence's set
	}
	vs := reVersion.FindAllString(text, -1)
	if len(vs) == 0 {
		return set
	}
	for _, v := range vs {
		set = append(set, strings.ToLower(v))
	}
	slices.Sort(set)
	return slices.Compact(set)
}

// isEntry reports whether a block is an entry of a listing rather than
// prose: a short term, a dash and what it means ("t – number of seconds
// to wait before killing the container", "304 – container already
// stopped"), as the items of a parameter or status list read once the
// importer has taken their markup away; or an HTTP endpoint ("POST
// /containers/(id or name)/stop"). Out of its list the term is a
// fragment: which parameter, of what?
func isEntry(block string) bool {
	// Each expression is tried only where it can match: an entry has a
	// spaced dash, and an endpoint begins with its method and a path
	// (putting "()" for what is in parentheses changes neither).
	if (strings.Contains(block, " – ") || strings.Contains(block, " — ")) && reEntry.MatchString(block) {
		return true
	}
	return hasMethodPrefix(block) && reEndpoint.MatchString(reParens.ReplaceAllString(block, "()"))
}

// hasMethodPrefix reports whether s begins with an HTTP method reEndpoint
// knows, a space and a slash.
func hasMethodPrefix(s string) bool {
	m, _, ok := strings.Cut(s, " /")
	if !ok {
		return false
	}
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
		return true
	}
	return false
}

var (
	reEntry    = regexp.MustCompile(`^[^\s–—]+(?: [^\s–—]+){0,2} [–—] \S`)
	reEndpoint = regexp.MustCompile(`^(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /\S*$`)
	reParens   = regexp.MustCompile(`\([^()\n]*\)`)
)
