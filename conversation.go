package runnel

// Message is one turn of a conversation, with the roles of OpenAI's chat
// API: "system", "user" or "assistant".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ParseConversation validates a conversation and returns the query for its
// latest user message, read in the light of the turns before it. max bounds
// each message as ParseQuestion does.
//
// For now it reads the latest user message alone; follow-up questions
// (issue 14) make it use the earlier turns.
func ParseConversation(msgs []Message, max int) (Query, error) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return ParseQuestion(msgs[i].Content, max)
		}
	}
	return Query{}, Errorf(EINVALID, "The conversation has no user message.")
}
