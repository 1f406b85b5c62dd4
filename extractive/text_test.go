package extractive

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

func TestStem(t *testing.T) {
	// Each group must reduce to one stem; the stem itself does not matter.
	groups := [][]string{
		{"socket", "sockets"},
		{"stream", "streams", "streaming", "streamed"},
		{"proxy", "proxies", "proxied"},
		{"cache", "caches", "caching", "cached"},
		{"encode", "encodes", "encoding", "encoded"},
		{"run", "running"},
		{"stop", "stops", "stopped", "stopping"},
		{"buffer", "buffers", "buffering", "buffered"},
		{"process", "processes"},
		{"http", "https"},
		{"websocket", "websockets"},
		{"message", "messages"},
		{"resume", "resumes", "resumed", "resumable"},
		{"read", "reads", "readable"},
		{"avail", "available"},
	}
	for _, g := range groups {
		t.Run(g[0], func(t *testing.T) {
			want := stem(g[0])
			for _, w := range g[1:] {
				if got := stem(w); got != want {
					t.Errorf("stem(%q) = %q, want %q (the stem of %q)", w, got, want, g[0])
				}
			}
		})
	}
	// Short words and words that only look inflected keep their form.
	for _, tt := range []struct{ in, want string }{
		{"string", "string"}, {"ping", "ping"}, {"pings", "ping"}, {"status", "status"},
		{"bus", "bus"}, {"add", "add"}, {"adding", "add"}, {"need", "need"}, {"calling", "call"},
		{"table", "tabl"}, {"enable", "enabl"}, {"enabled", "enabl"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			if got := stem(tt.in); got != tt.want {
				t.Errorf("stem(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestBlocks(t *testing.T) {
	p := func(s string) block { return block{text: s} }
	code := func(s, lang string) block { return block{text: s, code: true, lang: lang} }
	tests := []struct {
		name string
		text string
		want []block
	}{
		{"paragraphs", "One line\nand its wrap.\n\n  \nSecond.", []block{p("One line\nand its wrap."), p("Second.")}},
		{"list items apart", "Intro:\n- first item\n- second item\n  continued\n1. third", []block{p("Intro:"), p("- first item"), p("- second item\n  continued"), p("1. third")}},
		{"fenced code a block", "Before.\n```go\nx := 1\n\ny := 2\n```\nAfter.", []block{p("Before."), code("x := 1\n\ny := 2", "go"), p("After.")}},
		{"a longer fence holds a shorter one", "Run:\n````\n```\nin\n```\n````\nEnd.", []block{p("Run:"), code("```\nin\n```", ""), p("End.")}},
		{"tildes", "~~~ sh {.x}\nls\n~~~~\n", []block{code("ls", "sh")}},
		{"unclosed fence", "Before.\n~~~\ncode", []block{p("Before.")}},
		{"headings and tables dropped", "# Title\nText.\n| a | b |\n|---|---|\nMore.", []block{p("Text."), p("More.")}},
		{"setext heading dropped", "Title\n=====\nText.\n\n---\nEnd.", []block{p("Text."), p("End.")}},
		{"thematic break", "Text.\n***\nMore.", []block{p("Text."), p("More.")}},
		{"hashtag kept", "#golang is a tag.", []block{p("#golang is a tag.")}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := blocks(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("blocks(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestBlocksLong(t *testing.T) {
	// A passage over the limit is cut at a line, or at least between
	// characters: "é" is two bytes and the limit is even plus one here.
	text := "x" + strings.Repeat("é", maxPassageBytes)
	got := blocks(text)
	if len(got) != 1 {
		t.Fatalf("blocks(%d bytes) = %d blocks, want 1", len(text), len(got))
	}
	if b := got[0].text; len(b) > maxPassageBytes || !utf8.ValidString(b) {
		t.Errorf("blocks(%d bytes) = a block of %d bytes, valid UTF-8 %v; want valid UTF-8 within %d bytes",
			len(text), len(b), utf8.ValidString(b), maxPassageBytes)
	}
}

func TestLooksLikeCode(t *testing.T) {
	tests := []struct {
		block string
		want  bool
	}{
		{"A WebSocket is a long-lived, full-duplex connection between a browser and a server.", false},
		{"Call ws.send(data) when the socket is open, and close(1000) when done.", false},
		{"Set the header (see below) before the first write; otherwise it is ignored.", false},
		{"conn, err := net.Dial(\"tcp\", addr)\nif err != nil {\n\treturn err\n}", true},
		{"const ws = new WebSocket(url);\nws.onmessage = (e) => render(e.data);", true},
		{"$ curl -N http://localhost:8080/articles/stream?question=websocket", true},
		{"    indented code block", true},
		{"    - a nested list item", false},
		{"npm publish --access public", true},
		{"npm install -g runnel", true},
		{"Pass --access public to publish a scoped package in the open.", false},
		{"Full-duplex -- both ways at once -- is the point of a WebSocket.", false},
		{"The re-send and the -1 exit code are covered below.", false},
		{"{\"type\":\"token\",\"data\":\"A \"}", true},
		{"=== --- ;;;", true},
	}
	for _, tt := range tests {
		t.Run(tt.block, func(t *testing.T) {
			if got := looksLikeCode(tt.block); got != tt.want {
				t.Errorf("looksLikeCode(%q) = %v, want %v", tt.block, got, tt.want)
			}
		})
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bullet", "- Frames carry text.", "Frames carry text."},
		{"number", "12. Step twelve.", "Step twelve."},
		{"quote", "> Quoted\n> text.", "Quoted text."},
		{"nested", "> - quoted item", "quoted item"},
		{"heading", "## A heading", "A heading"},
		{"inline code and emphasis", "Use `EventSource` for **one-way** *streams*.", "Use EventSource for one-way streams."},
		{"link and image", "See [the RFC](https://example.com/rfc) ![diagram](d.png).", "See the RFC diagram."},
		{"space", "  a\tb \u00a0 c\n d ", "a b c d"},
		{"snake case kept", "Set read_timeout.", "Set read_timeout."},
		{"hyphen inside kept", "full-duplex - really", "full-duplex - really"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clean(tt.in); got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Done.", "Done."},
		{"Really?", "Really?"},
		{"A list item", "A list item."},
		{"There are three options:", "There are three options."},
		{`He said "stop."`, `He said "stop."`},
		{"(see the RFC)", "(see the RFC)."},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := finish(tt.in); got != tt.want {
				t.Errorf("finish(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAsksDefinition(t *testing.T) {
	tests := []struct {
		q    string
		want bool
	}{
		{"what is websocket?", true},
		{"What are server-sent events?", true},
		{"what's a reverse proxy", true},
		{"what does idempotent mean", true},
		{"define backpressure", true},
		{"websocket", true},
		{"how do proxies buffer responses?", false},
		{"why does my stream stop after 30 seconds", false},
		{"what happens when the client leaves", false},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := asksDefinition(tt.q); got != tt.want {
				t.Errorf("asksDefinition(%q) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestDefinition(t *testing.T) {
	terms := queryTerms(runnel.Prompt{Question: "what are websockets and server-sent events"})
	tests := []struct {
		sentence string
		want     bool
	}{
		{"A WebSocket is a full-duplex connection.", true},
		{"WebSockets are connections that stay open.", true},
		{"Server-sent events (SSE) are a one-way stream.", true},
		{"The WebSocket protocol is defined in RFC 6455.", true},
		{"Unlike a WebSocket, the channel is one-way.", false},
		{"Many proxies drop WebSockets that are idle.", false},
		{"A WebSocket connection starts as HTTP and later is upgraded.", false},
	}
	for _, tt := range tests {
		t.Run(tt.sentence, func(t *testing.T) {
			if got := definition(runnel.Words(tt.sentence), terms); got != tt.want {
				t.Errorf("definition(%q) = %v, want %v", tt.sentence, got, tt.want)
			}
		})
	}
}

func TestJaccard(t *testing.T) {
	tests := []struct {
		a, b []string
		want float64
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, 1},
		{[]string{"a", "b"}, []string{"c"}, 0},
		{[]string{"a", "b", "c"}, []string{"b", "c", "d"}, 0.5},
		{nil, nil, 1},
	}
	for _, tt := range tests {
		if got := jaccard(tt.a, tt.b); got != tt.want {
			t.Errorf("jaccard(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDependent(t *testing.T) {
	tests := []struct {
		sentence string
		want     bool
	}{
		{"This converts the list into a map.", true},
		{"It returns the list it was given.", true},
		{"It is a tool that copies files.", true},
		{"It can be slow on large trees.", true},
		{"However, the copy keeps its owner.", true},
		{"It is not possible to copy files under /proc.", false},
		{"It is a good idea to pin the version.", false},
		{"It's recommended that you restart the daemon.", false},
		{"It can be useful to run the check twice.", false},
		{"It is important that the key stays secret.", false},
		{"A volume outlives the container.", false},
	}
	for _, tt := range tests {
		if got := dependent(runnel.Words(tt.sentence)); got != tt.want {
			t.Errorf("dependent(%q) = %v, want %v", tt.sentence, got, tt.want)
		}
	}
}

func TestAppositive(t *testing.T) {
	terms := queryTerms(runnel.Prompt{Question: "what is quic?", Terms: []string{"quic"}})
	for _, tt := range []struct {
		sentence string
		want     bool
	}{
		{"HTTP/3 runs over QUIC, a transport protocol built on UDP.", true},
		{"It uses QUIC (RFC 9000), an encrypted transport.", true},
		{"Before QUIC, a page opened several TCP connections.", false},
		{"QUIC streams are independent, and a lost packet stalls one.", false},
		{"TCP, a reliable transport, predates it.", false},
	} {
		if got := appositive(tt.sentence, terms); got != tt.want {
			t.Errorf("appositive(%q) = %v, want %v", tt.sentence, got, tt.want)
		}
	}
}

func TestHasDottedDigits(t *testing.T) {
	for s, want := range map[string]bool{
		"Ubuntu 24.04 ships it.": true,
		"v1.2.3":                 true,
		"9.":                     false,
		".5 and 5.":              false,
		"no dots here":           false,
		"A sentence. 2 more.":    false,
		"a.b.c then 3.1":         true,
		"":                       false,
	} {
		if got := hasDottedDigits(s); got != want {
			t.Errorf("hasDottedDigits(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestSentenceCache shows that the memo answers as the splitter does and
// stays within its bounds.
func TestSentenceCache(t *testing.T) {
	split, err := splitter()
	if err != nil {
		t.Fatal(err)
	}
	text := "The proxy buffers the response. Set X-Accel-Buffering to no. It then streams."
	want := sentencesOf(split, text)
	for range 2 { // a miss, then a hit
		if got := cachedSentences(split, text); !slices.Equal(got, want) {
			t.Fatalf("cachedSentences = %q, want %q", got, want)
		}
		if got, want := cachedTextSet(text), textSet(text); !slices.Equal(got, want) {
			t.Fatalf("cachedTextSet = %q, want %q", got, want)
		}
	}
	for i := range maxMemoTexts + 10 {
		cachedSentences(split, fmt.Sprintf("Block %d ends here. Another sentence follows.", i))
	}
	sentenceMemo.mu.Lock()
	n, bytes := len(sentenceMemo.m), sentenceMemo.bytes
	sentenceMemo.mu.Unlock()
	if n > maxMemoTexts || bytes > maxMemoBytes {
		t.Fatalf("memo holds %d texts, %d bytes; bounds %d, %d", n, bytes, maxMemoTexts, maxMemoBytes)
	}
}

func TestIsEntry(t *testing.T) {
	for block, want := range map[string]bool{
		"t – number of seconds to wait before killing the container":  true,
		"304 – container already stopped":                             true,
		"no error — the container was stopped":                        true,
		"POST /containers/(id or name)/stop":                          true,
		"GET /info":                                                   true,
		"GET /info now returns a CgroupVersion field.":                false,
		"The daemon waits ten seconds – then it kills the container.": false,
		"Stop one or more running containers.":                        false,
		"":                                                            false,
	} {
		if got := isEntry(block); got != want {
			t.Errorf("isEntry(%q) = %v, want %v", block, got, want)
		}
	}
}
