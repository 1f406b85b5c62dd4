package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// slugs returns the slugs the server lists.
func slugs(t *testing.T, url string) []string {
	t.Helper()
	_, _, body := get(t, url+"/articles?limit=100")
	var page struct {
		Articles []struct{ Slug, Title string }
	}
	json.Unmarshal([]byte(body), &page)
	var out []string
	for _, a := range page.Articles {
		out = append(out, a.Slug+"="+a.Title)
	}
	slices.Sort(out)
	return out
}

func TestServeWatch(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"kites.md": "# Flying kites\n\nA kite flies in the wind.\n"})
	url := serve(t, "--articles", dir, "--watch", "--watch-interval", "20ms")
	until := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for got := slugs(t, url); !slices.Equal(got, want); got = slugs(t, url) {
			if time.Now().After(deadline) {
				t.Fatalf("articles %q, want %q", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	until("kites=Flying kites")

	writeFiles(t, dir, map[string]string{"sub/tides.md": "# Tides\n\nTides follow the moon.\n"})
	until("kites=Flying kites", "sub/tides=Tides")

	// A change of title, then a removal.
	os.WriteFile(filepath.Join(dir, "kites.md"), []byte("# Kites in winter\n\nA kite flies in cold wind too.\n"), 0o644)
	until("kites=Kites in winter", "sub/tides=Tides")
	os.Remove(filepath.Join(dir, "sub", "tides.md"))
	until("kites=Kites in winter")

	// And the answer reads the change.
	_, _, body := get(t, url+"/articles/stream?question=kites+in+cold+wind")
	if !strings.Contains(body, "Kites in winter") {
		t.Errorf("the answer does not read the changed article: %s", body)
	}
}

func TestServeWatchNeedsArticles(t *testing.T) {
	if code, _, errOut := run(t, "serve", "--addr", "127.0.0.1:0", "--watch"); code != 2 || !strings.Contains(errOut, "--watch needs --articles") {
		t.Errorf("serve --watch without --articles = %d, %q", code, errOut)
	}
}
