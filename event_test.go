package runnel

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestEventJSON pins the wire form of every event type (docs/protocol.md).
func TestEventJSON(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"query", Event{Type: EventQuery, Query: "what is <b>websocket</b>?"}, `{"type":"query","data":"what is \u003cb\u003ewebsocket\u003c/b\u003e?"}`},
		{"tags", Event{Type: EventTags, Tags: []string{"websocket", "browser"}}, `{"type":"tags","data":["websocket","browser"]}`},
		{"nil tags", Event{Type: EventTags}, `{"type":"tags","data":[]}`},
		{"titles", Event{Type: EventTitles, Titles: []string{"WebSocket", "SSE & fetch"}}, `{"type":"titles","data":["WebSocket","SSE \u0026 fetch"]}`},
		{"nil titles", Event{Type: EventTitles}, `{"type":"titles","data":[]}`},
		{
			"sources",
			Event{Type: EventSources, Sources: []Source{{Slug: "websocket", Title: "WebSocket", URL: "/articles/websocket", Tags: []string{"websocket", "protocols"}, Score: 12.3, Snippet: "A full-duplex…"}}},
			`{"type":"sources","data":[{"slug":"websocket","title":"WebSocket","url":"/articles/websocket","tags":["websocket","protocols"],"score":12.3,"snippet":"A full-duplex…"}]}`,
		},
		{"nil sources", Event{Type: EventSources}, `{"type":"sources","data":[]}`},
		{"token", Event{Type: EventToken, Token: "WebSocket "}, `{"type":"token","data":"WebSocket "}`},
		{"token with escapes", Event{Type: EventToken, Token: "line\n\t\"q\" \\ <&>\u2028"}, `{"type":"token","data":"line\n\t\"q\" \\ \u003c\u0026\u003e\u2028"}`},
		{"empty token", Event{Type: EventToken}, `{"type":"token","data":""}`},
		{"ping", Event{Type: EventPing}, `{"type":"ping"}`},
		{"ping ignores data fields", Event{Type: EventPing, Token: "x", Raw: json.RawMessage(`1`)}, `{"type":"ping"}`},
		{"done", Event{Type: EventDone, Done: &Done{FinishReason: FinishStop}}, `{"type":"done","data":{"finish_reason":"stop"}}`},
		{"nil done", Event{Type: EventDone}, `{"type":"done","data":{"finish_reason":"stop"}}`},
		{
			"done with usage and id",
			Event{Type: EventDone, Done: &Done{FinishReason: FinishLength, Usage: &Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}, ID: "5f1c0e9a2b7d4c31"}},
			`{"type":"done","data":{"finish_reason":"length","usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15},"id":"5f1c0e9a2b7d4c31"}}`,
		},
		{"error", Event{Type: EventError, Err: &Error{Code: ETIMEOUT, Message: "The answer took too long."}}, `{"type":"error","data":{"code":"timeout","message":"The answer took too long."}}`},
		{"retryable error", Event{Type: EventError, Err: &Error{Code: EUNAVAILABLE, Message: "Ask again.", Retryable: true}}, `{"type":"error","data":{"code":"unavailable","message":"Ask again.","retryable":true}}`},
		{"nil error", Event{Type: EventError}, `{"type":"error","data":{"code":"internal","message":"Internal error."}}`},
		{"unknown type with data", Event{Type: "future", Raw: json.RawMessage(`{ "x" : [1, 2] }`)}, `{"type":"future","data":{"x":[1,2]}}`},
		{"unknown type without data", Event{Type: "future"}, `{"type":"future"}`},
		{"unknown type escaped", Event{Type: `a"<b>`}, `{"type":"a\"\u003cb\u003e"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.AppendJSON(nil)
			if err != nil || string(got) != tt.want {
				t.Errorf("AppendJSON(%+v) = %s, %v; want %s", tt.e, got, err, tt.want)
			}

			prefix := []byte("{\"type\":\"ping\"}\n")
			got, err = tt.e.AppendJSON(bytes.Clone(prefix))
			if err != nil || string(got) != string(prefix)+tt.want {
				t.Errorf("AppendJSON(%q, %+v) = %q, %v; want %q", prefix, tt.e, got, err, string(prefix)+tt.want)
			}

			got, err = tt.e.MarshalJSON()
			if err != nil || string(got) != tt.want {
				t.Errorf("MarshalJSON(%+v) = %s, %v; want %s", tt.e, got, err, tt.want)
			}

			// Through encoding/json, by value and by pointer, as encoders do.
			for _, v := range []any{tt.e, &tt.e} {
				got, err = json.Marshal(v)
				if err != nil || string(got) != tt.want {
					t.Errorf("json.Marshal(%T %+v) = %s, %v; want %s", v, tt.e, got, err, tt.want)
				}
			}
			if !json.Valid([]byte(tt.want)) {
				t.Errorf("want %s is not valid JSON", tt.want)
			}
		})
	}
}

func TestEventJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		e    Event
	}{
		{"no type", Event{Token: "x"}},
		{"unknown type with invalid raw data", Event{Type: "future", Raw: json.RawMessage(`{bad`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := tt.e.AppendJSON(nil); err == nil {
				t.Errorf("AppendJSON(%+v) = %s, nil; want an error", tt.e, got)
			}
			if got, err := json.Marshal(tt.e); err == nil {
				t.Errorf("json.Marshal(%+v) = %s, nil; want an error", tt.e, got)
			}
		})
	}
}

// TestEventJSONSourceNilTags checks that a Source whose Tags is nil still
// carries "tags":[] as the protocol's [string] says, like the tags event.
func TestEventJSONSourceNilTags(t *testing.T) {
	e := Event{Type: EventSources, Sources: []Source{{Slug: "a", Title: "A", URL: "/articles/a"}}}
	want := `{"type":"sources","data":[{"slug":"a","title":"A","url":"/articles/a","tags":[],"score":0,"snippet":""}]}`
	if got, err := e.AppendJSON(nil); err != nil || string(got) != want {
		t.Errorf("AppendJSON(%+v) = %s, %v; want %s", e, got, err, want)
	}
}

func TestEventUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{"query", `{"type":"query","data":"what is websocket?"}`, Event{Type: EventQuery, Query: "what is websocket?"}},
		{"tags", `{"type":"tags","data":["websocket","browser"]}`, Event{Type: EventTags, Tags: []string{"websocket", "browser"}}},
		{"empty tags", `{"type":"tags","data":[]}`, Event{Type: EventTags, Tags: []string{}}},
		{"titles", `{"type":"titles","data":["WebSocket"]}`, Event{Type: EventTitles, Titles: []string{"WebSocket"}}},
		{
			"sources",
			`{"type":"sources","data":[{"slug":"ws","title":"WebSocket","url":"/articles/ws","tags":["websocket"],"score":1.5,"snippet":"…"}]}`,
			Event{Type: EventSources, Sources: []Source{{Slug: "ws", Title: "WebSocket", URL: "/articles/ws", Tags: []string{"websocket"}, Score: 1.5, Snippet: "…"}}},
		},
		{"token", `{"type":"token","data":"a\nb \u003c"}`, Event{Type: EventToken, Token: "a\nb <"}},
		{"empty token", `{"type":"token","data":""}`, Event{Type: EventToken}},
		{"ping", `{"type":"ping"}`, Event{Type: EventPing}},
		{"ping with data", `{"type":"ping","data":{"x":1}}`, Event{Type: EventPing}},
		{"done", `{"type":"done","data":{"finish_reason":"length","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3},"id":"r1"}}`, Event{Type: EventDone, Done: &Done{FinishReason: FinishLength, Usage: &Usage{1, 2, 3}, ID: "r1"}}},
		{"done without data", `{"type":"done"}`, Event{Type: EventDone, Done: &Done{}}},
		{"error", `{"type":"error","data":{"code":"upstream","message":"The model failed.","retryable":true}}`, Event{Type: EventError, Err: &Error{Code: EUPSTREAM, Message: "The model failed.", Retryable: true}}},
		{"error without message", `{"type":"error","data":{"code":"internal"}}`, Event{Type: EventError, Err: &Error{Code: EINTERNAL}}},
		{"unknown type keeps raw data", `{"type":"future","data":{"x": [1, 2]}}`, Event{Type: "future", Raw: json.RawMessage(`{"x": [1, 2]}`)}},
		{"unknown type keeps raw scalar", `{"type":"future","data":"s"}`, Event{Type: "future", Raw: json.RawMessage(`"s"`)}},
		{"unknown type without data", `{"type":"future"}`, Event{Type: "future"}},
		{"unknown fields ignored", `{"type":"token","data":"x","id":7,"extra":{"a":[]}}`, Event{Type: EventToken, Token: "x"}},
		{"white space", " {\n \"data\" : \"x\" ,\t\"type\" : \"token\" }\n", Event{Type: EventToken, Token: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Event
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatalf("json.Unmarshal(%s) error = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("json.Unmarshal(%s) = %#v, want %#v", tt.in, got, tt.want)
			}

			// Decoding into a used Event leaves nothing of the old one.
			used := Event{Type: EventSources, Query: "q", Tags: []string{"t"}, Titles: []string{"x"}, Sources: []Source{{Slug: "s"}},
				Token: "tok", Done: &Done{ID: "old"}, Err: &Error{Code: "old"}, Raw: json.RawMessage(`1`)}
			if err := used.UnmarshalJSON([]byte(tt.in)); err != nil || !reflect.DeepEqual(used, tt.want) {
				t.Errorf("UnmarshalJSON(%s) into a used Event = %#v, %v; want %#v", tt.in, used, err, tt.want)
			}
		})
	}
}

// TestEventUnmarshalRawIsCopied checks that Raw does not alias the input,
// which a line reader reuses for the next line.
func TestEventUnmarshalRawIsCopied(t *testing.T) {
	in := []byte(`{"type":"future","data":{"x":1}}`)
	var e Event
	if err := e.UnmarshalJSON(in); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = ' '
	}
	if string(e.Raw) != `{"x":1}` {
		t.Errorf("Raw = %s after the input was overwritten, want {\"x\":1}", e.Raw)
	}
}

func TestEventUnmarshalJSONErrors(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"not JSON", `type=token`},
		{"truncated", `{"type":"token","data":"x`},
		{"not an object", `["token","x"]`},
		{"null", `null`},
		{"empty object", `{}`},
		{"missing type", `{"data":"x"}`},
		{"empty type", `{"type":"","data":"x"}`},
		{"null type", `{"type":null,"data":"x"}`},
		{"type not a string", `{"type":1,"data":"x"}`},
		{"query without data", `{"type":"query"}`},
		{"query data not a string", `{"type":"query","data":["x"]}`},
		{"tags without data", `{"type":"tags"}`},
		{"tags data not a list", `{"type":"tags","data":"websocket"}`},
		{"tags of numbers", `{"type":"tags","data":[1,2]}`},
		{"titles data not a list", `{"type":"titles","data":{}}`},
		{"sources data not a list", `{"type":"sources","data":{"slug":"x"}}`},
		{"source score not a number", `{"type":"sources","data":[{"slug":"x","score":"high"}]}`},
		{"token without data", `{"type":"token"}`},
		{"token data a number", `{"type":"token","data":1}`},
		{"token data an object", `{"type":"token","data":{"text":"x"}}`},
		{"done data a string", `{"type":"done","data":"stop"}`},
		{"done usage not an object", `{"type":"done","data":{"finish_reason":"stop","usage":3}}`},
		{"error without data", `{"type":"error"}`},
		{"error without code", `{"type":"error","data":{"message":"Something failed."}}`},
		{"error with empty code", `{"type":"error","data":{"code":"","message":"x"}}`},
		{"error data a string", `{"type":"error","data":"boom"}`},
		{"error retryable not a bool", `{"type":"error","data":{"code":"internal","retryable":"yes"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			if err := json.Unmarshal([]byte(tt.in), &e); err == nil {
				t.Errorf("json.Unmarshal(%s) = %#v, nil; want an error", tt.in, e)
			}
		})
	}
}

// TestEventUnmarshalNullData checks that "data":null counts as no data: a
// token, query, tags, titles, sources or error event needs data of its shape.
func TestEventUnmarshalNullData(t *testing.T) {
	for _, typ := range []EventType{EventQuery, EventTags, EventTitles, EventSources, EventToken, EventError} {
		in := `{"type":"` + string(typ) + `","data":null}`
		var e Event
		if err := json.Unmarshal([]byte(in), &e); err == nil {
			t.Errorf("json.Unmarshal(%s) = %#v, nil; want an error", in, e)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want Event // what decoding the encoding gives; e itself if zero
	}{
		{"query", Event{Type: EventQuery, Query: "what is \"web\" <socket> & \u2028 😀?"}, Event{}},
		{"query with invalid UTF-8", Event{Type: EventQuery, Query: "a\xffb"}, Event{Type: EventQuery, Query: "a\uFFFDb"}},
		{"tags", Event{Type: EventTags, Tags: []string{"web-socket", "日本語"}}, Event{}},
		{"nil tags", Event{Type: EventTags}, Event{Type: EventTags, Tags: []string{}}},
		{"titles", Event{Type: EventTitles, Titles: []string{"A & B", ""}}, Event{}},
		{"nil titles", Event{Type: EventTitles}, Event{Type: EventTitles, Titles: []string{}}},
		{"sources", Event{Type: EventSources, Sources: []Source{
			{Slug: "a b/c", Title: "A", URL: "/articles/a%20b/c", Tags: []string{"x"}, Score: 0.123, Snippet: "…<b>x</b>…"},
			{Slug: "d", Title: "D", URL: "/articles/d", Tags: []string{}, Score: -1},
		}}, Event{}},
		{"nil sources", Event{Type: EventSources}, Event{Type: EventSources, Sources: []Source{}}},
		{"token", Event{Type: EventToken, Token: "Hello,\n\tworld \x00\x1f\x7f"}, Event{}},
		{"empty token", Event{Type: EventToken}, Event{}},
		{"ping", Event{Type: EventPing}, Event{}},
		{"done", Event{Type: EventDone, Done: &Done{FinishReason: FinishStop, ID: "r"}}, Event{}},
		{"done with usage", Event{Type: EventDone, Done: &Done{FinishReason: FinishLength, Usage: &Usage{1, 2, 3}}}, Event{}},
		{"nil done", Event{Type: EventDone}, Event{Type: EventDone, Done: &Done{FinishReason: FinishStop}}},
		{"error", Event{Type: EventError, Err: &Error{Code: EUPSTREAM, Message: "m", Retryable: true}}, Event{}},
		{"nil error", Event{Type: EventError}, Event{Type: EventError, Err: &Error{Code: EINTERNAL, Message: "Internal error."}}},
		{"unknown type with data", Event{Type: "future", Raw: json.RawMessage(`{"x":[1,2]}`)}, Event{}},
		{"unknown type without data", Event{Type: "future"}, Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want.Type == "" {
				want = tt.e
			}
			b, err := json.Marshal(tt.e)
			if err != nil {
				t.Fatalf("json.Marshal(%+v) error = %v", tt.e, err)
			}
			var got Event
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("json.Unmarshal(%s) error = %v", b, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("json.Unmarshal(%s) = %#v, want %#v", b, got, want)
			}
			if got.Terminal() != want.Terminal() {
				t.Errorf("%s: Terminal() = %v after the round trip, want %v", tt.name, got.Terminal(), want.Terminal())
			}
		})
	}
}

func TestEventTerminal(t *testing.T) {
	for typ, want := range map[EventType]bool{
		EventQuery: false, EventTags: false, EventTitles: false, EventSources: false,
		EventToken: false, EventPing: false, "future": false, "": false,
		EventDone: true, EventError: true,
	} {
		if got := (Event{Type: typ}).Terminal(); got != want {
			t.Errorf("Event{Type: %q}.Terminal() = %v, want %v", typ, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "hello, world", `"hello, world"`},
		{"quotes", `say "hi"`, `"say \"hi\""`},
		{"backslash", `a\b\\c`, `"a\\b\\\\c"`},
		{"slash is not escaped", "a/b", `"a/b"`},
		{"newline, return, tab", "a\nb\rc\td", `"a\nb\rc\td"`},
		{"other control characters", "\x00\x01\b\f\x1b\x1f", `"\u0000\u0001\u0008\u000c\u001b\u001f"`},
		{"DEL is not escaped", "\x7f", "\"\x7f\""},
		{"HTML", "<a href='x'>&amp;</a>", `"\u003ca href='x'\u003e\u0026amp;\u003c/a\u003e"`},
		{"line and paragraph separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"neighbours of the separators", "\u2027\u202a\u202f", "\"\u2027\u202a\u202f\""},
		{"non-ASCII", "Füße 日本語", `"Füße 日本語"`},
		{"emoji", "😀👩‍💻", `"😀👩‍💻"`},
		{"replacement character is kept", "\uFFFD", "\"\uFFFD\""},
		{"invalid byte", "a\xffb", `"a\ufffdb"`},
		{"each invalid byte replaced", "\xff\xfe", `"\ufffd\ufffd"`},
		{"truncated sequence", "a\xe2\x82", `"a\ufffd\ufffd"`},
		{"lone continuation byte", "\x80x", `"\ufffdx"`},
		{"encoded surrogate", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"over U+10FFFF", "\xf4\x90\x80\x80", `"\ufffd\ufffd\ufffd\ufffd"`},
		{"overlong encoding", "\xc0\xaf", `"\ufffd\ufffd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendString(nil, tt.in)
			if string(got) != tt.want {
				t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			checkAppendString(t, tt.in)
		})
	}
}

// checkAppendString checks appendString(s) against encoding/json.
func checkAppendString(t *testing.T, s string) {
	t.Helper()
	prefix := []byte(`{"data":`)
	out := appendString(bytes.Clone(prefix), s)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("appendString(%q, %q) = %q, lost the prefix", prefix, s, out)
	}
	enc := out[len(prefix):]
	if !json.Valid(enc) || !utf8.Valid(enc) {
		t.Fatalf("appendString(%q) = %q, not valid JSON in UTF-8", s, enc)
	}
	var got string
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatalf("json.Unmarshal(appendString(%q) = %q) error = %v", s, enc, err)
	}
	// encoding/json replaces each byte of invalid UTF-8 with U+FFFD, as does
	// converting to runes (strings.ToValidUTF8 would replace a run of them
	// with one).
	want := s
	if !utf8.ValidString(s) {
		want = string([]rune(s))
	}
	if got != want {
		t.Errorf("json.Unmarshal(appendString(%q)) = %q, want %q", s, got, want)
	}
	std, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal(%q) error = %v", s, err)
	}
	var stdGot string
	if err := json.Unmarshal(std, &stdGot); err != nil || stdGot != got {
		t.Errorf("appendString(%q) decodes to %q; encoding/json's %s decodes to %q", s, got, std, stdGot)
	}
	// Safe to put in a page and in a JavaScript string, like encoding/json.
	if i := bytes.IndexAny(enc, "<>&\u2028\u2029"); i >= 0 {
		t.Errorf("appendString(%q) = %q, unescaped %q", s, enc, enc[i:])
	}
	for _, c := range enc {
		if c < 0x20 {
			t.Errorf("appendString(%q) = %q, unescaped control byte %#x", s, enc, c)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", `"quoted" \ back\slash`, "\x00\x01\b\f\n\r\t\x1f\x7f",
		"<script>&</script>", "\u2028\u2029", "😀👩‍💻", "Füße 日本語", "\uFFFD",
		"\xff", "a\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\xe2\x80\xa8\xe2\x80",
		strings.Repeat("a\"<\xff\u2028", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAppendString(t, s)
	})
}

var benchToken = Event{Type: EventToken, Token: "WebSocket "}

// BenchmarkAppendJSONToken measures the hot path: one token event encoded
// into a reused buffer.
func BenchmarkAppendJSONToken(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		var err error
		buf, err = benchToken.AppendJSON(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkJSONMarshalToken is the same event through encoding/json, which
// calls MarshalJSON and then validates and compacts its output.
func BenchmarkJSONMarshalToken(b *testing.B) {
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = json.Marshal(benchToken)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkJSONMarshalTokenStruct is the same line from a plain struct by
// reflection, what encoding the events without AppendJSON would cost.
func BenchmarkJSONMarshalTokenStruct(b *testing.B) {
	b.ReportAllocs()
	v := struct {
		Type EventType `json:"type"`
		Data string    `json:"data"`
	}{benchToken.Type, benchToken.Token}
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
