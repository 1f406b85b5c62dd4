package markdown

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// section is the part of a passage the tests compare.
type section struct{ Heading, Text string }

func sections(ps []runnel.Passage) []section {
	out := make([]section, len(ps))
	for i, p := range ps {
		out[i] = section{p.Heading, p.Text}
	}
	return out
}

func TestPassages(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []section
	}{
		{
			name: "sections at headings",
			src:  "---\ntitle: T\n---\nLead text.\n\n## One\n\nFirst.\n\n### Two\n\nSecond.\n",
			want: []section{{"", "Lead text."}, {"One", "First."}, {"Two", "Second."}},
		},
		{
			name: "title H1 is not a section",
			src:  "# Guide\n\nIntro.\n\n## Usage\n\nUse it.\n",
			want: []section{{"", "Intro."}, {"Usage", "Use it."}},
		},
		{
			name: "title H1 from front matter, case-insensitive",
			src:  "---\ntitle: The Guide\n---\n# the guide\n\nIntro.\n",
			want: []section{{"", "Intro."}},
		},
		{
			name: "H1 that is not the title is a section",
			src:  "---\ntitle: Other\n---\n# Guide\n\nIntro.\n",
			want: []section{{"Guide", "Intro."}},
		},
		{
			name: "later H1 is a section",
			src:  "Lead.\n\n# Title\n\nBody.\n",
			want: []section{{"", "Lead."}, {"Title", "Body."}},
		},
		{
			name: "empty sections skipped",
			src:  "# T\n\n## Empty\n\n## Full\n\nText.\n\n## Also empty\n\n---\n",
			want: []section{{"Full", "Text."}},
		},
		{
			name: "paragraphs separated by a blank line",
			src:  "---\ntitle: T\n---\nOne\nline.\n\nTwo.\n",
			want: []section{{"", "One line.\n\nTwo."}},
		},
		{
			name: "list items separate",
			src:  "---\ntitle: T\n---\n- apples\n- pears\n  - green\n\n1. first\n2. second\n\n- loose item\n\n  with two paragraphs\n",
			want: []section{{"", "apples\n\npears\n\ngreen\n\nfirst\n\nsecond\n\nloose item\n\nwith two paragraphs"}},
		},
		{
			name: "task list",
			src:  "---\ntitle: T\n---\n- [x] done\n- [ ] todo\n",
			want: []section{{"", "done\n\ntodo"}},
		},
		{
			name: "code blocks are their own paragraph",
			src:  "---\ntitle: T\n---\nRun:\n```sh\nnpm install\n\nnpm test   \n```\nThen:\n\n    indented code\n    more\n",
			want: []section{{"", "Run:\n\n```sh\nnpm install\nnpm test\n```\n\nThen:\n\n```\nindented code\nmore\n```"}},
		},
		{
			name: "inline markup stripped",
			src:  "---\ntitle: T\n---\nSome *em*, **strong**, ~~gone~~, `code *x*` and <kbd>Ctrl</kbd>+C.\n",
			want: []section{{"", "Some em, strong, gone, code *x* and Ctrl+C."}},
		},
		{
			name: "links become their text",
			src:  "---\ntitle: T\n---\nSee [the docs](https://example.com \"Docs\"), [ref][r], <https://go.dev> and ![a cat](cat.png).\n\n[r]: https://example.org\n",
			want: []section{{"", "See the docs, ref, https://go.dev and a cat."}},
		},
		{
			name: "escapes and entities",
			src:  "---\ntitle: T\n---\n\\*not em\\* &amp; &copy; &#65; a<br>b\n",
			want: []section{{"", "*not em* & © A a b"}},
		},
		{
			name: "heading markup stripped",
			src:  "---\ntitle: T\n---\n## The `npm` *command* {#npm}\n\nText.\n",
			want: []section{{"The npm command", "Text."}},
		},
		{
			name: "block quotes",
			src:  "---\ntitle: T\n---\n> quoted *text*\n> more\n>\n> - item\n",
			want: []section{{"", "quoted text more\n\nitem"}},
		},
		{
			name: "tables",
			src:  "---\ntitle: T\n---\n| Name | Value |\n|------|-------|\n| `a`  | 1     |\n| b    |       |\n",
			want: []section{{"", "| Name | Value |\n| --- | --- |\n| a | 1 |\n| b |  |"}},
		},
		{
			name: "HTML dropped",
			src:  "---\ntitle: T\n---\n<!-- a comment -->\n\n<div class=\"x\">\n<p>Kept &amp; <b>bold</b></p>\n</div>\n\n<script>\nalert(1)\n</script>\n",
			want: []section{{"", "Kept & bold"}},
		},
		{
			name: "headings inside lists are text",
			src:  "---\ntitle: T\n---\n- # not a section\n",
			want: []section{{"", "not a section"}},
		},
		{
			name: "only front matter",
			src:  "---\ntitle: T\n---\n",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse("t.md", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := sections(a.Passages)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("passages of %q:\n got %q\nwant %q", tt.src, got, tt.want)
			}
			for i, p := range a.Passages {
				if p.Position != i || p.Slug != a.Slug || p.Title != a.Title || fmt.Sprint(p.Tags) != fmt.Sprint(a.Tags) {
					t.Errorf("passage %d = {Slug %q, Title %q, Tags %q, Position %d}, want the article's and %d",
						i, p.Slug, p.Title, p.Tags, p.Position, i)
				}
			}
		})
	}
}

func TestCodeFences(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"language kept, attributes dropped", "```go {.numberLines}\nx := 1\n```\n", "```go\nx := 1\n```"},
		{"a hostile info string", "~~~sh;<b>`x`\nls\n~~~\n", "```shbx\nls\n```"},
		{"backticks in the code lengthen the fence", "~~~\n```\nnested\n```\n~~~\n", "````\n```\nnested\n```\n````"},
		{"an empty block is no paragraph", "```\n\n```\n\nText.\n", "Text."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse("t.md", []byte("---\ntitle: T\n---\n"+tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Passages) != 1 || a.Passages[0].Text != tt.want {
				t.Fatalf("passages = %+v, want one with text %q", a.Passages, tt.want)
			}
		})
	}
}

func TestLongCode(t *testing.T) {
	var lines []string
	for i := range 400 {
		lines = append(lines, fmt.Sprintf("echo line %03d", i))
	}
	lines = append(lines, strings.Repeat("x", 3*MaxPassage)) // one line too long for any passage
	src := "---\ntitle: T\n---\n## Script\n\n```sh\n" + strings.Join(lines, "\n") + "\n```\n"
	a, err := Parse("t.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Passages) < 4 {
		t.Fatalf("got %d passages, want the code split into several", len(a.Passages))
	}
	var got []string
	for i, p := range a.Passages {
		if n := utf8.RuneCountInString(p.Text); n > MaxPassage {
			t.Errorf("passage %d has %d characters, want at most %d", i, n, MaxPassage)
		}
		code, lang, ok := isFenced(p.Text)
		if !ok || lang != "sh" {
			t.Fatalf("passage %d is not one fenced sh block: %.80q", i, p.Text)
		}
		got = append(got, code...)
	}
	if joined, want := strings.Join(got, ""), strings.Join(lines, ""); joined != want {
		t.Errorf("the fenced pieces do not hold the code in order")
	}
}

func TestLongSections(t *testing.T) {
	para := func(n int) string { // n characters of words, ending with a period
		s := strings.Repeat("word ", n/5)
		return s[:len(s)-2] + "."
	}
	tests := []struct {
		name     string
		paras    []string
		passages int
	}{
		{"short", []string{para(500), para(500)}, 1},
		{"just under the limit", []string{para(999), para(999)}, 1},
		{"two parts", []string{para(900), para(900), para(900)}, 2},
		{"balanced, not greedy", []string{para(700), para(700), para(700), para(100)}, 2},
		{"many", []string{para(1500), para(1500), para(1500), para(1500), para(1500)}, 5},
		{"one huge paragraph", []string{para(5000)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "---\ntitle: T\ntags: [x]\n---\n## Long\n\n" + strings.Join(tt.paras, "\n\n") + "\n\n## Next\n\nShort.\n"
			a, err := Parse("t.md", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			ps := a.Passages
			if len(ps) != tt.passages+1 {
				t.Fatalf("got %d passages, want %d + 1", len(ps), tt.passages)
			}
			var joined []string
			for i, p := range ps[:tt.passages] {
				if p.Heading != "Long" || p.Position != i {
					t.Errorf("passage %d: Heading %q Position %d, want \"Long\" %d", i, p.Heading, p.Position, i)
				}
				if n := utf8.RuneCountInString(p.Text); n > MaxPassage {
					t.Errorf("passage %d has %d characters, want at most %d", i, n, MaxPassage)
				}
				joined = append(joined, p.Text)
			}
			// Nothing is lost or reordered: the words come back in order.
			if got, want := strings.Fields(strings.Join(joined, " ")), strings.Fields(strings.Join(tt.paras, " ")); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("the split passages do not hold the section's text")
			}
			if last := ps[len(ps)-1]; last.Heading != "Next" || last.Position != tt.passages {
				t.Errorf("last passage = %q at %d, want \"Next\" at %d", last.Heading, last.Position, tt.passages)
			}
		})
	}
}

// TestGolden checks the passages of a realistic article against
// testdata/websockets.golden; go test -update rewrites it.
func TestGolden(t *testing.T) {
	src, err := os.ReadFile("testdata/websockets.md")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse("testdata/websockets.md", src)
	if err != nil {
		t.Fatal(err)
	}
	got := dump(a)
	golden := filepath.Join("testdata", "websockets.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("passages differ from %s (go test -update to accept):\n%s", golden, got)
	}
}

// dump writes an article's metadata and passages as readable text.
func dump(a *runnel.Article) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "slug: %s\ntitle: %s\ndate: %s\ntags: %q\nkeywords: %q\ndescription: %s\nsection: %s\n",
		a.Slug, a.Title, a.Date.Format("2006-01-02"), a.Tags, a.Keywords, a.Description, a.Section)
	for _, p := range a.Passages {
		fmt.Fprintf(&b, "\n=== passage %d, heading %q, %d characters\n%s\n", p.Position, p.Heading, utf8.RuneCountInString(p.Text), p.Text)
	}
	return b.Bytes()
}

// TestNPMDocs parses the Markdown documentation that ships with npm: real
// third-party files with front matter, tables, HTML and code.
func TestNPMDocs(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed")
	}
	out, err := exec.Command(npm, "root", "-g").Output()
	if err != nil {
		t.Skipf("npm root -g: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "npm", "docs", "content")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no npm docs: %v", err)
	}
	n := 0
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !supported(path) {
			return err
		}
		n++
		t.Run(Slug(dir, path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Parse(path, src)
			if err != nil {
				t.Fatalf("Parse(%s): %v", path, err)
			}
			if a.Title == "" || len(a.Passages) == 0 {
				t.Errorf("Parse(%s) = title %q, %d passages; want a title and passages", path, a.Title, len(a.Passages))
			}
			for _, p := range a.Passages {
				if strings.TrimSpace(p.Text) == "" || utf8.RuneCountInString(p.Text) > MaxPassage {
					t.Errorf("passage %d (%q) has %d characters", p.Position, p.Heading, utf8.RuneCountInString(p.Text))
				}
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no Markdown files under %s", dir)
	}
}

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("testdata/websockets.md")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("websockets.md", src); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse checks that any input either fails or gives passages of valid,
// non-empty UTF-8 text within the length limit.
func FuzzParse(f *testing.F) {
	if src, err := os.ReadFile("testdata/websockets.md"); err == nil {
		f.Add(src)
	}
	f.Add([]byte("---\ntitle: x\n---\n# a\n\n- b\n\n```\nc\n```\n"))
	f.Add([]byte("<div>\n*a*\n</div>\n| a |\n|---|\n| b |\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		a, err := Parse("f.md", src)
		if err != nil {
			return
		}
		for _, p := range a.Passages {
			if !utf8.ValidString(p.Text) || strings.TrimSpace(p.Text) == "" || utf8.RuneCountInString(p.Text) > MaxPassage {
				t.Fatalf("bad passage %d: %q", p.Position, p.Text)
			}
		}
	})
}

func TestCollapseSpace(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"a b":              "a b",
		" a":               "a",
		"a ":               "a",
		"a  b":             "a b",
		"a\tb\nc":          "a b c",
		"   ":              "",
		"é\u00a0ü":         "é ü",
		"x \u2003 y\u3000": "x y",
	} {
		if got := collapseSpace(in); got != want {
			t.Errorf("collapseSpace(%q) = %q, want %q", in, got, want)
		}
	}
}
