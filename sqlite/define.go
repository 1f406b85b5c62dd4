package sqlite

import (
	"strings"

	"github.com/runnel/runnel"
)

// A question that asks what something is ("what is a WebSocket?", "what
// are Debian packages", "what does QUIC mean", "define backpressure") is
// best answered by a passage with a sentence that opens by saying it
// ("A WebSocket is ...", "In short, Linux is the kernel of ..."). BM25
// cannot tell that passage from the many that mention the subject, so the
// index notes, for each passage, the subjects its first sentences define,
// and a definition question's candidates that define its subject score
// Ranking.Definition times more.

// defineSentences is how many of a passage's first sentences are read for
// the subjects they define: a definition opens a passage or comes soon.
const defineSentences = 4

// maxSubject is the most words a defined subject has.
const maxSubject = 4

// definitionSubject returns the words of what q asks to define, or nil
// when it asks no definition.
// The question's last sentence counts ("I know what Debian is... what
// is Linux?").
func definitionSubject(q string) []string {
	q = strings.TrimRight(q, "?!. \t\n")
	for _, end := range []string{". ", "? ", "! ", "..."} {
		if i := strings.LastIndex(q, end); i >= 0 {
			q = q[i+len(end):]
		}
	}
	w := runnel.Words(q)
	switch {
	case len(w) >= 3 && (w[0] == "what" || w[0] == "who") && (w[1] == "is" || w[1] == "are"):
		w = w[2:]
	case len(w) >= 3 && w[0] == "what" && w[1] == "s": // "what's"
		w = w[2:]
	case len(w) >= 2 && (w[0] == "define" || w[0] == "whats"):
		w = w[1:]
	case len(w) >= 4 && w[0] == "what" && (w[1] == "does" || w[1] == "do") && w[len(w)-1] == "mean":
		w = w[2 : len(w)-1]
	default:
		return nil
	}
	w = withoutArticle(w)
	if len(w) == 0 || len(w) > maxSubject {
		return nil
	}
	return w
}

// definedSubjects returns the subjects that the first sentences of text
// define: the words before "is", "are" or "means" when they open the
// sentence (after a short lead such as "In short,"), each as the key
// subjectKey makes of them.
func definedSubjects(an *analyzer, text string) []string {
	var keys []string
	for i, s := range sentenceStarts(text) {
		if i == defineSentences {
			break
		}
		if lead, rest, ok := strings.Cut(s, ","); ok && len(runnel.Words(lead)) <= 3 && strings.Count(lead, " ") < 4 {
			if w := runnel.Words(rest); len(w) > 0 && !isCopula(w[0]) {
				s = rest
			}
		}
		w := runnel.Words(s)
		for j := 1; j < len(w) && j <= maxSubject+1; j++ {
			if !isCopula(w[j]) {
				continue
			}
			if subj := withoutArticle(w[:j]); len(subj) > 0 && len(subj) <= maxSubject {
				keys = append(keys, subjectKey(an, subj))
			}
			break
		}
	}
	return keys
}

// subjectKey is the terms of a subject's words in an's language, joined.
func subjectKey(an *analyzer, words []string) string {
	terms := make([]string, len(words))
	for i, w := range words {
		terms[i] = an.term(fold(w))
	}
	return strings.Join(terms, " ")
}

func isCopula(w string) bool { return w == "is" || w == "are" || w == "means" }

func withoutArticle(w []string) []string {
	if len(w) > 0 && (w[0] == "a" || w[0] == "an" || w[0] == "the") {
		return w[1:]
	}
	return w
}

// sentenceStarts returns the beginnings (up to 120 bytes) of text's first
// sentences, each cut where its sentence ends: at text's start, after a
// sentence's end, a blank line or a list item's marker.
func sentenceStarts(text string) []string {
	var out []string
	last := -1
	take := func(i int) {
		for i < len(text) && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '*' || text[i] == '-') {
			i++
		}
		if i >= len(text) || i == last {
			return
		}
		last = i
		s := text[i:min(len(text), i+120)]
		for _, end := range []string{". ", ".\n", "? ", "! ", ": ", "\n\n"} {
			if j := strings.Index(s, end); j >= 0 {
				s = s[:j]
			}
		}
		out = append(out, s)
	}
	take(0)
	for i := 0; i+1 < len(text) && len(out) < defineSentences; i++ {
		switch c := text[i]; {
		case (c == '.' || c == '!' || c == '?' || c == ':') && (text[i+1] == ' ' || text[i+1] == '\n'):
			take(i + 1)
		case c == '\n' && (text[i+1] == '\n' || text[i+1] == '*' || text[i+1] == '-'):
			take(i + 1)
		}
	}
	return out
}
