package markdown

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/runnel/runnel"
)

// PutFS parses every Markdown file in fsys and puts it into store, for
// articles that ship inside the binary (an embed.FS). The slug is the file's
// path without its extension; the source is "embedded:" and the path, so
// that an import --prune of a directory never touches these articles. Unlike
// Importer.Import it stops at the first file that fails: an embedded corpus
// that does not parse is a bug in the build. It returns how many articles
// it put.
func PutFS(ctx context.Context, store runnel.Store, fsys fs.FS) (int, error) {
	n := 0
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (path.Ext(name) != ".md" && path.Ext(name) != ".markdown") {
			return err
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		a, err := Parse(name, src)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		a.Slug = strings.TrimSuffix(name, path.Ext(name))
		for i := range a.Passages {
			a.Passages[i].Slug = a.Slug
		}
		a.Source = "embedded:" + name
		if _, err := store.Put(ctx, a); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n++
		return nil
	})
	return n, err
}
