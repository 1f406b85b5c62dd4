package http

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/runnel/runnel"
)

func TestWithoutSources(t *testing.T) {
	c := completion{base: "http://h"}
	list := c.sourcesText([]runnel.Source{{Title: "A [b]", URL: "/articles/a"}, {Title: "C", URL: "/articles/c"}})
	if want := "\n\nSources:\n\n- [1] [A \\[b\\]](http://h/articles/a)\n- [2] [C](http://h/articles/c)"; list != want {
		t.Fatalf("sourcesText = %q, want %q", list, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"An answer [1]." + list, "An answer [1]."},
		{"No list.", "No list."},
		{"Quoted\n\nSources:\n\n- [1] x\nand more text", "Quoted\n\nSources:\n\n- [1] x\nand more text"},
		{"", ""},
	} {
		if got := withoutSources(tc.in); got != tc.want {
			t.Errorf("withoutSources(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRecent(t *testing.T) {
	msg := func(n int) runnel.Message { return runnel.Message{Role: "user", Content: strings.Repeat("x", n)} }
	many := make([]runnel.Message, runnel.MaxMessages+5)
	for i := range many {
		many[i] = msg(1)
	}
	for _, tc := range []struct {
		name string
		in   []runnel.Message
		want int
	}{
		{"short", []runnel.Message{msg(1), msg(2)}, 2},
		{"too many", many, runnel.MaxMessages},
		{"too long", []runnel.Message{msg(runnel.MaxConversation), msg(10), msg(10)}, 2},
		{"the last alone is too long", []runnel.Message{msg(1), msg(runnel.MaxConversation + 1)}, 1},
	} {
		if got := recent(tc.in); len(got) != tc.want || !slices.Equal(got, tc.in[len(tc.in)-tc.want:]) {
			t.Errorf("%s: recent kept %d messages, want the last %d", tc.name, len(got), tc.want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{}`, ""},
		{`{"n":1,"temperature":0.2,"max_tokens":10,"stop":["x"],"user":"u","seed":1}`, ""},
		{`{"tools":[],"tool_choice":"none","functions":null,"logprobs":false,"top_logprobs":0,"response_format":{"type":"text"},"modalities":["text"]}`, ""},
		{`{"n":2}`, "n"},
		{`{"tools":[{"type":"function","function":{"name":"f"}}]}`, "tools"},
		{`{"tool_choice":"required"}`, "tool_choice"},
		{`{"functions":[{"name":"f"}]}`, "functions"},
		{`{"function_call":{"name":"f"}}`, "function_call"},
		{`{"logprobs":true}`, "logprobs"},
		{`{"top_logprobs":3}`, "top_logprobs"},
		{`{"response_format":{"type":"json_object"}}`, "response_format"},
		{`{"modalities":["text","audio"]}`, "modalities"},
		{`{"audio":{"voice":"alloy","format":"mp3"}}`, "audio"},
	} {
		var req chatRequest
		if err := json.Unmarshal([]byte(tc.body), &req); err != nil {
			t.Fatal(err)
		}
		if p, _ := req.unsupported(); p != tc.param {
			t.Errorf("unsupported(%s) = %q, want %q", tc.body, p, tc.param)
		}
	}
}

func TestMessageText(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
		ok        bool
	}{
		{`"hi"`, "hi", true},
		{`null`, "", true},
		{``, "", true},
		{`[{"type":"text","text":"a"},{"type":"text","text":"b"}]`, "a\nb", true},
		{`[{"type":"image_url","image_url":{"url":"x"}}]`, "", false},
		{`42`, "", false},
	} {
		got, err := messageText(json.RawMessage(tc.raw))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("messageText(%s) = %q, %v; want %q, ok %v", tc.raw, got, err, tc.want, tc.ok)
		}
	}
}
