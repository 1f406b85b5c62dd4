package extractive

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	"github.com/runnel/runnel"
)

// The functions below are the plain forms of the ones the generator runs
// many times an answer; the fast forms must agree with them on any text.

func looksLikeCodeSimple(block string) bool {
	letters, symbols := 0, 0
	for _, r := range block {
		switch {
		case unicode.IsLetter(r):
			letters++
		case r < 0x80 && strings.IndexByte(codeSymbols, byte(r)) >= 0:
			symbols++
		}
	}
	if letters == 0 || symbols*100 > letters*12 {
		return true
	}
	first, _, _ := strings.Cut(block, "\n")
	if (strings.HasPrefix(first, "    ") || strings.HasPrefix(first, "\t")) && !isListItem(strings.TrimSpace(first)) {
		return true
	}
	lines, code := 0, 0
	for line := range strings.Lines(block) {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		lines++
		if isCodeLineSimple(t) {
			code++
		}
	}
	return code*2 > lines
}

func isCodeLineSimple(t string) bool {
	for _, s := range []string{"$ ", "// ", "#!", "func ", "import ", "const ", "let ", "var ", "def "} {
		if strings.HasPrefix(t, s) {
			return true
		}
	}
	if strings.HasSuffix(t, "{") || strings.HasSuffix(t, "}") || strings.HasSuffix(t, ";") {
		return true
	}
	for _, s := range []string{":=", "=>", "==", "!=", "&&", "||", "();", "){", "->"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return hasFlag(t) && strings.IndexByte(".!?:", t[len(t)-1]) < 0
}

func cleanSimple(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line != "" && strings.IndexByte("-*+>#0123456789", line[0]) >= 0 {
			line = reMarker.ReplaceAllString(line, "")
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(line)
	}
	s = b.String()
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
	return strings.Join(strings.Fields(s), " ")
}

func wordCountSimple(s string) int {
	n := strings.Count(s, " ") + 1
	cjk := 0
	for _, r := range s {
		if runnel.IsCJK(r) {
			cjk++
		}
	}
	return n + cjk/2
}

func isEntrySimple(block string) bool {
	return reEntry.MatchString(block) || reEndpoint.MatchString(reParens.ReplaceAllString(block, "()"))
}

// randomText strings together pieces chosen to meet the edges of the fast
// forms: the punctuation they look for, the pronouns, code pairs, dashes,
// methods, white space of every kind, letters whose lower case is ASCII
// (İ, the Kelvin sign), other scripts and bytes that are not UTF-8.
func randomText(r *rand.Rand) string {
	pieces := []string{
		"a", "word", "Docker", "the", "x", " ", " ", " ", "  ", "\t", "\n", "\n\n", "\r", "\v", "\f",
		"\u00a0", "\u0085", "\u2003", "\u3000", "日本語の文", "한국어", "カタカナ", "\u1100", "\u10ff", "- ", "* ", "1. ", "> ", "## ", "`code`", "**b**", "[link](http://x)", "![i](y)", "](", ",", ", ", ".", ";", ":", "this", "This", "THESE", "those",
		"it", "It", "they", "They", "itself", "it_", "it9", "İt", "\u212a", "İ", "é", "日本", "ß",
		"\xff", "\xc3", ":=", "=>", "==", "!=", "&&", "||", "();", "(", ")", "){", "->", "-", "--flag",
		" -g", "{", "}", ";", "$ ", "// ", "func ", "    ", "GET /v1/x", "POST /", "DELETE /a(b)",
		"GET", " /", "(", "(x)", " – ", " — ", "–", "—", "[", "]", "<", ">", "|", "\\", "&", "=",
	}
	var b strings.Builder
	for range r.IntN(30) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func TestFastFormsMatchPlain(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 30000 {
		s := randomText(r)
		if i%7 == 0 {
			// An opening of about the length the pronoun rule allows.
			s = strings.Repeat("ab ", r.IntN(16)) + ", " + s
		}
		if got, want := looksLikeCode(s), looksLikeCodeSimple(s); got != want {
			t.Fatalf("looksLikeCode(%q) = %v, the plain form %v", s, got, want)
		}
		if got, want := isEntry(s), isEntrySimple(s); got != want {
			t.Fatalf("isEntry(%q) = %v, the plain form %v", s, got, want)
		}
		if got, want := collapseSpace(s), strings.Join(strings.Fields(s), " "); got != want {
			t.Fatalf("collapseSpace(%q) = %q, want %q", s, got, want)
		}
		if got, want := clean(s), cleanSimple(s); got != want {
			t.Fatalf("clean(%q) = %q, the plain form %q", s, got, want)
		}
		if got, want := wordCount(s), wordCountSimple(s); got != want {
			t.Fatalf("wordCount(%q) = %d, the plain form %d", s, got, want)
		}
		if got, want := introPronoun(s), reIntroPronoun.MatchString(strings.ToLower(s)); got != want {
			t.Fatalf("introPronoun(%q) = %v, the expression %v", s, got, want)
		}
	}
}

// TestFastFormsSeeTheirCases checks that the comparison above is not empty:
// the random texts reach both answers of each function.
func TestFastFormsSeeTheirCases(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var code, entry, pron, collapsed [2]bool
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	for i := range 30000 {
		s := randomText(r)
		if i%7 == 0 {
			s = strings.Repeat("ab ", r.IntN(16)) + ", " + s
		}
		code[b2i(looksLikeCode(s))] = true
		entry[b2i(isEntry(s))] = true
		pron[b2i(introPronoun(s))] = true
		c := collapseSpace(s)
		collapsed[b2i(c == s)] = true
	}
	for name, seen := range map[string][2]bool{"looksLikeCode": code, "isEntry": entry, "introPronoun": pron, "collapseSpace": collapsed} {
		if !seen[0] || !seen[1] {
			t.Errorf("%s: the random texts gave only one answer (%v)", name, seen)
		}
	}
}
