// Package corpus holds runnel's default articles, embedded in the binary so
// that runnel answers with no files and no network: short original articles
// on web networking and streaming.
package corpus

import (
	"embed"
	"io/fs"
)

//go:embed articles/*.md
var files embed.FS

// FS returns the articles: Markdown files with YAML front matter at the
// root of the file system.
func FS() fs.FS {
	sub, err := fs.Sub(files, "articles")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}
