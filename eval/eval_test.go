package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	outs := []Outcome{
		// Gold first: counts for R@1, R@3, R@5 and 1 for MRR.
		{Item: Item{Gold: []string{"a"}}, Sources: []string{"a", "b"}, GoldQuoted: true, Titles: 1 * ms, Done: 2 * ms, Quoted: 4, QuotedGold: 3},
		// Gold third: R@3 and R@5, 1/3 for MRR.
		{Item: Item{Gold: []string{"c"}}, Sources: []string{"a", "b", "c"}, Titles: 2 * ms, Done: 9 * ms, Quoted: 2, QuotedGold: 0},
		// Second gold fifth, first gold absent: R@5 only, 1/5.
		{Item: Item{Gold: []string{"x", "e"}}, Sources: []string{"a", "b", "c", "d", "e"}, GoldQuoted: true, Titles: 3 * ms, Done: 4 * ms},
		// Gold sixth: no recall at 5, and no MRR@5; told not covered.
		{Item: Item{Gold: []string{"f"}}, Sources: []string{"a", "b", "c", "d", "e", "f"}, NotCovered: true, Titles: 4 * ms, Done: 5 * ms},
		// Unanswerable, rightly told; unanswerable, wrongly answered,
		// quoting an unlisted article.
		{NotCovered: true, Titles: 5 * ms, Done: 6 * ms, Quoted: 3, QuotedGold: 3},
		{Unlisted: []string{"z"}, Titles: 100 * ms, Done: 101 * ms},
	}
	m := Summarize(outs)
	want := Metrics{
		Questions: 6, Answerable: 4, Unanswerable: 2,
		R1: 1.0 / 4, R3: 2.0 / 4, R5: 3.0 / 4, MRR5: (1 + 1.0/3 + 1.0/5) / 4,
		GoldSentence: 2.0 / 4, FalseNotCovered: 1.0 / 4, TrueNotCovered: 1.0 / 2, Unlisted: 1.0 / 6,
		// Of the answerable outcomes, two quote a source: 3 of 4 and 0 of 2
		// from gold; the unanswerable one's quotes do not count.
		GoldShare: (3.0/4 + 0) / 2,
		TitlesP50: 3 * ms, TitlesP99: 100 * ms, DoneP50: 5 * ms, DoneP99: 101 * ms,
	}
	if !sameMetrics(m, want) {
		t.Errorf("Summarize =\n%+v\nwant\n%+v", m, want)
	}
	if m := Summarize([]Outcome{{NotCovered: true}}); !math.IsNaN(m.R5) || m.TrueNotCovered != 1 {
		t.Errorf("with no answerable question, R@5 = %v (want NaN), true not covered = %v", m.R5, m.TrueNotCovered)
	}
}

func sameMetrics(a, b Metrics) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	return a.Questions == b.Questions && a.Answerable == b.Answerable && a.Unanswerable == b.Unanswerable &&
		eq(a.R1, b.R1) && eq(a.R3, b.R3) && eq(a.R5, b.R5) && eq(a.MRR5, b.MRR5) &&
		eq(a.GoldSentence, b.GoldSentence) && eq(a.FalseNotCovered, b.FalseNotCovered) &&
		eq(a.TrueNotCovered, b.TrueNotCovered) && eq(a.Unlisted, b.Unlisted) && eq(a.GoldShare, b.GoldShare) &&
		a.TitlesP50 == b.TitlesP50 && a.TitlesP99 == b.TitlesP99 && a.DoneP50 == b.DoneP50 && a.DoneP99 == b.DoneP99
}

func TestQuotes(t *testing.T) {
	source := "## Stopping\n\nThe main process receives `SIGTERM`, and after a grace period, SIGKILL. See [kill](kill.md)."
	for _, c := range []struct {
		answer string
		want   bool
	}{
		{"The main process receives SIGTERM, and after a grace period, SIGKILL.", true},
		{"Something else first. the main process receives sigterm!", true}, // case and punctuation do not matter
		{"Containers stop.\n\nAfter a grace period, SIGKILL.", true},       // a piece of a sentence is still a run of its words
		{"The main process receives SIGKILL.", false},                      // the words, but not in a row
		{"See kill.", false}, // too short to count
		{"", false},
	} {
		if got := quotes(c.answer, source); got != c.want {
			t.Errorf("quotes(%q) = %v, want %v", c.answer, got, c.want)
		}
	}
}

func TestQuotedFrom(t *testing.T) {
	gold := []string{"The main process receives `SIGTERM`, and after a grace period, SIGKILL."}
	others := []string{"Use docker kill to send SIGKILL at once.", "After a grace period, SIGKILL follows."}
	for _, c := range []struct {
		answer           string
		quoted, fromGold int
	}{
		{"The main process receives SIGTERM. Use docker kill to send SIGKILL at once.", 2, 1},
		{"After a grace period, SIGKILL.", 1, 1}, // in gold and another: gold
		{"Use docker kill to send SIGKILL at once. Nothing quotes this sentence at all.", 1, 0},
		{"See kill. Stop it.", 0, 0}, // too short to count
		{"", 0, 0},
	} {
		q, g := quotedFrom(c.answer, gold, others)
		if q != c.quoted || g != c.fromGold {
			t.Errorf("quotedFrom(%q) = %d, %d; want %d, %d", c.answer, q, g, c.quoted, c.fromGold)
		}
	}
}

func TestParseDebianFAQ(t *testing.T) {
	text, err := readMaybeGzip("testdata/root/" + debianFAQPath)
	if err != nil {
		t.Fatal(err)
	}
	got := parseDebianFAQ(text)
	var ids, questions []string
	for _, s := range got {
		ids = append(ids, s.ID)
		questions = append(questions, s.Question)
	}
	// The table of contents is skipped; a chapter without an introduction
	// gives no section; a wrapped question is joined.
	if want := []string{"chapter-1", "1-1", "1-2", "2-1"}; !slices.Equal(ids, want) {
		t.Fatalf("ids = %q, want %q", ids, want)
	}
	if want := []string{"", "What is this FAQ?",
		"What is the difference between Debian GNU/Linux and other Linux distributions?",
		"Where can I get the installation images?"}; !slices.Equal(questions, want) {
		t.Errorf("questions = %q, want %q", questions, want)
	}
	s := got[2]
	if s.Title != "Definitions and overview" || strings.Contains(s.Body, "distributions?") ||
		!strings.Contains(s.Body, "\nFreedom:\n\nDebian will remain") || strings.HasPrefix(s.Body, " ") {
		t.Errorf("section 1.2: title %q, body:\n%s", s.Title, s.Body)
	}
}

func TestParseGitFAQ(t *testing.T) {
	src, err := os.ReadFile("testdata/root/" + gitDocPath + "/" + gitFAQName)
	if err != nil {
		t.Fatal(err)
	}
	got := parseGitFAQ(string(src))
	if len(got) != 2 {
		t.Fatalf("%d sections, want 2: %+v", len(got), got)
	}
	if s := got[0]; s.ID != "user-name" || s.Title != "Configuration" || s.Question != "What should I put in `user.name`?" ||
		!strings.Contains(s.Body, "git-config(1)") || strings.Contains(s.Body, "\n+\n") {
		t.Errorf("first section: %+v", s)
	}
	if s := got[1]; s.Title != "Credentials" || !strings.Contains(s.Body, "```\n$ git config credential.helper store\n```") {
		t.Errorf("second section: %+v", s)
	}
}

// TestRun runs the whole evaluation on a corpus of a few articles built
// from a miniature of the packages' layout, and checks the figures it
// prints against what can be worked out by hand.
func TestRun(t *testing.T) {
	work := t.TempDir()
	details := filepath.Join(work, "details.jsonl")
	var out, log bytes.Buffer
	err := run(context.Background(), []string{"-root", "testdata/root", "-work", work,
		"-questions", "testdata/questions", "-details", details}, &out, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	// 3 FAQ answers and a chapter's introduction, 2 answers of git's FAQ
	// and git-stash, 2 from Docker (one gzipped).
	if !strings.Contains(out.String(), "Corpus: 9 articles") || !strings.Contains(out.String(), "Package: fixture Version: 1") {
		t.Errorf("output:\n%s", out.String())
	}

	b, err := os.ReadFile(details)
	if err != nil {
		t.Fatal(err)
	}
	bySet := map[string][]Outcome{}
	var outs []Outcome
	for line := range strings.Lines(string(b)) {
		var o Outcome
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			t.Fatal(err)
		}
		bySet[o.Set] = append(bySet[o.Set], o)
		outs = append(outs, o)
	}
	if n := [3]int{len(bySet["debian-faq"]), len(bySet["git-faq"]), len(bySet["written"])}; n != [3]int{3, 2, 3} {
		t.Fatalf("questions per set (debian-faq, git-faq, written) = %v, want [3 2 3]", n)
	}
	for _, o := range bySet["written"] {
		switch {
		case o.Answerable() && o.Rank() != 1:
			t.Errorf("%q: sources %q, want %q first", o.Question, o.Sources, o.Gold)
		case o.Answerable() && !o.GoldQuoted:
			t.Errorf("%q: answer %q does not quote %q", o.Question, o.Answer, o.Gold)
		case !o.Answerable() && !o.NotCovered:
			t.Errorf("%q: answered %q, want not covered", o.Question, o.Answer)
		}
	}
	// The table's last row is every question's; its figures are those of
	// the outcomes written in the details.
	m := Summarize(outs)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	want := strings.Join([]string{"| all", strconv.Itoa(m.Questions), strconv.Itoa(m.Answerable), f2(m.R1), f2(m.R3), f2(m.R5), f2(m.MRR5),
		pct(m.GoldSentence), pct(m.FalseNotCovered), pct(m.TrueNotCovered), pct(m.GoldShare), pct(m.Unlisted)}, " | ")
	if !strings.HasPrefix(last, want+" | ") {
		t.Errorf("last row\n%s\ndoes not start with\n%s", last, want)
	}
	if m.TrueNotCovered != 1 || m.R5 < 0.5 {
		t.Errorf("on the fixture: not covered %v of unanswerable, R@5 %v", m.TrueNotCovered, m.R5)
	}
}
