package runnel

import "context"

// Prompt is what a Generator answers from.
type Prompt struct {
	Question string    // the normalised question
	Terms    []string  // its searchable terms
	Passages []Passage // retrieved passages, best first; may be empty

	// How common each term is in the whole collection, when the searcher
	// can tell (a TermCounter): TermDocs[i] passages of Docs contain
	// Terms[i]. A generator judges by them whether the passages answer the
	// question: a rare word of the question that no passage has says
	// they do not. TermDocs is nil when unknown.
	TermDocs []int
	Docs     int
}

// Generator produces the answer to a prompt as a sequence of tokens.
type Generator interface {
	// Generate calls emit with each token as soon as it exists and returns
	// how the answer finished. It stops and returns emit's error as soon as
	// emit fails, and returns ctx.Err() promptly once ctx is done. When the
	// passages do not cover the question it says so rather than invent.
	Generate(ctx context.Context, p Prompt, emit func(token string) error) (Done, error)
}

// GeneratorFunc adapts a function to the Generator interface.
type GeneratorFunc func(ctx context.Context, p Prompt, emit func(token string) error) (Done, error)

// Generate calls f.
func (f GeneratorFunc) Generate(ctx context.Context, p Prompt, emit func(string) error) (Done, error) {
	return f(ctx, p, emit)
}
