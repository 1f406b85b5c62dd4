package markdown

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRenderPageTitle(t *testing.T) {
	tests := []struct {
		name, title, body string
		drop              bool
	}{
		{"the same words", "Docker run reference", "# Docker run reference\n\nText.\n", true},
		{"case and spaces", "docker run  reference", "#   Docker *Run*\tReference\n\nText.\n", true},
		{"a lower heading", "Options", "## Options\n\nText.\n", true},
		{"a setext heading", "Run", "Run\n===\n\nText.\n", true},
		{"after an HTML comment", "Docker run reference", "<!-- This file is maintained\n     elsewhere. -->\n\n# Docker run reference\n\nText.\n", true},
		{"another title", "Docker run", "# Docker run reference\n\nText.\n", false},
		{"not first", "Run", "Text.\n\n# Run\n\nMore.\n", false},
		{"no title", "", "# Run\n\nText.\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html, err := RenderPage(tt.body, Page{Title: tt.title}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(html), "<h"); got == tt.drop {
				t.Errorf("RenderPage(%q, title %q) = %q; want the heading dropped: %v", tt.body, tt.title, html, tt.drop)
			}
			if !strings.Contains(string(html), "Text.") {
				t.Errorf("RenderPage(%q) = %q, want the text", tt.body, html)
			}
		})
	}
}

func TestRenderPageLinks(t *testing.T) {
	body := "[run](run.md) [options](../run.md#ulimit-options) [cli](commandline/cli.md.gz) " +
		"[again](./run.md) [gone](gone.md) [ext](https://docs.docker.com/run.md) [abs](/usr/run.md) " +
		"[png](logo.png) [frag](#here) [query](run.md?x=1) [ref][r] [caps](Notes.MARKDOWN)\n\n[r]: commandline/cli.md.gz#usage\n"
	var asked [][]string
	links := func(paths []string) (map[string]string, error) {
		asked = append(asked, paths)
		return map[string]string{
			"run.md":                "../articles/run",
			"../run.md":             "../articles/up/run",
			"commandline/cli.md.gz": "../articles/commandline/cli",
			"Notes.MARKDOWN":        "../articles/notes",
		}, nil
	}
	html, err := RenderPage(body, Page{Links: links}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<a href="../articles/run">run</a>`,
		`<a href="../articles/up/run#ulimit-options">options</a>`,
		`<a href="../articles/commandline/cli">cli</a>`,
		`<a href="../articles/run">again</a>`,
		`<a href="gone.md">gone</a>`,
		`<a href="https://docs.docker.com/run.md">ext</a>`,
		`<a href="/usr/run.md">abs</a>`,
		`<a href="logo.png">png</a>`,
		`<a href="#here">frag</a>`,
		`<a href="run.md?x=1">query</a>`,
		`<a href="../articles/commandline/cli#usage">ref</a>`,
		`<a href="../articles/notes">caps</a>`,
	} {
		if !strings.Contains(string(html), want) {
			t.Errorf("page lacks %s:\n%s", want, html)
		}
	}
	want := []string{"run.md", "../run.md", "commandline/cli.md.gz", "gone.md", "Notes.MARKDOWN"}
	if len(asked) != 1 || !slices.Equal(asked[0], want) {
		t.Errorf("Links asked %q, want once for %q", asked, want)
	}

	// Without links to Markdown files, Links is not asked; its error stops the render.
	if _, err := RenderPage("[x](https://example.com)\n", Page{Links: func([]string) (map[string]string, error) {
		t.Error("Links asked for a page without links to Markdown files")
		return nil, nil
	}}, Limits{}); err != nil {
		t.Error(err)
	}
	failed := errors.New("store down")
	if _, err := RenderPage("[x](x.md)\n", Page{Links: func([]string) (map[string]string, error) { return nil, failed }}, Limits{}); !errors.Is(err, failed) {
		t.Errorf("RenderPage with failing Links = %v, want its error", err)
	}
}
