package http

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/memory"
)

func TestPrefersHTML(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json", false},
		{"application/x-ndjson", false},
		{"text/html", true},
		{"text/html, application/json", false}, // a tie keeps the API
		{"application/json, text/html", false},
		{"text/html;q=0.9, application/json;q=0.8", true},
		{"text/html;q=0.5, application/json", false},
		{"text/*", true},
		{"text/*, */*;q=0.1", true},
		{"text/html;q=0", false},
		{"text/html;q=bogus", false},
		{"TEXT/HTML", true},
		// Chromium, then Firefox and Safari, navigating to a page.
		{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		// fetch() from a page, and curl.
		{"*/*;q=1", false},
		// The most specific range decides, wherever it stands.
		{"*/*;q=0.1, text/html;q=0.2, application/*;q=0.3", false},
		{"*/*;q=0.9, text/html;q=0.2", false},
		{"application/json;q=0.4, text/html;q=0.5", true},
	}
	for _, tt := range tests {
		if got := prefersHTML([]string{tt.accept}); got != tt.want {
			t.Errorf("prefersHTML(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
	if !prefersHTML([]string{"application/json;q=0.1", "text/html"}) {
		t.Errorf("prefersHTML over two header lines = false, want true")
	}
}

// stubStore answers Get and List with one article, enough for the routes.
type stubStore struct{ runnel.Store }

func (stubStore) Get(_ context.Context, slug string) (*runnel.Article, error) {
	if slug != "a" {
		return nil, runnel.Errorf(runnel.ENOTFOUND, "No article %q.", slug)
	}
	return &runnel.Article{Slug: "a", Title: "A", Body: "body"}, nil
}

func (stubStore) List(context.Context, runnel.ListOptions) ([]runnel.Article, int, error) {
	return []runnel.Article{{Slug: "a", Title: "A"}}, 1, nil
}

func (stubStore) Tags(context.Context) ([]runnel.TagCount, error) {
	return []runnel.TagCount{{Tag: "t", Count: 1}}, nil
}

func TestPagesRouting(t *testing.T) {
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "page "+r.URL.Path)
	})
	tests := []struct {
		method, path, accept string
		page                 bool   // served by Pages
		ctype                string // otherwise, the API's content type
	}{
		{"GET", "/", browser, true, ""},
		{"GET", "/", "", false, "text/plain; charset=utf-8"},
		{"GET", "/", "*/*", false, "text/plain; charset=utf-8"},
		{"GET", "/static/app.js", "", true, ""},
		{"GET", "/static/app.js", "*/*", true, ""},
		{"GET", "/articles/a", browser, true, ""},
		{"GET", "/articles/a", "", false, "application/json"},
		{"GET", "/articles/a", "*/*", false, "application/json"},
		{"GET", "/articles/a", "application/json", false, "application/json"},
		{"GET", "/articles/nope", browser, true, ""},
		{"GET", "/articles/nope", "", false, "application/json"},
		{"GET", "/articles?tag=t", browser, true, ""},
		{"GET", "/articles", "", false, "application/json"},
		{"GET", "/tags", browser, true, ""},
		{"GET", "/tags", "", false, "application/json"},
		{"GET", "/healthz", browser, false, "application/json"},
		{"GET", "/nope", browser, true, ""},
		{"GET", "/nope", "", false, "application/json"},
		{"POST", "/nope", browser, false, "application/json"},
	}
	srv := &Server{Store: stubStore{}, Pages: pages, Runs: memory.New(memory.Options{})}
	h := srv.Handler()
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		name := tt.method + " " + tt.path + " Accept: " + tt.accept
		if tt.page {
			if !strings.HasPrefix(body, "page ") {
				t.Errorf("%s: got %d %q, want the page", name, rec.Code, body)
			}
			continue
		}
		if strings.HasPrefix(body, "page ") || rec.Header().Get("Content-Type") != tt.ctype {
			t.Errorf("%s: got %q (%s), want the API's %s", name, body, rec.Header().Get("Content-Type"), tt.ctype)
		}
	}

	// Negotiated answers say so to caches, whichever side answers.
	for _, accept := range []string{"", browser} {
		req := httptest.NewRequest("GET", "/articles/a", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Vary"); got != "Accept" {
			t.Errorf("GET /articles/a Accept: %q: Vary = %q, want Accept", accept, got)
		}
	}
}

func TestNoPages(t *testing.T) {
	h := (&Server{Store: stubStore{}, Runs: memory.New(memory.Options{})}).Handler()
	for _, path := range []string{"/", "/articles/a", "/static/app.js"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Accept", "text/html")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/html") || rec.Header().Get("Vary") != "" {
			t.Errorf("GET %s without Pages: %d %s, Vary %q; want the API alone", path, rec.Code, ct, rec.Header().Get("Vary"))
		}
	}
}
