package extractive

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// networking is a handful of passages about web networking, best first, the
// way Search returns them for a question about WebSockets.
var networking = []runnel.Passage{
	{
		Slug: "websockets", Title: "WebSockets in practice", Heading: "The upgrade",
		Tags: []string{"networking", "websocket"}, Position: 1, Score: 9.1,
		Text: `Before WebSockets, a page that wanted live updates had to poll the server or hold requests open.
A WebSocket is a long-lived, full-duplex connection between a browser and a server, opened with an ordinary HTTP request and then upgraded. Once the handshake completes, either side can send a message at any time without waiting for the other.

The browser asks for the upgrade with the Upgrade and Connection headers, and the server answers with status 101 Switching Protocols. From then on the bytes on the socket are WebSocket frames rather than HTTP.

` + "```js" + `
const ws = new WebSocket("wss://example.com/live");
ws.onmessage = (e) => console.log(e.data);
` + "```" + `

- Frames carry either text or binary data.
- Control frames handle ping, pong and the closing handshake.`,
	},
	{
		Slug: "websockets", Title: "WebSockets in practice", Heading: "Proxies and timeouts",
		Tags: []string{"networking", "websocket"}, Position: 2, Score: 7.4,
		Text: `Many reverse proxies close a connection that has been idle for a minute or two. Applications that keep WebSockets open for hours send a ping every thirty seconds or so, which keeps intermediaries from dropping them.

When a proxy does not understand the upgrade, it may strip the Upgrade header, and the handshake fails with a plain HTTP response instead. Configure the proxy to pass the Upgrade and Connection headers through, and raise its read timeout above the ping interval.`,
	},
	{
		Slug: "sse", Title: "Server-Sent Events", Tags: []string{"networking", "sse"}, Score: 5.2,
		Text: `Server-sent events let a server push a stream of text messages to the browser over a single HTTP response. Unlike a WebSocket, the channel is one-way: the client cannot send anything back on it. The EventSource API reconnects by itself when the connection drops, and resumes from the last event ID it saw.`,
	},
	{
		Slug: "long-polling", Title: "Long polling", Tags: []string{"networking", "http"}, Score: 3.0,
		Text: `Long polling is the oldest trick for near-real-time updates: the client sends a request, and the server holds it open until it has something to say. Every message costs a full request and response, with all their headers, which is why WebSockets replaced it in most chat applications.`,
	},
	{
		Slug: "caching", Title: "HTTP caching", Tags: []string{"http"}, Score: 1.1,
		Text: `A cache stores responses so that a later request can be answered without contacting the origin server. The Cache-Control header tells browsers and shared caches how long a response stays fresh.`,
	},
}

// gardening is a set of passages about something else entirely.
var gardening = []runnel.Passage{
	{Slug: "tomatoes", Title: "Growing tomatoes", Score: 4, Text: "Tomatoes want six hours of sun a day and soil that drains well. Water them at the base in the morning so the leaves dry before night."},
	{Slug: "roses", Title: "Pruning roses", Score: 2, Text: "Prune roses in late winter, just as the buds begin to swell. Cut each cane above an outward-facing bud at a slant."},
}

// prompt builds the prompt the answer pipeline would: the question parsed
// as the server parses it.
func prompt(t testing.TB, question string, passages []runnel.Passage) runnel.Prompt {
	t.Helper()
	q, err := runnel.ParseQuestion(question, 0)
	if err != nil {
		t.Fatalf("ParseQuestion(%q): %v", question, err)
	}
	return runnel.Prompt{Question: q.Text, Terms: q.Terms, Passages: passages}
}

// generate runs g on p and returns the tokens it emitted and how it ended.
func generate(t testing.TB, g *Generator, p runnel.Prompt) ([]string, runnel.Done) {
	t.Helper()
	var tokens []string
	done, err := g.Generate(context.Background(), p, func(tok string) error {
		tokens = append(tokens, tok)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate(%q): %v", p.Question, err)
	}
	return tokens, done
}

func TestRelevant(t *testing.T) {
	tests := []struct {
		name      string
		question  string
		passages  []runnel.Passage
		wantFirst string   // the answer starts with this
		want      []string // and contains these
		not       []string // and not these
	}{
		{
			name:      "definition first",
			question:  "what is websocket",
			passages:  networking,
			wantFirst: "A WebSocket is a long-lived, full-duplex connection",
			not:       []string{"const ws", "```", "Cache-Control"},
		},
		{
			name:      "definition from a lower passage",
			question:  "what are server-sent events?",
			passages:  networking,
			wantFirst: "Server-sent events let a server push",
			not:       []string{"Cache-Control"},
		},
		{
			name:     "plural and verb forms match",
			question: "how do proxies handle idle sockets and pings?",
			passages: networking,
			want:     []string{"Many reverse proxies close a connection that has been idle"},
		},
		{
			name:      "compound written apart",
			question:  "what is a web socket",
			passages:  networking,
			wantFirst: "A WebSocket is a long-lived",
		},
		{
			name:     "list item cleaned",
			question: "what do control frames handle",
			passages: networking,
			want:     []string{"Control frames handle ping, pong and the closing handshake."},
			not:      []string{"- Control"},
		},
		{
			name:     "markdown stripped",
			question: "what is a channel",
			passages: []runnel.Passage{{Title: "Go", Text: "> A **channel** is a typed conduit through which goroutines send and receive values; see [the tour](https://go.dev/tour).\n\n# Channels"}},
			want:     []string{"A channel is a typed conduit through which goroutines send and receive values; see the tour."},
		},
		{
			name:     "a one-letter name",
			question: "how do I link a library written in C?",
			passages: []runnel.Passage{{Title: "Libraries", Text: "Rust links a static library with a build script. " +
				"To call C from Go, cgo links the library named in a #cgo LDFLAGS comment."}},
			wantFirst: "To call C from Go, cgo links the library",
		},
	}
	g := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, done := generate(t, g, prompt(t, tt.question, tt.passages))
			got := strings.Join(tokens, "")
			if done.FinishReason != runnel.FinishStop {
				t.Errorf("Generate(%q) finished with %q, want %q", tt.question, done.FinishReason, runnel.FinishStop)
			}
			if !strings.HasPrefix(got, tt.wantFirst) {
				t.Errorf("Generate(%q) = %q, want it to start with %q", tt.question, got, tt.wantFirst)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("Generate(%q) = %q, want it to contain %q", tt.question, got, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("Generate(%q) = %q, want no %q", tt.question, got, w)
				}
			}
			if strings.HasPrefix(got, NotCovered) {
				t.Errorf("Generate(%q) = %q, want an answer", tt.question, got)
			}
		})
	}
}

func TestNoRepetition(t *testing.T) {
	passages := noRepPassages
	tokens, _ := generate(t, New(Options{}), prompt(t, "what is a websocket", passages))
	got := strings.Join(tokens, "")
	if n := strings.Count(strings.ToLower(got), "full-duplex connection"); n != 1 {
		t.Errorf("answer = %q: says %q %d times, want once", got, "full-duplex connection", n)
	}
	if want := "Browsers limit how many WebSocket connections"; !strings.Contains(got, want) {
		t.Errorf("answer = %q, want it to go on with %q", got, want)
	}
}

var noRepPassages = []runnel.Passage{
	{Slug: "a", Title: "WebSockets", Score: 2, Text: "A WebSocket is a persistent, full-duplex connection between a browser and a server. It starts life as an HTTP request."},
	{Slug: "b", Title: "Realtime web", Score: 1, Text: "A WebSocket is a persistent full-duplex connection between the browser and the server. Browsers limit how many WebSocket connections a page may open at once."},
	{Slug: "c", Title: "Copy", Score: 0.5, Text: "A WebSocket is a persistent, full-duplex connection between a browser and a server."},
}

// TestNotCoveredRareWord checks the collection-wide check: when the
// searcher counts terms, a question whose rare word no passage has is not
// covered, however well its common words match.
func TestNotCoveredRareWord(t *testing.T) {
	passages := []runnel.Passage{{Title: "Restarting containers", Text: "A container restarts by itself when its restart policy says so. Pods of containers restart together on the host."}}
	p := prompt(t, "why do kubernetes pods restart?", passages) // terms: kubernetes, pods, restart
	g := New(Options{})
	answer := func(p runnel.Prompt) string {
		tokens, _ := generate(t, g, p)
		return strings.Join(tokens, "")
	}
	if got := answer(p); strings.HasPrefix(got, NotCovered) {
		t.Fatalf("without counts: %q, want an answer from the words that match", got)
	}
	p.TermDocs, p.Docs = []int{0, 40, 300}, 5000 // no passage says kubernetes
	if got := answer(p); !strings.HasPrefix(got, NotCovered) {
		t.Errorf("kubernetes in no passage of the collection: %q, want not covered", got)
	}
	p.TermDocs = []int{25, 900, 300} // in the collection, rarer than the rest, not in the passage
	if got := answer(p); !strings.HasPrefix(got, NotCovered) {
		t.Errorf("kubernetes rare and not in the passage: %q, want not covered", got)
	}
	p.Passages = []runnel.Passage{{Title: "Kubernetes", Text: "Kubernetes restarts the containers of pods whose liveness probe fails."}}
	if got := answer(p); strings.HasPrefix(got, NotCovered) {
		t.Errorf("a passage that has the rare word: %q, want an answer", got)
	}
	g = New(Options{MinCoverage: -1})
	p.Passages = passages
	if got := answer(p); strings.HasPrefix(got, NotCovered) {
		t.Errorf("MinCoverage < 0: %q, want the check off", got)
	}
}

// TestDependentSentence checks that a sentence whose subject is in the
// sentence before comes only with that sentence.
func TestDependentSentence(t *testing.T) {
	passages := []runnel.Passage{
		{Title: "Kernels", Text: "The runtime shares the host kernel with every process. This makes containers light to start. On Linux, this is set on the cgroup of containers."},
		{Title: "Images", Text: "Containers start fast and stay light because images hold only the files an application needs."},
	}
	tokens, _ := generate(t, New(Options{}), prompt(t, "why are containers light to start?", passages))
	got := strings.Join(tokens, "")
	if !strings.HasPrefix(got, "Containers start fast and stay light") {
		t.Errorf("answer %q, want it to lead with the sentence that stands alone", got)
	}
	for _, dep := range []string{"This makes containers light", "this is set on the cgroup"} {
		if strings.Contains(got, dep) && !strings.Contains(got, "The runtime shares the host kernel with every process. "+dep) {
			t.Errorf("answer %q quotes %q without the sentence before it", got, dep)
		}
	}
}

// TestLeadInCode checks that a sentence introducing code brings the code
// as a fenced block, and that a sentence introducing what the answer cannot
// show (a list, code too long to quote) stays out.
func TestLeadInCode(t *testing.T) {
	answer := func(question string, passages ...runnel.Passage) string {
		t.Helper()
		tokens, _ := generate(t, New(Options{}), prompt(t, question, passages))
		return strings.Join(tokens, "")
	}
	short := runnel.Passage{Title: "Volumes", Score: 2, Text: "A named volume keeps data when the container that wrote it is removed. To create a named volume for the database, run:\n\n```sh\ndocker volume create pgdata\n```\n\nThe volume survives restarts of the database container."}
	got := answer("how do I create a named volume for the database?", short)
	want := "To create a named volume for the database, run:\n\n```sh\ndocker volume create pgdata\n```"
	if !strings.Contains(got, want) {
		t.Fatalf("answer %q, want it to quote the lead-in with its code:\n%s", got, want)
	}
	if rest := got[strings.Index(got, want)+len(want):]; rest != "" && (!strings.HasPrefix(rest, "\n\n") || strings.HasPrefix(rest, "\n\n\n")) {
		t.Errorf("answer %q: the text after the code does not start a paragraph", got)
	}

	// Unfenced code, as another importer may store it, counts as code too.
	unfenced := short
	unfenced.Text = "To create a named volume for the database, run:\n\ndocker volume create --driver local pgdata\n\nThe volume survives restarts of the database container."
	if got := answer("how do I create a named volume for the database?", unfenced); !strings.Contains(got, "run:\n\n```\ndocker volume create --driver local pgdata\n```") {
		t.Errorf("unfenced code: answer %q, want the code fenced after its lead-in", got)
	}

	long := short
	long.Text = "To create a named volume for the database, run:\n\n```sh\n" + strings.Repeat("docker volume create pgdata\n", maxCodeLines+1) + "```"
	long.Text += "\n\nA named volume for the database is created once and kept."
	if got := answer("how do I create a named volume for the database?", long); strings.Contains(got, "run:") || strings.Contains(got, "```") {
		t.Errorf("code too long to quote: answer %q, want neither the lead-in nor the code", got)
	}

	list := runnel.Passage{Title: "Volumes", Score: 2, Text: "Docker supports these kinds of named volume for a database:\n\n- local\n- nfs\n\nA named volume for a database outlives its container."}
	if got := answer("which kinds of named volume for a database are there?", list); strings.Contains(got, "these kinds") {
		t.Errorf("lead-in to a list: answer %q, want it left out", got)
	}
}

// TestDependentBringsPrev checks that the sentence that answers best, when
// it leans on the one before ("This also applies..."), comes with that
// sentence rather than not at all.
func TestDependentBringsPrev(t *testing.T) {
	passages := []runnel.Passage{{Title: "run", Score: 3, Text: "Ports that are not bound to an address of the host are open to the outside world. " +
		"This also applies if you configured the ufw firewall to block them, as the daemon writes its own iptables rules."}}
	tokens, _ := generate(t, New(Options{}), prompt(t, "why does ufw not block a published port?", passages))
	got := strings.Join(tokens, "")
	want := "Ports that are not bound to an address of the host are open to the outside world. This also applies if you configured the ufw firewall"
	if !strings.HasPrefix(got, want) {
		t.Errorf("answer %q, want the sentence about ufw with the one it leans on, in order:\n%s", got, want)
	}
}

func TestNotCovered(t *testing.T) {
	tests := []struct {
		name     string
		question string
		passages []runnel.Passage
		want     string
	}{
		{"no passages", "what is websocket", nil, NotCovered},
		{"another subject", "what is websocket", gardening,
			NotCovered + " The closest are: Growing tomatoes, Pruning roses."},
		{"one title", "what is websocket", gardening[:1],
			NotCovered + " The closest is: Growing tomatoes."},
		{"only stop words", "what is it?", networking,
			NotCovered + " The closest are: WebSockets in practice, Server-Sent Events, Long polling."},
		{"main subject missing", "how do I install the kubernetes websocket ingress helm chart", networking,
			NotCovered + " The closest are: WebSockets in practice, Server-Sent Events, Long polling."},
		{"only code", "what does onmessage do", []runnel.Passage{{Title: "Snippets", Text: "```js\nws.onmessage = (e) => render(e.data);\n```\n\n    ws.onmessage = handle;"}},
			NotCovered + " The closest is: Snippets."},
	}
	g := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, done := generate(t, g, prompt(t, tt.question, tt.passages))
			if got := strings.Join(tokens, ""); got != tt.want {
				t.Errorf("Generate(%q) = %q, want %q", tt.question, got, tt.want)
			}
			if done.FinishReason != runnel.FinishStop {
				t.Errorf("Generate(%q) finished with %q, want %q", tt.question, done.FinishReason, runnel.FinishStop)
			}
		})
	}
}

func TestTokenShape(t *testing.T) {
	tests := []struct {
		name     string
		question string
		passages []runnel.Passage
	}{
		{"two paragraphs", "how do websockets compare with server-sent events and long polling", networking},
		{"one paragraph", "what is websocket", networking[:1]},
		{"not covered", "what is websocket", gardening},
	}
	g := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := prompt(t, tt.question, tt.passages)
			want, err := g.answer(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			tokens, _ := generate(t, g, p)
			if got := strings.Join(tokens, ""); got != want {
				t.Errorf("tokens join to %q, want the answer %q", got, want)
			}
			for i, tok := range tokens {
				word := strings.TrimRight(tok, " \n")
				switch {
				case word == "":
					t.Errorf("token %d = %q: no word", i, tok)
				case strings.ContainsAny(word, " \n"):
					t.Errorf("token %d = %q: more than one word", i, tok)
				case i < len(tokens)-1 && word == tok:
					t.Errorf("token %d = %q: does not end with a space or newline", i, tok)
				case i == len(tokens)-1 && word != tok:
					t.Errorf("last token = %q: ends with white space", tok)
				}
			}
		})
	}
}

func TestStop(t *testing.T) {
	errGone := errors.New("client gone")
	p := prompt(t, "what is websocket", networking)

	t.Run("emit error", func(t *testing.T) {
		calls := 0
		_, err := New(Options{}).Generate(context.Background(), p, func(string) error {
			calls++
			if calls == 3 {
				return errGone
			}
			return nil
		})
		if !errors.Is(err, errGone) || calls != 3 {
			t.Errorf("Generate = %v after %d calls, want %v after 3", err, calls, errGone)
		}
	})

	t.Run("canceled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := 0
		_, err := New(Options{}).Generate(ctx, p, func(string) error { calls++; return nil })
		if !errors.Is(err, context.Canceled) || calls != 0 {
			t.Errorf("Generate = %v after %d calls, want %v after 0", err, calls, context.Canceled)
		}
	})

	t.Run("canceled while streaming", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		_, err := New(Options{}).Generate(ctx, p, func(string) error {
			calls++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("Generate = %v after %d calls, want %v after 1", err, calls, context.Canceled)
		}
	})

	t.Run("canceled while pacing", func(t *testing.T) {
		// With an hour between tokens, the test only ends if the pause
		// watches the context.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		calls := 0
		_, err := New(Options{Delay: time.Hour}).Generate(ctx, p, func(string) error {
			calls++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("Generate = %v after %d calls, want %v after 1", err, calls, context.Canceled)
		}
	})

	t.Run("max tokens", func(t *testing.T) {
		tokens, done := generate(t, New(Options{MaxTokens: 5}), p)
		if len(tokens) != 5 || done.FinishReason != runnel.FinishLength {
			t.Errorf("Generate with MaxTokens 5 = %d tokens, %q; want 5, %q", len(tokens), done.FinishReason, runnel.FinishLength)
		}
	})

	t.Run("max tokens not reached", func(t *testing.T) {
		all, _ := generate(t, New(Options{}), p)
		tokens, done := generate(t, New(Options{MaxTokens: len(all)}), p)
		if !slices.Equal(tokens, all) || done.FinishReason != runnel.FinishStop {
			t.Errorf("Generate with MaxTokens %d = %d tokens, %q; want %d, %q", len(all), len(tokens), done.FinishReason, len(all), runnel.FinishStop)
		}
	})
}

func TestDeterministic(t *testing.T) {
	g := New(Options{})
	questions := []string{
		"what is websocket",
		"how do websockets stay open through proxies?",
		"how do websockets compare with server-sent events and long polling",
	}
	for _, q := range questions {
		t.Run(q, func(t *testing.T) {
			want, _ := generate(t, g, prompt(t, q, networking))

			again, _ := generate(t, g, prompt(t, q, networking))
			if !slices.Equal(again, want) {
				t.Errorf("second Generate(%q) = %q, want %q", q, again, want)
			}

			// Passages gathered through a map arrive in any order; their
			// scores give the rank.
			byKey := map[string]runnel.Passage{}
			for _, p := range networking {
				byKey[fmt.Sprint(p.Slug, p.Position)] = p
			}
			for range 20 {
				var shuffled []runnel.Passage
				for _, p := range byKey {
					shuffled = append(shuffled, p)
				}
				got, _ := generate(t, g, prompt(t, q, shuffled))
				if !slices.Equal(got, want) {
					t.Fatalf("Generate(%q) with passages in another order = %q, want %q", q, got, want)
				}
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	// One Generator serves every request; the sentence splitter is shared.
	g := New(Options{})
	p := prompt(t, "how do websockets compare with server-sent events and long polling", networking)
	want, _ := generate(t, g, p)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var got []string
			if _, err := g.Generate(context.Background(), p, func(tok string) error {
				got = append(got, tok)
				return nil
			}); err != nil {
				t.Error(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("concurrent Generate = %q, want %q", got, want)
			}
		})
	}
	wg.Wait()
}

func TestGolden(t *testing.T) {
	// For this question a search ranks the section on proxies first.
	passages := slices.Clone(networking)
	passages[1].Score = 9.8
	tokens, done := generate(t, New(Options{}), prompt(t, "How do WebSockets stay open through proxies?", passages))
	got := strings.Join(tokens, "") + "\n"
	path := filepath.Join("testdata", "answer.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("answer differs from %s (go test -update refreshes it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
	if done.FinishReason != runnel.FinishStop {
		t.Errorf("finished with %q, want %q", done.FinishReason, runnel.FinishStop)
	}
}

// FuzzGenerate checks that any passage text and question give an answer
// whose tokens are well formed.
func FuzzGenerate(f *testing.F) {
	f.Add("what is websocket", networking[0].Text)
	f.Add("proxies", "- a\n- b\n\n```\ncode\n")
	f.Add("x y", "## Heading\n\n| a | b |\n\n> quote me: [x](y) *z*")
	g := New(Options{MaxTokens: 50})
	f.Fuzz(func(t *testing.T, question, text string) {
		p := runnel.Prompt{Question: question, Passages: []runnel.Passage{{Title: "T", Text: text}}}
		var b strings.Builder
		done, err := g.Generate(context.Background(), p, func(tok string) error {
			if strings.TrimSpace(tok) == "" {
				t.Fatalf("empty token %q", tok)
			}
			b.WriteString(tok)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if done.FinishReason != runnel.FinishStop && done.FinishReason != runnel.FinishLength {
			t.Fatalf("finish reason %q", done.FinishReason)
		}
		if want, _ := g.answer(context.Background(), p); !strings.HasPrefix(want, b.String()) {
			t.Fatalf("tokens join to %q, not a prefix of the answer %q", b.String(), want)
		}
	})
}

func BenchmarkGenerate(b *testing.B) {
	// Eight passages of about 150 words in paragraphs of 50, like the
	// passages a search for 8 returns, cut from the prose above.
	var words []string
	for _, p := range networking {
		for _, b := range blocks(p.Text) {
			if !b.isCode() {
				words = append(words, strings.Fields(b.text)...)
			}
		}
	}
	var passages []runnel.Passage
	for i := range 8 {
		var text strings.Builder
		for j := range 150 {
			switch {
			case j == 0:
			case j%50 == 0:
				text.WriteString(".\n\n")
			default:
				text.WriteByte(' ')
			}
			text.WriteString(words[(i*37+j)%len(words)])
		}
		passages = append(passages, runnel.Passage{
			Slug: fmt.Sprint("p", i), Title: fmt.Sprint("Passage ", i), Score: float64(8 - i),
			Text: text.String() + ".",
		})
	}
	p := prompt(b, "how do websockets stay open through proxies?", passages)
	g := New(Options{})
	emit := func(string) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Generate(context.Background(), p, emit); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCJK checks answers from Chinese and Japanese passages: sentences end
// at "。", a question written without spaces finds the words inside them,
// and the answer streams a few characters at a time.
func TestCJK(t *testing.T) {
	passages := []runnel.Passage{
		{Slug: "cache", Title: "缓存", Score: 3, Text: "缓存可以减少延迟。浏览器会把响应保存在本地，下次直接使用。天气预报说明天会下雨。"},
		{Slug: "fts", Title: "全文検索", Score: 2, Text: "全文検索では、文書の中の単語を探します。インデックスを使うと検索が速くなります。"},
	}
	for _, tt := range []struct {
		question, want, not string
	}{
		{"浏览器缓存是怎么工作的？", "浏览器会把响应保存在本地，下次直接使用。", "天气预报"},
		{"インデックスを使うとどうなりますか？", "インデックスを使うと検索が速くなります。", "缓存"},
	} {
		t.Run(tt.question, func(t *testing.T) {
			tokens, done := generate(t, New(Options{}), prompt(t, tt.question, passages))
			got := strings.Join(tokens, "")
			if !strings.Contains(got, tt.want) {
				t.Errorf("answer %q, want it to quote %q", got, tt.want)
			}
			if strings.Contains(got, tt.not) {
				t.Errorf("answer %q quotes %q, which has nothing of the question", got, tt.not)
			}
			if len(tokens) < len([]rune(tt.want))/3 {
				t.Errorf("answer came in %d tokens, want a few characters a token: %q", len(tokens), tokens)
			}
			if done.FinishReason != runnel.FinishStop {
				t.Errorf("finish reason %q", done.FinishReason)
			}
		})
	}
}

// TestVersions checks that a version number in the question is one term:
// "24.04" is not matched by the "04" of "22.04".
func TestVersions(t *testing.T) {
	old := []runnel.Passage{{Title: "Images", Score: 2, Text: "The ubuntu image for release 22.04 is the default base of many images."}}
	p := prompt(t, "ubuntu 24.04 release", old)
	if !slices.Contains(p.Terms, "24.04") {
		t.Fatalf("terms %q, want the version whole", p.Terms)
	}
	p.TermDocs, p.Docs = []int{40, 0, 30}, 5000 // no passage has 24.04
	g := New(Options{})
	if got := strings.Join(must(generate(t, g, p)), ""); !strings.HasPrefix(got, NotCovered) {
		t.Errorf("22.04 passage for a 24.04 question: %q, want not covered", got)
	}
	p.Passages = []runnel.Passage{{Title: "Images", Score: 2, Text: "The ubuntu image for release 24.04 arrived in April."}}
	p.TermDocs = []int{40, 1, 30}
	if got := strings.Join(must(generate(t, g, p)), ""); !strings.Contains(got, "release 24.04 arrived") {
		t.Errorf("24.04 passage: %q, want it quoted", got)
	}
}

func must(tokens []string, _ runnel.Done) []string { return tokens }

func TestCite(t *testing.T) {
	g := New(Options{Cite: true})
	tests := []struct {
		question string
		passages []runnel.Passage
		want     []string // the answer contains these
	}{
		{"what is websocket", networking, []string{"rather than HTTP. [1]"}},
		{"how do websockets and sse reconnect?", networking, []string{"the last event ID it saw. [2]"}},
		{"websocket vs long polling", networking, []string{"and then upgraded. [1]\n\nLong polling", "in most chat applications. [3]"}},
		{"what is the ph of soil for quantum computers?", gardening, nil},
	}
	for _, tc := range tests {
		tokens, _ := generate(t, g, prompt(t, tc.question, tc.passages))
		text := strings.Join(tokens, "")
		plain, _ := generate(t, New(Options{}), prompt(t, tc.question, tc.passages))
		if stripped := regexp.MustCompile(` \[\d\]`).ReplaceAllString(text, ""); stripped != strings.Join(plain, "") {
			t.Errorf("%q: with citations %q, without %q: want the same text but the markers", tc.question, text, strings.Join(plain, ""))
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%q: answer %q, want it to contain %q", tc.question, text, w)
			}
		}
		if tc.want == nil && strings.Contains(text, "[") {
			t.Errorf("%q: answer %q cites, want no citation in an answer that is not covered", tc.question, text)
		}
	}
	// A lead-in is marked ahead of its code, so the fence stays whole.
	volume := runnel.Passage{Slug: "volumes", Title: "Volumes", Score: 2, Text: "To create a named volume for the database, run:\n\n```sh\ndocker volume create pgdata\n```"}
	tokens, _ := generate(t, g, prompt(t, "how do I create a named volume for the database?", []runnel.Passage{volume}))
	if got, want := strings.Join(tokens, ""), "run: [1]\n\n```sh\ndocker volume create pgdata\n```"; !strings.HasSuffix(got, want) {
		t.Errorf("answer %q, want it to end %q", got, want)
	}
	// The numbers are the sources' order (the prompt's distinct articles),
	// not the passages' rank.
	if got := citations(networking[2:4], rank(networking[2:4])); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("citations = %v, want [1 2]", got)
	}
	swapped := []runnel.Passage{networking[3], networking[2]} // lower score first
	if got := citations(swapped, rank(swapped)); !slices.Equal(got, []int{2, 1}) {
		t.Errorf("citations of passages out of rank = %v, want [2 1]", got)
	}
}

// TestListingEntries checks that the entries of a parameter or status
// listing, which read as fragments once out of their list, stay out of the
// answer while the prose around them goes in.
func TestListingEntries(t *testing.T) {
	passages := []runnel.Passage{{Title: "Stop a container", Score: 3, Text: "POST /containers/(id or name)/stop\n\n" +
		"Stop the container and wait for it to exit before killing it.\n\n" +
		"t – number of seconds to wait before killing the container\n\n" +
		"304 – container already stopped\n\n" +
		"The stop request waits ten seconds by default before it kills the container."}}
	tokens, _ := generate(t, New(Options{}), prompt(t, "how long does stopping a container wait before killing it?", passages))
	got := strings.Join(tokens, "")
	for _, entry := range []string{"POST /containers", "t – number", "304 –"} {
		if strings.Contains(got, entry) {
			t.Errorf("answer %q quotes the listing entry %q", got, entry)
		}
	}
	if !strings.Contains(got, "waits ten seconds by default") {
		t.Errorf("answer %q, want the prose that answers", got)
	}
}
