package sqlite

import (
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// snippetWords is the length of a snippet in words.
const snippetWords = 24

// span is a word of a text, by its bytes.
type span struct{ start, end int }

// wordSpans returns the words of text where they are. A run of CJK
// characters gives a word for each pair of characters, as the index reads
// it.
func wordSpans(text string) []span { return appendWordSpans(nil, text) }

// asciiWord says which ASCII bytes are word characters: what isWordRune
// says of them, looked up without decoding (most text is ASCII).
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		t[c] = isWordRune(rune(c))
	}
	return t
}()

// appendWordSpans is wordSpans appending to out.
func appendWordSpans(out []span, text string) []span {
	start := -1
	cjk := -1  // offset of the current run of CJK characters, or -1
	prev := -1 // offset of the run's character before the last, or -1
	last := -1 // offset of the run's last character
	// A run of one character is a word; a longer one gives a word for each
	// pair of characters, each ending where the character after it ends.
	flushCJK := func(end int) {
		if prev < 0 {
			out = append(out, span{cjk, end})
		} else {
			out = append(out, span{prev, end})
		}
		cjk, prev = -1, -1
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if cjk >= 0 {
				flushCJK(i)
			}
			if asciiWord[c] {
				if start < 0 {
					start = i
				}
			} else if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case runnel.IsCJK(r):
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
			if cjk < 0 {
				cjk = i
			} else {
				if prev >= 0 {
					// The pair before the last two characters ends here.
					out = append(out, span{prev, i})
				}
				prev = last
			}
			last = i
		case isWordRune(r):
			if cjk >= 0 {
				flushCJK(i)
			}
			if start < 0 {
				start = i
			}
		default:
			if cjk >= 0 {
				flushCJK(i)
			}
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
		}
		i += size
	}
	if cjk >= 0 {
		flushCJK(len(text))
	}
	if start >= 0 {
		out = append(out, span{start, len(text)})
	}
	return out
}

// snippetScratch is the words and matches of the passage that snippet
// reads, kept for the next passage: a snippet reads every word of its
// passage, and these were half of what a question allocated.
type snippetScratch struct {
	spans []span
	hit   []int32 // the question term a word matches, by its place in terms, or -1
	lower []byte  // a word in lower case
	terms []int32
	count []int
}

var snippetPool = sync.Pool{New: func() any { return new(snippetScratch) }}

// The first byte of the words of a term, as the index notes it: a term's
// words almost always begin as the term does (stemmers cut endings), and
// a snippet looks up only the words that begin as one of the question's
// terms' words do, which spares it most lookups in a map of every word.
const (
	firstSeen  = 1 << 8 // a word of the term was noted; its first byte is the low byte
	firstMixed = 1 << 9 // the term's words begin with different bytes
)

// noteFirst returns f, a term's note, with a word beginning with b noted.
func noteFirst(f uint16, b byte) uint16 {
	switch {
	case f&firstSeen == 0:
		return firstSeen | uint16(b)
	case byte(f) != b:
		return f | firstMixed
	}
	return f
}

// snippetKeys are the question's terms, as snippet looks for them.
type snippetKeys struct {
	terms map[int32]bool
	// starts says which ASCII bytes the words of those terms begin with:
	// a word that begins with another ASCII byte is none of theirs. Nil
	// when some term's words begin with different bytes, or one was never
	// noted.
	starts *[utf8.RuneSelf]bool
}

// newSnippetKeys returns the snippet keys of terms, with first the index's
// note of each term's first bytes (noteFirst).
func newSnippetKeys(terms map[int32]bool, first []uint16) snippetKeys {
	starts := new([utf8.RuneSelf]bool)
	for k := range terms {
		if int(k) >= len(first) {
			return snippetKeys{terms: terms}
		}
		f := first[k]
		if f&firstSeen == 0 || f&firstMixed != 0 {
			return snippetKeys{terms: terms}
		}
		if b := byte(f); b < utf8.RuneSelf {
			starts[b] = true
		}
	}
	return snippetKeys{terms: terms, starts: starts}
}

// snippet returns about snippetWords words of text around the words that
// are the question's (words maps a folded word to its term, and keys says
// which terms the question has), with "..." where it cuts: the window with
// the most distinct question words, and of those the most question words,
// centred on them. Without any, it is the start of the text.
func snippet(text string, words map[string]int32, keys snippetKeys) string {
	sc := snippetPool.Get().(*snippetScratch)
	defer snippetPool.Put(sc)
	sc.spans = appendWordSpans(sc.spans[:0], text)
	spans := sc.spans
	if len(spans) == 0 {
		return strings.TrimSpace(text)
	}
	if cap(sc.hit) < len(spans) {
		sc.hit = make([]int32, len(spans))
	}
	hit := sc.hit[:len(spans)]
	terms := sc.terms[:0] // the distinct terms matched, in order of appearance
	for i, s := range spans {
		hit[i] = -1
		k, ok := sc.term(text[s.start:s.end], words, keys.starts)
		if !ok || !keys.terms[k] {
			continue
		}
		j := slices.Index(terms, k)
		if j < 0 {
			j = len(terms)
			terms = append(terms, k)
		}
		hit[i] = int32(j)
	}
	sc.terms = terms
	n := min(snippetWords, len(spans))
	best := 0
	if len(terms) > 0 {
		// Slide a window of n words over the text, counting the matches
		// of each term in it; the first window with the most distinct
		// terms, and then the most matches, wins.
		count := sc.count[:0]
		for range terms {
			count = append(count, 0)
		}
		sc.count = count
		distinct, hits := 0, 0
		add := func(i, d int) {
			j := hit[i]
			if j < 0 {
				return
			}
			hits += d
			count[j] += d
			switch {
			case d > 0 && count[j] == 1:
				distinct++
			case d < 0 && count[j] == 0:
				distinct--
			}
		}
		for i := range n {
			add(i, 1)
		}
		bestDistinct, bestHits := distinct, hits
		for start := 1; start+n <= len(spans); start++ {
			add(start-1, -1)
			add(start+n-1, 1)
			if distinct > bestDistinct || (distinct == bestDistinct && hits > bestHits) {
				best, bestDistinct, bestHits = start, distinct, hits
			}
		}
		if bestHits > 0 {
			// Centre the window on its matches.
			first, last := -1, -1
			for i := best; i < best+n; i++ {
				if hit[i] >= 0 {
					if first < 0 {
						first = i
					}
					last = i
				}
			}
			best = max(0, min(len(spans)-n, first-(n-(last-first+1))/2))
		}
	}
	from, to := spans[best].start, spans[best+n-1].end
	// Keep the punctuation that ends the last word ("stream." or "(SSE)").
	for to < len(text) {
		r, size := utf8.DecodeRuneInString(text[to:])
		if unicode.IsSpace(r) || isWordRune(r) {
			break
		}
		to += size
	}
	// The snippet is a copy of exactly its size: a stream holds its
	// sources for the whole answer, and a builder left to grow would hold
	// up to twice the bytes.
	body := strings.TrimSpace(text[from:to])
	lead, trail := best > 0, best+n < len(spans)
	size := len(body)
	if lead {
		size += len("...")
	}
	if trail {
		size += len("...")
	}
	var b strings.Builder
	b.Grow(size)
	if lead {
		b.WriteString("...")
	}
	b.WriteString(body)
	if trail {
		b.WriteString("...")
	}
	return b.String()
}

// term returns the term of word w as words maps its folded form, or false
// at once when w begins with an ASCII byte that starts does not have. An
// ASCII word is lowered into the scratch buffer, which the lookup does not
// keep, so that looking it up allocates nothing.
func (sc *snippetScratch) term(w string, words map[string]int32, starts *[utf8.RuneSelf]bool) (int32, bool) {
	if b := w[0]; starts != nil && b < utf8.RuneSelf && !starts[lowerASCII(b)] {
		return 0, false
	}
	lower := sc.lower[:0]
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= utf8.RuneSelf {
			k, ok := words[fold(w)]
			return k, ok
		}
		lower = append(lower, lowerASCII(c))
	}
	sc.lower = lower
	k, ok := words[string(lower)]
	return k, ok
}

// lowerASCII returns the lower case of ASCII byte c.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
