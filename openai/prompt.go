package openai

import (
	"cmp"
	"regexp"
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
//
// A question asked in a conversation (p.History) is preceded by the
// conversation's user and assistant turns, within a quarter of
// MaxContextChars, the oldest dropped first; the passages get the rest.
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
	turns, used := history(p.History, o.MaxContextChars/historyShare)
	left := o.MaxContextChars - used
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
	// The question after the sources, as without a conversation; the
	// earlier turns before them, to say what the question refers to.
	var b strings.Builder
	if turns != "" {
		b.WriteString("The conversation so far, to tell what the question refers to (answer from the sources, not from it):\n\n")
		b.WriteString(turns)
		b.WriteString("\n")
	}
	slices.SortStableFunc(quotes, func(a, b quote) int {
		return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.pos, b.pos))
	})
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

// historyShare: the earlier turns of a conversation take at most
// 1/historyShare of Options.MaxContextChars, and the passages the rest.
const historyShare = 4

// citation matches a citation such as [2] in an earlier answer: its
// numbers pointed at that answer's sources, not at this prompt's.
var citation = regexp.MustCompile(`\[\d+\]`)

// history renders the user and assistant turns of msgs, one paragraph
// each ("User: ...", "Assistant: ..."), within budget characters: newest
// first, each cut to half the budget at most, and the oldest dropped when
// the budget runs out. It returns the text and the characters it holds.
// System messages are left out: runnel's own instructions stand.
func history(msgs []runnel.Message, budget int) (string, int) {
	var turns []string
	left, used := budget, 0
	for i := len(msgs) - 1; i >= 0 && left >= minTail; i-- {
		m := msgs[i]
		who := "User: "
		switch m.Role {
		case runnel.RoleUser:
		case runnel.RoleAssistant:
			who = "Assistant: "
		default:
			continue
		}
		text := clean(m.Content)
		if m.Role == runnel.RoleAssistant {
			text = clean(strings.ReplaceAll(citation.ReplaceAllString(text, ""), " .", "."))
		}
		if text == "" {
			continue
		}
		text = truncate(text, min(left, max(budget/2, minTail)))
		n := utf8.RuneCountInString(text)
		left -= n
		used += n
		turns = append(turns, who+text+"\n\n")
	}
	slices.Reverse(turns)
	return strings.Join(turns, ""), used
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
