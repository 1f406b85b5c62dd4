package runnel

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestIsVersion(t *testing.T) {
	for _, tt := range []struct {
		term string
		want bool
	}{{"24.04", true}, {"v1.2.3", true}, {"1.1", true}, {"2404", false}, {"v", false}, {"1.5x", false}, {"a.b", false}} {
		if got := IsVersion(tt.term); got != tt.want {
			t.Errorf("IsVersion(%q) = %v, want %v", tt.term, got, tt.want)
		}
	}
}

func TestParseQuestion(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		wantText  string
		wantTerms []string
	}{
		{"simple", "what is websocket", 0, "what is websocket?", []string{"websocket"}},
		{"trim and collapse", "  what   is\t\n websocket \r\n", 0, "what is websocket?", []string{"websocket"}},
		{"unicode white space", "what\u00a0is\u3000websocket\u2028\u0085", 0, "what is websocket?", []string{"websocket"}},
		{"control characters dropped", "what\x00 is\x07 web\x1bsocket\x7f\u009f", 0, "what is websocket?", []string{"websocket"}},
		{"format characters dropped", "\ufeffweb\u200bsocket\u00ad\u200d\u202e", 0, "websocket?", []string{"websocket"}},
		{"space around a dropped character", "web \x00 socket", 0, "web socket?", []string{"web", "socket"}},
		{"ends in question mark", "what is websocket?", 0, "what is websocket?", []string{"websocket"}},
		{"ends in full stop", "Explain websockets.", 0, "Explain websockets.", []string{"websockets"}},
		{"ends in exclamation mark", "websocket!", 0, "websocket!", []string{"websocket"}},
		{"ends in ellipsis", "websocket…", 0, "websocket…", []string{"websocket"}},
		{"ends in closing parenthesis", "what is tcp (really)", 0, "what is tcp (really)", []string{"tcp", "really"}},
		{"ends in a symbol, not punctuation", "c++", 0, "c++?", []string{"c"}},
		{"ends in an emoji", "websocket 🚀", 0, "websocket 🚀?", []string{"websocket"}},
		{"stop words removed", "How does a WebSocket work with HTTP?", 0, "How does a WebSocket work with HTTP?", []string{"websocket", "http"}},
		{"only stop words kept as terms", "What is it?", 0, "What is it?", []string{"what", "is", "it"}},
		{"only stop words without duplicates", "is it is it", 0, "is it is it?", []string{"is", "it"}},
		{"duplicates removed", "websocket WebSocket WEBSOCKET sse", 0, "websocket WebSocket WEBSOCKET sse?", []string{"websocket", "sse"}},
		{"numbers", "RFC 6455 or HTTP2", 0, "RFC 6455 or HTTP2?", []string{"rfc", "6455", "http2"}},
		{"versions stay whole", "upgrade Ubuntu 22.04 to v24.04.1, not HTTP/1.1. Or 3.", 0, "upgrade Ubuntu 22.04 to v24.04.1, not HTTP/1.1. Or 3.", []string{"upgrade", "ubuntu", "22.04", "v24.04.1", "http", "1.1", "3"}},
		{"single letters dropped, single digits and capitals kept", "what's HTTP/2 vs HTTP/3 in C, a or r", 0, "what's HTTP/2 vs HTTP/3 in C, a or r?", []string{"http", "2", "3", "c"}},
		{"the pronoun and the article are not names", "A B I am", 0, "A B I am?", []string{"b"}},
		{"a capital name", "How do I install R?", 0, "How do I install R?", []string{"install", "r"}},
		{"contractions", "why don't containers stop? it's what I'd want; can't, won't, isn’t", 0, "why don't containers stop? it's what I'd want; can't, won't, isn’t?", []string{"containers", "stop", "want"}},
		{"contractions typed without apostrophes", "dont doesnt cant wont whats", 0, "dont doesnt cant wont whats?", []string{"dont", "doesnt", "cant", "wont", "whats"}},
		{"a possessive", "the container's logs", 0, "the container's logs?", []string{"container", "logs"}},
		{"single letters kept when nothing else is left", "what is a b c?", 0, "what is a b c?", []string{"what", "is", "a", "b", "c"}},
		{"full-text operators split words", `"web"*socket^ NEAR(a b) col:x`, 0, `"web"*socket^ NEAR(a b) col:x?`, []string{"web", "socket", "near", "col"}},
		{"sql", "'; DROP TABLE articles; --", 0, "'; DROP TABLE articles; --", []string{"drop", "table", "articles"}},
		{"non-ASCII letters", "Füße und 日本語", 0, "Füße und 日本語?", []string{"füße", "und", "日本語"}},
		{"non-ASCII upper case", "ÄRGER ÉTÉ", 0, "ÄRGER ÉTÉ?", []string{"ärger", "été"}},
		{"exactly max bytes", "aaaaaaaaaa", 10, "aaaaaaaaaa?", []string{"aaaaaaaaaa"}},
		{"max counts after collapsing", "ab    cd", 5, "ab cd?", []string{"ab", "cd"}},
		{"max 0 means the default", strings.Repeat("a", DefaultMaxQuestion), 0, strings.Repeat("a", DefaultMaxQuestion) + "?", []string{strings.Repeat("a", DefaultMaxQuestion)}},
		{"negative max means the default", strings.Repeat("a", DefaultMaxQuestion), -1, strings.Repeat("a", DefaultMaxQuestion) + "?", []string{strings.Repeat("a", DefaultMaxQuestion)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuestion(tt.in, tt.max)
			if err != nil {
				t.Fatalf("ParseQuestion(%q, %d) error = %v, want nil", tt.in, tt.max, err)
			}
			if q.Text != tt.wantText {
				t.Errorf("ParseQuestion(%q, %d).Text = %q, want %q", tt.in, tt.max, q.Text, tt.wantText)
			}
			if !slices.Equal(q.Terms, tt.wantTerms) {
				t.Errorf("ParseQuestion(%q, %d).Terms = %q, want %q", tt.in, tt.max, q.Terms, tt.wantTerms)
			}
		})
	}
}

func TestParseQuestionErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		max      int
		wantCode string
		wantMsg  string // if set, the exact user-facing message
	}{
		{"empty", "", 0, EINVALID, "The question is empty."},
		{"blank", " \t\r\n\u00a0\u3000", 0, EINVALID, "The question is empty."},
		{"only control and format characters", "\x00\x1b \u200b\ufeff", 0, EINVALID, "The question is empty."},
		{"invalid UTF-8", "\xff", 0, EINVALID, "The question is not valid UTF-8."},
		{"truncated UTF-8", "what is \xc3", 0, EINVALID, "The question is not valid UTF-8."},
		{"UTF-8 encoded surrogate", "a\xed\xa0\x80b", 0, EINVALID, "The question is not valid UTF-8."},
		{"invalid UTF-8 wins over size", strings.Repeat("a", 50) + "\xff", 10, EINVALID, ""},
		{"only full-text syntax", `"*()^:`, 0, EINVALID, "The question has no words to search for."},
		{"only punctuation", "?!...", 0, EINVALID, "The question has no words to search for."},
		{"only emoji", "🚀 🎉", 0, EINVALID, "The question has no words to search for."},
		{"over max", strings.Repeat("a", 11), 10, ETOOLARGE, "The question is 11 bytes long; the limit is 10."},
		{"max counts bytes, not runes", strings.Repeat("é", 6), 11, ETOOLARGE, "The question is 12 bytes long; the limit is 11."},
		{"max 0 means the default", strings.Repeat("a", DefaultMaxQuestion+1), 0, ETOOLARGE, "The question is 2001 bytes long; the limit is 2000."},
		{"negative max means the default", strings.Repeat("a", DefaultMaxQuestion+1), -5, ETOOLARGE, "The question is 2001 bytes long; the limit is 2000."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuestion(tt.in, tt.max)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseQuestion(%q, %d) = %+v, %v; want *Error %s", tt.in, tt.max, q, err, tt.wantCode)
			}
			if e.Code != tt.wantCode {
				t.Errorf("ParseQuestion(%q, %d) code = %q, want %q", tt.in, tt.max, e.Code, tt.wantCode)
			}
			if tt.wantMsg != "" && e.Message != tt.wantMsg {
				t.Errorf("ParseQuestion(%q, %d) message = %q, want %q", tt.in, tt.max, e.Message, tt.wantMsg)
			}
			if q.Text != "" || q.Terms != nil {
				t.Errorf("ParseQuestion(%q, %d) = %+v with an error, want the zero Query", tt.in, tt.max, q)
			}
		})
	}
}

func TestParseQuestionMaxTerms(t *testing.T) {
	var words []string
	for i := range 2 * maxTerms {
		words = append(words, fmt.Sprintf("w%02d", i))
	}
	in := strings.Join(words, " ")
	q, err := ParseQuestion(in, 0)
	if err != nil {
		t.Fatalf("ParseQuestion(%q) error = %v", in, err)
	}
	if want := words[:32]; !slices.Equal(q.Terms, want) {
		t.Errorf("ParseQuestion(%q).Terms = %q, want the first 32 words %q", in, q.Terms, want)
	}

	// Duplicates and stop words do not count towards the limit.
	in = "the " + strings.Repeat("w00 is ", 10) + in
	q, err = ParseQuestion(in, 0)
	if err != nil {
		t.Fatalf("ParseQuestion(%q) error = %v", in, err)
	}
	if want := words[:32]; !slices.Equal(q.Terms, want) {
		t.Errorf("ParseQuestion(%q).Terms = %q, want %q", in, q.Terms, want)
	}

	// Only stop words, more than the limit: still at most 32.
	stop := slices.Sorted(maps.Keys(stopWords))
	in = strings.Join(stop, " ")
	q, err = ParseQuestion(in, 0)
	if err != nil {
		t.Fatalf("ParseQuestion(%q) error = %v", in, err)
	}
	if want := stop[:32]; !slices.Equal(q.Terms, want) {
		t.Errorf("ParseQuestion(only stop words).Terms = %q, want %q", q.Terms, want)
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"What is a WebSocket?", []string{"what", "is", "a", "websocket"}},
		{"web-socket, server_sent/events", []string{"web", "socket", "server", "sent", "events"}},
		{`"a"*b^c:(d)`, []string{"a", "b", "c", "d"}},
		{"Füße 日本語 x2 é", []string{"füße", "日本語", "x2", "é"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Words(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("Words(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsStopWord(t *testing.T) {
	tests := []struct {
		w    string
		want bool
	}{
		{"what", true},
		{"is", true},
		{"the", true},
		{"explain", true},
		{"websocket", false},
		{"What", false}, // callers pass lower-case words
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.w, func(t *testing.T) {
			if got := IsStopWord(tt.w); got != tt.want {
				t.Errorf("IsStopWord(%q) = %v, want %v", tt.w, got, tt.want)
			}
		})
	}
}

func TestNormalizeTag(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"websocket", "websocket"},
		{"web-socket", "websocket"},
		{"WebSocket", "websocket"},
		{"Web Socket", "websocket"},
		{"server-sent events", "serversentevents"},
		{"HTTP/2", "http2"},
		{"C++", "c"},
		{"Füße", "füße"},
		{"日本語", "日本語"},
		{"", ""},
		{"--", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := NormalizeTag(tt.in); got != tt.want {
				t.Errorf("NormalizeTag(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTagCandidates(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []string // each must be a candidate
		notWant []string // none may be a candidate
	}{
		{"single word", "what is websocket?", []string{"websocket"}, []string{"what", "is", "whatis", "iswebsocket"}},
		{"adjacent words joined", "what is web socket?", []string{"web", "socket", "websocket"}, []string{"what", "is", "whatisweb"}},
		{"plural", "what are websockets?", []string{"websockets", "websocket"}, []string{"are"}},
		{"joined plural", "how do web sockets close?", []string{"websockets", "websocket", "sockets", "socket"}, nil},
		{"three words", "server sent events", []string{"server", "sent", "events", "event", "serversent", "serversentevents", "serversentevent", "sentevents", "sentevent"}, nil},
		{"at most three words joined", "a b c d e", []string{"bc", "bcd", "cde"}, []string{"a", "ab", "bcde"}},
		{"short words keep their s", "bus gas", []string{"bus", "gas", "busgas", "busga"}, []string{"bu", "ga"}},
		{"case and punctuation", "Web-Socket!", []string{"web", "socket", "websocket"}, []string{"Web", "web-socket"}},
		{"only stop words", "what is it", nil, []string{"what", "is", "it", "whatis"}},
		{"empty", "", nil, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TagCandidates(tt.text)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("TagCandidates(%q) = %q, want it to contain %q", tt.text, got, w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(got, w) {
					t.Errorf("TagCandidates(%q) = %q, want it not to contain %q", tt.text, got, w)
				}
			}
			seen := map[string]bool{}
			for _, c := range got {
				if c == "" || seen[c] || c != NormalizeTag(c) {
					t.Errorf("TagCandidates(%q) = %q: %q is empty, repeated or not normalised", tt.text, got, c)
				}
				seen[c] = true
			}
		})
	}
}

// TestTagNamedByQuestion checks the contract between the two sides: a tag
// is named by a question when NormalizeTag(tag) is among its candidates.
func TestTagNamedByQuestion(t *testing.T) {
	tests := []struct {
		tag, question string
	}{
		{"websocket", "what is websocket"},
		{"web-socket", "what is web socket"},
		{"WebSocket", "what is web-socket"},
		{"web-socket", "what are websockets?"},
		{"server-sent-events", "how do server sent events reconnect?"},
		{"Server-Sent Event", "how do server-sent events reconnect?"},
		{"HTTP/2", "is http 2 faster?"},
		{"Füße", "warum frieren FÜSSE und Füße?"},
	}
	for _, tt := range tests {
		t.Run(tt.tag+"/"+tt.question, func(t *testing.T) {
			q, err := ParseQuestion(tt.question, 0)
			if err != nil {
				t.Fatalf("ParseQuestion(%q) error = %v", tt.question, err)
			}
			if got := TagCandidates(q.Text); !slices.Contains(got, NormalizeTag(tt.tag)) {
				t.Errorf("TagCandidates(%q) = %q, want it to contain NormalizeTag(%q) = %q", q.Text, got, tt.tag, NormalizeTag(tt.tag))
			}
		})
	}
}

func FuzzParseQuestion(f *testing.F) {
	for _, s := range []string{
		"",
		" ",
		"what is websocket",
		"What is it?",
		`"web" OR socket*`,
		`NEAR(web socket, 2)`,
		`title:websocket AND NOT body:sse`,
		`^websocket + -sse "unterminated`,
		`{col1 col2}: x`,
		"'; DROP TABLE passages_fts; --",
		"1 OR 1=1 /* */ UNION SELECT * FROM articles",
		"web\x00socket",
		"\x00",
		"\xff\xfe\xfd",
		"ok \xc3",
		"\xed\xa0\x80",
		"\u202ertl\u202c \u200b\ufeff\u00ad",
		"Füße 日本語 हिन्दी İstanbul e\u0301",
		"👩\u200d💻?",
		strings.Repeat("websocket ", DefaultMaxQuestion/10) + "x",
		strings.Repeat("é", DefaultMaxQuestion/2+1),
		strings.Repeat(" \t", DefaultMaxQuestion) + "x",
		strings.Repeat("w ", 100),
	} {
		f.Add(s, 0)
	}
	f.Add("aaaaaaaaaaa", 10)
	f.Add("a b", 3)
	f.Add("ab", 1)
	f.Add("websocket", -7)

	f.Fuzz(func(t *testing.T, s string, max int) {
		q, err := ParseQuestion(s, max)
		if max <= 0 {
			max = DefaultMaxQuestion
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("ParseQuestion(%q, %d) error = %#v, want a *Error", s, max, err)
			}
			switch e.Code {
			case EINVALID:
			case ETOOLARGE:
				if len(s) <= max {
					t.Errorf("ParseQuestion(%q, %d) = %v for %d bytes, want no ETOOLARGE", s, max, err, len(s))
				}
			default:
				t.Errorf("ParseQuestion(%q, %d) code = %q, want %q or %q", s, max, e.Code, EINVALID, ETOOLARGE)
			}
			return
		}

		if !utf8.ValidString(q.Text) {
			t.Errorf("ParseQuestion(%q, %d).Text = %q, not valid UTF-8", s, max, q.Text)
		}
		if q.Text == "" || len(q.Text)-1 > max { // max+1 would overflow for MaxInt
			t.Errorf("ParseQuestion(%q, %d).Text = %q (%d bytes), want 1 to %d bytes", s, max, q.Text, len(q.Text), max+1)
		}
		if strings.TrimSpace(q.Text) != q.Text || strings.Contains(q.Text, "  ") {
			t.Errorf("ParseQuestion(%q, %d).Text = %q, white space not trimmed or collapsed", s, max, q.Text)
		}
		for _, r := range q.Text {
			if r != ' ' && (unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Errorf("ParseQuestion(%q, %d).Text = %q, contains %U", s, max, q.Text, r)
			}
		}
		if last, _ := utf8.DecodeLastRuneInString(q.Text); !unicode.IsPunct(last) {
			t.Errorf("ParseQuestion(%q, %d).Text = %q, does not end in punctuation", s, max, q.Text)
		}

		if len(q.Terms) == 0 || len(q.Terms) > maxTerms {
			t.Errorf("ParseQuestion(%q, %d).Terms = %q, want 1 to %d terms", s, max, q.Terms, maxTerms)
		}
		words := Words(q.Text)
		seen := map[string]bool{}
		for _, term := range q.Terms {
			if term == "" {
				t.Errorf("ParseQuestion(%q, %d).Terms = %q, contains an empty term", s, max, q.Terms)
			}
			for _, r := range term {
				if !isWordRune(r) {
					t.Errorf("ParseQuestion(%q, %d).Terms = %q, term %q contains %U", s, max, q.Terms, term, r)
				}
			}
			if strings.ToLower(term) != term {
				t.Errorf("ParseQuestion(%q, %d).Terms = %q, term %q is not lower case", s, max, q.Terms, term)
			}
			if seen[term] {
				t.Errorf("ParseQuestion(%q, %d).Terms = %q, term %q repeated", s, max, q.Terms, term)
			}
			seen[term] = true
			if !slices.Contains(words, term) {
				t.Errorf("ParseQuestion(%q, %d).Terms = %q, term %q is not a word of %q", s, max, q.Terms, term, q.Text)
			}
		}

		// The query event carries Text; parsing it again must give the same query.
		again, err := ParseQuestion(q.Text, len(q.Text))
		if err != nil || again.Text != q.Text || !slices.Equal(again.Terms, q.Terms) {
			t.Errorf("ParseQuestion(%q) = %+v, %v; want %+v (parsing is not idempotent)", q.Text, again, err, q)
		}
	})
}
