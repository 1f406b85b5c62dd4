package runnel

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Message is one turn of a conversation, with the roles of OpenAI's chat
// API: "system", "user" or "assistant".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Roles of a Message.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)

// Limits of a conversation, whatever the limit on one question.
const (
	// MaxMessages bounds the messages of a conversation.
	MaxMessages = 64
	// MaxConversation bounds the bytes of all the messages' contents.
	MaxConversation = 64 << 10
)

// FollowUpWeight is the weight, for the search, of a term that a
// follow-up question borrows from the question before it; the question's
// own terms weigh 1. A term borrowed again by the next follow-up weighs
// half as much again, and one below minBorrowed is dropped.
const FollowUpWeight = 0.5

const minBorrowed = 0.25

// ParseConversation validates a conversation and returns the query for its
// latest user message, read in the light of the turns before it. max bounds
// each user message as ParseQuestion does; the conversation as a whole is
// bounded by MaxMessages and MaxConversation.
//
// It returns EINVALID for a conversation that is empty, has a message with
// another role than user, assistant or system, an empty message or one not
// valid UTF-8, or does not end with a user message; ETOOLARGE for too many
// messages, too many bytes, or a user message over max. The latest user
// message is parsed by ParseQuestion, with its errors.
//
// When the latest question is a follow-up (IsFollowUp), it borrows the
// terms of the user question before it (as that one was read, so a chain
// of follow-ups keeps its subject), weighted by FollowUpWeight and after
// its own terms. The messages before it are the query's History.
func ParseConversation(msgs []Message, max int) (Query, error) {
	if err := validConversation(msgs, max); err != nil {
		return Query{}, err
	}
	last := len(msgs) - 1
	var prev *Query
	for _, m := range msgs[:last] {
		if m.Role != RoleUser {
			continue
		}
		q, err := ParseQuestion(m.Content, max)
		if err != nil {
			continue // a question with no words gives nothing to borrow
		}
		if prev != nil {
			q = borrow(q, *prev)
		}
		prev = &q
	}
	q, err := ParseQuestion(msgs[last].Content, max)
	if err != nil {
		return Query{}, err
	}
	if prev != nil {
		q = borrow(q, *prev)
	}
	if last > 0 {
		q.History = slices.Clone(msgs[:last])
	}
	return q, nil
}

// validConversation checks what ParseConversation promises to refuse,
// except the latest question's own faults, which ParseQuestion reports.
func validConversation(msgs []Message, max int) error {
	if max <= 0 {
		max = DefaultMaxQuestion
	}
	switch {
	case len(msgs) == 0:
		return Errorf(EINVALID, "The conversation has no messages.")
	case len(msgs) > MaxMessages:
		return Errorf(ETOOLARGE, "The conversation has %d messages; the limit is %d.", len(msgs), MaxMessages)
	}
	total := 0
	for i, m := range msgs {
		n := i + 1
		switch m.Role {
		case RoleUser, RoleAssistant, RoleSystem:
		default:
			return Errorf(EINVALID, "Message %d has the role %q; the roles are user, assistant and system.", n, m.Role)
		}
		if !utf8.ValidString(m.Content) {
			return Errorf(EINVALID, "Message %d is not valid UTF-8.", n)
		}
		text := normalizeSpace(m.Content)
		if text == "" {
			return Errorf(EINVALID, "Message %d is empty.", n)
		}
		if m.Role == RoleUser && i < len(msgs)-1 && len(text) > max {
			return Errorf(ETOOLARGE, "Message %d is %d bytes long; the limit for a question is %d.", n, len(text), max)
		}
		total += len(m.Content)
	}
	if total > MaxConversation {
		return Errorf(ETOOLARGE, "The conversation is %d bytes long; the limit is %d.", total, MaxConversation)
	}
	if msgs[len(msgs)-1].Role != RoleUser {
		return Errorf(EINVALID, "The conversation must end with a user message.")
	}
	return nil
}

// Words that begin a follow-up: the question continues the one before.
var followLeads = map[string]bool{"and": true, "also": true, "but": true, "so": true, "then": true, "or": true, "plus": true}

// Pronouns that point back at what the previous question was about.
var backRefs = map[string]bool{
	"it": true, "its": true, "itself": true, "they": true, "them": true, "their": true,
	"theirs": true, "this": true, "that": true, "these": true, "those": true,
}

// maxOwnTerms is the most search terms a question may have of its own and
// still be read as a follow-up because of a pronoun or its shortness.
const maxOwnTerms = 4

// IsFollowUp reports whether q reads as a follow-up, which borrows the
// subject of the question before it, by its words alone:
//
//   - it begins with a connective ("and in Go?", "also for HTTP/2?",
//     "what about its limits?", "how about proxies?"), or
//   - it has at most four search terms of its own and either points back
//     with a pronoun ("how does it reconnect?", "are they buffered?") or is
//     at most two words long ("limits?", "reconnection details?").
//
// A question that names its subject ("what is websocket?", "how do proxies
// buffer server-sent events?") is not a follow-up, however short.
func IsFollowUp(q Query) bool {
	words := Words(expandContractions(q.Text))
	if len(words) == 0 {
		return false
	}
	if followLeads[words[0]] {
		return true
	}
	if len(words) > 1 && (words[0] == "what" || words[0] == "how") && words[1] == "about" {
		return true
	}
	if len(q.Terms) > maxOwnTerms {
		return false
	}
	if len(words) <= 2 {
		return true
	}
	return slices.ContainsFunc(words, func(w string) bool { return backRefs[w] })
}

// borrow returns q with the terms of prev it lacks appended, weighted down,
// when q is a follow-up; otherwise q as it is. A question made only of stop
// words ("what is it?") searches by the borrowed terms alone.
func borrow(q, prev Query) Query {
	if !IsFollowUp(q) {
		return q
	}
	own := q.Terms
	if !slices.ContainsFunc(own, func(t string) bool { return !stopWords[t] }) {
		own = nil // only stop words: they were kept for want of others
	}
	terms := slices.Clone(own)
	weights := make([]float64, len(terms), len(terms)+len(prev.Terms))
	for i := range weights {
		weights[i] = q.Weight(i)
	}
	for i, t := range prev.Terms {
		w := prev.Weight(i)
		if len(own) > 0 {
			w *= FollowUpWeight
		}
		if w < minBorrowed || len(terms) == maxTerms || slices.ContainsFunc(terms, func(o string) bool { return sameTerm(o, t) }) {
			continue
		}
		terms = append(terms, t)
		weights = append(weights, w)
	}
	if len(terms) == 0 {
		return q
	}
	q.Terms, q.Weights = terms, weights
	return q
}

// sameTerm reports whether two terms are one word but for a plural s.
func sameTerm(a, b string) bool {
	return a == b || a+"s" == b || a == b+"s"
}

// Weight returns the search weight of q.Terms[i]: 1 unless Weights says
// otherwise.
func (q Query) Weight(i int) float64 {
	if i < len(q.Weights) {
		return q.Weights[i]
	}
	return 1
}

// Borrowed returns the terms of q that it took from an earlier question
// (those weighted below 1), in order.
func (q Query) Borrowed() []string {
	var out []string
	for i, t := range q.Terms {
		if q.Weight(i) < 1 {
			out = append(out, t)
		}
	}
	return out
}

// TagNames returns the names by which q may mention a tag
// (TagCandidates): those of its text, then those of its borrowed terms, so
// that a follow-up keeps the tags its subject named.
func (q Query) TagNames() []string {
	names := TagCandidates(q.Text)
	if b := q.Borrowed(); len(b) > 0 {
		for _, n := range TagCandidates(strings.Join(b, " ")) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}
