package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// An Item is a labelled question: the articles that answer it, best
// first, or none for a question the corpus cannot answer.
type Item struct {
	Set      string   `json:"set,omitempty"`
	Question string   `json:"q"`
	Gold     []string `json:"gold,omitempty"`
}

// Answerable reports whether some article answers the item.
func (it Item) Answerable() bool { return len(it.Gold) > 0 }

// Corpus is what build writes: the article files, ready to import, and
// the questions whose answers were cut out of them.
type Corpus struct {
	Dir   string // the folder of Markdown files
	Items []Item // questions labelled from the packages' FAQs
	Files int
}

// Paths of the documentation inside the unpacked packages.
const (
	debianFAQPath = "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"
	gitDocPath    = "usr/share/doc/git-doc"
	gitFAQName    = "gitfaq.txt"
	dockerDocPath = "usr/share/doc/docker-doc"
)

// build writes the evaluation corpus from the unpacked packages under
// root into dir: every answer of the Debian FAQ and of gitfaq(7) as an
// article of its own, titled by its chapter and with its question removed
// (otherwise the question would find itself), and the rest of git's and
// Docker's documentation as distractors.
func build(root, dir string) (*Corpus, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	c := &Corpus{Dir: dir}
	write := func(rel, title, body string) error {
		path := filepath.Join(dir, filepath.FromSlash(rel)+".md")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		var b strings.Builder
		if title != "" {
			fmt.Fprintf(&b, "---\ntitle: %q\n---\n\n", title)
		}
		b.WriteString(body)
		c.Files++
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}

	faq, err := readMaybeGzip(filepath.Join(root, debianFAQPath))
	if err != nil {
		return nil, err
	}
	for _, s := range parseDebianFAQ(faq) {
		if err := write("debian-faq/"+s.ID, s.Title, s.Body); err != nil {
			return nil, err
		}
		// Headings that ask nothing ("Authors", "Feedback") stay as
		// distractors, not as questions.
		if strings.Contains(s.Question, "?") {
			c.Items = append(c.Items, Item{Set: "debian-faq", Question: s.Question, Gold: []string{"debian-faq/" + s.ID}})
		}
	}

	gitDir := filepath.Join(root, gitDocPath)
	gfaq, err := os.ReadFile(filepath.Join(gitDir, gitFAQName))
	if err != nil {
		return nil, err
	}
	for _, s := range parseGitFAQ(string(gfaq)) {
		if err := write("git-faq/"+s.ID, s.Title, s.Body); err != nil {
			return nil, err
		}
		c.Items = append(c.Items, Item{Set: "git-faq", Question: s.Question, Gold: []string{"git-faq/" + s.ID}})
	}
	err = filepath.WalkDir(gitDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".txt") || d.Name() == gitFAQName {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(gitDir, path)
		return write("git/"+strings.TrimSuffix(filepath.ToSlash(rel), ".txt"), "", asciidocToMarkdown(string(src)))
	})
	if err != nil {
		return nil, err
	}

	dockerDir := filepath.Join(root, dockerDocPath)
	err = filepath.WalkDir(dockerDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimSuffix(path, ".gz")
		if !strings.HasSuffix(name, ".md") {
			return nil
		}
		src, err := readMaybeGzip(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dockerDir, name)
		return write("docker/"+strings.TrimSuffix(filepath.ToSlash(rel), ".md"), "", src)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// readMaybeGzip reads a file, gunzipping it if its name ends in .gz.
func readMaybeGzip(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(b), nil
}

// A section is one answer cut out of a FAQ.
type section struct {
	ID       string // file name: the FAQ's number ("3-1-2") or anchor
	Title    string // the chapter or part it belongs to
	Question string // its heading, which the article leaves out; "" for a chapter's introduction
	Body     string // Markdown
}

var (
	reFAQNumber  = regexp.MustCompile(`^(\d+(?:\.\d+)+)\. (.*)$`)
	reFAQChapter = regexp.MustCompile(`^(?:Chapter|Appendix) (\w+)\. (.*)$`)
)

// parseDebianFAQ splits the plain-text Debian FAQ into its numbered
// questions. A question starts at a line "N.M. Text" in the first column
// and may wrap onto more unindented lines; its answer is the indented text
// up to the next question or chapter. Each chapter's introduction becomes
// a section without a question.
func parseDebianFAQ(text string) []section {
	var (
		out      []section
		chapter  string
		cur      *section
		heading  bool // reading the wrapped lines of a question
		body     []string
		inBody   bool // past the table of contents
		chapters int
	)
	flush := func() {
		if cur != nil {
			cur.Body = indentedToMarkdown(body)
			if strings.TrimSpace(cur.Body) != "" {
				out = append(out, *cur)
			}
		}
		cur, body, heading = nil, nil, false
	}
	// The text is typeset with no-break spaces after "Chapter" and the
	// numbers.
	text = strings.ReplaceAll(text, "\u00a0", " ")
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		if m := reFAQChapter.FindStringSubmatch(line); m != nil {
			flush()
			inBody = true
			chapters++
			chapter = m[2]
			cur = &section{ID: "chapter-" + strings.ToLower(m[1]), Title: chapter}
			continue
		}
		if !inBody {
			continue
		}
		if m := reFAQNumber.FindStringSubmatch(line); m != nil {
			flush()
			cur = &section{ID: strings.ReplaceAll(m[1], ".", "-"), Title: chapter, Question: m[2]}
			heading = true
			continue
		}
		if heading {
			if line != "" && !strings.HasPrefix(line, " ") {
				cur.Question += " " + line
				continue
			}
			heading = false
		}
		if cur != nil {
			body = append(body, line)
		}
	}
	flush()
	return out
}

// indentedToMarkdown turns the indented paragraphs of a plain-text
// document into Markdown paragraphs: blank lines kept, indentation removed
// (deeper indentation would read as code in Markdown).
func indentedToMarkdown(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimSpace(l))
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String()) + "\n"
}

var (
	reGitFAQAnchor = regexp.MustCompile(`^\[\[([a-z0-9-]+)\]\]$`)
	reLinkgit      = regexp.MustCompile(`linkgit:([\w-]+)\[(\d)\]`)
)

// parseGitFAQ splits gitfaq(7), in AsciiDoc, into its questions: an anchor
// line "[[id]]", the question ending in "::", then the answer up to the
// next anchor or part heading. The part ("Configuration", "Credentials")
// titles each answer.
func parseGitFAQ(text string) []section {
	lines := strings.Split(text, "\n")
	var (
		out  []section
		part string
		cur  *section
		body []string
	)
	flush := func() {
		if cur != nil {
			cur.Body = asciidocToMarkdown(strings.Join(body, "\n"))
			out = append(out, *cur)
		}
		cur, body = nil, nil
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if i+1 < len(lines) && isUnderline(lines[i+1], line) {
			flush()
			part = strings.TrimSpace(line)
			i++
			continue
		}
		if m := reGitFAQAnchor.FindStringSubmatch(line); m != nil && i+1 < len(lines) && strings.HasSuffix(lines[i+1], "::") {
			flush()
			cur = &section{ID: m[1], Title: part, Question: strings.TrimSuffix(lines[i+1], "::")}
			i++
			continue
		}
		if cur != nil {
			body = append(body, line)
		}
	}
	flush()
	return out
}

// isUnderline reports whether under is an AsciiDoc (and Markdown setext)
// underline of title: a run of '=' or '-' about as long as the title.
func isUnderline(under, title string) bool {
	u := strings.TrimSpace(under)
	t := strings.TrimSpace(title)
	if len(u) < 2 || t == "" || strings.Trim(u, "=") != "" && strings.Trim(u, "-") != "" {
		return false
	}
	return len(u) >= len(t)-2 && len(u) <= len(t)+2
}

// asciidocToMarkdown converts the AsciiDoc of git's manual pages well
// enough to import as Markdown: listing blocks ("----") become fenced
// code, list continuations ("+") blank lines, linkgit:x[1] becomes x(1),
// and the directives a reader never sees are dropped. Titles underlined
// with '=' or '-' are already Markdown headings.
func asciidocToMarkdown(src string) string {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var b strings.Builder
	inCode := false
	for i, line := range lines {
		t := strings.TrimSpace(line)
		isDelim := len(t) >= 4 && strings.Trim(t, "-") == "" &&
			(i == 0 || !isUnderline(line, lines[i-1]) || strings.TrimSpace(lines[i-1]) == "")
		switch {
		case isDelim || t == "....":
			if inCode {
				b.WriteString("```\n")
			} else {
				b.WriteString("\n```\n")
			}
			inCode = !inCode
			continue
		case inCode:
			b.WriteString(line + "\n")
			continue
		case t == "+":
			b.WriteString("\n")
			continue
		case strings.HasPrefix(t, "include::"), strings.HasPrefix(t, "ifdef::"), strings.HasPrefix(t, "ifndef::"),
			strings.HasPrefix(t, "endif::"), strings.HasPrefix(t, ":"), t == "[verse]", t == "[listing]",
			strings.HasPrefix(t, "[[") && strings.HasSuffix(t, "]]"):
			continue
		}
		line = reLinkgit.ReplaceAllString(line, "$1($2)")
		b.WriteString(strings.TrimLeft(line, "\t") + "\n")
	}
	if inCode {
		b.WriteString("```\n")
	}
	return b.String()
}
