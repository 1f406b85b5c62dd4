// Package markdown turns Markdown files (with optional YAML front matter)
// and JSONL records into runnel.Articles, and imports them into a
// runnel.Store.
//
// Parse reads one Markdown file; ParseJSONL reads one article per line;
// both split the body into passages, one per section, as plain text that
// the search index and the sentence splitter can use directly. Importer
// walks files and directories and puts what it finds into a Store, counting
// what was added, updated, left unchanged or pruned. RenderHTML renders a
// body for the article's page.
//
// All of them keep an article within Limits (its size, its front matter,
// how deeply it nests, how much markup a paragraph or table holds), so
// that what an article costs to import and to show grows with its size
// and no faster: Markdown parsers take time that grows with the square of
// some counts, and a few hundred kilobytes can cost minutes.
package markdown

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/runnel/runnel"
)

// Parse reads a Markdown file: optional YAML front matter between "---"
// lines at the very start, then the body. path names the file; it gives
// the fallback title and slug (the base name) and becomes Article.Source.
// The importer replaces Slug and Source with its own.
//
// Front matter fields: title, date (YYYY-MM-DD, RFC 3339 or a YAML
// timestamp), tags and keywords (a list or a comma-separated string),
// description, section and lang (or language: a BCP 47 tag such as de or
// zh-Hans; runnel.ParseLang). Other fields are ignored. Without a title the
// first H1 is used, then the first heading of any level, then the file name.
//
// Parse fails for an empty file, invalid UTF-8, malformed front matter and
// an article over the default Limits (a *LimitError); the error says why
// but not which file (callers add the path).
func Parse(path string, src []byte) (*runnel.Article, error) {
	return parse(path, src, Limits{})
}

// parse is Parse within lim.
func parse(path string, src []byte, lim Limits) (*runnel.Article, error) {
	lim = lim.orDefault()
	if len(src) > lim.MaxBytes {
		return nil, &LimitError{What: "the file", Actual: len(src), Limit: lim.MaxBytes, Unit: "bytes"}
	}
	src = bytes.TrimPrefix(src, []byte("\uFEFF"))
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, errors.New("file is empty")
	}
	if !utf8.Valid(src) {
		at := invalidAt(src)
		return nil, fmt.Errorf("not valid UTF-8 (line %d)", bytes.Count(src[:at], []byte("\n"))+1)
	}
	text := normalizeNewlines(string(src))
	fm, body, err := splitFrontMatter(text, lim.MaxFrontMatter)
	if err != nil {
		return nil, err
	}
	a := &runnel.Article{Source: path}
	if err := parseFrontMatter(fm, a); err != nil {
		return nil, err
	}
	a.Slug = Slug("", path)
	lead := leadingBlankLines(body)
	a.Body = trimBody(body)
	doc, err := parseBody(a.Body, lim)
	if le, ok := err.(*LimitError); ok && le.Line > 0 {
		// Number the line as in the file, front matter included.
		le.Line += strings.Count(text[:len(text)-len(body)+lead], "\n")
	}
	if err != nil {
		return nil, err
	}
	if a.Title == "" {
		a.Title = doc.title()
	}
	if a.Title == "" {
		a.Title = titleFromName(path)
	}
	a.Passages = doc.passages(a)
	return a, nil
}

// normalizeNewlines turns CRLF and lone CR line endings into LF.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// invalidAt returns the offset of the first invalid UTF-8 sequence in b.
func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// trimBody drops the blank lines that usually follow the front matter and
// trailing white space, so that cosmetic edits do not count as changes.
func trimBody(body string) string {
	body = strings.TrimRight(body[leadingBlankLines(body):], " \t\n")
	if body == "" {
		return ""
	}
	return body + "\n"
}

// leadingBlankLines returns the length of the blank lines body starts with.
func leadingBlankLines(body string) int {
	n := 0
	for {
		line, _, ok := strings.Cut(body[n:], "\n")
		if !ok || strings.TrimSpace(line) != "" {
			return n
		}
		n += len(line) + 1
	}
}

// splitFrontMatter returns the YAML between a "---" line at the very start
// of s and the next "---" (or "...") line, and the text after it. Without
// an opening line fm is "" and body is s. An opening line without a closing
// one is an error: the file would otherwise import with its metadata as
// text. So is front matter longer than max bytes.
func splitFrontMatter(s string, max int) (fm, body string, err error) {
	first, rest, _ := strings.Cut(s, "\n")
	if strings.TrimRight(first, " \t") != "---" {
		return "", s, nil
	}
	off := 0
	for {
		line, next, more := strings.Cut(rest[off:], "\n")
		if t := strings.TrimRight(line, " \t"); t == "---" || t == "..." {
			if off > max {
				return "", "", &LimitError{Line: 1, What: "the front matter", Actual: off, Limit: max, Unit: "bytes"}
			}
			return rest[:off], next, nil
		}
		if !more {
			return "", "", errors.New("front matter: no closing --- line")
		}
		off += len(line) + 1
	}
}

// parseFrontMatter decodes the YAML front matter fm into a. The YAML is
// walked as nodes rather than decoded into a struct so that each field can
// take several shapes (a list or a comma-separated string, a date or a
// timestamp) and every error names its field.
func parseFrontMatter(fm string, a *runnel.Article) error {
	if strings.TrimSpace(fm) == "" {
		return nil
	}
	var doc yaml.Node
	// The leading newline stands for the opening "---" so that the line
	// numbers in YAML's errors are the file's.
	if err := yaml.Unmarshal([]byte("\n"+fm), &doc); err != nil {
		return fmt.Errorf("front matter: %w", err)
	}
	if err := checkAliases(&doc); err != nil {
		return err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // only comments
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("front matter: line %d: want key: value pairs, found %s", root.Line, kindName(root))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), resolve(root.Content[i+1])
		key := strings.ToLower(strings.TrimSpace(k.Value))
		switch key {
		case "title", "date", "tags", "description", "keywords", "section", "lang":
		case "language":
			key = "lang"
		default:
			continue
		}
		if seen[key] {
			return fmt.Errorf("front matter: line %d: %s appears twice", k.Line, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "title":
			a.Title, err = yamlString(v)
		case "description":
			a.Description, err = yamlString(v)
		case "section":
			a.Section, err = yamlString(v)
		case "lang":
			var s string
			if s, err = yamlString(v); err == nil {
				a.Lang, err = runnel.ParseLang(s)
			}
		case "tags":
			a.Tags, err = yamlList(v)
		case "keywords":
			a.Keywords, err = yamlList(v)
		case "date":
			var s string
			if s, err = yamlString(v); err == nil {
				a.Date, err = parseDate(s)
			}
		}
		if err != nil {
			return fmt.Errorf("front matter: line %d: %s: %w", v.Line, key, err)
		}
	}
	return nil
}

// resolve follows YAML aliases (*name) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "a single value"
}

// yamlString returns a scalar's text, trimmed; null is "". Numbers and
// booleans are taken as written ("section: 1" is "1").
func yamlString(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a single value, found %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return strings.TrimSpace(n.Value), nil
}

// yamlList returns a list of scalars, or a comma-separated scalar split at
// its commas, cleaned by cleanList.
func yamlList(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return cleanList(strings.Split(n.Value, ",")), nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("want a list of words or a comma-separated string, found %s in the list", kindName(c))
			}
			if c.Tag != "!!null" {
				items = append(items, c.Value)
			}
		}
		return cleanList(items), nil
	}
	return nil, fmt.Errorf("want a list or a comma-separated string, found %s", kindName(n))
}

// cleanList trims the items, drops empty ones and duplicates (compared
// case-insensitively, the first spelling wins). It returns nil for no items.
func cleanList(items []string) []string {
	var out []string
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		it = strings.Join(strings.Fields(it), " ")
		k := strings.ToLower(it)
		if it == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, it)
	}
	return out
}

// dateLayouts are the date forms accepted: YYYY-MM-DD, RFC 3339 and the
// YAML 1.1 timestamp forms (single-digit months and days, a space instead
// of "T", an optional zone), plus "YYYY-MM-DD HH:MM" as static site
// generators write it. A date without a zone is UTC.
var dateLayouts = []string{
	"2006-1-2",
	time.RFC3339Nano,
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2T15:4:5.999999999",
	"2006-1-2 15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999 Z07:00",
	"2006-1-2 15:4:5.999999999 -07",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2 15:4",
	"2006-1-2T15:4",
}

// parseDate parses s in one of dateLayouts; "" is the zero time.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a date (want YYYY-MM-DD or RFC 3339, like 2024-05-01T10:00:00Z)", s)
}

// titleFromName makes a title from a file name: no directory, no extension,
// dashes and underscores as spaces.
func titleFromName(path string) string {
	name := trimArticleExt(filepath.Base(path))
	name = strings.NewReplacer("-", " ", "_", " ").Replace(name)
	return strings.Join(strings.Fields(name), " ")
}

// Slug returns the slug of the file at path imported from root: the path
// relative to root, without extension (both of .md.gz), in lower case, with "/" between
// directories, every character outside [a-z0-9-_/.] turned into "-", runs of
// dashes collapsed and dashes trimmed at the ends of each path element.
// When root is "" or path itself (a single file was named), the slug is
// made from the base name alone. Slug("docs", "docs/commands/npm-install.md")
// is "commands/npm-install". The result is "" if no usable character is left.
func Slug(root, path string) string {
	rel := filepath.Base(path)
	if root != "" {
		if r, err := filepath.Rel(root, path); err == nil && r != "." && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	rel = trimArticleExt(filepath.ToSlash(rel))
	return slugify(rel, true)
}

// slugify lower-cases s and replaces every character outside
// [a-z0-9-_.] (and "/" if keepSlash) with a dash, collapsing dashes and
// dropping empty path elements and dashes at their ends.
func slugify(s string, keepSlash bool) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.':
			b.WriteRune(r)
		case r == '/' && keepSlash:
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	var parts []string
	for _, p := range strings.Split(b.String(), "/") {
		for strings.Contains(p, "--") {
			p = strings.ReplaceAll(p, "--", "-")
		}
		if p = strings.Trim(p, "-"); p != "" && p != "." && p != ".." {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}
