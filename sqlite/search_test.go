package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
)

// searchCorpus is a small store where one article is about WebSockets and
// others only mention them.
func searchCorpus(t *testing.T) *Store {
	t.Helper()
	s := mustOpen(t)
	for _, a := range []*runnel.Article{
		{
			Slug: "websockets", Title: "WebSockets in practice", Tags: []string{"web-socket", "networking"},
			Description: "Full-duplex messaging for browsers.",
			Passages: []runnel.Passage{
				{Heading: "", Text: "A connection starts as an HTTP request and is upgraded. Both ends may then send frames at any time."},
				{Heading: "Closing", Text: "Either side sends a close frame with a status code and waits for the reply."},
				{Heading: "Proxies", Text: "Some proxies drop idle connections; send pings to keep them open."},
			},
		},
		{
			Slug: "sse", Title: "Server-Sent Events", Tags: []string{"networking", "http"},
			Passages: []runnel.Passage{
				{Heading: "Overview", Text: "The server pushes events over one long HTTP response. Unlike a WebSocket, the stream is one-way, and the browser reconnects by itself after an error."},
				{Heading: "Format", Text: "Each event is a few lines of text: an event name, an id and data, then a blank line."},
			},
		},
		{
			Slug: "unix", Title: "Unix domain sockets", Tags: []string{"unix"},
			Passages: []runnel.Passage{
				{Heading: "Paths", Text: "A socket bound to a path in the file system lets local processes talk without TCP."},
			},
		},
		{
			Slug: "cafe", Title: "Coffee", Tags: []string{"food"},
			Passages: []runnel.Passage{
				{Heading: "Where", Text: "The café on the corner roasts its own beans."},
			},
		},
	} {
		mustPut(t, s, a)
	}
	return s
}

func slugsOf(ps []runnel.Passage) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Slug)
	}
	return out
}

func mustSearch(t *testing.T, s *Store, question string, limit int) []runnel.Passage {
	t.Helper()
	q, err := runnel.ParseQuestion(question, 0)
	if err != nil {
		t.Fatalf("ParseQuestion(%q): %v", question, err)
	}
	ps, err := s.Search(context.Background(), q, limit)
	if err != nil {
		t.Fatalf("Search(%q): %v", question, err)
	}
	return ps
}

func TestSearchRanking(t *testing.T) {
	s := searchCorpus(t)
	tests := []struct {
		question string
		first    string   // the slug of the best passage
		includes []string // slugs that must be among the results
	}{
		{"what is websocket", "websockets", []string{"sse"}},
		{"How do WebSockets work?", "websockets", []string{"sse"}},
		{"web socket", "websockets", nil},
		{"sockets", "unix", []string{"websockets"}}, // stemming: "sockets" finds "socket"
		{"unix socket path", "unix", nil},
		{"server sent events", "sse", nil},
		{"networking", "websockets", []string{"sse"}},
		{"cafe", "cafe", nil}, // diacritics removed
		{"CAFÉ", "cafe", nil}, // and case folded
		{"proxy idle", "websockets", nil},
	}
	for _, tt := range tests {
		t.Run(tt.question, func(t *testing.T) {
			ps := mustSearch(t, s, tt.question, 8)
			got := slugsOf(ps)
			if len(ps) == 0 || ps[0].Slug != tt.first {
				t.Fatalf("Search(%q) = %v, want %s first", tt.question, got, tt.first)
			}
			for _, want := range tt.includes {
				if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+want+" ") {
					t.Errorf("Search(%q) = %v, want %s among them", tt.question, got, want)
				}
			}
		})
	}
}

func TestSearchTitleBeatsBodyMention(t *testing.T) {
	s := searchCorpus(t)
	ps := mustSearch(t, s, "websocket", 8)
	var best, mention float64
	for _, p := range ps {
		switch p.Slug {
		case "websockets":
			best = max(best, p.Score)
		case "sse":
			mention = max(mention, p.Score)
		}
	}
	if best <= mention {
		t.Errorf("score of the WebSocket article %v <= score of the one that mentions it %v", best, mention)
	}
}

func TestSearchPassageFields(t *testing.T) {
	s := searchCorpus(t)
	ps := mustSearch(t, s, "close frame status", 8)
	if len(ps) == 0 {
		t.Fatal("no results")
	}
	p := ps[0]
	if p.Slug != "websockets" || p.Title != "WebSockets in practice" || p.Heading != "Closing" || p.Position != 1 ||
		!strings.HasPrefix(p.Text, "Either side sends a close frame") {
		t.Errorf("best passage = %+v", p)
	}
	if strings.Join(p.Tags, ",") != "web-socket,networking" {
		t.Errorf("Tags = %q, want [web-socket networking]", p.Tags)
	}
	if !strings.Contains(p.Snippet, "close frame") || strings.ContainsAny(p.Snippet, "<>[]*") {
		t.Errorf("Snippet = %q, want plain text around the match", p.Snippet)
	}
	for i, p := range ps {
		if p.Score <= 0 {
			t.Errorf("passage %d has score %v, want > 0", i, p.Score)
		}
		if i > 0 && p.Score > ps[i-1].Score {
			t.Errorf("passage %d scores %v, more than the one before (%v)", i, p.Score, ps[i-1].Score)
		}
		if p.Snippet == "" || p.Text == "" || p.Tags == nil {
			t.Errorf("passage %d lacks fields: %+v", i, p)
		}
	}
}

func TestSearchSnippetLong(t *testing.T) {
	s := mustOpen(t)
	words := strings.Repeat("lorem ipsum dolor sit amet ", 40)
	mustPut(t, s, &runnel.Article{Slug: "long", Title: "Long", Body: words + "the needle is here " + words})
	ps := mustSearch(t, s, "needle", 1)
	if len(ps) != 1 {
		t.Fatalf("Search(needle) = %v", ps)
	}
	sn := ps[0].Snippet
	if !strings.Contains(sn, "needle") || !strings.HasPrefix(sn, "...") || !strings.HasSuffix(sn, "...") ||
		len(strings.Fields(sn)) > 26 {
		t.Errorf("Snippet = %q, want about 24 words around needle, cut with ...", sn)
	}
	// A match in the title alone still gets the start of the body.
	ps = mustSearch(t, s, "long", 1)
	if len(ps) != 1 || !strings.HasPrefix(ps[0].Snippet, "lorem ipsum") {
		t.Errorf("Search(long) = %+v, want the beginning of the body as snippet", ps)
	}
}

func TestSearchLimitAndDiversity(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	long := &runnel.Article{Slug: "long", Title: "Kites, the complete guide", Tags: []string{"kite"}}
	for i := range 10 {
		long.Passages = append(long.Passages, runnel.Passage{Heading: fmt.Sprintf("Part %d", i), Text: "kite kite kite"})
	}
	mustPut(t, s, long)
	q := runnel.Query{Terms: []string{"kite"}}

	// Only one article matches: all slots go to it rather than stay empty.
	ps, err := s.Search(ctx, q, 5)
	if err != nil || len(ps) != 5 {
		t.Fatalf("Search(kite, 5) with one article = %d passages, %v; want 5", len(ps), err)
	}

	for i := range 4 {
		mustPut(t, s, &runnel.Article{Slug: fmt.Sprintf("other%d", i), Title: fmt.Sprintf("Other %d", i),
			Body: "A kite is mentioned once among many other words about weather and wind."})
	}
	ps, err = s.Search(ctx, q, 5)
	if err != nil || len(ps) != 5 {
		t.Fatalf("Search(kite, 5) = %d passages, %v; want 5", len(ps), err)
	}
	count := map[string]int{}
	for _, p := range ps {
		count[p.Slug]++
	}
	if count["long"] != perArticle {
		t.Errorf("Search(kite, 5) = %v; want %d passages of long", slugsOf(ps), perArticle)
	}
	if ps[0].Slug != "long" {
		t.Errorf("Search(kite, 5) = %v; want long first", slugsOf(ps))
	}

	for _, tt := range []struct{ limit, want int }{{0, defaultSearchLimit}, {-3, defaultSearchLimit}, {1, 1}, {1000, 14}} {
		ps, err := s.Search(ctx, q, tt.limit)
		if err != nil || len(ps) != tt.want {
			t.Errorf("Search(kite, %d) = %d passages, %v; want %d", tt.limit, len(ps), err, tt.want)
		}
	}
}

func TestSearchNoMatch(t *testing.T) {
	s := searchCorpus(t)
	ps, err := s.Search(context.Background(), runnel.Query{Terms: []string{"xylophone"}}, 5)
	if err != nil || ps == nil || len(ps) != 0 {
		t.Errorf("Search(xylophone) = %#v, %v; want empty", ps, err)
	}
}

func TestSearchInvalid(t *testing.T) {
	s := searchCorpus(t)
	for _, terms := range [][]string{nil, {}, {""}, {" ", "\t"}, {"\x00"}} {
		_, err := s.Search(context.Background(), runnel.Query{Terms: terms}, 5)
		wantCode(t, err, runnel.EINVALID)
	}
}

func TestTagsNamed(t *testing.T) {
	ctx := context.Background()
	s := searchCorpus(t)
	mustPut(t, s, &runnel.Article{Slug: "ws2", Title: "More", Tags: []string{"WebSocket"}})
	tests := []struct {
		names []string
		want  string
	}{
		{nil, ""},
		{[]string{}, ""},
		{[]string{"websocket"}, "WebSocket,web-socket"},
		{[]string{"websocket", "networking", "websocket", ""}, "WebSocket,networking,web-socket"},
		{[]string{"web-socket"}, ""}, // names are already normalised
		{[]string{"nothing"}, ""},
	}
	for _, tt := range tests {
		got, err := s.TagsNamed(ctx, tt.names)
		if err != nil || strings.Join(got, ",") != tt.want {
			t.Errorf("TagsNamed(%q) = %q, %v; want %q", tt.names, got, err, tt.want)
		}
	}
	if got, _ := s.TagsNamed(ctx, nil); got != nil {
		t.Errorf("TagsNamed(nil) = %#v, want nil", got)
	}

	// More names than one batch of parameters holds.
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("name%d", i)
	}
	many[777] = "unix"
	if got, err := s.TagsNamed(ctx, many); err != nil || strings.Join(got, ",") != "unix" {
		t.Errorf("TagsNamed(1000 names) = %q, %v; want [unix]", got, err)
	}
}

func TestQueryWords(t *testing.T) {
	tests := []struct {
		name  string
		terms []string
		want  []string
	}{
		{"none", nil, nil},
		{"empty terms", []string{"", " ", "\t\n"}, nil},
		{"one", []string{"websocket"}, []string{"websocket"}},
		{"folded", []string{"Café", "ÄRGER"}, []string{"cafe", "arger"}},
		{"syntax is text", []string{"*", "^x", "col:term", "NEAR(a b)", `"`}, []string{"x", "col", "term", "near", "a", "b"}},
		{"sql is text", []string{"'; DROP TABLE articles; --"}, []string{"drop", "table", "articles"}},
		{"NUL and invalid UTF-8", []string{"a\x00b", "c\xffd"}, []string{"a", "b", "c", "d"}},
		{"CJK pairs, and the Latin in between", []string{"使用http缓存"}, []string{"使用", "http", "缓存"}},
		{"a version whole", []string{"24.04", "v1.2"}, []string{"24.04", "v1.2"}},
		{"duplicates once", []string{"a", "a", "日本", "日本"}, []string{"a", "日本"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queryWords(tt.terms); !slices.Equal(got, tt.want) {
				t.Errorf("queryWords(%q) = %q, want %q", tt.terms, got, tt.want)
			}
		})
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("w%d", i)
	}
	if n := len(queryWords(many)); n != maxQueryWords {
		t.Errorf("queryWords of 100 terms has %d words, want %d", n, maxQueryWords)
	}
}

// FuzzSearch checks that whatever a question holds, searching it neither
// fails nor panics, and finds only passages that hold one of its words.
func FuzzSearch(f *testing.F) {
	for _, seed := range []string{
		``, `"`, `""`, `"a`, `*`, `a*`, `NEAR(a b)`, `NEAR(a b, 2)`, `a OR`, `OR`, `AND`, `NOT a`, `a AND NOT`,
		`col:term`, `title:x`, `{title body}:x`, `^x`, `'; DROP TABLE articles; --`, `{a b}`, `-x`, `+`, `a + b`,
		`(a`, `a)`, `)(`, `:`, `\`, `\"`, "a\x00b", "\x00", "\xff\xfe", `café 日本語 🙂`, `a:b:c`, `"" OR ""`,
		"web\tsocket\nclose", strings.Repeat("(", 300), strings.Repeat(`"a" OR `, 100), "24.04.1 v2", "ǅ ǈ ẞ ﬁ",
	} {
		f.Add(seed)
	}
	s := mustOpen(f)
	mustPut(f, s, &runnel.Article{Slug: "a", Title: "A title", Tags: []string{"web-socket"},
		Body: "Some body text with a socket, NEAR words, AND operators, and café. 日本語の文章。"})
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, in string) {
		// The path a question takes in production: any question the
		// domain accepts must search without an error.
		if q, err := runnel.ParseQuestion(in, 0); err == nil {
			if _, err := s.Search(ctx, q, 8); err != nil && runnel.ErrorCode(err) != runnel.EINVALID {
				t.Fatalf("Search(ParseQuestion(%q)): %v", in, err)
			}
		}
		for _, terms := range [][]string{strings.Fields(in), {in}} {
			ps, err := s.Search(ctx, runnel.Query{Text: in, Terms: terms}, 3)
			if err != nil {
				if runnel.ErrorCode(err) != runnel.EINVALID || len(queryWords(terms)) > 0 {
					t.Fatalf("Search(%q): %v", terms, err)
				}
				continue
			}
			for _, p := range ps {
				if p.Slug != "a" || p.Snippet == "" {
					t.Fatalf("Search(%q) = %+v", terms, p)
				}
			}
		}
	})
}

// TestSearchTitleNamedByQuestion checks the title boost: asked about
// WebSocket, the article titled "WebSocket" beats a comparison article that
// names WebSocket in its title too and far more often in its body.
func TestSearchTitleNamedByQuestion(t *testing.T) {
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "vs", Title: "WebSocket vs SSE vs Streamed Fetch",
		Body: strings.Repeat("WebSocket and SSE differ; a WebSocket is bidirectional. ", 12)})
	mustPut(t, s, &runnel.Article{Slug: "ws", Title: "WebSockets",
		Body: "The protocol upgrades an HTTP connection to a full-duplex channel. Frames carry messages both ways."})
	got := slugsOf(mustSearch(t, s, "what is websocket?", 5))
	if len(got) == 0 || got[0] != "ws" {
		t.Errorf("Search(what is websocket?) = %v, want ws first", got)
	}
	for _, c := range []struct {
		title string
		terms []string
		want  float64
	}{
		{"Chunked transfer encoding", []string{"chunked", "transfer", "encoding", "work"}, 0.75},
		{"WebSockets", []string{"websocket"}, 1},
		{"Stream", []string{"streams"}, 1},
		{"Streamx", []string{"stream"}, 0},
		{"Stream", []string{"streamx"}, 0},
		{"WebSocket vs SSE", []string{"websocket"}, 0},                      // the question names less than the title
		{"Overview", []string{"overview", "docker", "networking"}, 1.0 / 3}, // a one-word title names little
		{"The", []string{"the"}, 0},                                         // no content word
	} {
		if got := titleShare(runnel.Words(c.title), c.terms); got != c.want {
			t.Errorf("titleShare(%q, %q) = %v, want %v", c.title, c.terms, got, c.want)
		}
	}
}

// TestSearchTagsByName checks that a tag counts when the question names
// it, and not when a question word only shares its stem: the index stems
// tags like the rest, and "generating" and "general" are both "gener".
func TestSearchTagsByName(t *testing.T) {
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "faq", Title: "Questions", Tags: []string{"general"},
		Body: "Answers about accounts, billing and the ids on your invoices."})
	mustPut(t, s, &runnel.Article{Slug: "ids", Title: "Identifiers",
		Body: "Generating ids: the server makes them from random bits. Other ids come from the client."})
	if got := slugsOf(mustSearch(t, s, "generating ids", 5)); len(got) == 0 || got[0] != "ids" {
		t.Errorf("Search(generating ids) = %v, want ids first, not the article tagged general", got)
	}
	if got := slugsOf(mustSearch(t, s, "general ids", 5)); len(got) == 0 || got[0] != "faq" {
		t.Errorf("Search(general ids) = %v, want faq, tagged general, first", got)
	}
}

func TestCountTerms(t *testing.T) {
	s := searchCorpus(t)
	// Seven passages. A term counts the passages Search would match: the
	// three of websockets, tagged "web-socket", and unix's, as "sockets"
	// is stemmed; a word no passage has counts 0.
	docs, total, err := s.CountTerms(context.Background(), []string{"sockets", "http", "kubernetes", `"`})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4, 3, 0, 0}; total != 7 || !slices.Equal(docs, want) {
		t.Errorf("CountTerms = %v of %d, want %v of 7", docs, total, want)
	}
}

// TestSearchCommonWords checks the ranking of a question whose every word
// is in most passages. FTS5 gives such a term an IDF of 1e-6, so every
// score is near zero; the order must still come from where and how often
// the words occur (bm25 without IDF), never from the order of insertion.
func TestSearchCommonWords(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	filler := []string{
		"A stream of bytes goes from the server to the client over one response.",
		"Every server flushes the stream when a buffer fills up.",
		"The client reads the stream as it arrives and renders it.",
		"A proxy between the server and the client may buffer the stream.",
	}
	for i, text := range filler {
		mustPut(t, s, &runnel.Article{Slug: fmt.Sprintf("a%d", i), Title: fmt.Sprintf("Notes %d", i),
			Passages: []runnel.Passage{{Text: text}}})
	}
	// Inserted last, so row order would put it last.
	mustPut(t, s, &runnel.Article{Slug: "streaming", Title: "Streaming",
		Passages: []runnel.Passage{{Text: "Streaming sends a response in pieces: the server writes each piece of the stream as soon as it has it, and the stream ends with the last piece."}}})
	ps, err := s.Search(ctx, runnel.Query{Text: "streaming?", Terms: []string{"streaming"}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 5 {
		t.Fatalf("got %d passages, want all 5", len(ps))
	}
	if ps[0].Slug != "streaming" {
		t.Errorf("order %q: want the article titled by the word, which says it most, first", slugsOf(ps))
	}
	if ps[0].Score <= ps[1].Score {
		t.Errorf("scores %v, %v: the best must score strictly higher, not tie and fall back to row order", ps[0].Score, ps[1].Score)
	}
}

func TestSearchSnippetUnfenced(t *testing.T) {
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "install", Title: "Install", Passages: []runnel.Passage{{
		Text: "Install the server with one command:\n\n```sh\ngo install example.com/server@latest\n```\n\nThen start it.",
	}}})
	ps := mustSearch(t, s, "install server command", 1)
	if len(ps) != 1 {
		t.Fatalf("got %d passages, want 1", len(ps))
	}
	if strings.Contains(ps[0].Snippet, "```") || !strings.Contains(ps[0].Snippet, "go install example.com/server@latest") {
		t.Errorf("Snippet = %q, want the code without its fences", ps[0].Snippet)
	}
	if !strings.Contains(ps[0].Text, "```sh\n") {
		t.Errorf("Text = %q, want the passage as stored, fences and all", ps[0].Text)
	}
}

// TestSearchLanguages checks that an article in another language is not
// stemmed as English, and that Chinese and Japanese text, written without
// spaces, is found by the words inside it.
func TestSearchLanguages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	for _, a := range []*runnel.Article{
		{Slug: "fr", Title: "Chanson", Lang: "fr", Passages: []runnel.Passage{{Text: "Tu chantes bien, et la chanson est déjà belle."}}},
		{Slug: "en", Title: "Songs", Passages: []runnel.Passage{{Text: "She chants the refrain, and the song is lovely. Many autos park here."}}},
		{Slug: "de", Title: "Parken", Lang: "de", Passages: []runnel.Passage{{Text: "Viele Autos parken hier, und die Straße ist schmal."}}},
		{Slug: "zh", Title: "缓存", Passages: []runnel.Passage{{Text: "缓存可以减少延迟。浏览器会把响应保存在本地。"}}},
		{Slug: "ja", Title: "全文検索", Passages: []runnel.Passage{{Text: "全文検索では、文書の中の単語を探します。インデックスを使うと速くなります。"}}},
	} {
		mustPut(t, s, a)
	}
	for _, tt := range []struct {
		name, question string
		want           []string
	}{
		{"stemmed in English and in French", "chant", []string{"en", "fr"}},     // "chants" and "chantes" both have the stem "chant"
		{"not stemmed in German, which has no stemmer", "auto", []string{"en"}}, // English "autos" is stemmed; German "Autos" is not
		{"German by its own form", "autos", []string{"de", "en"}},
		{"accents folded", "deja", []string{"fr"}},             // "déjà"
		{"a two-character Chinese word", "缓存", []string{"zh"}}, // inside a sentence without spaces
		{"a Chinese question", "什么是浏览器缓存？", []string{"zh"}},    // its pairs of characters
		{"Japanese", "インデックスとは", []string{"ja"}},               // katakana inside a sentence
		{"a French word", "chanson", []string{"fr"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := runnel.ParseQuestion(tt.question, 0)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := s.Search(ctx, q, 5)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Compact(slugsOf(ps))
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Search(%q) = %q, want %q", tt.question, got, tt.want)
			}
		})
	}

	// The snippet of a CJK passage reads as written, not as pairs.
	q, _ := runnel.ParseQuestion("减少延迟", 0)
	ps, err := s.Search(ctx, q, 1)
	if err != nil || len(ps) != 1 {
		t.Fatalf("Search = %v, %v", ps, err)
	}
	if !strings.Contains(ps[0].Snippet, "缓存可以减少延迟") {
		t.Errorf("Snippet = %q, want the sentence as written", ps[0].Snippet)
	}

	// The language is kept: declared, or detected from the script.
	for slug, want := range map[string]string{"fr": "fr", "de": "de", "en": "", "zh": "zh", "ja": "ja"} {
		a, err := s.Get(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		if a.Lang != want {
			t.Errorf("Get(%q).Lang = %q, want %q", slug, a.Lang, want)
		}
	}
	docs, total, err := s.CountTerms(ctx, []string{"chanson", "缓存"})
	if err != nil || total != 5 || docs[0] != 1 || docs[1] != 1 {
		t.Errorf("CountTerms = %v, %d, %v; want [1 1], 5: every language counts", docs, total, err)
	}
}

func TestSearchVersion(t *testing.T) {
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "old", Title: "Release notes", Passages: []runnel.Passage{{Text: "Version 22.04 ships on 04 May with 24 fixes."}}})
	mustPut(t, s, &runnel.Article{Slug: "new", Title: "Release notes", Passages: []runnel.Passage{{Text: "Version 24.04 ships in April."}}})
	if got := slugsOf(mustSearch(t, s, "24.04", 5)); !slices.Equal(got, []string{"new"}) {
		t.Errorf("Search(24.04) = %q, want only the article with that version, not the one with 24 and 04 apart", got)
	}
}

// TestSearchTakesTurns shows that searches run at most one a core: with
// every turn taken, a search waits, gives up with its context's cause, and
// runs as soon as a turn is free.
func TestSearchTakesTurns(t *testing.T) {
	s := searchCorpus(t)
	q, err := runnel.ParseQuestion("websocket proxies", 0)
	if err != nil {
		t.Fatal(err)
	}
	for range cap(s.turns) {
		s.turns <- struct{}{}
	}
	gone := errors.New("the reader left")
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Search(ctx, q, 5)
		errc <- err
	}()
	cancel(gone)
	if err := <-errc; !errors.Is(err, gone) {
		t.Fatalf("search waiting for a turn, canceled: err %v, want %v", err, gone)
	}

	got := make(chan []runnel.Passage, 1)
	go func() {
		ps, err := s.Search(context.Background(), q, 5)
		if err != nil {
			t.Error(err)
		}
		got <- ps
	}()
	<-s.turns // one turn frees
	if ps := <-got; len(ps) == 0 || ps[0].Slug != "websockets" {
		t.Fatalf("search after a turn freed: %v", slugsOf(ps))
	}
	if n := len(s.turns); n != cap(s.turns)-1 {
		t.Fatalf("turns taken after the search: %d, want %d (it gave its turn back)", n, cap(s.turns)-1)
	}
}

// Searches run on the store's own goroutines, no more of them than may
// search at once, which stay for the next searches and end when the store
// closes.
func TestSearchGoroutines(t *testing.T) {
	s := searchCorpus(t)
	q, err := runnel.ParseQuestion("how do websockets work", 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			ps, err := s.Search(context.Background(), q, 8)
			if err == nil && (len(ps) == 0 || ps[0].Slug != "websockets") {
				err = fmt.Errorf("first passage of %d from %v, want websockets", len(ps), slugsOf(ps))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.searchers.Load(); n < 1 || n > int32(cap(s.turns)) {
		t.Errorf("%d search goroutines after 50 searches, want 1 to %d", n, cap(s.turns))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	limit := time.Now().Add(5 * time.Second)
	for s.searchers.Load() > 0 {
		if time.Now().After(limit) {
			t.Fatalf("%d search goroutines left after Close", s.searchers.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Search(context.Background(), q, 8); err == nil {
		t.Error("Search after Close succeeded")
	}
}

func TestUntable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"No table here, though a | b in prose.\n\nMore.", "No table here, though a | b in prose.\n\nMore."},
		{"Before.\n\n| Opcode | Meaning |\n| --- | --- |\n| 0x1 | text |\n| a\\|b |  |\n\nAfter.",
			"Before.\n\nOpcode | Meaning\n0x1 | text\na|b |\n\nAfter."},
		{"| --- | :---: |\n| x | y |", "x | y"},
	} {
		if got := untable(c.in); got != c.want {
			t.Errorf("untable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
