// Command eval measures runnel's answer quality on labelled questions:
// how often the article that answers a question is among the sources, how
// often the offline answer quotes it, and how well runnel says "not
// covered" when nothing answers. make eval runs it; docs/quality.md shows
// its figures and how to read them.
//
// The corpus is built from Debian's debian-faq, git-doc and docker-doc
// packages (bash eval/fetch.sh downloads and unpacks them; nothing of them
// is committed). The FAQ answers are indexed without their questions,
// which become the labelled questions; eval/questions holds questions
// written for docker-doc and questions no article answers.
//
//	go run ./eval [-root eval/.cache/root] [-details out.jsonl] [extra.jsonl ...]
//
// Extra files of questions, one {"q": ..., "gold": [slug, ...]} per line
// (no gold for an unanswerable question), are evaluated as a set of their
// own, so a held-out set needs no change to the code.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/extractive"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/sqlite"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "eval/.cache/root", "the unpacked Debian packages (bash eval/fetch.sh)")
	work := fs.String("work", "eval/.cache/work", "where the corpus and its database are built")
	qdir := fs.String("questions", "eval/questions", "the folder of the written question sets (*.jsonl)")
	details := fs.String("details", "", "write every question's outcome to this JSONL file")
	minScore := fs.Float64("min-score", 0, "the extractive generator's MinScore to try instead of its default")
	minCoverage := fs.Float64("min-coverage", 0, "the extractive generator's MinCoverage to try instead of its default")
	cpuprofile := fs.String("cpuprofile", "", "after the measured pass, ask every question ten times more under the CPU profiler and write its profile to this file")
	rank := fs.String("rank", "", "ranking to try instead of the default: title=10,heading=4,tags=8,meta=2,body=1,boost=2,def=1.5 (any of them)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	start := time.Now()
	corpus, err := build(*root, filepath.Join(*work, "corpus"))
	if err != nil {
		return fmt.Errorf("build corpus (did bash eval/fetch.sh run?): %w", err)
	}
	dbPath := filepath.Join(*work, "eval.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	rk, err := parseRanking(*rank)
	if err != nil {
		return err
	}
	store.SetRanking(rk)
	im := &markdown.Importer{Store: store}
	sum, err := im.Import(ctx, corpus.Dir)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	passages, err := countPassages(ctx, dbPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "eval: corpus of %d articles, %d passages (%d files, %d failed) built in %s\n",
		sum.Added, passages, corpus.Files, sum.Failed, time.Since(start).Round(time.Millisecond))

	sets := map[string][]Item{}
	var order []string
	add := func(it Item) {
		if _, ok := sets[it.Set]; !ok {
			order = append(order, it.Set)
		}
		sets[it.Set] = append(sets[it.Set], it)
	}
	for _, it := range corpus.Items {
		add(it)
	}
	files, err := filepath.Glob(filepath.Join(*qdir, "*.jsonl"))
	if err != nil {
		return err
	}
	files = append(files, fs.Args()...)
	for _, f := range files {
		items, err := readItems(f)
		if err != nil {
			return err
		}
		for _, it := range items {
			add(it)
		}
	}

	ev := &evaluator{store: store}
	ev.answerer = &runnel.Answerer{Searcher: (*recorder)(ev), Generator: extractive.New(extractive.Options{MinScore: *minScore, MinCoverage: *minCoverage})}
	// Warm up: the first questions pay for loading the sentence splitter
	// and for SQLite's page cache.
	for _, it := range corpus.Items[:min(len(corpus.Items), 20)] {
		if _, err := ev.ask(ctx, it); err != nil {
			return err
		}
	}
	var all []Outcome
	bySet := map[string][]Outcome{}
	for _, set := range order {
		for _, it := range sets[set] {
			o, err := ev.ask(ctx, it)
			if err != nil {
				return fmt.Errorf("%s: %q: %w", set, it.Question, err)
			}
			bySet[set] = append(bySet[set], o)
			all = append(all, o)
		}
	}
	if *details != "" {
		if err := writeDetails(*details, all); err != nil {
			return err
		}
	}
	if *cpuprofile != "" {
		if err := profileQuestions(ctx, ev, *cpuprofile, all); err != nil {
			return err
		}
	}
	versions, _ := os.ReadFile(filepath.Join(*root, ".versions"))
	fmt.Fprintf(stdout, "Corpus: %d articles, %d passages, from %s.\n\n", sum.Added, passages,
		strings.Join(strings.Split(strings.TrimSpace(string(versions)), "\n"), "; "))
	var rows []row
	for _, set := range order {
		rows = append(rows, row{set, Summarize(bySet[set])})
	}
	rows = append(rows, row{"all", Summarize(all)})
	printTable(stdout, rows)
	return nil
}

// evaluator asks questions through runnel's own pipeline, recording the
// passages the generator was given.
type evaluator struct {
	store    *sqlite.Store
	answerer *runnel.Answerer
	last     []runnel.Passage
}

// recorder is the evaluator's Searcher: the store's, keeping what Search
// returned.
type recorder evaluator

func (r *recorder) Search(ctx context.Context, q runnel.Query, limit int) ([]runnel.Passage, error) {
	ps, err := r.store.Search(ctx, q, limit)
	r.last = ps
	return ps, err
}

func (r *recorder) CountTerms(ctx context.Context, terms []string) ([]int, int, error) {
	return r.store.CountTerms(ctx, terms)
}

func (r *recorder) TagsNamed(ctx context.Context, names []string) ([]string, error) {
	return r.store.TagsNamed(ctx, names)
}

// profileQuestions asks the questions of outs ten times under the CPU
// profiler, which writes to path: one pass of a few hundred questions is
// too short for a profile to say much.
func profileQuestions(ctx context.Context, ev *evaluator, path string, outs []Outcome) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	for range 10 {
		for _, o := range outs {
			if _, err := ev.ask(ctx, o.Item); err != nil {
				pprof.StopCPUProfile()
				f.Close()
				return err
			}
		}
	}
	pprof.StopCPUProfile()
	return f.Close()
}

// ask answers it and judges the answer.
func (ev *evaluator) ask(ctx context.Context, it Item) (Outcome, error) {
	o := Outcome{Item: it}
	q, err := runnel.ParseQuestion(it.Question, 0)
	if err != nil {
		return o, err
	}
	ev.last = nil
	var answer strings.Builder
	start := time.Now()
	err = ev.answerer.Answer(ctx, q, func(e runnel.Event) error {
		switch e.Type {
		case runnel.EventTitles:
			o.Titles = time.Since(start)
		case runnel.EventSources:
			for _, s := range e.Sources {
				o.Sources = append(o.Sources, s.Slug)
			}
		case runnel.EventToken:
			answer.WriteString(e.Token)
		case runnel.EventDone:
			o.Done = time.Since(start)
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	o.Answer = answer.String()
	o.NotCovered = strings.HasPrefix(o.Answer, extractive.NotCovered)
	if o.NotCovered {
		return o, nil
	}
	var gold []string
	for _, slug := range it.Gold {
		a, err := ev.store.Get(ctx, slug)
		if err != nil {
			return o, fmt.Errorf("gold article %s: %w", slug, err)
		}
		if quotes(o.Answer, a.Body) {
			o.GoldQuoted = true
		}
		gold = append(gold, a.Body)
	}
	var others []string
	for _, slug := range o.Sources {
		if slices.Contains(it.Gold, slug) {
			continue
		}
		a, err := ev.store.Get(ctx, slug)
		if err != nil {
			return o, fmt.Errorf("source article %s: %w", slug, err)
		}
		others = append(others, a.Body)
	}
	o.Quoted, o.QuotedGold = quotedFrom(o.Answer, gold, others)
	o.Unlisted = unlisted(o.Answer, o.Sources, ev.last)
	return o, nil
}

// unlisted returns the articles the answer quotes that the sources do not
// list: a sentence of the answer found in one of their passages and in
// none of a listed article's.
func unlisted(answer string, sources []string, passages []runnel.Passage) []string {
	var listed, other []runnel.Passage
	for _, p := range passages {
		if slices.Contains(sources, p.Slug) {
			listed = append(listed, p)
		} else {
			other = append(other, p)
		}
	}
	var out []string
	for _, piece := range sentencePieces(answer) {
		if slices.ContainsFunc(listed, func(p runnel.Passage) bool { return quotes(piece, p.Text) }) {
			continue
		}
		for _, p := range other {
			if !slices.Contains(out, p.Slug) && quotes(piece, p.Text) {
				out = append(out, p.Slug)
			}
		}
	}
	return out
}

// parseRanking reads the -rank flag: name=value pairs over the default
// ranking.
func parseRanking(s string) (sqlite.Ranking, error) {
	r := sqlite.DefaultRanking
	fields := map[string]*float64{"title": &r.Title, "heading": &r.Heading, "tags": &r.Tags,
		"meta": &r.Meta, "body": &r.Body, "boost": &r.TitleBoost, "def": &r.Definition}
	for kv := range strings.SplitSeq(s, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		p, ok := fields[k]
		if !ok {
			return r, fmt.Errorf("-rank: unknown weight %q", k)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return r, fmt.Errorf("-rank: %s: %w", k, err)
		}
		*p = x
	}
	return r, nil
}

// countPassages counts the passages in the database at path, through a
// connection of its own (the store does not expose its own).
func countPassages(ctx context.Context, path string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n := 0
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM passages`).Scan(&n)
	return n, err
}

// readItems reads a question file: one JSON object per line, blank lines
// and lines starting with '#' skipped. The set is the file's base name.
func readItems(path string) ([]Item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var items []Item
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var it Item
		if err := json.Unmarshal([]byte(line), &it); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if strings.TrimSpace(it.Question) == "" {
			return nil, fmt.Errorf("%s:%d: no question", path, n)
		}
		it.Set = set
		items = append(items, it)
	}
	return items, sc.Err()
}

func writeDetails(path string, outs []Outcome) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, o := range outs {
		if err := enc.Encode(o); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

type row struct {
	name string
	m    Metrics
}

// printTable writes the metrics as a Markdown table, one row per set.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| set | questions | answerable | R@1 | R@3 | R@5 | MRR@5 | gold sentence | answerable told not covered | unanswerable told not covered | answer from gold | quotes an unlisted article | titles p50 | titles p99 | answer p50 | answer p99 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		m := r.m
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.name, m.Questions, m.Answerable, f2(m.R1), f2(m.R3), f2(m.R5), f2(m.MRR5),
			pct(m.GoldSentence), pct(m.FalseNotCovered), pct(m.TrueNotCovered), pct(m.GoldShare), pct(m.Unlisted),
			ms(m.TitlesP50), ms(m.TitlesP99), ms(m.DoneP50), ms(m.DoneP99))
	}
}

func f2(x float64) string {
	if x != x {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func pct(x float64) string {
	if x != x {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
