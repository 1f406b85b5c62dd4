package markdown

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
)

func TestParseJSONL(t *testing.T) {
	type got struct {
		Line                                 int
		Slug, Title, Date, Section, Headings string
		Lang                                 string
		Tags, Keywords                       []string
	}
	tests := []struct {
		name    string
		input   string
		want    []got
		badLine []int    // lines reported as bad, in order
		badWhy  []string // a substring of each bad line's error
	}{
		{
			name: "full record",
			input: `{"slug":"Guides/WebSockets","title":"WebSockets","date":"2024-03-18","tags":["net","Net","ws"],` +
				`"keywords":"a, b","section":1,"description":"d","lang":"en-gb","body":"Lead.\n\n## Handshake\n\nUpgrade."}`,
			want: []got{{Line: 1, Slug: "guides/websockets", Title: "WebSockets", Date: "2024-03-18", Section: "1",
				Headings: `"" "Handshake"`, Lang: "en-GB", Tags: []string{"net", "ws"}, Keywords: []string{"a", "b"}}},
		},
		{
			name:  "slug from title, title from heading",
			input: "{\"title\":\"Hello, World / Again!\",\"body\":\"x\"}\n{\"slug\":\"s\",\"body\":\"# Heading Title\\n\\ntext\"}\n{\"slug\":\"only-slug\"}\n",
			want: []got{
				{Line: 1, Slug: "hello-world-again", Title: "Hello, World / Again!", Headings: `""`},
				{Line: 2, Slug: "s", Title: "Heading Title", Headings: `""`},
				{Line: 3, Slug: "only-slug", Title: "only slug"},
			},
		},
		{
			name:  "blank lines, CRLF, BOM and unknown fields",
			input: "\uFEFF{\"slug\":\"a\",\"extra\":{\"x\":1}}\r\n\r\n   \n{\"slug\":\"b\",\"tags\":null}\r\n",
			want:  []got{{Line: 1, Slug: "a", Title: "a"}, {Line: 4, Slug: "b", Title: "b"}},
		},
		{
			name: "bad lines do not stop the others",
			input: strings.Join([]string{
				`{"slug":"ok1"}`,
				`{"slug": broken`,
				`["not", "an", "object"]`,
				`{"title":""}`,
				`{"slug":"x","date":"someday"}`,
				`{"slug":"x","tags":[1,2]}`,
				`{"slug":"x","title":["a"]}`,
				"{\"slug\":\"x\",\"body\":\"\xff\"}",
				`{"slug":"!!!"}`,
				`{"slug":"x","lang":"klingon, please"}`,
				`{"slug":"ok2"}`,
			}, "\n"),
			want:    []got{{Line: 1, Slug: "ok1", Title: "ok1"}, {Line: 11, Slug: "ok2", Title: "ok2"}},
			badLine: []int{2, 3, 4, 5, 6, 7, 8, 9, 10},
			badWhy:  []string{"invalid JSON", "JSON object", "no slug and no title", "date", "tags", "title", "UTF-8", "slug", "lang"},
		},
		{
			name:    "line too long",
			input:   `{"slug":"a"}` + "\n" + `{"slug":"b","body":"` + strings.Repeat("x", MaxJSONLLine) + `"}` + "\n" + `{"slug":"c"}`,
			want:    []got{{Line: 1, Slug: "a", Title: "a"}, {Line: 3, Slug: "c", Title: "c"}},
			badLine: []int{2},
			badWhy:  []string{"longer than"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gots []got
			err := ParseJSONL("/data/a.jsonl", strings.NewReader(tt.input), func(a *runnel.Article, line int) error {
				if a.Source != "/data/a.jsonl" {
					t.Errorf("line %d: Source = %q, want the file's path", line, a.Source)
				}
				g := got{Line: line, Slug: a.Slug, Title: a.Title, Section: a.Section, Lang: a.Lang, Tags: a.Tags, Keywords: a.Keywords}
				if !a.Date.IsZero() {
					g.Date = a.Date.Format(time.DateOnly)
				}
				var hs []string
				for _, p := range a.Passages {
					hs = append(hs, fmt.Sprintf("%q", p.Heading))
					if p.Slug != a.Slug || p.Title != a.Title {
						t.Errorf("line %d: passage has slug %q title %q, want the article's", line, p.Slug, p.Title)
					}
				}
				g.Headings = strings.Join(hs, " ")
				gots = append(gots, g)
				return nil
			})
			if fmt.Sprintf("%+v", gots) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("articles:\n got %+v\nwant %+v", gots, tt.want)
			}
			var lines []int
			var errs []error
			if err != nil {
				errs = err.(interface{ Unwrap() []error }).Unwrap()
			}
			for i, e := range errs {
				var le *LineError
				if !errors.As(e, &le) {
					t.Fatalf("error %v is not a *LineError", e)
				}
				lines = append(lines, le.Line)
				if i < len(tt.badWhy) && !strings.Contains(le.Error(), tt.badWhy[i]) {
					t.Errorf("line %d: error %q, want it to mention %q", le.Line, le, tt.badWhy[i])
				}
				if !strings.HasPrefix(le.Error(), fmt.Sprintf("line %d: ", le.Line)) {
					t.Errorf("LineError.Error() = %q, want it to start with the line", le)
				}
			}
			if !slices.Equal(lines, tt.badLine) {
				t.Errorf("bad lines = %v, want %v (error %v)", lines, tt.badLine, err)
			}
		})
	}
}

func TestParseJSONLCallbackErrorStops(t *testing.T) {
	stop := errors.New("store is down")
	calls := 0
	err := ParseJSONL("x.jsonl", strings.NewReader("{\"slug\":\"a\"}\n{\"slug\":\"b\"}\n"), func(*runnel.Article, int) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("ParseJSONL = %v after %d calls, want %v after 1", err, calls, stop)
	}
}
