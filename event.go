package runnel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// EventType names an event of the streaming protocol (docs/protocol.md).
type EventType string

// The event types of protocol v1, in the order a stream carries them.
const (
	EventQuery   EventType = "query"   // data: the question as understood (string)
	EventTags    EventType = "tags"    // data: tags, most relevant first ([]string)
	EventTitles  EventType = "titles"  // data: titles of the articles used ([]string)
	EventSources EventType = "sources" // data: the same articles with links ([]Source)
	EventToken   EventType = "token"   // data: a piece of the answer (string)
	EventDone    EventType = "done"    // data: Done; terminal
	EventError   EventType = "error"   // data: Error; terminal
	EventPing    EventType = "ping"    // no data; a heartbeat clients ignore

	// Protocol v1.1.
	EventCanceled EventType = "canceled" // data: Canceled; terminal
)

// Event is one line of the stream. Exactly one of the data fields is set,
// the one that belongs to Type. An event of a type this version does not
// know keeps its data as raw JSON in Raw, so clients can skip it.
type Event struct {
	Type     EventType
	Query    string
	Tags     []string
	Titles   []string
	Sources  []Source
	Token    string
	Done     *Done
	Err      *Error
	Canceled *Canceled
	Raw      json.RawMessage

	// Run and Seq say which run the event belongs to and its number there,
	// when the reader knows: events read from a Run, and by the Go client
	// (which counts NDJSON lines, reads SSE ids and WebSocket messages).
	// They are not part of an event's NDJSON encoding. Ping events are not
	// numbered.
	Run string
	Seq int
}

// Terminal reports whether e ends a stream.
func (e Event) Terminal() bool { return e.Type.Terminal() }

// Terminal reports whether events of type t end a stream: done, error and
// canceled.
func (t EventType) Terminal() bool {
	return t == EventDone || t == EventError || t == EventCanceled
}

// Canceled is the data of the terminal canceled event: the run was stopped
// before its answer was complete, and not by a failure.
type Canceled struct {
	Reason string `json:"reason"` // CancelByClient or CancelAbandon
}

// Source is an article the answer draws on.
type Source struct {
	Slug    string   `json:"slug"`
	Title   string   `json:"title"`
	URL     string   `json:"url"`
	Tags    []string `json:"tags"`
	Score   float64  `json:"score"`
	Snippet string   `json:"snippet"`
}

// Done is the data of the terminal done event.
type Done struct {
	FinishReason string `json:"finish_reason"`
	Usage        *Usage `json:"usage,omitempty"`
	ID           string `json:"id,omitempty"`
}

// Usage counts the tokens a generator spent, when it knows.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Finish reasons.
const (
	FinishStop   = "stop"   // the answer is complete
	FinishLength = "length" // the answer reached its token cap
)

// AppendJSON appends the JSON encoding of e, without a newline, to b:
// {"type":T,"data":D}, or {"type":T} for an event without data. Token and
// ping events, the hot path, are encoded without reflection.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	switch e.Type {
	case EventToken:
		b = append(b, `{"type":"token","data":`...)
		b = appendString(b, e.Token)
		return append(b, '}'), nil
	case EventPing:
		return append(b, `{"type":"ping"}`...), nil
	case "":
		return b, fmt.Errorf("runnel: event has no type")
	}
	b = append(b, `{"type":`...)
	b = appendString(b, string(e.Type))
	if e.HasData() {
		var err error
		b = append(b, `,"data":`...)
		if b, err = e.AppendData(b); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// HasData reports whether e's encoding carries data: every event but ping
// and an unknown type without any.
func (e *Event) HasData() bool {
	switch e.Type {
	case EventPing, "":
		return false
	case EventQuery, EventTags, EventTitles, EventSources, EventToken, EventDone, EventError, EventCanceled:
		return true
	}
	return len(e.Raw) > 0
}

// AppendData appends the JSON of e's data alone to b, as SSE and other
// framings that carry the type beside the data need it. It appends null for
// an event without data.
func (e *Event) AppendData(b []byte) ([]byte, error) {
	var data any
	switch e.Type {
	case EventToken:
		return appendString(b, e.Token), nil
	case EventQuery:
		return appendString(b, e.Query), nil
	case EventTags:
		data = nonNil(e.Tags)
	case EventTitles:
		data = nonNil(e.Titles)
	case EventSources:
		data = sourcesData(e.Sources)
	case EventDone:
		if e.Done == nil {
			data = Done{FinishReason: FinishStop}
		} else {
			data = e.Done
		}
	case EventError:
		if e.Err == nil {
			data = &Error{Code: EINTERNAL, Message: "Internal error."}
		} else {
			data = e.Err
		}
	case EventCanceled:
		if e.Canceled == nil {
			data = Canceled{Reason: CancelByClient}
		} else {
			data = e.Canceled
		}
	default:
		if len(e.Raw) == 0 {
			return append(b, "null"...), nil
		}
		data = e.Raw
	}
	js, err := json.Marshal(data)
	if err != nil {
		return b, fmt.Errorf("runnel: encode %s event: %w", e.Type, err)
	}
	return append(b, js...), nil
}

// MarshalJSON implements json.Marshaler.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil) }

// UnmarshalJSON implements json.Unmarshaler. It rejects an event without a
// type and data of the wrong shape for a known type. It also reads the run
// and seq fields that WebSocket messages carry.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w struct {
		Type EventType       `json:"type"`
		Data json.RawMessage `json:"data"`
		Run  string          `json:"run"`
		Seq  int             `json:"seq"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Type == "" {
		return fmt.Errorf("event has no type")
	}
	*e = Event{Type: w.Type, Run: w.Run, Seq: w.Seq}
	return e.unmarshalData(w.Data)
}

// UnmarshalData sets e's data from its JSON encoding, for framings that carry
// the type apart from the data (SSE). e.Type must be set.
func (e *Event) UnmarshalData(data []byte) error {
	if e.Type == "" {
		return fmt.Errorf("event has no type")
	}
	return e.unmarshalData(data)
}

func (e *Event) unmarshalData(data json.RawMessage) error {
	w := struct{ Type EventType }{e.Type}
	var target any
	switch w.Type {
	case EventQuery:
		target = &e.Query
	case EventTags:
		target = &e.Tags
	case EventTitles:
		target = &e.Titles
	case EventSources:
		target = &e.Sources
	case EventToken:
		target = &e.Token
	case EventDone:
		e.Done = new(Done)
		target = e.Done
	case EventError:
		e.Err = new(Error)
		target = e.Err
	case EventCanceled:
		e.Canceled = new(Canceled)
		target = e.Canceled
	case EventPing:
		return nil
	default:
		if len(data) > 0 && string(data) != "null" {
			e.Raw = append(json.RawMessage(nil), data...)
		}
		return nil
	}
	if len(data) == 0 || string(data) == "null" {
		if w.Type == EventDone || w.Type == EventCanceled {
			return nil
		}
		return fmt.Errorf("%s event has no data", w.Type)
	}
	if err := json.Unmarshal(data, target); err != nil {
		return fmt.Errorf("%s event: %w", w.Type, err)
	}
	if e.Err != nil && e.Err.Code == "" {
		return fmt.Errorf("error event has no code")
	}
	return nil
}

// sourcesData returns sources ready to encode: never null, and never a
// null tags list, which the protocol defines as [string].
func sourcesData(sources []Source) []Source {
	if sources == nil {
		return []Source{}
	}
	for i, s := range sources {
		if s.Tags == nil {
			c := slices.Clone(sources)
			for j := i; j < len(c); j++ {
				c[j].Tags = nonNil(c[j].Tags)
			}
			return c
		}
	}
	return sources
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like encoding/json it escapes
// <, > and & (the stream may be shown in a page), U+2028 and U+2029, and
// replaces invalid UTF-8 with U+FFFD, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = strconv.AppendInt(b, int64(r&0xf), 16)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
