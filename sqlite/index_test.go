package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runnel/runnel"
)

// TestIndexOtherWriter checks that a store sees what another store (another
// process, in production: runnel import while runnel serve runs) writes to
// the same file: its index applies the changes table before it searches.
func TestIndexOtherWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	server, importer := mustOpenPath(t, path), mustOpenPath(t, path)

	mustPut(t, importer, &runnel.Article{Slug: "yak", Title: "Yaks", Tags: []string{"animals"}, Body: "The yak is woolly."})
	if got := slugsOf(mustSearch(t, server, "woolly yak", 5)); !slices.Equal(got, []string{"yak"}) {
		t.Fatalf("server's search after the importer's Put = %q, want [yak]", got)
	}
	if tags, err := server.TagsNamed(ctx, []string{"animals"}); err != nil || !slices.Equal(tags, []string{"animals"}) {
		t.Errorf("TagsNamed = %q, %v; want the new tag", tags, err)
	}
	mustPut(t, importer, &runnel.Article{Slug: "yak", Title: "Yaks", Body: "The yak is shaggy now."})
	if got := slugsOf(mustSearch(t, server, "woolly", 5)); len(got) != 0 {
		t.Errorf("after the importer replaced it: Search(woolly) = %q, want nothing", got)
	}
	if got := slugsOf(mustSearch(t, server, "shaggy", 5)); !slices.Equal(got, []string{"yak"}) {
		t.Errorf("after the importer replaced it: Search(shaggy) = %q, want [yak]", got)
	}
	if err := importer.Delete(ctx, "yak"); err != nil {
		t.Fatal(err)
	}
	if got := slugsOf(mustSearch(t, server, "shaggy", 5)); len(got) != 0 {
		t.Errorf("after the importer deleted it: Search = %q, want nothing", got)
	}
	docs, total, err := server.CountTerms(ctx, []string{"shaggy"})
	if err != nil || total != 0 || docs[0] != 0 {
		t.Errorf("CountTerms after delete = %v, %d, %v", docs, total, err)
	}

	// Changes pruned past what the server has seen: it rebuilds.
	mustPut(t, importer, &runnel.Article{Slug: "emu", Title: "Emus", Body: "The emu runs fast."})
	if _, err := importer.rw.ExecContext(ctx, `DELETE FROM changes`); err != nil {
		t.Fatal(err)
	}
	mustPut(t, importer, &runnel.Article{Slug: "gnu", Title: "Gnus", Body: "The gnu migrates."})
	for _, q := range []string{"emu", "gnu"} {
		if got := slugsOf(mustSearch(t, server, q, 5)); !slices.Equal(got, []string{q}) {
			t.Errorf("after pruned changes: Search(%s) = %q, want [%s]", q, got, q)
		}
	}
}

// TestIndexReopen checks that the index is built from the file: a store
// opened on an existing database finds what an earlier one stored.
func TestIndexReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reopen.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, &runnel.Article{Slug: "cafe", Title: "Café", Lang: "fr", Tags: []string{"food"}, Body: "Le café est chaud."})
	mustPut(t, s, &runnel.Article{Slug: "tea", Title: "Tea", Body: "Tea is brewed."})
	before := mustSearch(t, s, "cafe chaud tea", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpenPath(t, path)
	after := mustSearch(t, again, "cafe chaud tea", 5)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("after reopening:\n got %+v\nwant %+v", after, before)
	}
}

// TestIndexConcurrent runs searches while articles are put and deleted,
// for the race detector and for searches that must never fail.
func TestIndexConcurrent(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 60 {
			slug := fmt.Sprintf("a%d", i%7)
			if i%5 == 4 {
				_ = s.Delete(ctx, slug)
				continue
			}
			mustPut(t, s, &runnel.Article{Slug: slug, Title: "Streams " + slug,
				Body: fmt.Sprintf("Stream number %d flushes its buffer.\n\n## More\n\nA proxy buffers stream %d.", i, i)})
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, _ := runnel.ParseQuestion("how does a proxy buffer a stream?", 0)
			for range 100 {
				ps, err := s.Search(ctx, q, 5)
				if err != nil {
					t.Error(err)
					return
				}
				for _, p := range ps {
					if p.Text == "" || p.Snippet == "" {
						t.Errorf("blank passage %+v", p)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

// TestIndexCompact checks that removed passages leave the lists once they
// are many, and that searches find the same afterwards.
func TestIndexCompact(t *testing.T) {
	s := mustOpen(t)
	for round := range 4 {
		for i := range 500 {
			mustPut(t, s, &runnel.Article{Slug: fmt.Sprintf("a%d", i), Title: "Note",
				Body: fmt.Sprintf("Round %d of note %d about kites.", round, i)})
		}
	}
	ix := s.idx.Load()
	if ix.live != 500 || len(ix.docs) >= 4*500 {
		t.Errorf("index: %d live of %d docs; want 500 live, and the removed ones compacted away", ix.live, len(ix.docs))
	}
	ps := mustSearch(t, s, "round 3 kites", 100)
	if len(ps) != 100 {
		t.Fatalf("got %d passages, want 100", len(ps))
	}
	for _, p := range ps {
		if p.Text[:15] != "Round 3 of note" {
			t.Errorf("passage %q: not the latest round", p.Text)
			break
		}
	}
}

func TestPutBatch(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	mustPut(t, s, &runnel.Article{Slug: "old", Title: "Old", Body: "Unchanged text."})
	res, err := s.PutBatch(ctx, []*runnel.Article{
		{Slug: "a", Title: "A", Body: "First draft about otters."},
		{Slug: "old", Title: "Old", Body: "Unchanged text."},
		{Slug: "a", Title: "A", Body: "Second draft about beavers."},
	})
	if err != nil || !slices.Equal(res, []runnel.PutResult{runnel.PutAdded, runnel.PutUnchanged, runnel.PutUpdated}) {
		t.Fatalf("PutBatch = %v, %v", res, err)
	}
	if got := slugsOf(mustSearch(t, s, "otters", 5)); len(got) != 0 {
		t.Errorf("Search(otters) = %q: the later article of the batch must win", got)
	}
	if got := slugsOf(mustSearch(t, s, "beavers", 5)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Search(beavers) = %q, want [a]", got)
	}
	// One invalid article: nothing of the batch is stored.
	_, err = s.PutBatch(ctx, []*runnel.Article{{Slug: "b", Title: "B", Body: "Badgers."}, {Slug: "c", Body: "No title."}})
	if runnel.ErrorCode(err) != runnel.EINVALID || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("PutBatch with an untitled article = %v, want EINVALID naming it", err)
	}
	if _, err := s.Get(ctx, "b"); runnel.ErrorCode(err) != runnel.ENOTFOUND {
		t.Errorf("Get(b) after a refused batch = %v, want ENOTFOUND", err)
	}
}

// TestRankCommonLastMatchesEveryPosting checks that ranking the common
// terms last, for the docs that can be among the best, returns what
// reading every posting returns, to the last bit of every score, over
// random questions of common and rare words, weighted or not, naming tags
// or not, on an index with removed passages.
func TestRankCommonLastMatchesEveryPosting(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	arts := benchCorpus(400, 5)
	for _, a := range arts {
		mustPut(t, s, a)
	}
	for i := 0; i < len(arts); i += 7 {
		if err := s.Delete(ctx, arts[i].Slug); err != nil {
			t.Fatal(err)
		}
	}
	ix := s.idx.Load()
	r := rand.New(rand.NewPCG(3, 4))
	vocab := benchVocabulary(rand.New(rand.NewPCG(1, 2)), 5000)
	rks := []Ranking{DefaultRanking, {Title: 1, Heading: 1, Tags: 1, Meta: 1, Body: 1}, {Title: 10, Heading: 0, Tags: 8, Meta: 0, Body: 1}}
	fast := 0
	const questions = 3000
	for i := range questions {
		var qwords []string
		for range 1 + r.IntN(6) {
			switch r.IntN(3) {
			case 0: // the head of the vocabulary: words in most passages
				qwords = append(qwords, vocab[r.IntN(30)])
			case 1:
				qwords = append(qwords, vocab[r.IntN(300)])
			default:
				qwords = append(qwords, vocab[r.IntN(len(vocab))])
			}
		}
		if r.IntN(5) == 0 {
			qwords = append(qwords, benchTags[r.IntN(len(benchTags))])
		}
		var weights []float64
		if r.IntN(3) == 0 {
			weights = make([]float64, len(qwords))
			for j := range weights {
				weights[j] = []float64{1, 0.5, 0.25, 0, 1e-6}[r.IntN(5)] // 1e-6: as little as a common term adds
			}
		}
		var tagged taggedSet
		if r.IntN(2) == 0 {
			tagged = ix.tagged([]string{benchTags[r.IntN(len(benchTags))], benchTags[r.IntN(len(benchTags))]})
		}
		rk := rks[i%len(rks)]
		n := []int{1, 8, 80, 400}[r.IntN(4)]
		ix.mu.RLock()
		want, _ := ix.rankWith(qwords, weights, rk, tagged, n, false)
		got, ok := ix.rankWith(qwords, weights, rk, tagged, n, true)
		ix.mu.RUnlock()
		if ok {
			fast++
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q (weights %v, n %d, ranking %+v): ranked common terms last %v\nevery posting %v", qwords, weights, n, rk, got, want)
		}
	}
	// Most questions hold a word of the head and enough others to rank
	// that way; the comparison proves nothing if few of them did.
	if fast < questions/3 {
		t.Fatalf("only %d of %d questions ranked their common terms last", fast, questions)
	}
	t.Logf("%d of %d questions ranked their common terms last", fast, questions)
}
