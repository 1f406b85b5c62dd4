package markdown

import (
	"context"
	"testing"
	"testing/fstest"
)

func TestPutFS(t *testing.T) {
	fsys := fstest.MapFS{
		"kites.md":      {Data: []byte("---\ntitle: Kites\ntags: [wind]\n---\nKites fly in wind.\n")},
		"sub/tides.md":  {Data: []byte("# Tides\n\nThe moon pulls the sea.\n")},
		"notes.txt":     {Data: []byte("not an article")},
		"sub/README.MD": {Data: []byte("upper-case extension is not Markdown here")},
	}
	store := newMemStore()
	n, err := PutFS(context.Background(), store, fsys)
	if err != nil || n != 2 {
		t.Fatalf("PutFS = %d, %v; want 2, nil", n, err)
	}
	a, err := store.Get(context.Background(), "sub/tides")
	if err != nil || a.Title != "Tides" || a.Source != "embedded:sub/tides.md" {
		t.Fatalf("Get(sub/tides) = %+v, %v", a, err)
	}
	for _, p := range a.Passages {
		if p.Slug != "sub/tides" {
			t.Errorf("passage slug = %q, want sub/tides", p.Slug)
		}
	}
	fsys["bad.md"] = &fstest.MapFile{Data: []byte("---\ntitle: [\n---\n")}
	if _, err := PutFS(context.Background(), newMemStore(), fsys); err == nil {
		t.Error("PutFS with a malformed file = nil error, want the file's error")
	}
}
