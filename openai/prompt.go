package openai

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// systemPrompt tells the model how to answer. It is the same for every
// question, so servers that cache prompt prefixes can reuse it.
const systemPrompt = `You answer questions about a collection of articles. The user gives you numbered sources taken from the articles, then a question.

- Answer only from the sources. Do not add facts they do not state, even ones you know.
- Cite the sources you use by their numbers in square brackets, such as [1] or [2][3], right after the sentences they support.
- If the sources do not answer the question, say so plainly in one sentence and do not guess. If they answer only part of it, answer that part and say what is missing.
- Be concise: a short paragraph or a short list. Plain text; Markdown lists and code are fine.
- Answer in the language of the question.`

// minTail is the fewest characters worth quoting from a passage cut to fit
// the budget; a smaller remainder is left out.
const minTail = 200

// Messages returns the system and user messages Generate sends for p. The
// user message holds the passages that fit the budget (Options.MaxPassages,
// MaxContextChars, MaxArticles), then the question.
//
// Each passage is headed "[n] Title — Heading", where n numbers its article
// in the order the answer pipeline lists sources (by each article's best
// passage), so that a citation [n] is the n-th source a client shows.
// Passages are chosen best first; a passage longer than half the budget is
// cut, so that one long section cannot crowd out the others, and so is the
// last one that fits only in part, at a word, with an ellipsis. They are
// printed grouped by article, in the article's own order.
func (g *Generator) Messages(p runnel.Prompt) (system, user string) {
	system, user, _ = g.prompt(p)
	return system, user
}

// quote is a passage chosen for the prompt.
type quote struct {
	n    int // the article's number
	pos  int // the passage's position in its article
	head string
	text string
}

// prompt returns the messages and the number of passages quoted.
func (g *Generator) prompt(p runnel.Prompt) (system, user string, quoted int) {
	o := g.opts
	numbers := map[string]int{} // article slug -> source number
	var quotes []quote
	left := o.MaxContextChars
	for _, ps := range p.Passages {
		n, ok := numbers[ps.Slug]
		if !ok {
			n = len(numbers) + 1
			numbers[ps.Slug] = n
		}
		text := clean(ps.Text)
		if n > o.MaxArticles || text == "" {
			continue
		}
		if len(quotes) == o.MaxPassages || (left < minTail && len(quotes) > 0) {
			break
		}
		text = truncate(text, min(left, max(o.MaxContextChars/2, minTail)))
		left -= utf8.RuneCountInString(text)
		title := cmp.Or(strings.TrimSpace(ps.Title), ps.Slug)
		if h := strings.TrimSpace(ps.Heading); h != "" {
			title += " — " + h
		}
		quotes = append(quotes, quote{n: n, pos: ps.Position, head: "[" + strconv.Itoa(n) + "] " + title, text: text})
	}
	if len(quotes) == 0 {
		return systemPrompt, "Question: " + p.Question, 0
	}
	slices.SortStableFunc(quotes, func(a, b quote) int {
		return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.pos, b.pos))
	})
	var b strings.Builder
	b.WriteString("Sources:\n\n")
	for _, q := range quotes {
		b.WriteString(q.head)
		b.WriteByte('\n')
		b.WriteString(q.text)
		b.WriteString("\n\n")
	}
	b.WriteString("Question: ")
	b.WriteString(p.Question)
	return systemPrompt, b.String(), len(quotes)
}

// clean trims a passage and normalises its line ends and blank lines.
func clean(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSpace(s)
	for strings.Contains(s, "\n\n\n") {
		s = strings.ReplaceAll(s, "\n\n\n", "\n\n")
	}
	return s
}

// truncate returns s cut to at most max characters (runes), at a word
// boundary when one is near, with " …" appended when it cut anything.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	max -= 2 // room for " …"
	i := 0
	for n := 0; n < max && i < len(s); n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	cut := s[:i]
	if r, _ := utf8.DecodeRuneInString(s[i:]); !unicode.IsSpace(r) {
		// Back up to the last break unless it is far: then cutting inside
		// a long word loses less.
		if j := strings.LastIndexAny(cut, " \n\t"); j > len(cut)/2 {
			cut = cut[:j]
		}
	}
	return strings.TrimRight(cut, " \n\t") + " …"
}
