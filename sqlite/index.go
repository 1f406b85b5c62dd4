package sqlite

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/runnel/runnel"
)

// The fields of a passage the index weighs, in the order of Ranking's
// weights.
const (
	fTitle = iota
	fHeading
	fTags
	fMeta
	fBody
	nFields
)

// BM25's constants, as SQLite's FTS5 has them.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// index is the full-text index of the store's passages, in memory: an
// inverted list per term with the term's count in each field. SQLite keeps
// the articles; the index is built from them when the store opens and kept
// in step by every write (and by the changes table for writes of other
// processes). It ranks with BM25 over the weighted fields, as FTS5 did,
// without SQL in the way: a search reads only the lists of its terms.
type index struct {
	mu     sync.RWMutex
	termID map[string]int32
	lists  []postings
	docs   []doc
	dlen   []int32 // by doc: its length while it lives, -1 once removed (a search reads only this of a doc)
	arts   map[string]*artInfo
	langs  map[*analyzer]int // articles per analyzer, to know which keys a question has
	norms  map[string]map[*artInfo]bool
	words  map[*analyzer]map[string]int32 // folded word -> term, per language
	tf     []termCount                    // put's counts per term, by term
	first  []uint16                       // by term: the first byte of its words (snippet.go)
	stamp  uint32                         // marks the entries of tf the current passage set
	live   int                            // docs not removed
	dead   int                            // docs removed, still in the lists
	tokens int64                          // tokens of the live docs, for the average length
	seq    int64                          // the last row of the changes table applied
}

// termCount is a term's count in each field of the passage being put.
type termCount struct {
	stamp uint32
	tf    [nFields]uint8
}

// postings is a term's inverted list, in the order docs were added.
type postings struct {
	list []posting
	df   int // live docs in list
}

type posting struct {
	doc uint32
	tf  [nFields]uint8 // occurrences in each field, at most 255
}

// doc is an indexed passage. It keeps the passage's heading and text, as
// the passages table has them, so that a search reads no row.
type doc struct {
	id            int64 // passages.id
	art           *artInfo
	heading, text string
	position      int32
	length        int32    // tokens in all fields
	terms         []int32  // distinct terms, to update the lists when it goes
	defs          []string // the subjects its first sentences define (define.go)
	alive         bool
}

// artInfo is what the index knows of an article.
type artInfo struct {
	slug, title string
	titleWords  []string // runnel.Words(title), for the title boost
	tags        []string // in the author's order
	norms       []string // runnel.NormalizeTag of each tag
	an          *analyzer
	docs        []uint32
}

func newIndex() *index {
	return &index{
		termID: map[string]int32{},
		arts:   map[string]*artInfo{},
		langs:  map[*analyzer]int{},
		norms:  map[string]map[*artInfo]bool{},
		words:  map[*analyzer]map[string]int32{},
	}
}

// wordTerm returns the term of a folded word in an's language, adding it
// to the index if it is new. The maps keep copies of the strings: a word
// may be a slice of a passage's whole text.
func (ix *index) wordTerm(an *analyzer, w string) int32 {
	wm := ix.words[an]
	if wm == nil {
		wm = map[string]int32{}
		ix.words[an] = wm
	}
	if id, ok := wm[w]; ok {
		return id
	}
	t := an.term(w)
	id, ok := ix.termID[t]
	if !ok {
		id = int32(len(ix.lists))
		ix.termID[strings.Clone(t)] = id
		ix.lists = append(ix.lists, postings{})
		ix.tf = append(ix.tf, termCount{})
		ix.first = append(ix.first, 0)
	}
	wm[strings.Clone(w)] = id
	if w != "" {
		ix.first[id] = noteFirst(ix.first[id], w[0])
	}
	return id
}

// indexArticle is an article as the index takes it.
type indexArticle struct {
	slug, title, lang, tags, meta string
	tagList, norms                []string
	passages                      []indexPassage
}

type indexPassage struct {
	id            int64
	position      int
	heading, text string
}

// put adds a, replacing the article with its slug.
func (ix *index) put(a indexArticle) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(a.slug)
	art := &artInfo{slug: a.slug, title: a.title, titleWords: runnel.Words(a.title),
		tags: a.tagList, norms: a.norms, an: analyzerFor(a.lang)}
	ix.arts[a.slug] = art
	ix.langs[art.an]++
	for _, n := range a.norms {
		m := ix.norms[n]
		if m == nil {
			m = map[*artInfo]bool{}
			ix.norms[n] = m
		}
		m[art] = true
	}
	var terms []int32 // the current passage's distinct terms
	for _, p := range a.passages {
		if ix.stamp++; ix.stamp == 0 {
			for i := range ix.tf {
				ix.tf[i].stamp = 0
			}
			ix.stamp = 1
		}
		terms = terms[:0]
		var length int32
		add := func(field int, text string) {
			eachWord(text, func(w string, extra bool) {
				if !extra {
					length++
				}
				id := ix.wordTerm(art.an, w)
				c := &ix.tf[id]
				if c.stamp != ix.stamp {
					*c = termCount{stamp: ix.stamp}
					terms = append(terms, id)
				}
				if c.tf[field] < math.MaxUint8 {
					c.tf[field]++
				}
			})
		}
		add(fTitle, a.title)
		add(fHeading, p.heading)
		add(fTags, a.tags)
		add(fMeta, a.meta)
		add(fBody, p.text)
		d := uint32(len(ix.docs))
		for _, id := range terms {
			l := &ix.lists[id]
			l.list = append(l.list, posting{doc: d, tf: ix.tf[id].tf})
			l.df++
		}
		dterms := slices.Clone(terms)
		slices.Sort(dterms)
		ix.docs = append(ix.docs, doc{id: p.id, art: art, heading: p.heading, text: p.text, position: int32(p.position), length: length, terms: dterms,
			defs: definedSubjects(art.an, p.text), alive: true})
		ix.dlen = append(ix.dlen, length)
		art.docs = append(art.docs, d)
		ix.live++
		ix.tokens += int64(length)
	}
	ix.maybeCompact()
}

// remove drops the article with slug, if the index has it.
func (ix *index) remove(slug string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.removeLocked(slug)
	ix.maybeCompact()
}

func (ix *index) removeLocked(slug string) {
	art := ix.arts[slug]
	if art == nil {
		return
	}
	delete(ix.arts, slug)
	if ix.langs[art.an]--; ix.langs[art.an] == 0 {
		delete(ix.langs, art.an)
	}
	for _, n := range art.norms {
		if m := ix.norms[n]; m != nil {
			delete(m, art)
			if len(m) == 0 {
				delete(ix.norms, n)
			}
		}
	}
	for _, d := range art.docs {
		dc := &ix.docs[d]
		dc.alive = false
		ix.dlen[d] = -1
		for _, t := range dc.terms {
			ix.lists[t].df--
		}
		dc.terms, dc.defs, dc.heading, dc.text = nil, nil, "", ""
		ix.live--
		ix.dead++
		ix.tokens -= int64(dc.length)
	}
}

// maybeCompact drops removed docs from the lists once they are a third of
// all docs, renumbering the rest.
func (ix *index) maybeCompact() {
	if ix.dead < 1024 || ix.dead*3 < len(ix.docs) {
		return
	}
	renum := make([]uint32, len(ix.docs))
	docs := make([]doc, 0, ix.live)
	dlen := make([]int32, 0, ix.live)
	for i, d := range ix.docs {
		if d.alive {
			renum[i] = uint32(len(docs))
			docs = append(docs, d)
			dlen = append(dlen, d.length)
		}
	}
	for t := range ix.lists {
		l := &ix.lists[t]
		kept := l.list[:0]
		for _, p := range l.list {
			if ix.docs[p.doc].alive {
				p.doc = renum[p.doc]
				kept = append(kept, p)
			}
		}
		l.list = slices.Clip(kept)
	}
	for _, art := range ix.arts {
		for i, d := range art.docs {
			art.docs[i] = renum[d]
		}
	}
	ix.docs, ix.dlen, ix.dead = docs, dlen, 0
}

// scored is a candidate of a search.
type scored struct {
	doc   uint32
	score float64
}

// searchScratch holds a search's per-doc sums, reused across searches.
type searchScratch struct {
	score, plain []float64
	mark         []uint32 // stamp of the search that last touched the doc
	stamp        uint32
	touched      []uint32
	cands        []uint32
	best         topN // rankCommonLast's best lower bounds
	terms        []rankTerm
}

var scratchPool = sync.Pool{New: func() any { return new(searchScratch) }}

// rankTerm is a term of a search: its list and its IDF, weighted.
type rankTerm struct {
	id     int32
	list   []posting
	idf    float64
	common bool // in more than half the passages, its IDF clamped to 1e-6
}

// scorer holds what BM25 needs of the index and the ranking.
type scorer struct {
	w      [nFields]float64
	dlen   []int32
	c0, c1 float64 // a doc's length normalisation is c0 + c1·length
}

func newScorer(rk Ranking, dlen []int32, avg float64) *scorer {
	return &scorer{w: [nFields]float64{rk.Title, rk.Heading, rk.Tags, rk.Meta, rk.Body}, dlen: dlen,
		c0: bm25K1 * (1 - bm25B), c1: bm25K1 * bm25B / avg}
}

// counts returns a posting's weighted count over its fields, with and
// without the tags field.
func (s *scorer) counts(p *posting) (f, fp float64) {
	for k := range nFields {
		if p.tf[k] > 0 {
			x := s.w[k] * float64(p.tf[k])
			f += x
			if k != fTags {
				fp += x
			}
		}
	}
	return f, fp
}

// shares returns a posting's share of its doc's score, with and without
// the tags field: idf·f·(k1+1) / (f + k1·(1-b+b·length/avg)), zero for a
// count of zero. Both ways of ranking compute it here, and sum a doc's
// shares in the question's order, so that a score is the same to its last
// bit whichever way found it.
func (s *scorer) shares(p *posting, length int32, idf float64) (share, plain float64) {
	f, fp := s.counts(p)
	norm := float64(s.c0 + float64(s.c1*float64(length)))
	if f > 0 {
		share = float64(float64(idf*f)*(bm25K1+1)) / (f + norm)
	}
	switch {
	case fp == f:
		plain = share // no count in the tags field, as for most postings
	case fp > 0:
		plain = float64(float64(idf*fp)*(bm25K1+1)) / (fp + norm)
	}
	return share, plain
}

// add adds the posting p of a term with idf to its doc's sums, marking the
// doc touched by this search.
func (sc *searchScratch) add(s *scorer, p *posting, length int32, idf float64) {
	share, plain := s.shares(p, length, idf)
	if sc.mark[p.doc] != sc.stamp {
		sc.mark[p.doc] = sc.stamp
		sc.score[p.doc], sc.plain[p.doc] = 0, 0
		sc.touched = append(sc.touched, p.doc)
	}
	sc.score[p.doc] += share
	sc.plain[p.doc] += plain
}

// addList adds every live posting of t.
func (sc *searchScratch) addList(s *scorer, t *rankTerm) {
	for i := range t.list {
		p := &t.list[i]
		if length := s.dlen[p.doc]; length >= 0 {
			sc.add(s, p, length, t.idf)
		}
	}
}

// rank returns the best n docs for the question words, best first, with
// their scores: BM25 over the fields weighted by rk, FTS5's formula
// (IDF clamped to 1e-6 for a term in more than half the passages). The
// tags field counts only for the articles in tagged; the others are
// scored without it, so that a stem shared with a tag finds nothing.
// weights, when not nil, multiplies the score of each of qwords.
func (ix *index) rank(qwords []string, weights []float64, rk Ranking, tagged taggedSet, n int) []scored {
	out, _ := ix.rankWith(qwords, weights, rk, tagged, n, true)
	return out
}

// rankWith is rank, reading every posting of every term unless commonLast
// lets it read the common terms' lists only for the docs that can be among
// the best (rankCommonLast). Both ways return the same; the bool says
// whether rankCommonLast ranked.
func (ix *index) rankWith(qwords []string, weights []float64, rk Ranking, tagged taggedSet, n int, commonLast bool) ([]scored, bool) {
	if ix.live == 0 || n <= 0 {
		return nil, false
	}
	total := float64(ix.live)
	avg := float64(ix.tokens) / total
	if avg <= 0 {
		avg = 1
	}
	s := newScorer(rk, ix.dlen, avg)
	sc := scratchPool.Get().(*searchScratch)
	defer scratchPool.Put(sc)
	if len(sc.score) < len(ix.docs) {
		sc.score = make([]float64, len(ix.docs))
		sc.plain = make([]float64, len(ix.docs))
		sc.mark = make([]uint32, len(ix.docs))
		sc.stamp = 0
	}
	sc.forget()
	terms := sc.terms[:0]
	for _, an := range ix.analyzers() {
		for j, qw := range qwords {
			id, ok := ix.termID[an.term(qw)]
			if !ok || slices.ContainsFunc(terms, func(t rankTerm) bool { return t.id == id }) {
				continue
			}
			l := &ix.lists[id]
			if l.df == 0 {
				continue
			}
			df := float64(l.df)
			t := rankTerm{id: id, list: l.list, idf: math.Log((total - df + 0.5) / (df + 0.5))}
			if t.idf <= 0 {
				t.idf, t.common = 1e-6, true
			}
			if weights != nil {
				t.idf *= weights[j]
			}
			terms = append(terms, t)
		}
	}
	// The scratch goes back to its pool without the lists, which an index
	// rebuilt meanwhile would otherwise keep.
	defer func() { clear(terms); sc.terms = terms[:0] }()
	h := make(topN, 0, n)
	offer := func(d uint32) {
		// The scores differ only for a doc whose tags hold a question
		// word; only then does it matter whether its article counts them.
		v := sc.plain[d]
		if sc.score[d] != v && tagged.has(ix.docs[d].art) {
			v = sc.score[d]
		}
		h.offer(scored{doc: d, score: v}, n)
	}
	var cands []uint32
	ok := false
	if commonLast {
		cands, ok = sc.rankCommonLast(s, terms, n)
	}
	if ok {
		for _, d := range cands {
			offer(d)
		}
	} else {
		for i := range terms {
			sc.addList(s, &terms[i])
		}
		for _, d := range sc.touched {
			offer(d)
		}
	}
	out := []scored(h)
	slices.SortFunc(out, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return cmp.Compare(ix.docs[a.doc].id, ix.docs[b.doc].id)
	})
	return out, ok
}

// rankCommonLast scores the docs that can be among the best n without
// reading the whole lists of the common terms, those in more than half the
// passages. Their IDF is clamped to 1e-6, so together they add at most
// bound to any doc's score: once the other terms are summed, a doc whose
// score falls short of the nth best by more than bound cannot be among the
// best n, nor can a doc none of the other terms holds. The docs that can
// are scored again from the start, every term in the question's order, as
// rank scores them all, so that their scores are the same to the last
// bit; the common terms' postings are found by seeking through their
// lists, which hold their docs in order. It returns false, having changed
// nothing that rank's other way would read, when it cannot be sure: too
// few docs hold the other terms, or they score too little.
func (sc *searchScratch) rankCommonLast(s *scorer, terms []rankTerm, n int) ([]uint32, bool) {
	var bound float64
	common := 0
	for i := range terms {
		if terms[i].common {
			common++
			bound += terms[i].idf * (bm25K1 + 1) // a term's share is below idf·(k1+1)
		}
		if terms[i].idf < 0 {
			return nil, false
		}
	}
	for _, w := range s.w {
		if w < 0 {
			return nil, false
		}
	}
	if common == 0 || common == len(terms) {
		return nil, false
	}
	for i := range terms {
		if !terms[i].common {
			sc.addList(s, &terms[i])
		}
	}
	if len(sc.touched) < n {
		sc.forget()
		return nil, false
	}
	// The nth best of the lower bounds: a doc's score without its tags
	// and without the common terms.
	best := sc.best[:0]
	for _, d := range sc.touched {
		best.offer(scored{doc: d, score: sc.plain[d]}, n)
	}
	sc.best = best
	nth := best[0].score
	slack := nth * 1e-9 // the sums above were made in another order
	if nth-slack <= bound {
		sc.forget()
		return nil, false
	}
	cut := nth - bound - slack
	cands := sc.cands[:0]
	for _, d := range sc.touched {
		if sc.score[d] >= cut {
			cands = append(cands, d)
			sc.score[d], sc.plain[d] = 0, 0
		}
	}
	slices.Sort(cands)
	for i := range terms {
		t := &terms[i]
		j := 0
		for _, d := range cands {
			if j = seek(t.list, j, d); j == len(t.list) {
				break
			}
			if p := &t.list[j]; p.doc == d {
				share, plain := s.shares(p, s.dlen[d], t.idf)
				sc.score[d] += share
				sc.plain[d] += plain
			}
		}
	}
	sc.cands = cands
	return cands, true
}

// forget starts a new search of the scratch: no doc is touched.
func (sc *searchScratch) forget() {
	if sc.stamp++; sc.stamp == 0 {
		clear(sc.mark)
		sc.stamp = 1
	}
	sc.touched = sc.touched[:0]
}

// seek returns the index of the first posting from j on whose doc is d or
// later (len(list) if none): it gallops, then halves.
func seek(list []posting, j int, d uint32) int {
	hi, step := j, 1
	for hi < len(list) && list[hi].doc < d {
		j = hi + 1
		hi += step
		step *= 2
	}
	hi = min(hi, len(list))
	for j < hi {
		m := int(uint(j+hi) >> 1)
		if list[m].doc < d {
			j = m + 1
		} else {
			hi = m
		}
	}
	return j
}

// topN keeps the n best scored docs: a min-heap on the score, the worst
// on top, ties broken against the later passage. It sifts by hand rather
// than through container/heap, whose Push boxes every candidate.
type topN []scored

// worse reports whether a ranks below b.
func worse(a, b scored) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.doc > b.doc
}

func (h *topN) offer(s scored, n int) {
	t := *h
	if len(t) < n {
		t = append(t, s)
		for i := len(t) - 1; i > 0; {
			p := (i - 1) / 2
			if !worse(t[i], t[p]) {
				break
			}
			t[i], t[p] = t[p], t[i]
			i = p
		}
		*h = t
		return
	}
	if !worse(t[0], s) {
		return
	}
	t[0] = s
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(t) {
			break
		}
		if c+1 < len(t) && worse(t[c+1], t[c]) {
			c++
		}
		if !worse(t[c], t[i]) {
			break
		}
		t[i], t[c] = t[c], t[i]
		i = c
	}
}

// analyzers returns the analyzers of the indexed articles, English first,
// in a fixed order: scores are sums, and summing in another order could
// change their last bits, and so the order of equal-looking passages.
func (ix *index) analyzers() []*analyzer {
	out := make([]*analyzer, 0, len(ix.langs))
	for an := range ix.langs {
		out = append(out, an)
	}
	slices.SortFunc(out, func(a, b *analyzer) int { return cmp.Compare(a.prefix, b.prefix) })
	return out
}

// docCount returns how many live docs hold any of the question words, and
// how many live docs there are.
func (ix *index) docCount(qwords []string) (int, int) {
	var lists []*postings
	for _, an := range ix.analyzers() {
		for _, qw := range qwords {
			if id, ok := ix.termID[an.term(qw)]; ok {
				lists = append(lists, &ix.lists[id])
			}
		}
	}
	switch len(lists) {
	case 0:
		return 0, ix.live
	case 1:
		return lists[0].df, ix.live
	}
	seen := map[uint32]bool{}
	for _, l := range lists {
		for _, p := range l.list {
			if ix.docs[p.doc].alive {
				seen[p.doc] = true
			}
		}
	}
	return len(seen), ix.live
}

// tagged returns the articles with a tag of one of names.
func (ix *index) tagged(names []string) taggedSet {
	var out taggedSet
	for _, n := range names {
		if m := ix.norms[n]; len(m) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// taggedSet is a set of articles: those in any of its maps, the index's
// articles of each tag a question names. A search asks of few articles,
// so it reads the index's maps rather than merging them.
type taggedSet []map[*artInfo]bool

func (t taggedSet) has(art *artInfo) bool {
	for _, m := range t {
		if m[art] {
			return true
		}
	}
	return false
}

// tagsNamed returns the distinct tags whose normalised form is one of
// names, sorted.
func (ix *index) tagsNamed(names []string) []string {
	var tags []string
	for _, n := range names {
		for art := range ix.norms[n] {
			for i, norm := range art.norms {
				if norm == n {
					tags = append(tags, art.tags[i])
				}
			}
		}
	}
	slices.Sort(tags)
	return slices.Compact(tags)
}
