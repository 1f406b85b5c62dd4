package markdown

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFrontMatter(t *testing.T) {
	day := time.Date(2024, 3, 18, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		src         string
		title       string
		date        time.Time
		tags        []string
		keywords    []string
		description string
		section     string
		lang        string
		body        string
	}{
		{
			name:  "list tags",
			src:   "---\ntitle: Hello\ntags: [go, web]\n---\ntext\n",
			title: "Hello", tags: []string{"go", "web"}, body: "text\n",
		},
		{
			name:  "block list tags",
			src:   "---\ntitle: Hello\ntags:\n  - go\n  - web\n---\ntext\n",
			title: "Hello", tags: []string{"go", "web"}, body: "text\n",
		},
		{
			name:  "comma string tags",
			src:   "---\ntitle: Hello\ntags: go, web ,, \n---\ntext\n",
			title: "Hello", tags: []string{"go", "web"}, body: "text\n",
		},
		{
			name:  "single tag",
			src:   "---\ntitle: Hello\ntags: go\n---\ntext\n",
			title: "Hello", tags: []string{"go"}, body: "text\n",
		},
		{
			name:  "tags trimmed and deduplicated case-insensitively",
			src:   "---\ntitle: Hello\ntags: [' Go ', go, GO, '', Web, ~]\n---\ntext\n",
			title: "Hello", tags: []string{"Go", "Web"}, body: "text\n",
		},
		{
			name:  "keywords description section",
			src:   "---\ntitle: Hello\nkeywords: [a, b]\ndescription: ' About it. '\nsection: 1\n---\ntext\n",
			title: "Hello", keywords: []string{"a", "b"}, description: "About it.", section: "1", body: "text\n",
		},
		{
			name:  "lang, canonical",
			src:   "---\ntitle: Hallo\nlang: DE-ch\n---\ntext\n",
			title: "Hallo", lang: "de-CH", body: "text\n",
		},
		{
			name:  "language",
			src:   "---\ntitle: Hello\nlanguage: zh-hans\n---\ntext\n",
			title: "Hello", lang: "zh-Hans", body: "text\n",
		},
		{
			name:  "date YYYY-MM-DD",
			src:   "---\ntitle: D\ndate: 2024-03-18\n---\nx\n",
			title: "D", date: day, body: "x\n",
		},
		{
			name:  "date quoted",
			src:   "---\ntitle: D\ndate: \"2024-03-18\"\n---\nx\n",
			title: "D", date: day, body: "x\n",
		},
		{
			name:  "date RFC 3339",
			src:   "---\ntitle: D\ndate: 2024-03-18T10:30:00+02:00\n---\nx\n",
			title: "D", date: time.Date(2024, 3, 18, 8, 30, 0, 0, time.UTC), body: "x\n",
		},
		{
			name:  "date YAML timestamp with space",
			src:   "---\ntitle: D\ndate: 2024-03-18 10:30:00\n---\nx\n",
			title: "D", date: time.Date(2024, 3, 18, 10, 30, 0, 0, time.UTC), body: "x\n",
		},
		{
			name:  "date YAML timestamp short",
			src:   "---\ntitle: D\ndate: 2024-3-8\n---\nx\n",
			title: "D", date: time.Date(2024, 3, 8, 0, 0, 0, 0, time.UTC), body: "x\n",
		},
		{
			name:  "date empty",
			src:   "---\ntitle: D\ndate:\n---\nx\n",
			title: "D", body: "x\n",
		},
		{
			name:  "CRLF",
			src:   "---\r\ntitle: Hello\r\ntags: [a]\r\n---\r\nline one\r\nline two\r\n",
			title: "Hello", tags: []string{"a"}, body: "line one\nline two\n",
		},
		{
			name:  "BOM",
			src:   "\uFEFF---\ntitle: Hello\n---\ntext\n",
			title: "Hello", body: "text\n",
		},
		{
			name:  "no front matter",
			src:   "# Heading\n\ntext\n",
			title: "Heading", body: "# Heading\n\ntext\n",
		},
		{
			name:  "empty front matter",
			src:   "---\n---\n# T\n",
			title: "T", body: "# T\n",
		},
		{
			name:  "dots close front matter",
			src:   "---\ntitle: Hello\n...\ntext\n",
			title: "Hello", body: "text\n",
		},
		{
			name:  "unknown fields ignored",
			src:   "---\ntitle: Hello\ndraft: true\nauthor: {name: x}\nweight: [1, 2]\n---\ntext\n",
			title: "Hello", body: "text\n",
		},
		{
			name:  "title falls back to first H1",
			src:   "---\ntags: [a]\n---\n## Intro\n\ntext\n\n# Main Title\n",
			title: "Main Title", tags: []string{"a"}, body: "## Intro\n\ntext\n\n# Main Title\n",
		},
		{
			name:  "title falls back to first heading",
			src:   "text\n\n### Third *level*\n\n## Second\n",
			title: "Third level", body: "text\n\n### Third *level*\n\n## Second\n",
		},
		{
			name:  "title falls back to setext heading",
			src:   "Big Title\n=========\n\ntext\n",
			title: "Big Title", body: "Big Title\n=========\n\ntext\n",
		},
		{
			name:  "title falls back to file name",
			src:   "just text\n",
			title: "my great note", body: "just text\n",
		},
		{
			name:  "aliases resolved",
			src:   "---\nname: &n Aliased\ntitle: *n\n---\nx\n",
			title: "Aliased", body: "x\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse("notes/my-great_note.md", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if a.Title != tt.title {
				t.Errorf("Title = %q, want %q", a.Title, tt.title)
			}
			if !a.Date.Equal(tt.date) {
				t.Errorf("Date = %v, want %v", a.Date, tt.date)
			}
			if !slices.Equal(a.Tags, tt.tags) {
				t.Errorf("Tags = %q, want %q", a.Tags, tt.tags)
			}
			if !slices.Equal(a.Keywords, tt.keywords) {
				t.Errorf("Keywords = %q, want %q", a.Keywords, tt.keywords)
			}
			if a.Description != tt.description {
				t.Errorf("Description = %q, want %q", a.Description, tt.description)
			}
			if a.Section != tt.section {
				t.Errorf("Section = %q, want %q", a.Section, tt.section)
			}
			if a.Lang != tt.lang {
				t.Errorf("Lang = %q, want %q", a.Lang, tt.lang)
			}
			if a.Body != tt.body {
				t.Errorf("Body = %q, want %q", a.Body, tt.body)
			}
			if a.Slug != "my-great_note" {
				t.Errorf("Slug = %q, want %q", a.Slug, "my-great_note")
			}
			if a.Source != "notes/my-great_note.md" {
				t.Errorf("Source = %q, want the path", a.Source)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"only white space", " \n\t\n", []string{"empty"}},
		{"only BOM", "\uFEFF\n", []string{"empty"}},
		{"invalid UTF-8", "# Title\n\nbad \xff byte\n", []string{"UTF-8", "line 3"}},
		{"malformed YAML", "---\ntitle: [unclosed\n---\ntext\n", []string{"front matter", "yaml"}},
		{"YAML error line is the file's", "---\ntitle: a\nbad: : :\n  - x\n---\n", []string{"front matter", "line 3"}},
		{"not a mapping", "---\n- a\n- b\n---\ntext\n", []string{"front matter", "key: value"}},
		{"unclosed front matter", "---\ntitle: x\n\ntext\n", []string{"front matter", "closing"}},
		{"bad date", "---\ntitle: x\ndate: yesterday\n---\n", []string{"date", `"yesterday"`}},
		{"bad lang", "---\ntitle: x\nlang: english please\n---\n", []string{"line 3", "lang", "not a language tag"}},
		{"lang twice", "---\ntitle: x\nlang: de\nlanguage: fr\n---\n", []string{"lang appears twice"}},
		{"bad date type", "---\ntitle: x\ndate: [2024]\n---\n", []string{"date", "list"}},
		{"title is a list", "---\ntitle: [a, b]\n---\n", []string{"title", "single value"}},
		{"tags is a mapping", "---\ntags: {a: b}\n---\n", []string{"tags", "mapping"}},
		{"nested tag list", "---\ntags: [[a]]\n---\n", []string{"tags", "list"}},
		{"duplicate key", "---\ntitle: a\ntitle: b\n---\n", []string{"title", "twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse("x.md", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.src, a)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error = %q, want it to mention %q", tt.src, err, w)
				}
			}
		})
	}
}

func TestSlug(t *testing.T) {
	tests := []struct {
		name, root, path, want string
	}{
		{"nested", "docs", "docs/commands/npm-install.md", "commands/npm-install"},
		{"absolute", "/srv/docs", "/srv/docs/a/b.markdown", "a/b"},
		{"single file", "/srv/docs/Intro.md", "/srv/docs/Intro.md", "intro"},
		{"no root", "", "some/dir/Hello World.md", "hello-world"},
		{"lower case", "d", "d/Guides/Getting Started.MD", "guides/getting-started"},
		{"punctuation", "d", "d/what's new? (2024).md", "what-s-new-2024"},
		{"dashes collapsed", "d", "d/a -- b__c.md", "a-b__c"},
		{"dots kept", "d", "d/v1.2/notes.md", "v1.2/notes"},
		{"non-ASCII", "d", "d/café/über.md", "caf/ber"},
		{"jsonl", "d", "d/data/articles.jsonl", "data/articles"},
		{"nothing usable", "d", "d/日本.md", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Slug(tt.root, tt.path); got != tt.want {
				t.Errorf("Slug(%q, %q) = %q, want %q", tt.root, tt.path, got, tt.want)
			}
		})
	}
}
