package main

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/runnel/runnel"
)

// Outcome is what runnel answered to one Item.
type Outcome struct {
	Item
	Sources    []string      `json:"sources"`     // slugs of the sources event, in order
	Answer     string        `json:"answer"`      // the tokens, concatenated
	NotCovered bool          `json:"not_covered"` // the answer says the articles do not cover the question
	GoldQuoted bool          `json:"gold_quoted"` // the answer quotes a sentence of a gold article
	Unlisted   []string      `json:"unlisted,omitempty"`
	Titles     time.Duration `json:"titles_ns"` // from the question to the titles event
	Done       time.Duration `json:"done_ns"`   // from the question to the done event: the whole answer
	// Of the answer's sentences that quote a source article, Quoted, how
	// many quote a gold one (a sentence in both counts as gold).
	Quoted     int `json:"quoted"`
	QuotedGold int `json:"quoted_gold"`
}

// Rank returns the 1-based place of the first gold article among the
// sources, or 0 if none is there.
func (o Outcome) Rank() int {
	for i, s := range o.Sources {
		if slices.Contains(o.Gold, s) {
			return i + 1
		}
	}
	return 0
}

// Metrics summarise a set of outcomes. Rates are shares from 0 to 1; a
// rate over no outcomes is NaN, printed as "-".
type Metrics struct {
	Questions    int // all questions
	Answerable   int
	Unanswerable int

	R1, R3, R5, MRR5 float64 // over answerable questions
	GoldSentence     float64 // answerable questions whose answer quotes a gold article
	FalseNotCovered  float64 // answerable questions told "not covered"
	TrueNotCovered   float64 // unanswerable questions told "not covered"
	Unlisted         float64 // questions whose answer quotes an article the sources do not list
	GoldShare        float64 // the mean of QuotedGold/Quoted over answerable questions that quote a source

	TitlesP50, TitlesP99 time.Duration
	DoneP50, DoneP99     time.Duration
}

// Summarize computes the metrics of outcomes.
func Summarize(outs []Outcome) Metrics {
	var m Metrics
	var r1, r3, r5, rr, gold, falseNC, trueNC, unlisted float64
	var titles, done []time.Duration
	var goldShare, shared float64
	for _, o := range outs {
		if o.Answerable() && o.Quoted > 0 {
			goldShare += float64(o.QuotedGold) / float64(o.Quoted)
			shared++
		}
		m.Questions++
		titles = append(titles, o.Titles)
		done = append(done, o.Done)
		if len(o.Unlisted) > 0 {
			unlisted++
		}
		if !o.Answerable() {
			m.Unanswerable++
			if o.NotCovered {
				trueNC++
			}
			continue
		}
		m.Answerable++
		if k := o.Rank(); k > 0 {
			if k <= 1 {
				r1++
			}
			if k <= 3 {
				r3++
			}
			if k <= 5 {
				r5++
				rr += 1 / float64(k)
			}
		}
		if o.GoldQuoted {
			gold++
		}
		if o.NotCovered {
			falseNC++
		}
	}
	a, u := float64(m.Answerable), float64(m.Unanswerable)
	m.R1, m.R3, m.R5, m.MRR5 = share(r1, a), share(r3, a), share(r5, a), share(rr, a)
	m.GoldSentence, m.FalseNotCovered = share(gold, a), share(falseNC, a)
	m.TrueNotCovered = share(trueNC, u)
	m.Unlisted = share(unlisted, float64(m.Questions))
	m.GoldShare = share(goldShare, shared)
	m.TitlesP50, m.TitlesP99 = percentile(titles, 50), percentile(titles, 99)
	m.DoneP50, m.DoneP99 = percentile(done, 50), percentile(done, 99)
	return m
}

func share(n, of float64) float64 {
	if of == 0 {
		return math.NaN()
	}
	return n / of
}

// percentile returns the nearest-rank p-th percentile of ds (0 for none).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

// minQuoteWords is the fewest words a piece of an answer must have to
// count as a quoted sentence: shorter pieces ("See below.") match by
// chance.
const minQuoteWords = 4

// quotes reports whether answer contains a sentence of source: a piece of
// the answer, cut at sentence ends and paragraph breaks, whose words (as
// runnel.Words splits them, so Markdown and punctuation do not matter)
// appear in the same order, one after another, in source.
func quotes(answer, source string) bool {
	src := spaced(runnel.Words(source))
	for _, piece := range sentencePieces(answer) {
		w := runnel.Words(piece)
		if len(w) >= minQuoteWords && strings.Contains(src, spaced(w)) {
			return true
		}
	}
	return false
}

// spaced joins words with a space before, between and after them, so that
// one such text contains another only at word boundaries.
func spaced(words []string) string { return " " + strings.Join(words, " ") + " " }

// quotedFrom returns how many of answer's sentences quote one of the gold
// texts or one of the others, and how many of those quote a gold one.
func quotedFrom(answer string, gold, others []string) (quoted, fromGold int) {
	norm := func(texts []string) []string {
		out := make([]string, len(texts))
		for i, t := range texts {
			out[i] = spaced(runnel.Words(t))
		}
		return out
	}
	g, o := norm(gold), norm(others)
	in := func(piece string, texts []string) bool {
		return slices.ContainsFunc(texts, func(t string) bool { return strings.Contains(t, piece) })
	}
	for _, piece := range sentencePieces(answer) {
		w := runnel.Words(piece)
		if len(w) < minQuoteWords {
			continue
		}
		p := spaced(w)
		switch {
		case in(p, g):
			quoted++
			fromGold++
		case in(p, o):
			quoted++
		}
	}
	return quoted, fromGold
}

// sentencePieces cuts text after each '.', '!' or '?' that a space or the
// end follows, and at blank lines. It may cut inside a sentence ("e.g.
// this"); each piece is still a run of words of the text.
func sentencePieces(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		end := (c == '.' || c == '!' || c == '?') && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\n')
		if end || c == '\n' {
			if p := strings.TrimSpace(text[start : i+1]); p != "" {
				out = append(out, p)
			}
			start = i + 1
		}
	}
	if p := strings.TrimSpace(text[start:]); p != "" {
		out = append(out, p)
	}
	return out
}
