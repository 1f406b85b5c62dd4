package runnel

import (
	"strings"
	"unicode"

	"golang.org/x/text/language"
)

// ParseLang checks a language tag as an article gives it (front matter
// "lang: de", JSONL "lang") and returns it in canonical form ("zh-hant"
// becomes "zh-Hant"). An empty tag is no tag. It returns EINVALID for
// anything that is not a well-formed BCP 47 tag.
func ParseLang(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	t, err := language.Parse(s)
	if err != nil {
		return "", Errorf(EINVALID, "%q is not a language tag; want one such as en, de, ja or zh-Hans.", s)
	}
	return t.String(), nil
}

// DetectLang guesses the language of an article that names none, from its
// script: "ja" when Japanese kana are frequent, "ko" for Hangul, "zh" for
// other Han text, and "" (taken to be English) for the rest. Text is CJK
// when at least three in ten of its letters are; only the first 64 KiB
// are read. Telling one language of the Latin script from another takes
// more than the script, so those articles need a lang of their own.
func DetectLang(text string) string {
	if len(text) > 64<<10 {
		text = text[:64<<10]
	}
	var letters, han, kana, hangul int
	for _, r := range text {
		switch {
		case unicode.Is(unicode.Han, r):
			han++
		case unicode.In(r, unicode.Hiragana, unicode.Katakana):
			kana++
		case unicode.Is(unicode.Hangul, r):
			hangul++
		case unicode.IsLetter(r):
			letters++
			continue
		default:
			continue
		}
		letters++
	}
	cjk := han + kana + hangul
	if letters == 0 || cjk*10 < letters*3 {
		return ""
	}
	switch {
	case hangul >= han+kana:
		return "ko"
	case kana*10 >= cjk:
		return "ja"
	}
	return "zh"
}

// IsCJK reports whether r is a Chinese, Japanese or Korean character:
// these scripts do not put spaces between words, so runnel indexes and
// searches them by pairs of characters (SegmentCJK).
func IsCJK(r rune) bool {
	return r >= 0x1100 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// SegmentCJK rewrites each run of CJK characters in s as its overlapping
// pairs of characters, separated by spaces ("全文検索" becomes "全文 文検
// 検索"), and leaves the rest of s as it is. A word tokenizer then makes
// every pair a term, so that a question finds a two-character word inside
// a sentence written without spaces, the way CJK search engines index
// bigrams. A run of one character stays one term.
func SegmentCJK(s string) string {
	if !hasCJK(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) * 2)
	var run []rune
	after := false // a run was just written: the next text needs a space before it
	flush := func() {
		if len(run) == 0 {
			return
		}
		if b.Len() > 0 && !after && !endsInSpace(&b) {
			b.WriteByte(' ')
		}
		if after {
			b.WriteByte(' ')
		}
		if len(run) == 1 {
			b.WriteRune(run[0])
		}
		for i := 0; i+1 < len(run); i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(run[i])
			b.WriteRune(run[i+1])
		}
		run = run[:0]
		after = true
	}
	for _, r := range s {
		if IsCJK(r) {
			run = append(run, r)
			continue
		}
		flush()
		if after && !unicode.IsSpace(r) {
			b.WriteByte(' ')
		}
		after = false
		b.WriteRune(r)
	}
	flush()
	return b.String()
}

func endsInSpace(b *strings.Builder) bool {
	s := b.String()
	return s != "" && s[len(s)-1] == ' '
}

func hasCJK(s string) bool {
	for _, r := range s {
		if IsCJK(r) {
			return true
		}
	}
	return false
}
