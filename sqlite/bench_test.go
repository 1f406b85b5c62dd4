package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/markdown"
)

// benchWords is the head of the synthetic corpus's vocabulary: real words,
// most common first. benchVocabulary adds made-up words after them, so that
// the corpus has the long tail of rare words real text has.
var benchWords = strings.Fields(`
the of and to in is that for it as with was on be by this are or from at an
which have not but can has all one more when there will also their use its
been into other some time only new these two may then do first any like our
over such make most after what many how where about each file data server
client request response connection socket stream event message error value
string number list table index query search result article passage section
heading title tag answer question token model network proxy buffer cache
memory thread process signal timeout deadline context cancel retry backoff
header body status code route handler middleware flush write read close open
port host address protocol version schema migration transaction lock commit
rollback journal checkpoint page cursor statement parameter binding driver
package module import export build test benchmark fuzz race deploy container
image volume secret config flag variable environment default option setting
user account session cookie password key certificate encryption signature
browser page script style layout render template component state effect hook
queue worker job task schedule cron batch pipeline channel goroutine select
websocket http https tcp udp dns tls quic gateway balancer cluster replica
shard partition leader follower consensus quorum election heartbeat gossip
compression gzip brotli chunk frame payload encoder decoder parser lexer
grammar syntax semantic compiler linker runtime garbage collector allocator
pointer slice map struct interface method function closure generic constraint
kubernetes docker lambda terraform nginx postgres sqlite redis kafka rabbit
`)

// benchVocabulary returns benchWords followed by n made-up words of two to
// four syllables.
func benchVocabulary(r *rand.Rand, n int) []string {
	syllables := strings.Fields(`ka lo min tra ser vi pol den ar est ung mo ric tal ben
		sor qui fen dra lux on pe ti har vel cor nis am bro ge`)
	vocab := slices.Clone(benchWords)
	seen := map[string]bool{}
	for _, w := range vocab {
		seen[w] = true
	}
	for len(vocab) < len(benchWords)+n {
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteString(syllables[r.IntN(len(syllables))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			vocab = append(vocab, w)
		}
	}
	return vocab
}

var benchTags = strings.Fields(`go http websocket sqlite networking security
performance testing deployment database frontend backend streaming lambda
docker kubernetes tutorial reference faq troubleshooting`)

// benchCorpus returns articles × passages synthetic articles, the same for
// every run.
func benchCorpus(articles, passages int) []*runnel.Article {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := benchVocabulary(r, 5000)
	// Word frequencies fall with rank as in English (Zipf's law): a few
	// words are in every passage, most in few.
	zipf := rand.NewZipf(r, 1.07, 1, uint64(len(vocab)-1))
	words := func(n int) string {
		w := make([]string, n)
		for i := range w {
			w[i] = vocab[zipf.Uint64()]
		}
		return strings.Join(w, " ")
	}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*runnel.Article, articles)
	for i := range out {
		a := &runnel.Article{
			Slug:        fmt.Sprintf("article-%05d", i),
			Title:       words(3 + r.IntN(4)),
			Date:        base.Add(time.Duration(r.IntN(5*365*24)) * time.Hour),
			Tags:        []string{benchTags[r.IntN(len(benchTags))], benchTags[r.IntN(len(benchTags))]},
			Description: words(12),
			Source:      fmt.Sprintf("bench/article-%05d.md", i),
		}
		var body strings.Builder
		for range passages {
			p := runnel.Passage{Heading: words(2 + r.IntN(3)), Text: words(60+r.IntN(80)) + "."}
			a.Passages = append(a.Passages, p)
			fmt.Fprintf(&body, "## %s\n\n%s\n\n", p.Heading, p.Text)
		}
		a.Body = body.String()
		out[i] = a
	}
	return out
}

// BenchmarkSearch measures queries against 2,000 articles of 5 passages.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b)
	start := time.Now()
	for _, a := range benchCorpus(2000, 5) {
		mustPut(b, s, a)
	}
	b.Logf("indexed 10,000 passages in %v", time.Since(start).Round(time.Millisecond))

	for _, bm := range []struct{ name, question string }{
		{"typical", "how does the websocket proxy handle a timeout"}, // 3 terms of middling frequency
		{"rare", "quorum election gossip"},
		{"common", "data file server request"}, // words in most passages
	} {
		q, err := runnel.ParseQuestion(bm.question, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				ps, err := s.Search(ctx, q, 8)
				if err != nil {
					b.Fatal(err)
				}
				n = len(ps)
			}
			if n == 0 {
				b.Fatalf("Search(%q) found nothing", q.Terms)
			}
		})
	}
}

// BenchmarkPut measures the import rate: one new article of 5 passages per
// operation, each in its own transaction, as the importer does.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b)
	corpus := benchCorpus(2000, 5)
	i := 0
	for b.Loop() {
		a := *corpus[i%len(corpus)]
		a.Slug = fmt.Sprintf("put-%d", i)
		if _, err := s.Put(ctx, &a); err != nil {
			b.Fatal(err)
		}
		i++
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(i)/sec, "articles/s")
	b.ReportMetric(float64(i*5)/sec, "passages/s")
}

// BenchmarkPipeline measures the answer pipeline without generation on the
// embedded articles: ParseQuestion, then the Answerer's search, tags, titles,
// sources and term counts, with a generator that answers nothing. Run it on
// one core to read it as questions a second a core:
//
//	go test ./sqlite -run '^$' -bench Pipeline -cpu 1
func BenchmarkPipeline(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b)
	if _, err := markdown.PutFS(ctx, s, corpus.FS()); err != nil {
		b.Fatal(err)
	}
	a := &runnel.Answerer{Searcher: s, Generator: nopGenerator{}}
	questions := []string{
		"what is websocket?", "how does chunked transfer encoding work?", "what is ndjson",
		"why do proxies buffer streaming responses", "what is backpressure", "server-sent events reconnect",
		"how does tls 1.3 handshake work", "what is http/2 multiplexing", "dns ttl caching",
		"cors preflight request", "load balancing long lived connections", "tcp slow start",
		"how to stream from aws lambda", "what is quic", "nagle algorithm delayed ack",
		"graceful shutdown of streams", "rate limiting token bucket", "compression breaks streaming",
		"how do I resume a stream after a disconnect?", "why does nginx buffer my responses?",
		"what is head of line blocking", "how do etags work", "sticky sessions for websockets",
		"how do I flush a response in go", "what timeouts does a streaming server need",
	}
	emit := func(runnel.Event) error { return nil }
	i := 0
	for b.Loop() {
		q, err := runnel.ParseQuestion(questions[i%len(questions)], 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Answer(ctx, q, emit); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "questions/s")
}

// nopGenerator answers every prompt with nothing.
type nopGenerator struct{}

func (nopGenerator) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	return runnel.Done{FinishReason: runnel.FinishStop}, nil
}

// BenchmarkSearchDatabase asks the load harness's questions
// (bench/questions.txt) of the database RUNNEL_BENCH_DB names, in turn:
// the harness's corpus (bench/gencorpus, imported as bench/run-load.sh
// does) holds the words of its subject in most passages, which costs a
// search more than BenchmarkSearch's corpus does. "rank" is the ranking
// alone, for the 80 candidates a search of 8 passages ranks.
func BenchmarkSearchDatabase(b *testing.B) {
	path := os.Getenv("RUNNEL_BENCH_DB")
	if path == "" {
		b.Skip("RUNNEL_BENCH_DB names no database")
	}
	ctx := context.Background()
	s := mustOpenPath(b, path)
	text, err := os.ReadFile("../bench/questions.txt")
	if err != nil {
		b.Fatal(err)
	}
	var qs []runnel.Query
	for line := range strings.Lines(string(text)) {
		if q, err := runnel.ParseQuestion(line, 0); err == nil {
			qs = append(qs, q)
		}
	}
	b.Run("search", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := s.Search(ctx, qs[i%len(qs)], 8); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rank", func(b *testing.B) {
		ix := s.idx.Load()
		rk := s.rankingNow()
		for i := 0; b.Loop(); i++ {
			q := qs[i%len(qs)]
			qw := queryWords(q.Terms)
			ix.mu.RLock()
			ix.rank(qw, wordWeights(q, qw), rk, ix.tagged(q.TagNames()), 8*candidatesPer)
			ix.mu.RUnlock()
		}
	})
}
