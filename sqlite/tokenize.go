package sqlite

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	porterstemmer "github.com/blevesearch/go-porterstemmer"
	"github.com/kljensen/snowball/french"
	"github.com/kljensen/snowball/hungarian"
	"github.com/kljensen/snowball/norwegian"
	"github.com/kljensen/snowball/russian"
	"github.com/kljensen/snowball/spanish"
	"github.com/kljensen/snowball/swedish"
	"golang.org/x/text/language"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/runnel/runnel"
)

// An analyzer turns text into the terms the index keeps and a question
// looks up: words split at anything but letters, digits and marks, folded
// to lower case without diacritics, and stemmed in the text's language
// when there is a Snowball stemmer for it. A version number ("24.04") is a
// term of its own, as well as its numbers; CJK text is cut into pairs of
// characters first (runnel.SegmentCJK).
type analyzer struct {
	prefix string // keeps the terms of languages apart: "" for English
	stem   func(string) string
}

var (
	analyzersMu sync.Mutex
	analyzers   = map[string]*analyzer{}
)

// analyzerFor returns the analyzer for articles in lang ("" is English).
func analyzerFor(lang string) *analyzer {
	base := "en"
	if lang != "" {
		if t, err := language.Parse(lang); err == nil {
			b, _ := t.Base()
			base = b.String()
		} else {
			base = lang
		}
	}
	analyzersMu.Lock()
	defer analyzersMu.Unlock()
	if a, ok := analyzers[base]; ok {
		return a
	}
	a := &analyzer{prefix: base + ":"}
	var stem func(string, bool) string
	switch base {
	case "en":
		// The original Porter stemmer, which SQLite's FTS5 used before
		// the index moved into memory: Porter2 leaves "cds" and "ids"
		// as they are, and questions about such plurals lost their
		// articles on make eval.
		a.prefix, stem = "", func(w string, _ bool) string { return porterstemmer.StemString(w) }
	case "fr":
		stem = french.Stem
	case "es":
		stem = spanish.Stem
	case "ru":
		stem = russian.Stem
	case "sv":
		stem = swedish.Stem
	case "no", "nb", "nn":
		stem = norwegian.Stem
	case "hu":
		stem = hungarian.Stem
	}
	if stem != nil {
		a.stem = cachedStem(stem)
	}
	analyzers[base] = a
	return a
}

// maxCachedStems bounds a stemmer's cache; a collection's vocabulary is
// usually far smaller.
const maxCachedStems = 200_000

// cachedStem remembers the stems of words: stemming costs a microsecond a
// word, and a collection repeats its words thousands of times.
func cachedStem(stem func(string, bool) string) func(string) string {
	var mu sync.RWMutex
	cache := map[string]string{}
	return func(w string) string {
		if !needsStem(w) {
			return w
		}
		mu.RLock()
		s, ok := cache[w]
		mu.RUnlock()
		if ok {
			return s
		}
		s = stem(w, true)
		mu.Lock()
		if len(cache) >= maxCachedStems {
			clear(cache)
		}
		cache[w] = s
		mu.Unlock()
		return s
	}
}

// needsStem reports whether w has letters a stemmer could change: not a
// number, a version or a pair of CJK characters.
func needsStem(w string) bool {
	for _, r := range w {
		if unicode.IsLetter(r) && !runnel.IsCJK(r) {
			return len(w) > 2
		}
	}
	return false
}

// term returns the key of word (already folded) in the index.
func (a *analyzer) term(w string) string {
	if a.stem != nil {
		w = a.stem(w)
	}
	return a.prefix + w
}

// words calls f with every word of text, folded: lower case, diacritics
// removed. A version number comes whole and then in its numbers.
func words(text string, f func(w string)) {
	eachWord(text, func(w string, _ bool) { f(w) })
}

// eachWord is words, saying which words are the whole of a version.
func eachWord(text string, f func(w string, extra bool)) {
	text = runnel.SegmentCJK(text)
	start := -1
	dots := false // the word has a dot between digits
	emit := func(w string) {
		if dots {
			f(fold(w), true)
			for part := range strings.SplitSeq(w, ".") {
				if part != "" {
					f(fold(part), false)
				}
			}
		} else {
			f(fold(w), false)
		}
		dots = false
	}
	for i, r := range text {
		switch {
		case isWordRune(r):
			if start < 0 {
				start = i
			}
			continue
		case r == '.' && start >= 0 && i > 0 && isDigit(text[i-1]) && i+1 < len(text) && isDigit(text[i+1]):
			dots = true
			continue
		}
		if start >= 0 {
			emit(text[start:i])
			start = -1
		}
	}
	if start >= 0 {
		emit(text[start:])
	}
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// fold returns w in lower case without diacritics ("Café" is "cafe").
func fold(w string) string {
	ascii := true
	lower := true
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			lower = false
		}
	}
	if ascii {
		if lower {
			return w
		}
		return strings.ToLower(w)
	}
	w = strings.ToLower(w)
	if !accentedScript(w) {
		return w
	}
	if s, _, err := transform.String(unaccent(), w); err == nil {
		return s
	}
	return w
}

// accentedScript reports whether w is written in the Latin, Greek or
// Cyrillic script, whose accents a reader may leave out. In other scripts
// marks are part of the letter (Japanese dakuten, Devanagari vowels).
func accentedScript(w string) bool {
	for _, r := range w {
		if unicode.IsLetter(r) && r >= 0x250 && !unicode.In(r, unicode.Latin, unicode.Greek, unicode.Cyrillic) {
			return false
		}
	}
	return true
}

// unaccent removes combining marks after decomposing; a transformer holds
// state, so each call gets its own.
func unaccent() transform.Transformer {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}
