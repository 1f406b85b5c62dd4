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

// appendWordSpans is wordSpans appending to out.
func appendWordSpans(out []span, text string) []span {
	start := -1
	var cjk []int // offsets of the CJK characters of the current run
	flushCJK := func(end int) {
		switch len(cjk) {
		case 0:
		case 1:
			out = append(out, span{cjk[0], end})
		default:
			for i := 0; i+1 < len(cjk); i++ {
				e := end
				if i+2 < len(cjk) {
					e = cjk[i+2]
				}
				out = append(out, span{cjk[i], e})
			}
		}
		cjk = cjk[:0]
	}
	for i, r := range text {
		if runnel.IsCJK(r) {
			if start >= 0 {
				out = append(out, span{start, i})
				start = -1
			}
			cjk = append(cjk, i)
			continue
		}
		if len(cjk) > 0 {
			flushCJK(i)
		}
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, span{start, i})
			start = -1
		}
	}
	flushCJK(len(text))
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
	hit   []int32
}

var snippetPool = sync.Pool{New: func() any { return new(snippetScratch) }}

// snippet returns about snippetWords words of text around the words that
// are the question's (term returns the term of a folded word, and keys
// says which terms the question has), with "..." where it cuts: the window
// with the most distinct question words, centred on them. Without any, it
// is the start of the text.
func snippet(text string, term func(string) (int32, bool), keys map[int32]bool) string {
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
	hit := sc.hit[:len(spans)] // the term a word matches, or -1
	for i, s := range spans {
		hit[i] = -1
		if k, ok := term(fold(text[s.start:s.end])); ok && keys[k] {
			hit[i] = k
		}
	}
	n := min(snippetWords, len(spans))
	best, bestDistinct, bestHits := 0, -1, -1
	for start := 0; start+n <= len(spans); start++ {
		distinct, hits := 0, 0
		var seen []int32
		for _, k := range hit[start : start+n] {
			if k < 0 {
				continue
			}
			hits++
			if !slices.Contains(seen, k) {
				seen = append(seen, k)
				distinct++
			}
		}
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
	from, to := spans[best].start, spans[best+n-1].end
	// Keep the punctuation that ends the last word ("stream." or "(SSE)").
	for to < len(text) {
		r, size := utf8.DecodeRuneInString(text[to:])
		if unicode.IsSpace(r) || isWordRune(r) {
			break
		}
		to += size
	}
	var b strings.Builder
	if best > 0 {
		b.WriteString("...")
	}
	b.WriteString(strings.TrimSpace(text[from:to]))
	if best+n < len(spans) {
		b.WriteString("...")
	}
	return b.String()
}
