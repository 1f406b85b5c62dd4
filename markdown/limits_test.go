package markdown

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"

	"github.com/runnel/runnel/sqlite"
)

// hostile returns articles that cost far more than their size to parse,
// or are simply too large, each with what its error must say.
func hostile() map[string]struct{ body, want string } {
	stair := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "%s- item %d\n", strings.Repeat("  ", i), i)
		}
		return b.String()
	}
	bomb := "---\ntitle: Laughs\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	for prev, c := 'a', 'b'; c <= 'i'; prev, c = c, c+1 {
		bomb += fmt.Sprintf("%c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+string(prev)+", ", 9), ", "))
	}
	bomb += "unused: *i\n---\nA billion laughs, if anything expanded them.\n"
	table := strings.Repeat("| a ", 500) + "|\n" + strings.Repeat("|---", 500) + "|\n" + strings.Repeat("|\n", 300)
	return map[string]struct{ body, want string }{
		// 200 KB of list items nested in one line: goldmark takes about
		// 20 s and 300 MB for it.
		"deep-list.md": {strings.Repeat("- ", 100_000) + "x\n",
			"line 1: lists and block quotes nested: 100000 levels, over the limit of 32 levels"},
		"deep-stair.md": {stair(200_000), "line 33: lists and block quotes nested: 33 levels, over the limit of 32 levels"},
		"deep-quote.md": {"# Quotes\n\n" + strings.Repeat(">", 200_000) + " x\n",
			"line 3: lists and block quotes nested: 200000 levels, over the limit of 32 levels"},
		"just-over.md": {"# Long\n\n" + strings.Repeat("word ", (DefaultMaxBytes-8)/5) + "abcde"[:(DefaultMaxBytes-8)%5+1],
			"the file: 1048577 bytes (1.0 MiB), over the limit of 1048576 bytes (1.0 MiB)"},
		"alias-bomb.md": {bomb, "line 7: front matter aliases: more than 10000 values, over the limit of 10000 values"},
		"front-matter.md": {"---\ntitle: Big\n" + strings.Repeat("# a comment that YAML never needs to read\n", 2000) + "---\nBody.\n",
			"line 1: the front matter: 84011 bytes (82.0 KiB), over the limit of 65536 bytes (64.0 KiB)"},
		"markers.md": {"---\ntitle: Stars\n---\nIntro.\n\n" + strings.Repeat("*a_ ", 1000) + "\n",
			"line 6: inline markers (* _ ~ ` [ ] ! <) in one paragraph: 2000 markers, over the limit of 500 markers"},
		"table.md": {"Text.\n\n" + table, "line 3: table cells (rows times columns, of this table and those above it): " +
			"150500 cells, over the limit of 100000 cells"},
		"definitions.md": {"Links.\n\n" + strings.Repeat("[x]: /u\n", 600),
			"line 3: link reference definitions in one paragraph: 600 lines, over the limit of 500 lines"},
	}
}

func TestHostileArticlesRefused(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"good.md": "---\ntitle: Good\n---\nThis one imports.\n",
		"huge.md": "",
		"records.jsonl": `{"slug":"fine","title":"Fine","body":"Plain."}` + "\n" +
			`{"slug":"deep","title":"Deep","body":"` + strings.Repeat("> ", 40) + `x"}` + "\n",
	}
	want := map[string]string{
		"records.jsonl:2": "body: line 1: lists and block quotes nested: 40 levels, over the limit of 32 levels",
		"huge.md":         "the file: 67108864 bytes (64.0 MiB), over the limit of 1048576 bytes (1.0 MiB)",
	}
	for name, h := range hostile() {
		files[name] = h.body
		want[name] = h.want
	}
	writeFiles(t, dir, files)
	// 64 MiB that take no disk: refused by its size, never read.
	if err := os.Truncate(filepath.Join(dir, "huge.md"), 64<<20); err != nil {
		t.Fatal(err)
	}

	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "runnel.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	im := &Importer{Store: store}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sum := mustImport(t, im, dir)
	runtime.ReadMemStats(&after)

	if got, want := counts(sum), fmt.Sprintf("files=%d added=2 updated=0 unchanged=0 pruned=0 failed=%d", len(files), len(want)); got != want {
		t.Errorf("import: %s, want %s", got, want)
	}
	for _, slug := range []string{"good", "fine"} {
		if _, err := store.Get(t.Context(), slug); err != nil {
			t.Errorf("Get(%q) = %v, want the article imported beside the hostile ones", slug, err)
		}
	}
	for _, p := range sum.Problems {
		name, _ := filepath.Rel(dir, p.Path)
		if p.Line > 0 {
			name += fmt.Sprintf(":%d", p.Line)
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("unexpected problem %v", p)
			continue
		}
		delete(want, name)
		if got := p.Error(); got != p.Path+pos(p.Line)+": "+w {
			t.Errorf("problem:\n%s\nwant:\n%s", got, p.Path+pos(p.Line)+": "+w)
		}
		var le *LimitError
		if !errors.As(p, &le) {
			t.Errorf("%s: %T is not a *LimitError", name, p.Err)
		}
	}
	for name := range want {
		t.Errorf("no problem reported for %s", name)
	}
	// Reading the 64 MiB file, or parsing the nested ones, would allocate
	// hundreds of MiB; the just-over file is read to one byte past the
	// limit, and the 1 MiB of it is the largest allocation.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 48<<20 {
		t.Errorf("importing the hostile files allocated %d MiB, want less than 48", alloc>>20)
	}
}

func pos(line int) string {
	if line > 0 {
		return fmt.Sprintf(":%d", line)
	}
	return ""
}

func TestImportLimitsChangeable(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"small.md": "Small.\n",
		"big.md":   strings.Repeat("Big article text. ", 200), // 3600 bytes
		"deep.md":  "- a\n  - b\n    - c\n",
	})
	sum := mustImport(t, &Importer{Store: newMemStore(), Limits: Limits{MaxBytes: 2048, MaxDepth: 2}}, dir)
	if got, want := counts(sum), "files=3 added=1 updated=0 unchanged=0 pruned=0 failed=2"; got != want {
		t.Fatalf("import: %s, want %s", got, want)
	}
	var msgs []string
	for _, p := range sum.Problems {
		msgs = append(msgs, p.Err.Error())
	}
	slices.Sort(msgs)
	want := []string{
		"line 3: lists and block quotes nested: 3 levels, over the limit of 2 levels",
		"the file: 3600 bytes (3.5 KiB), over the limit of 2048 bytes (2.0 KiB)",
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("problems = %q, want %q", msgs, want)
	}
}

func TestReadArticle(t *testing.T) {
	tests := []struct {
		name      string
		size      int64 // as Stat said
		data      int   // bytes the reader has; -1 for no end
		limit     int
		wantRead  int
		wantError string
	}{
		{"fits", 10, 10, 100, 10, ""},
		{"at the limit", 100, 100, 100, 100, ""},
		{"over by its size", 1 << 40, -1, 100, 0, "the file: 1099511627776 bytes (1048576.0 MiB), over the limit of 100 bytes"},
		{"grew past its size", 10, -1, 100, 101, "the file: more than 100 bytes, over the limit of 100 bytes"},
		{"size unknown", 0, 5000, 4096, 4097, "the file: more than 4096 bytes (4.0 KiB), over the limit of 4096 bytes (4.0 KiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{left: tt.data}
			got, err := readArticle(r, tt.size, tt.limit)
			if r.read != tt.wantRead {
				t.Errorf("read %d bytes, want %d", r.read, tt.wantRead)
			}
			switch {
			case tt.wantError == "" && (err != nil || len(got) != tt.data):
				t.Errorf("readArticle = %d bytes, %v; want %d bytes", len(got), err, tt.data)
			case tt.wantError != "" && (err == nil || err.Error() != tt.wantError):
				t.Errorf("readArticle error = %v, want %q", err, tt.wantError)
			}
		})
	}
}

// countingReader gives left bytes of 'a' (without end if left < 0) and
// counts what it gave.
type countingReader struct{ left, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if r.left > 0 {
		n = min(n, r.left)
		r.left -= n
	}
	for i := range n {
		p[i] = 'a'
	}
	r.read += n
	return n, nil
}

func TestCheckDepth(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		depth int // the deepest line's levels
	}{
		{"paragraph", "just text\n", 0},
		{"list", "- a\n- b\n", 1},
		{"nested list", "- a\n  - b\n    - c\n  - d\n", 3},
		{"ordered", "1. a\n   2) b\n      3. c\n", 3},
		{"markers on one line", "- - - x\n", 3},
		{"quotes", "> a\n>> b\n> > > c\n", 3},
		{"quote in a list", "- a\n\n  > quoted\n  > - item\n", 3},
		{"tabs", "- a\n\t- b\n\t\t- c\n", 3},
		{"thematic breaks", "- - -\n* * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * *\n", 0},
		{"indented code", "    - not a list\n    > nor a quote\n", 0},
		{"code in a list item counts too", "- a\n\n      - code, not a list\n", 2},
		{"a paragraph after a blank line ends the list", "- a\n  - b\n\nafter\n  - c\n", 2},
		{"lazy continuation keeps the list", "- a\n  - b\nlazy\n  - c\n", 2},
		{"empty items", "-\n  -\n    -\n", 3},
		{"staircase", "- 0\n  - 1\n    - 2\n      - 3\n        - 4\n", 5},
		{"not markers", "-a\n1.a\n1234567890. x\n+\tplus\n", 1},
		{"wide marker spacing", "-    a\n     - b\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkDepth(tt.body, max(tt.depth, 1)); err != nil {
				t.Errorf("checkDepth(%q, %d) = %v, want nil", tt.body, tt.depth, err)
			}
			if tt.depth == 0 {
				return
			}
			var le *LimitError
			if err := checkDepth(tt.body, tt.depth-1); !errors.As(err, &le) || le.Actual != tt.depth {
				t.Errorf("checkDepth(%q, %d) = %v, want a LimitError of %d levels", tt.body, tt.depth-1, err, tt.depth)
			}
			if got := goldmarkDepth(tt.body); got > tt.depth {
				t.Errorf("goldmark nests %q %d deep, more than the %d the table says", tt.body, got, tt.depth)
			}
		})
	}
}

// goldmarkDepth returns how deeply goldmark nests block quotes and list
// items in body.
func goldmarkDepth(body string) int {
	root := mdParser.Parse(text.NewReader([]byte(body)))
	deepest := 0
	var walk func(n ast.Node, d int)
	walk = func(n ast.Node, d int) {
		switch n.Kind() {
		case ast.KindBlockquote, ast.KindListItem:
			d++
		}
		deepest = max(deepest, d)
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			if c.Type() == ast.TypeBlock {
				walk(c, d)
			}
		}
	}
	walk(root, 0)
	return deepest
}

// FuzzCheckDepth checks that checkDepth never counts fewer levels than
// goldmark nests: the check must refuse whatever would be slow to parse.
func FuzzCheckDepth(f *testing.F) {
	for _, s := range []string{
		"- a\n  - b\n    - c\n", "> > > c\n", "- - - x\n", "1. a\n   2) b\n", "- a\n\t- b\n\t\t- c\n",
		"- a\n\n  > q\n  > - i\n", "-\n  -\n", ">- >- > x\n", "  - a\n - b\n- c\n", "- a\nlazy\n  - b\n",
		"> a\n\n> > b\n", "-    a\n     - b\n", "1.  a\n\n    - b\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		want := goldmarkDepth(body)
		if want == 0 {
			return
		}
		if err := checkDepth(body, want-1); err == nil {
			t.Fatalf("checkDepth(%q, %d) = nil, but goldmark nests it %d deep", body, want-1, want)
		}
	})
}

func TestParseRefusesOverLimits(t *testing.T) {
	for name, h := range hostile() {
		if name == "just-over.md" {
			continue // Parse is given the bytes; the importer reads them
		}
		t.Run(name, func(t *testing.T) {
			_, err := Parse(name, []byte(h.body))
			var le *LimitError
			if !errors.As(err, &le) || err.Error() != h.want {
				t.Errorf("Parse = %v, want %q", err, h.want)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		_, err := Parse("big.md", make([]byte, DefaultMaxBytes+1))
		if want := "the file: 1048577 bytes (1.0 MiB), over the limit of 1048576 bytes (1.0 MiB)"; err == nil || err.Error() != want {
			t.Errorf("Parse = %v, want %q", err, want)
		}
	})
	t.Run("aliases that stay small are fine", func(t *testing.T) {
		a, err := Parse("a.md", []byte("---\ntitle: &t Anchors\nsection: *t\ntags: &tags [a, b]\nkeywords: *tags\n---\nBody.\n"))
		if err != nil || a.Section != "Anchors" || !slices.Equal(a.Keywords, []string{"a", "b"}) {
			t.Errorf("Parse = %+v, %v", a, err)
		}
	})
	t.Run("an alias inside what it names", func(t *testing.T) {
		_, err := Parse("a.md", []byte("---\ntitle: x\nloop: &l [a, *l]\n---\nBody.\n"))
		if err == nil || !strings.Contains(err.Error(), "refers to a value that contains it") {
			t.Errorf("Parse = %v, want the loop refused", err)
		}
	})
}

func TestRenderHTML(t *testing.T) {
	t.Run("markdown", func(t *testing.T) {
		got, err := RenderHTML("## Usage\n\n| a |\n|---|\n| 1 |\n\n<script>x</script>\n\n[x](javascript:alert(1)) ~~old~~\n", Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`<h2 id="usage">Usage</h2>`, "<table>", "<del>old</del>"} {
			if !strings.Contains(string(got), want) {
				t.Errorf("RenderHTML lacks %s:\n%s", want, got)
			}
		}
		for _, bad := range []string{"<script>", "javascript:"} {
			if strings.Contains(string(got), bad) {
				t.Errorf("RenderHTML has %s:\n%s", bad, got)
			}
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			body string
			lim  Limits
			want string
		}{
			{strings.Repeat("> ", 40) + "x", Limits{}, "line 1: lists and block quotes nested: 40 levels, over the limit of 32 levels"},
			{"0123456789", Limits{MaxBytes: 9}, "the article: 10 bytes, over the limit of 9 bytes"},
			{strings.Repeat("- x\n", 100), Limits{MaxHTML: 1000}, "the page: more than 1000 bytes, over the limit of 1000 bytes"},
		} {
			html, err := RenderHTML(tt.body, tt.lim)
			var le *LimitError
			if !errors.As(err, &le) || err.Error() != tt.want || html != nil {
				t.Errorf("RenderHTML(%.20q) = %d bytes, %v; want %q", tt.body, len(html), err, tt.want)
			}
		}
	})
	t.Run("markup past the limits is text", func(t *testing.T) {
		body := strings.Repeat("*a* ", 300) + "\n\n" + strings.Repeat("| a ", 50) + "|\n" + strings.Repeat("|---", 50) + "|\n|\n|\n"
		got, err := RenderHTML(body, Limits{MaxTableCells: 100})
		if err != nil {
			t.Fatal(err)
		}
		html := string(got)
		if n := strings.Count(html, "<em>"); n != 250 {
			t.Errorf("%d <em>, want 250: the first 500 markers", n)
		}
		if !strings.Contains(html, "*a* *a*</p>") || strings.Contains(html, "<table>") || !strings.Contains(html, "<p>| a | a") {
			t.Errorf("want the markers past the limit and the table as text:\n%s", html[len(html)-400:])
		}
	})
}
