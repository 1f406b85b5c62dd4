package extractive

import (
	"cmp"
	"context"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// Weights of the parts of a sentence's score, and limits on sentences.
// Relevance (0 to 1) dominates; the rest order sentences that are about
// equally relevant.
const (
	contextWeight       = 0.3  // a term found only in the passage's title or heading
	topicWeight         = 0.1  // times the share of the terms in the title or heading
	rankWeight          = 0.2  // times 1/(1+rank) of the passage
	positionWeight      = 0.1  // times 1/(1+index) of the sentence in its passage
	definitionBump      = 0.5  // a definition, when the question asks for one
	definitionSentences = 3    // the most sentences of an answer that opens with a definition
	dependentCost       = 0.15 // a sentence that leans on the one before ("This ...")
	leadInCost          = 0.3  // a sentence that introduces a list (ends in ':')
	shortCost           = 0.1  // a sentence of fewer than six words
	overlapCost         = 0.7  // times the Jaccard overlap with a chosen sentence
	duplicate           = 0.6  // overlap at which a sentence repeats a chosen one

	minWords = 4  // shorter sentences are headings, labels or fragments
	maxWords = 60 // longer ones are run-ons, tables or merged lists
)

// sentence is a candidate for the answer.
type sentence struct {
	text    string   // clean prose, as printed
	passage int      // rank of its passage, 0 for the best
	index   int      // place among its passage's sentences
	words   []string // its words in lower case, in order
	stems   []string // the distinct stems of its content words, sorted
	n       int      // number of printed words, for the token budget
	rel     float64  // weighted share of the question's terms it covers, 0 to 1
	score   float64
	def     bool      // reads like a definition of a question term
	leadIn  bool      // ends in ':', introducing something not quoted
	dep     bool      // leans on the sentence before it ("This ...")
	code    string    // the code a lead-in introduces, quoted after it
	lang    string    // the code's language, from its fence
	prev    *sentence // the candidate just before it in its passage, if any
}

// Limits on the code a lead-in brings: a longer block would crowd out the
// prose, and the answer leaves out both the code and its lead-in.
const (
	maxCodeLines = 20
	maxCodeBytes = 1200
)

// attach makes c, a lead-in that ends its block, quote the code that
// follows it, when the code is short enough to quote whole. The lead-in
// keeps its colon; its words count the code's tokens too, for the budget.
func (c *sentence) attach(text string, code block) {
	lines := strings.Split(strings.Trim(code.text, "\n"), "\n")
	if len(lines) > maxCodeLines || len(code.text) > maxCodeBytes || !utf8.ValidString(code.text) {
		return
	}
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	c.text = text
	c.code = strings.Join(lines, "\n")
	c.lang = code.lang
	c.n += len(strings.Fields(c.code))
	c.leadIn = false
}

// follows reports whether d is the sentence just before c in its passage.
func (d *sentence) follows(c *sentence) bool {
	return d.passage == c.passage && d.index == c.index-1
}

// term is a question term and the compounds it forms with its neighbours,
// so that "web socket" matches "websocket".
type term struct {
	stem  string
	joins []string
	src   int  // index of the word's term in Prompt.Terms, -1 if none
	pair  bool // a pair of CJK characters (wordsOf)
}

// answer returns the text to stream for p: the chosen sentences in one or
// two paragraphs, or NotCovered.
func (g *Generator) answer(ctx context.Context, p runnel.Prompt) (string, error) {
	passages := rank(p.Passages)
	terms := queryTerms(p)
	if len(terms) == 0 || len(passages) == 0 {
		return notCovered(passages), nil
	}
	split, err := splitter()
	if err != nil {
		return "", err
	}

	var cands []*sentence
	seen := map[string]bool{}
	for r, ps := range passages {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		index := 0 // sentences so far in the passage, roughly
		bs := blocks(ps.Text)
		code := make([]bool, len(bs)) // each block is judged once
		for i, b := range bs {
			code[i] = b.isCode()
		}
		for bi, b := range bs {
			if code[bi] {
				continue
			}
			if isEntry(b.text) {
				index++
				continue
			}
			text := clean(b.text)
			if len(text) < 2*minWords || !mentions(text, terms) {
				// Splitting is most of the cost of an answer, and no
				// sentence of a block without a question term is chosen.
				index++
				continue
			}
			var next *block // the code this block introduces, if it does
			if bi+1 < len(bs) && code[bi+1] {
				next = &bs[bi+1]
			}
			toks := cachedSentences(split, text)
			for si, s := range toks {
				index++
				text := clean(s)
				n := wordCount(text)
				if n < minWords || n > maxWords || looksLikeCode(text) {
					continue
				}
				key := strings.ToLower(text)
				if seen[key] {
					continue
				}
				seen[key] = true
				words := cachedWords(text)
				if introPronoun(text) {
					words = append([]string{"this"}, words...) // counts as dependent, below
				}
				c := &sentence{
					text:    finish(text),
					passage: r,
					index:   index - 1,
					words:   words,
					stems:   cachedTextSet(text), // "this" is no content word
					n:       n,
					leadIn:  strings.HasSuffix(text, ":"),
				}
				if c.leadIn && si == len(toks)-1 && next != nil {
					c.attach(text, *next)
				}
				if n := len(cands); n > 0 && cands[n-1].follows(c) {
					c.prev = cands[n-1]
				}
				cands = append(cands, c)
			}
		}
	}

	// Weigh each term by its rarity: in the whole collection when the
	// searcher counted it (a rare word of the question that no passage
	// has says the passages do not answer it), else among the candidate
	// sentences (a smoothed IDF). A term everything contains says little.
	matches := make([][]bool, len(cands))
	df := make([]int, len(terms))
	for i, c := range cands {
		matches[i] = make([]bool, len(terms))
		for j, t := range terms {
			if t.in(c.stems) {
				matches[i][j] = true
				df[j]++
			}
		}
	}
	weights := make([]float64, len(terms))
	total := 0.0
	counted := len(p.TermDocs) == len(p.Terms) && p.Docs > 0
	for j, t := range terms {
		switch {
		case t.pair && df[j] == 0:
			// Most pairs of a CJK question span two words ("器缓" of
			// "浏览器缓存"); one that no sentence has says nothing.
		case counted && t.src >= 0:
			weights[j] = collectionIDF(p.TermDocs[t.src], p.Docs)
		default:
			weights[j] = 1 + math.Log(float64(len(cands)+1)/float64(df[j]+1))
		}
		total += weights[j]
	}
	if total == 0 {
		return notCovered(passages), nil
	}
	contexts := make([][]string, len(passages))
	for r, ps := range passages {
		contexts[r] = cachedTextSet(ps.Title + " " + ps.Heading)
	}
	if counted && g.opts.MinCoverage >= 0 && coverage(passages, terms, weights) < g.opts.MinCoverage {
		// No passage holds most of what the question asks about, weighed
		// by rarity in the collection: the words it shares with the
		// question are the common ones.
		return notCovered(passages), nil
	}

	defQuestion := asksDefinition(p.Question)
	var pool []*sentence
	for i, c := range cands {
		got, topic, direct := 0.0, 0.0, false
		for j, t := range terms {
			inContext := t.in(contexts[c.passage])
			switch {
			case matches[i][j]:
				got += weights[j]
				direct = true
			case inContext:
				got += contextWeight * weights[j]
			}
			if inContext {
				topic += weights[j]
			}
		}
		if !direct {
			continue // only a sentence that says something about the question
		}
		c.rel = got / total
		c.def = defQuestion && (definition(c.words, terms) || appositive(c.text, terms))
		// A passage whose title or heading names the question's subject is
		// about it; a passage that mentions it in passing is not.
		c.score = c.rel + topicWeight*topic/total +
			rankWeight/float64(1+c.passage) + positionWeight/float64(1+c.index)
		if c.def {
			c.score += definitionBump
		}
		if c.dep = dependent(c.words); c.dep {
			c.score -= dependentCost
		}
		if c.leadIn {
			c.score -= leadInCost
		}
		if c.n < 6 {
			c.score -= shortCost
		}
		pool = append(pool, c)
	}
	if len(pool) == 0 {
		return notCovered(passages), nil
	}
	slices.SortFunc(pool, func(a, b *sentence) int {
		return cmp.Or(-cmp.Compare(a.score, b.score), cmp.Compare(a.passage, b.passage), cmp.Compare(a.index, b.index))
	})
	bestRel := 0.0
	for _, c := range pool {
		bestRel = max(bestRel, c.rel)
	}
	if g.opts.MinScore >= 0 && bestRel < g.opts.MinScore {
		return notCovered(passages), nil
	}
	chosen := g.choose(pool, bestRel)
	if len(chosen) == 0 {
		// Every relevant sentence leans on one left out or introduces
		// what the answer cannot show.
		return notCovered(passages), nil
	}
	var cite []int
	if g.opts.Cite {
		cite = citations(p.Passages, passages)
	}
	return compose(chosen, cite), nil
}

// citations returns, for each ranked passage, the number of its article
// among the distinct articles of given, in order, counted from 1: the
// number of the source that lists it.
func citations(given, ranked []runnel.Passage) []int {
	var slugs []string
	for _, p := range given {
		if !slices.Contains(slugs, p.Slug) {
			slugs = append(slugs, p.Slug)
		}
	}
	out := make([]int, len(ranked))
	for i, p := range ranked {
		out[i] = slices.Index(slugs, p.Slug) + 1
	}
	return out
}

// choose picks up to MaxSentences sentences from pool (sorted best first)
// by maximal marginal relevance: each next sentence is the one whose score,
// less its overlap with the sentences already chosen, is highest, so the
// answer does not say the same thing twice. Near-duplicates are dropped,
// and so are sentences much less relevant than the best, which would only
// pad the answer. When the best sentence is a definition, two more
// sentences say enough: the rest would be mentions of the subject in
// passing. The answer keeps within MaxTokens when it can.
func (g *Generator) choose(pool []*sentence, bestRel float64) []*sentence {
	floor := max(g.opts.MinScore, bestRel/2)
	limit := g.opts.MaxSentences
	var chosen []*sentence
	words := 0
	for len(chosen) < limit && len(pool) > 0 {
		best, bestVal := -1, math.Inf(-1)
		for i := 0; i < len(pool); i++ {
			c := pool[i]
			overlap := 0.0
			for _, d := range chosen {
				overlap = max(overlap, jaccard(c.stems, d.stems))
			}
			if overlap >= duplicate || c.rel < floor ||
				(len(chosen) > 0 && words+c.n > g.opts.MaxTokens) {
				pool = slices.Delete(pool, i, i+1)
				i--
				continue
			}
			if c.dep && !slices.ContainsFunc(chosen, func(d *sentence) bool { return d.follows(c) }) &&
				(len(chosen)+2 > limit || !c.canBringPrev(words, g.opts.MaxTokens)) {
				// Its referent is in the sentence before, which is not in
				// the answer (yet: it may be chosen later, so c stays) and
				// cannot come with it.
				continue
			}
			if c.leadIn {
				// It introduces a list or code that the answer leaves out.
				pool = slices.Delete(pool, i, i+1)
				i--
				continue
			}
			// Strictly greater: among equals the earlier (better sorted) wins.
			if v := c.score - overlapCost*overlap; v > bestVal {
				best, bestVal = i, v
			}
		}
		if best < 0 {
			break
		}
		c := pool[best]
		if c.dep && !slices.ContainsFunc(chosen, func(d *sentence) bool { return d.follows(c) }) {
			// It comes with the sentence it leans on.
			chosen = append(chosen, c.prev)
			words += c.prev.n
			pool = slices.DeleteFunc(pool, func(d *sentence) bool { return d == c.prev })
			best = slices.Index(pool, c)
		}
		chosen = append(chosen, c)
		words += c.n
		if len(chosen) == 1 && chosen[0].def {
			limit = min(limit, definitionSentences)
		}
		pool = slices.Delete(pool, best, best+1)
	}
	return chosen
}

// canBringPrev reports whether c, which leans on the sentence before it,
// can bring that sentence into the answer: it is a candidate that stands
// alone and introduces nothing left out, and both fit the budget.
func (c *sentence) canBringPrev(words, maxTokens int) bool {
	p := c.prev
	return p != nil && !p.dep && !p.leadIn && (words == 0 || words+p.n+c.n <= maxTokens)
}

// compose prints the chosen sentences (chosen[0] the best) as prose. The
// best sentence opens the answer, followed by the other sentences of its
// passage in their original order, so that a sentence that follows on from
// another still does; the other passages follow in rank order in a second
// paragraph. With cite (the source number of each passage, by rank), the
// last sentence quoted from a source before another source's, or before
// the end, is marked with that number, ahead of the code it introduces.
func compose(chosen []*sentence, cite []int) string {
	lead := chosen[0]
	slices.SortFunc(chosen, func(a, b *sentence) int {
		return cmp.Or(
			cmp.Compare(b2i(a != lead), b2i(b != lead)),
			cmp.Compare(b2i(a.passage != lead.passage), b2i(b.passage != lead.passage)),
			cmp.Compare(a.passage, b.passage),
			cmp.Compare(a.index, b.index))
	})
	var b strings.Builder
	for i, c := range chosen {
		switch {
		case i == 0:
		case c.passage != lead.passage && chosen[i-1].passage == lead.passage,
			chosen[i-1].code != "":
			b.WriteString("\n\n")
		default:
			b.WriteByte(' ')
		}
		b.WriteString(c.text)
		if cite != nil && (i == len(chosen)-1 || cite[chosen[i+1].passage] != cite[c.passage]) {
			b.WriteString(" [" + strconv.Itoa(cite[c.passage]) + "]")
		}
		if c.code != "" {
			f := codeFence(c.code)
			b.WriteString("\n\n" + f + c.lang + "\n" + c.code + "\n" + f)
		}
	}
	return b.String()
}

// codeFence returns a fence of backticks longer than any run of them in
// code, so that the code cannot close it early.
func codeFence(code string) string {
	run, n := 0, 0
	for i := 0; i < len(code); i++ {
		if code[i] == '`' {
			n++
			run = max(run, n)
		} else {
			n = 0
		}
	}
	return strings.Repeat("`", max(3, run+1))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// notCovered says that the passages do not answer the question, and names
// the articles that came closest so the reader knows where to look.
func notCovered(passages []runnel.Passage) string {
	var titles []string
	for _, p := range passages {
		t := strings.Join(strings.Fields(p.Title), " ")
		if t != "" && !slices.Contains(titles, t) && len(titles) < 3 {
			titles = append(titles, t)
		}
	}
	switch len(titles) {
	case 0:
		return NotCovered
	case 1:
		return NotCovered + " The closest is: " + finish(titles[0])
	}
	return NotCovered + " The closest are: " + finish(strings.Join(titles, ", "))
}

// rank returns the passages best first. Search returns them in that order,
// but a caller that gathered them from elsewhere (a map, several stores)
// may not: passages are ordered by score, highest first, and keep their
// order where the scores tie, so the order given is the rank when there are
// no scores.
func rank(passages []runnel.Passage) []runnel.Passage {
	ps := slices.Clone(passages)
	score := func(p runnel.Passage) float64 {
		if math.IsNaN(p.Score) {
			return math.Inf(-1)
		}
		return p.Score
	}
	slices.SortStableFunc(ps, func(a, b runnel.Passage) int {
		return cmp.Compare(score(b), score(a))
	})
	return ps
}

// queryTerms returns the stems of the question's content words, in order
// and without duplicates, each with its compounds ("web" and "socket" both
// match "websocket"). It uses p.Terms, or the question's words if there are
// none; stop words and single letters never count, even when the question
// was nothing else ("what is it?").
func queryTerms(p runnel.Prompt) []term {
	src := p.Terms
	if len(src) == 0 {
		src = []string{p.Question}
	}
	var words, stems []string
	var from []int
	for i, s := range src {
		if runnel.IsVersion(s) {
			// "24.04" is one term: it matches the version, not its numbers.
			if !slices.Contains(stems, s) {
				words, stems, from = append(words, s), append(stems, s), append(from, i)
			}
			continue
		}
		for _, w := range wordsOf(s) {
			if st := stem(w); contentWord(w) && !slices.Contains(stems, st) {
				words = append(words, w)
				stems = append(stems, st)
				from = append(from, i)
			}
		}
	}
	terms := make([]term, len(words))
	for i := range words {
		terms[i].stem = stems[i]
		terms[i].src = from[i]
		if len(p.Terms) == 0 || hasCJK(src[from[i]]) {
			// The searcher counted the whole term, not this pair of
			// its characters.
			terms[i].src = -1
		}
		terms[i].pair = hasCJK(words[i])
		if i > 0 {
			terms[i].joins = append(terms[i].joins, stem(words[i-1]+words[i]))
		}
		if i+1 < len(words) {
			terms[i].joins = append(terms[i].joins, stem(words[i]+words[i+1]))
		}
	}
	return terms
}

// coverage returns the largest share of the terms' weight that one passage
// (its title, heading and text) holds.
func coverage(passages []runnel.Passage, terms []term, weights []float64) float64 {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return 0
	}
	best := 0.0
	for _, p := range passages {
		text := p.Text
		if len(text) > maxPassageBytes {
			text = text[:maxPassageBytes]
		}
		set := cachedTextSet(p.Title + " " + p.Heading + " " + text)
		got := 0.0
		for j, t := range terms {
			if t.in(set) {
				got += weights[j]
			}
		}
		best = max(best, got/total)
	}
	return best
}

// collectionIDF is the rarity of a term that docs of all passages contain
// (BM25's IDF, kept positive): about 8.5 for a term one passage of 5,000
// has, 0.7 for one half of them have, near 0 for one all have. A term no
// passage has weighs twice what the rarest term that one passage has
// does: a word the collection never uses (a product, a tool, a command it
// does not document) is the surest sign that the question is about
// something else.
func collectionIDF(docs, all int) float64 {
	n, d := float64(all), float64(min(docs, all))
	if docs == 0 {
		return 2 * math.Log(1+(n-0.5)/1.5)
	}
	return math.Log(1 + (n-d+0.5)/(d+0.5))
}

// mentions reports whether text contains one of the terms.
func mentions(text string, terms []term) bool {
	set := cachedTextSet(text)
	for _, t := range terms {
		if t.in(set) {
			return true
		}
	}
	return false
}

// in reports whether t or one of its compounds is in set (sorted).
func (t term) in(set []string) bool {
	if contains(set, t.stem) {
		return true
	}
	for _, j := range t.joins {
		if contains(set, j) {
			return true
		}
	}
	return false
}

func contains(set []string, s string) bool {
	_, ok := slices.BinarySearch(set, s)
	return ok
}

// stemSet returns the distinct stems of the content words, sorted.
func stemSet(words []string) []string {
	set := make([]string, 0, len(words))
	for _, w := range words {
		if contentWord(w) {
			set = append(set, stem(w))
		}
	}
	slices.Sort(set)
	return slices.Compact(set)
}

// jaccard returns |a∩b| / |a∪b| of two sorted sets.
func jaccard(a, b []string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	both := 0
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := strings.Compare(a[i], b[j]); {
		case c == 0:
			both++
			i++
			j++
		case c < 0:
			i++
		default:
			j++
		}
	}
	return float64(both) / float64(len(a)+len(b)-both)
}

// asksDefinition reports whether the question asks what something is:
// "what is X", "what are Xs", "what's X", "define X", "what does X mean",
// or just names a topic ("websocket?").
func asksDefinition(q string) bool {
	w := runnel.Words(q)
	if len(w) == 0 {
		return false
	}
	switch w[0] {
	case "define", "definition", "meaning", "whats":
		return true
	case "what", "who":
		if len(w) > 1 && (w[1] == "is" || w[1] == "are" || w[1] == "s") {
			return true
		}
		return len(w) > 2 && w[1] == "does" && w[len(w)-1] == "mean"
	}
	if len(w) > 3 {
		return false
	}
	for _, x := range w {
		if !contentWord(x) {
			return false
		}
	}
	return true
}

// copulas are the verbs that make "X is a ..." a definition.
var copulas = []string{"is", "are", "means", "refers", "describes", "denotes", "stands"}

// definition reports whether a sentence reads like a definition of a term:
// it opens with the term, after an article at most, and a copula follows
// within a few words ("A WebSocket is a ...", "Server-sent events (SSE)
// are ..."). "Unlike a WebSocket, the channel is ..." is not one.
func definition(words []string, terms []term) bool {
	start := 0
	if len(words) > 0 && (words[0] == "a" || words[0] == "an" || words[0] == "the") {
		start = 1
	}
	k := start + 1
	for k < len(words) && k <= start+5 && !slices.Contains(copulas, words[k]) {
		k++
	}
	if k >= len(words) || k > start+5 {
		return false
	}
	first := []string{stem(words[start])}
	if start+1 < k {
		first = append(first, stem(words[start]+words[start+1]))
		slices.Sort(first)
	}
	for _, t := range terms {
		if t.in(first) {
			return true
		}
	}
	return false
}

// reAppositive matches a word followed by an appositive that defines it:
// "over QUIC, a transport protocol built on UDP".
var reAppositive = regexp.MustCompile(`([\pL\pN][\pL\pN/+-]*)(?: \([^)]{1,40}\))?, (?:a|an) `)

// introWords open a phrase that a comma closes before the subject.
var introWords = map[string]bool{
	"before": true, "after": true, "unlike": true, "like": true, "with": true, "without": true,
	"in": true, "on": true, "for": true, "when": true, "if": true, "since": true, "while": true,
	"as": true, "because": true, "although": true, "once": true, "until": true, "by": true,
	"from": true, "at": true, "to": true, "over": true, "under": true, "besides": true,
}

// appositive reports whether the sentence defines a question term by an
// appositive ("QUIC, a transport protocol ..."), the way prose often
// introduces a term in passing.
func appositive(text string, terms []term) bool {
	first := runnel.Words(text[:min(len(text), 20)])
	opener := len(first) > 0 && introWords[first[0]]
	for _, ix := range reAppositive.FindAllStringSubmatchIndex(text, 4) {
		if opener && !strings.Contains(text[:ix[0]], ",") {
			// "Before WebSockets, a page ...": the comma ends an opening
			// phrase, and what follows is the sentence's subject.
			continue
		}
		words := runnel.Words(text[ix[2]:ix[3]])
		if len(words) == 0 {
			continue
		}
		set := []string{stem(words[len(words)-1])}
		for _, t := range terms {
			if t.in(set) {
				return true
			}
		}
	}
	return false
}

// dependent reports whether a sentence leans on the one before it
// ("This means ...", "However, ..."), which reads oddly out of context.
func dependent(words []string) bool {
	if len(words) == 0 {
		return false
	}
	switch words[0] {
	case "it":
		return !expletive(words)
	case "this", "that", "these", "those", "they", "however", "but", "and",
		"so", "also", "then", "instead", "otherwise", "here", "such", "thus", "therefore":
		return true
	}
	return false
}

// expletiveWords are what may stand between "it is" and the "to" or
// "that" of a sentence whose "it" refers to nothing ("It is not possible
// to copy...", "It is a good idea to pin versions").
var expletiveWords = map[string]bool{
	"not": true, "also": true, "often": true, "usually": true, "generally": true, "always": true,
	"still": true, "now": true, "therefore": true, "very": true, "more": true, "less": true, "much": true,
	"possible": true, "impossible": true, "important": true, "necessary": true, "unnecessary": true,
	"recommended": true, "advisable": true, "best": true, "better": true, "easy": true, "easier": true,
	"hard": true, "harder": true, "difficult": true, "safe": true, "safer": true, "unsafe": true,
	"common": true, "usual": true, "useful": true, "worth": true, "likely": true, "unlikely": true,
	"enough": true, "required": true, "preferable": true, "convenient": true, "helpful": true,
	"wise": true, "essential": true, "crucial": true, "good": true, "bad": true, "a": true, "idea": true,
	"practice": true, "known": true, "true": true, "clear": true, "expected": true, "allowed": true,
}

// expletive reports whether a sentence that opens with "it" uses it as a
// placeholder for what follows, not for something said before: "it is",
// "it's" or "it can be", a few words of expletiveWords, then "to" or
// "that".
func expletive(words []string) bool {
	i := 1
	switch {
	case len(words) > 2 && (words[1] == "is" || words[1] == "was" || words[1] == "s"):
		i = 2
	case len(words) > 3 && words[2] == "be":
		switch words[1] {
		case "can", "may", "might", "could", "would", "should", "will":
			i = 3
		default:
			return false
		}
	default:
		return false
	}
	for n := 0; i < len(words) && n <= 4; i, n = i+1, n+1 {
		switch w := words[i]; {
		case w == "to" || w == "that" || w == "whether":
			return n > 0
		case !expletiveWords[w]:
			return false
		}
	}
	return false
}

// reIntroPronoun matches a sentence whose subject, after a short opening
// phrase, is a pronoun ("On Linux, this is set on the cgroup").
var reIntroPronoun = regexp.MustCompile(`^[^,.;:]{2,40}, (?:this|these|those|it|they)\b`)

// introPronoun reports whether reIntroPronoun matches text in lower case.
// The expression can only match where the first of ",.;:" in the text is a
// comma and a space, so the rest of the sentences (almost all of them) are
// told apart without it; lower case changes none of those characters.
func introPronoun(text string) bool {
	i := strings.IndexAny(text, ",.;:")
	if i < 0 || !strings.HasPrefix(text[i:], ", ") {
		return false
	}
	// What comes before the comma is the opening: none of its characters
	// is one of those four, and lower case keeps each a character.
	if n := utf8.RuneCountInString(text[:i]); n < 2 || n > 40 {
		return false
	}
	// The pronoun, in lower case, and the character after it: five
	// characters of at most four bytes, and one more, fit in 24 bytes.
	rest := text[i+2:]
	if len(rest) > 24 {
		rest = rest[:24]
	}
	rest = strings.ToLower(rest)
	for _, w := range [...]string{"this", "these", "those", "it", "they"} {
		if strings.HasPrefix(rest, w) && (len(rest) == len(w) || !isWordByte(rest[len(w)])) {
			return true
		}
	}
	return false
}

// isWordByte reports whether c is an ASCII word character, as \b sees it.
func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
