package openai_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/openai"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("prompt differs from %s (run go test -update if the change is intended):\n%s", path, got)
	}
}

// networking is what Search returns for a question about WebSockets: two
// passages of one article around one of another, and a passage from a
// sixth article that the sources event does not list.
var networking = []runnel.Passage{
	{Slug: "websockets", Title: "WebSockets in practice", Heading: "Proxies and timeouts", Position: 2, Score: 9.1,
		Text: "Many reverse proxies close a connection that has been idle for a minute or two. Applications that keep WebSockets open for hours send a ping every thirty seconds or so.\r\n\r\n\r\nConfigure the proxy to pass the Upgrade and Connection headers through."},
	{Slug: "sse", Title: "Server-Sent Events", Score: 7.4,
		Text: "Server-sent events let a server push a stream of text messages to the browser over a single HTTP response. Unlike a WebSocket, the channel is one-way."},
	{Slug: "websockets", Title: "WebSockets in practice", Heading: "The upgrade", Position: 1, Score: 6.2,
		Text: "A WebSocket is a long-lived, full-duplex connection between a browser and a server, opened with an ordinary HTTP request and then upgraded with status 101 Switching Protocols."},
	{Slug: "empty", Title: "An empty section", Score: 5, Text: "   "},
	{Slug: "long-polling", Title: "Long polling", Score: 3.0,
		Text: "Long polling is the oldest trick for near-real-time updates: the client sends a request, and the server holds it open until it has something to say."},
	{Slug: "caching", Title: "", Score: 1.1,
		Text: "A cache stores responses so that a later request can be answered without contacting the origin server."},
	{Slug: "cors", Title: "CORS", Score: 0.9, Text: "Cross-origin requests need the server's consent."},
	{Slug: "tls", Title: "TLS", Score: 0.5, Text: "TLS encrypts the connection."},
}

func TestPromptGolden(t *testing.T) {
	g := newGen(t, nil, openai.Options{BaseURL: "http://localhost:11434/v1"})
	system, user := g.Messages(runnel.Prompt{Question: "what is websocket?", Terms: []string{"websocket"}, Passages: networking})
	golden(t, "prompt.golden", "=== system ===\n"+system+"\n=== user ===\n"+user+"\n")
}

func TestPromptBudget(t *testing.T) {
	long := strings.Repeat("word ", 1000) // 5,000 characters
	tests := []struct {
		name     string
		opts     openai.Options
		passages []runnel.Passage
		want     []string // in the user message, in this order
		not      []string
		maxText  int // most characters of passage text, if set
	}{
		{
			name:     "sources numbered by article, grouped, in reading order",
			passages: networking,
			want: []string{
				"Sources:\n\n[1] WebSockets in practice — The upgrade\nA WebSocket",
				"[1] WebSockets in practice — Proxies and timeouts\nMany",
				"[2] Server-Sent Events\n",
				"[4] Long polling\n",
				"[5] caching\nA cache",
				"\n\nQuestion: what is websocket?",
			},
			not: []string{"[3]", "CORS", "TLS", "\r", "\n\n\n"},
		},
		{
			name:     "MaxPassages",
			opts:     openai.Options{MaxPassages: 2},
			passages: networking,
			want:     []string{"[1] WebSockets in practice — Proxies and timeouts", "[2] Server-Sent Events"},
			not:      []string{"The upgrade", "Long polling"},
		},
		{
			name:     "MaxArticles",
			opts:     openai.Options{MaxArticles: 1},
			passages: networking,
			want:     []string{"— The upgrade", "— Proxies and timeouts"},
			not:      []string{"[2]", "Server-Sent Events"},
		},
		{
			name:     "a long passage gets half the budget",
			opts:     openai.Options{MaxContextChars: 2000},
			passages: []runnel.Passage{{Slug: "a", Title: "A", Text: long}, {Slug: "b", Title: "B", Text: "Short and whole."}},
			want:     []string{"[1] A\nword word", "word …\n\n[2] B\nShort and whole."},
			maxText:  2000,
		},
		{
			name:     "the last passage is cut at a word",
			opts:     openai.Options{MaxContextChars: 1200},
			passages: []runnel.Passage{{Slug: "a", Title: "A", Text: long[:590]}, {Slug: "b", Title: "B", Text: long}},
			want:     []string{"[1] A\n", "[2] B\nword", "word …\n\nQuestion:"},
			maxText:  1200,
		},
		{
			name:     "a remainder too small is left out",
			opts:     openai.Options{MaxContextChars: 1000},
			passages: []runnel.Passage{{Slug: "a", Title: "A", Text: long[:490]}, {Slug: "b", Title: "B", Text: long[:400]}, {Slug: "c", Title: "C", Text: long}},
			want:     []string{"[1] A\n", "[2] B\n"},
			not:      []string{"[3]"},
		},
		{
			name:     "a word longer than the room is cut inside",
			opts:     openai.Options{MaxContextChars: 400},
			passages: []runnel.Passage{{Slug: "a", Title: "A", Text: strings.Repeat("é", 1000)}},
			want:     []string{"[1] A\néé", "é …\n\nQuestion:"},
			maxText:  400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGen(t, nil, tt.opts)
			_, user := g.Messages(runnel.Prompt{Question: "what is websocket?", Passages: tt.passages})
			at := 0
			for _, w := range tt.want {
				i := strings.Index(user[at:], w)
				if i < 0 {
					t.Errorf("user message lacks %q after byte %d:\n%s", w, at, user)
					continue
				}
				at += i + len(w)
			}
			for _, w := range tt.not {
				if strings.Contains(user, w) {
					t.Errorf("user message has %q:\n%s", w, user)
				}
			}
			if !utf8.ValidString(user) {
				t.Errorf("user message is not valid UTF-8")
			}
			if tt.maxText > 0 {
				text := 0
				for _, block := range strings.Split(strings.TrimPrefix(user, "Sources:\n\n"), "\n\n") {
					if _, body, ok := strings.Cut(block, "\n"); ok && strings.HasPrefix(block, "[") {
						text += utf8.RuneCountInString(body)
					}
				}
				if text > tt.maxText {
					t.Errorf("%d characters of passage text, want at most %d", text, tt.maxText)
				}
			}
		})
	}
}
