package runnel

import (
	"strconv"
	"testing"
)

// TestSourceURLCache checks that the cache of sources' URLs gives what
// ArticleURL gives, one string for each article, and stays bounded.
func TestSourceURLCache(t *testing.T) {
	a, b := sourceURL("/articles/", "x y"), sourceURL("/articles/", "x y")
	if a != ArticleURL("/articles/", "x y") {
		t.Fatalf("sourceURL = %q, want %q", a, ArticleURL("/articles/", "x y"))
	}
	if a != b {
		t.Fatalf("two lookups gave %q and %q", a, b)
	}
	if u := sourceURL("https://example.com/", "x y"); u != "https://example.com/x%20y" {
		t.Errorf("under another base: %q", u)
	}
	for i := range 2 * maxSourceURLs {
		slug := "s" + strconv.Itoa(i)
		if u := sourceURL("/", slug); u != "/"+slug {
			t.Fatalf("sourceURL(/, %s) = %q", slug, u)
		}
	}
	sourceURLs.RLock()
	n := len(sourceURLs.m)
	sourceURLs.RUnlock()
	if n > maxSourceURLs {
		t.Errorf("the cache holds %d URLs, more than its bound %d", n, maxSourceURLs)
	}
	if testing.AllocsPerRun(100, func() { sourceURL("/articles/", "x y") }) != 0 {
		t.Error("a URL already cached was built again")
	}
}
