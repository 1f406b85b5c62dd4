package sqlite

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// The snippet a search returns is a window of its passage chosen by the
// question's words; the fast code must choose the same window as the plain
// one on any text: ASCII, accents, CJK runs, digits, punctuation and
// invalid UTF-8, with none, one or many question words.
func TestSnippetMatchesReference(t *testing.T) {
	vocab := []string{
		"stream", "Stream", "STREAMS", "proxy", "buffer", "timeout", "the", "a", "of", "to",
		"café", "Café", "naïve", "Über", "über", "v1.2", "42", "x86_64", "HTTP/1.1", "e-mail",
		"全文検索", "缓存", "可以减少延迟", "キャッシュ", "한국어", "A", "I", "don't", "re-read",
		"(SSE)", "stream.", "proxy,", "—", "...", "\xff", "\xc3", "Ａ", "ǅ", "İstanbul",
	}
	seps := []string{" ", " ", " ", "\n", "  ", ", ", ". ", "", "\t", "：", "、"}
	// Terms as an index has them: some words share a term, which a word
	// beginning with another byte joins too ("über" and "stream").
	words := map[string]int32{}
	var first []uint16
	for _, w := range vocab {
		for _, s := range wordSpans(w) {
			f := fold(w[s.start:s.end])
			if _, ok := words[f]; !ok {
				id := int32(len(first))
				if len(first) > 0 && len(f) > 3 {
					id = int32(len(f) % len(first)) // a term of several words
				}
				if int(id) == len(first) {
					first = append(first, 0)
				}
				words[f] = id
				first[id] = noteFirst(first[id], f[0])
			}
		}
	}
	var ids []int32
	for _, id := range words {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 3000 {
		var b strings.Builder
		for range r.IntN(80) {
			b.WriteString(vocab[r.IntN(len(vocab))])
			b.WriteString(seps[r.IntN(len(seps))])
		}
		text := b.String()
		keys := map[int32]bool{}
		for range r.IntN(5) {
			keys[ids[r.IntN(len(ids))]] = true
		}
		if got, want := appendWordSpans(nil, text), appendWordSpansSimple(nil, text); !slices.Equal(got, want) {
			t.Fatalf("case %d: appendWordSpans(%q) = %v, want %v", n, text, got, want)
		}
		term := func(w string) (int32, bool) { id, ok := words[w]; return id, ok }
		if got, want := snippet(text, words, newSnippetKeys(keys, first)), snippetSimple(text, term, keys); got != want {
			t.Fatalf("case %d: snippet(%q, %v) = %q, want %q", n, text, keys, got, want)
		}
	}
}

// appendWordSpansSimple is appendWordSpans as it was first written, rune
// by rune, the reference the fast one is checked against.
func appendWordSpansSimple(out []span, text string) []span {
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

// snippetSimple is snippet as it was first written: every window counted
// afresh and every word folded with fold. The fast one must agree with it.
func snippetSimple(text string, term func(string) (int32, bool), keys map[int32]bool) string {
	spans := appendWordSpansSimple(nil, text)
	if len(spans) == 0 {
		return strings.TrimSpace(text)
	}
	hit := make([]int32, len(spans)) // the term a word matches, or -1
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
