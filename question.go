package runnel

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxQuestion is the default limit on a question's length in bytes.
const DefaultMaxQuestion = 2000

// maxTerms bounds the number of search terms a question yields, so a long
// question cannot make a slow full-text query.
const maxTerms = 32

// Query is a question as runnel understood it.
type Query struct {
	Text  string   // the question, trimmed and with white space collapsed
	Terms []string // lower-case search words (letters and digits, or a version such as 24.04), stop words removed, at most 32, no duplicates

	// Weights, when not nil, weighs each of Terms for the search (Weight):
	// 1 for the question's own terms, less for the terms a follow-up
	// borrows from an earlier question (ParseConversation). A Searcher that
	// cannot weigh terms may treat them all alike.
	Weights []float64
	// History is the conversation before the question, oldest first, as
	// ParseConversation validated it; nil for a question asked alone.
	History []Message
}

// ParseQuestion validates and normalises a question typed by a user.
// It returns EINVALID for a question that is empty, not valid UTF-8 or has
// no words, and ETOOLARGE for one longer than max bytes (max <= 0 means
// DefaultMaxQuestion). Terms are made of letters and digits only, so they
// carry no full-text syntax.
func ParseQuestion(s string, max int) (Query, error) {
	if max <= 0 {
		max = DefaultMaxQuestion
	}
	if !utf8.ValidString(s) {
		return Query{}, Errorf(EINVALID, "The question is not valid UTF-8.")
	}
	text := normalizeSpace(s)
	if text == "" {
		return Query{}, Errorf(EINVALID, "The question is empty.")
	}
	if len(text) > max {
		return Query{}, Errorf(ETOOLARGE, "The question is %d bytes long; the limit is %d.", len(text), max)
	}
	cased := casedWords(expandContractions(text))
	if len(cased) == 0 {
		return Query{}, Errorf(EINVALID, "The question has no words to search for.")
	}
	words := make([]string, len(cased))
	for i, w := range cased {
		words[i] = strings.ToLower(w)
	}
	terms := make([]string, 0, len(words))
	seen := make(map[string]bool, len(words))
	for i, w := range words {
		if !stopWords[w] && (!isLetter(w) || isName(cased[i])) && !seen[w] && len(terms) < maxTerms {
			seen[w] = true
			terms = append(terms, w)
		}
	}
	if len(terms) == 0 {
		// Only stop words ("what is it?"): search with them rather than
		// refuse; the generator says when nothing relevant comes back.
		for _, w := range words {
			if !seen[w] && len(terms) < maxTerms {
				seen[w] = true
				terms = append(terms, w)
			}
		}
	}
	if last, _ := utf8.DecodeLastRuneInString(text); !unicode.IsPunct(last) {
		text += "?"
	}
	return Query{Text: text, Terms: terms}, nil
}

// isLetter reports whether w is a single letter (or mark), too little to
// search for ("s" of "what's"); a single digit stays ("3" of "HTTP/3"),
// and so does a Chinese character, often a word by itself.
func isLetter(w string) bool {
	r, n := utf8.DecodeRuneInString(w)
	return n == len(w) && !unicode.IsDigit(r) && !IsCJK(r)
}

// isName reports whether a single letter, as typed, names something: a
// capital other than the pronoun "I" and the article "A" ("C", "R").
func isName(w string) bool {
	r, _ := utf8.DecodeRuneInString(w)
	return unicode.IsUpper(r) && w != "I" && w != "A"
}

// Contractions, with a straight or a curly apostrophe: "n't" is "not",
// and the endings "'s", "'re", "'ve", "'ll", "'d" and "'m" say nothing a
// search can use. "can't" and "won't" keep their verbs.
var (
	reCant        = regexp.MustCompile(`(?i)\b(ca)n['’]t\b`)
	reWont        = regexp.MustCompile(`(?i)\bwon['’]t\b`)
	reNot         = regexp.MustCompile(`(?i)(\pL)n['’]t\b`)
	reContraction = regexp.MustCompile(`(?i)(\pL)['’](?:s|re|ve|ll|d|m)\b`)
)

// expandContractions rewrites the contractions of s, so that "don't"
// becomes "do not" rather than the term "don".
func expandContractions(s string) string {
	if !strings.ContainsAny(s, "'’") {
		return s
	}
	s = reCant.ReplaceAllString(s, "${1}n not")
	s = reWont.ReplaceAllString(s, "will not")
	s = reNot.ReplaceAllString(s, "$1 not")
	return reContraction.ReplaceAllString(s, "$1")
}

// casedWords splits s into words as Words does, keeping their case, except
// that a version number stays one word ("24.04", "v1.2.3"): its parts
// mean nothing apart, and searched together they must stand together.
func casedWords(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		switch {
		case isWordRune(r):
			if start < 0 {
				start = i
			}
			continue
		case r == '.' && start >= 0 && i > 0 && isDigit(s[i-1]) && i+1 < len(s) && isDigit(s[i+1]):
			continue // a dot between digits
		}
		if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// IsVersion reports whether a term is a version number ("24.04"): digits
// and dots, as casedWords keeps them together, which a full-text index
// holds as a sequence of numbers.
func IsVersion(t string) bool {
	return strings.Contains(t, ".") && strings.Trim(t, "v0123456789.") == "" && strings.IndexFunc(t, unicode.IsDigit) >= 0
}

// normalizeSpace trims s, collapses runs of white space to one space and
// drops control and format characters.
func normalizeSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Words splits s into lower-case words of letters and digits (with their
// combining marks, so a decomposed "ü" stays inside its word). Everything
// else (punctuation, quotes, operators) separates words.
func Words(s string) []string {
	// ASCII text, most of it, is split in one pass over its bytes, and
	// lowered in one copy only if it has capitals.
	n, upper := 0, false
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !isWordRune(r) })
		}
		w := isASCIIWordByte(c)
		if w && !inWord {
			n++
		}
		inWord = w
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if n == 0 {
		return []string{} // as strings.FieldsFunc
	}
	if upper {
		s = asciiLower(s)
	}
	out := make([]string, 0, n)
	start := -1
	for i := 0; i < len(s); i++ {
		if isASCIIWordByte(s[i]) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// isASCIIWordByte reports whether c is an ASCII letter or digit, the ASCII
// characters isWordRune accepts.
func isASCIIWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// asciiLower lowers the capitals of an ASCII string.
func asciiLower(s string) string {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return string(b)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r)
}

// NormalizeTag returns the form in which tags and question words are
// compared: lower case, letters and digits only, so "web-socket",
// "WebSocket" and "websocket" are the same tag.
func NormalizeTag(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if isWordRune(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TagCandidates returns the normalised names a question may mention a tag
// by: each term, each term without a plural s, and adjacent words joined
// ("web socket" -> "websocket", "server sent events" -> "serversentevents").
func TagCandidates(text string) []string {
	words := Words(expandContractions(text))
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for i, w := range words {
		if stopWords[w] {
			continue
		}
		add(w)
		if len(w) > 3 && strings.HasSuffix(w, "s") {
			add(strings.TrimSuffix(w, "s"))
		}
		for n := 2; n <= 3 && i+n <= len(words); n++ {
			joined := strings.Join(words[i:i+n], "")
			add(joined)
			if strings.HasSuffix(joined, "s") {
				add(strings.TrimSuffix(joined, "s"))
			}
		}
	}
	return out
}

// IsStopWord reports whether w, a lower-case word, is too common to search
// for ("what", "is", "the").
func IsStopWord(w string) bool { return stopWords[w] }

// stopWords are English words too common to search for.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a about above after again against all am an and any are as at
		be because been before being below between both but by can could did do does doing down
		during each explain few for from further had has have having he her here hers him his how
		i if in into is it its itself just me more most my no nor not now of off on once only or
		other our ours out over own same she should so some such tell than that the their theirs
		them then there these they this those through to too under until up very was we were what
		when where which while who whom why will with would you your yours describe please
		work works use used using does mean means vs versus cannot
		dont doesnt didnt isnt arent wasnt werent havent hasnt hadnt cant wont
		wouldnt shouldnt couldnt im ive youre theyre whats hows whys wheres thats theres`) {
		m[w] = true
	}
	return m
}()
