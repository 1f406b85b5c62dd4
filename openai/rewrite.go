package openai

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

var _ runnel.Rewriter = (*Generator)(nil)

// rewritePrompt tells the model how to rewrite a follow-up question.
const rewritePrompt = `You rewrite the last question of a conversation so that it can be understood without the conversation, for a search in a collection of articles.

- Replace pronouns and references ("it", "they", "that one", "and in Go?") with what they refer to in the conversation.
- Keep the question's meaning and language. Do not answer it, and add nothing it does not ask.
- If the question already stands alone, repeat it unchanged.
- Reply with the rewritten question only, on one line.`

// Bounds of a rewrite: the tokens the model may write, and the characters
// of the rewritten question kept (a longer reply is not a question).
const (
	rewriteMaxTokens = 96
	rewriteMaxChars  = 500
)

// RewriteMessages returns the system and user messages Rewrite sends: the
// conversation's user and assistant turns, within a quarter of
// Options.MaxContextChars (the oldest dropped first), then the question.
func (g *Generator) RewriteMessages(msgs []runnel.Message, question string) (system, user string) {
	turns, _ := history(msgs, g.opts.MaxContextChars/historyShare)
	return rewritePrompt, "Conversation:\n\n" + turns + "Last question: " + question
}

// Rewrite asks the model to rewrite question, the latest of a
// conversation, into a question that stands alone. It implements
// runnel.Rewriter. The request streams as Generate's does, with at most
// 96 tokens and no retries: the answer waits for it, and the Answerer
// falls back to its own rule when it fails. The reply is its first line,
// without quotes or a "Question:" label.
func (g *Generator) Rewrite(ctx context.Context, history []runnel.Message, question string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	system, user := g.RewriteMessages(history, question)
	gctx, cancel := context.WithTimeoutCause(ctx, g.opts.MaxDuration, errMaxDuration)
	defer cancel()
	var b strings.Builder
	c := &call{g: g, ctx: ctx, gctx: gctx, system: system, user: user, maxTokens: rewriteMaxTokens,
		emit: func(s string) error {
			b.WriteString(s)
			return nil
		}}
	_, err := c.attempt()
	var f *failure
	if errors.As(err, &f) && f.reject != "" && g.adapt(f.reject) {
		b.Reset()
		_, err = c.attempt() // without the parameter the upstream refused
	}
	if err != nil {
		return "", err
	}
	q := rewritten(b.String())
	if q == "" || utf8.RuneCountInString(q) > rewriteMaxChars {
		return "", g.fail(EUpstreamMalformed, "the rewrite is not one question", nil)
	}
	return q, nil
}

// rewritten returns the question in a model's reply: its first line that
// is not empty, without a label or the quotes around it.
func rewritten(reply string) string {
	var line string
	for l := range strings.Lines(reply) {
		if line = strings.TrimSpace(l); line != "" {
			break
		}
	}
	for _, label := range []string{"rewritten question:", "standalone question:", "question:"} {
		if len(line) >= len(label) && strings.EqualFold(line[:len(label)], label) {
			line = strings.TrimSpace(line[len(label):])
			break
		}
	}
	for _, q := range [][2]string{{`"`, `"`}, {"“", "”"}, {"'", "'"}, {"`", "`"}} {
		if len(line) > len(q[0])+len(q[1]) && strings.HasPrefix(line, q[0]) && strings.HasSuffix(line, q[1]) {
			line = strings.TrimSpace(line[len(q[0]) : len(line)-len(q[1])])
		}
	}
	return line
}
