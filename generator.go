package runnel

import "context"

// Prompt is what a Generator answers from.
type Prompt struct {
	Question string    // the normalised question
	Terms    []string  // its searchable terms
	Passages []Passage // retrieved passages, best first; may be empty
	// History is the conversation before the question, oldest first (see
	// Query.History); nil for a question asked alone. A generator that
	// writes with a model gives it the earlier turns within its budget.
	History []Message

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

// Rewriter turns a follow-up question into one that stands alone, such as
// "how does it reconnect?" after "what is SSE?" into "How does an SSE
// client reconnect?". The Answerer searches with the rewrite when its
// Rewriter, or its Generator, is one.
type Rewriter interface {
	// Rewrite returns question rewritten to stand alone in the light of
	// history (the conversation before it, oldest first), or question as
	// it is when it already stands alone. It returns promptly once ctx is
	// done.
	Rewrite(ctx context.Context, history []Message, question string) (string, error)
}
