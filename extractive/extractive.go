// Package extractive is runnel's offline Generator: it answers with the
// sentences of the retrieved passages that best cover the question, and
// says plainly when none does. It needs no model and no network, so it is
// the default, and it never states anything the articles do not say.
//
// An answer is built in three steps. The passages are split into blocks
// (paragraphs, list items and code) and the prose blocks into sentences
// with the punkt sentence splitter of github.com/neurosnap/sentences.
// Every sentence that contains a question term is scored by the share of
// the question it covers (terms weighted by their rarity in the whole
// collection when the searcher counts them, else among the sentences,
// matched on crude stems), the rank of its passage, its place in
// the passage and, for "what is X" questions, whether it reads like a
// definition. The best are chosen greedily, each penalised by its overlap
// with those already chosen, and printed grouped by passage in their
// original order. A sentence that introduces code (it ends in ':' and the
// code follows it) is printed with that code as a fenced block, or left out
// with it when the code is too long to quote; one that introduces a list is
// left out. The text is then streamed word by word.
//
// For the same prompt the answer is always the same: no randomness, and no
// map order reaches the output.
package extractive

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/neurosnap/sentences"
	"github.com/neurosnap/sentences/english"

	"github.com/runnel/runnel"
)

var _ runnel.Generator = (*Generator)(nil)

// Defaults for the zero values of Options.
const (
	DefaultMaxSentences = 5
	DefaultMaxTokens    = 400
	DefaultMinScore     = 0.25
	DefaultMinCoverage  = 0.5
)

// NotCovered is the answer when the passages do not cover the question.
const NotCovered = "The articles I have do not cover this question."

// Options tune a Generator. The zero value is usable.
type Options struct {
	// MaxSentences is the most sentences an answer quotes; 0 means
	// DefaultMaxSentences.
	MaxSentences int
	// MaxTokens caps the tokens (words) streamed; an answer cut there
	// finishes with runnel.FinishLength. 0 means DefaultMaxTokens.
	MaxTokens int
	// MinScore is the relevance the best sentence must reach for the
	// question to count as covered: the share of the question's terms it
	// contains, from 0 to 1, each term weighted by its rarity among the
	// candidate sentences (a term found only in the title or heading of
	// the sentence's passage counts for 0.3 of its weight). Sentences
	// less relevant than MinScore, or than half the best, are left out.
	// 0 means DefaultMinScore; a negative value accepts any sentence that
	// contains a question term.
	MinScore float64
	// MinCoverage is the share of the question one passage must hold for
	// the question to count as covered, each term weighted by its rarity
	// in the whole collection (so it applies only when the searcher
	// counts terms: runnel.Prompt.TermDocs). A question whose rare words
	// no passage has ("kubernetes" among docs that never name it) is not
	// covered however well its common words match. 0 means
	// DefaultMinCoverage; a negative value turns the check off.
	MinCoverage float64
	// Delay is a pause between tokens, to show streaming in demos at the
	// pace of a model. 0 streams as fast as emit accepts.
	Delay time.Duration
	// Cite ends the sentences quoted from each article with that
	// article's number in square brackets, [1], [2], as an LLM is told to
	// cite: n is the article's place among the distinct articles of the
	// prompt's passages, in their order, which is the order of the
	// answer's sources.
	Cite bool
}

// Generator is the extractive runnel.Generator. It is safe for concurrent
// use.
type Generator struct {
	opts Options
}

// New returns a Generator with opts, zero values replaced by the defaults.
func New(opts Options) *Generator {
	if opts.MaxSentences <= 0 {
		opts.MaxSentences = DefaultMaxSentences
	}
	if opts.MaxTokens <= 0 {
		opts.MaxTokens = DefaultMaxTokens
	}
	if opts.MinScore == 0 {
		opts.MinScore = DefaultMinScore
	}
	if opts.MinCoverage == 0 {
		opts.MinCoverage = DefaultMinCoverage
	}
	if opts.Delay < 0 {
		opts.Delay = 0
	}
	// Load the splitter's training data now rather than in the first
	// request; an error surfaces again from Generate.
	_, _ = splitter()
	return &Generator{opts: opts}
}

// Citing returns a Generator with the same options that cites its sources
// (Options.Cite).
func (g *Generator) Citing() runnel.Generator {
	opts := g.opts
	opts.Cite = true
	return &Generator{opts: opts}
}

// splitter returns the English sentence splitter, loaded once per process:
// its training data takes milliseconds to decode, and tokenizing only
// reads it, so all generators share one.
var splitter = sync.OnceValues(func() (*sentences.DefaultSentenceTokenizer, error) {
	t, err := english.NewSentenceTokenizer(nil)
	if err != nil {
		return nil, fmt.Errorf("extractive: load sentence splitter: %w", err)
	}
	return t, nil
})

// Generate streams the answer to p through emit, one word (with the space
// or newlines after it) per token. It implements runnel.Generator.
func (g *Generator) Generate(ctx context.Context, p runnel.Prompt, emit func(token string) error) (runnel.Done, error) {
	if err := ctx.Err(); err != nil {
		return runnel.Done{}, err
	}
	text, err := g.answer(ctx, p)
	if err != nil {
		return runnel.Done{}, err
	}
	return g.stream(ctx, text, emit)
}

// stream emits text as word tokens: each token is a word (or two CJK
// characters) and the white space after it, so the tokens concatenate to
// text exactly.
func (g *Generator) stream(ctx context.Context, text string, emit func(string) error) (runnel.Done, error) {
	var timer *time.Timer
	n := 0
	for i := 0; i < len(text); n++ {
		j := wordEnd(text, i)
		for j < len(text) && isSpace(text[j]) {
			j++
		}
		if n == g.opts.MaxTokens {
			return runnel.Done{FinishReason: runnel.FinishLength}, nil
		}
		if n > 0 && g.opts.Delay > 0 {
			if timer == nil {
				timer = time.NewTimer(g.opts.Delay)
				defer timer.Stop()
			} else {
				timer.Reset(g.opts.Delay)
			}
			select {
			case <-ctx.Done():
				return runnel.Done{}, ctx.Err()
			case <-timer.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return runnel.Done{}, err
		}
		if err := emit(text[i:j]); err != nil {
			return runnel.Done{}, err
		}
		i = j
	}
	return runnel.Done{FinishReason: runnel.FinishStop}, nil
}

// wordEnd returns where the word starting at i ends: at white space, or
// after two characters of Chinese, Japanese or Korean, which are written
// without spaces, so that such an answer streams a little at a time too.
func wordEnd(text string, i int) int {
	cjk := 0
	for i < len(text) && !isSpace(text[i]) {
		r, n := utf8.DecodeRuneInString(text[i:])
		if runnel.IsCJK(r) {
			if cjk == 2 {
				return i
			}
			cjk++
		} else if cjk == 2 {
			return i
		}
		i += n
	}
	return i
}

// isSpace reports whether c separates tokens. Answers are built with
// single spaces and blank lines only (clean collapses everything else).
func isSpace(c byte) bool { return c == ' ' || c == '\n' }
