package markdown

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// MaxJSONLLine is the longest JSONL line ParseJSONL accepts, in bytes,
// newline excluded. A longer line is reported as a bad line and skipped;
// the lines after it are still read.
const MaxJSONLLine = 8 << 20

// LineError is the error of one bad line of a JSONL file.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ParseJSONL reads one article per line from r, a JSONL file named path:
// objects with the fields slug, title, date, tags, description, keywords,
// section and body (Markdown, split into passages as Parse does); other
// fields are ignored and blank lines skipped. Tags and keywords are a list
// or a comma-separated string, date as in front matter.
//
// The slug, cleaned the way Slug cleans paths (lower case, [a-z0-9-_/.]),
// is required unless there is a title to make it from. The title falls back
// to the body's first heading, then to the slug. Every article's Source is
// path (not "path:line": lines move when records are added above them, and
// a store compares sources by path when it prunes).
//
// fn is called for each good line, in order, with its 1-based line number.
// A bad line does not stop the others: ParseJSONL reads on and returns the
// bad lines' errors, each a *LineError, joined with errors.Join. An error
// from fn stops it at once and is returned as it is; so does an error
// reading r, with the line number added. A body over the default Limits is
// a bad line whose error is a *LimitError (its line numbered within the
// body).
func ParseJSONL(path string, r io.Reader, fn func(a *runnel.Article, line int) error) error {
	return parseJSONL(path, r, Limits{}, fn)
}

// parseJSONL is ParseJSONL within lim.
func parseJSONL(path string, r io.Reader, lim Limits, fn func(a *runnel.Article, line int) error) error {
	lim = lim.orDefault()
	br := bufio.NewReaderSize(r, 64<<10)
	var bad []error
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br, MaxJSONLLine)
		if err != nil && err != io.EOF {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		switch {
		case tooLong:
			bad = append(bad, &LineError{n, fmt.Errorf("line longer than %d bytes", MaxJSONLLine)})
		case len(bytes.TrimSpace(line)) > 0:
			a, perr := parseRecord(path, line, lim)
			if perr != nil {
				bad = append(bad, &LineError{n, perr})
			} else if ferr := fn(a, n); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return errors.Join(bad...)
		}
	}
}

// readLine reads a line without its "\n" or "\r\n". A line longer than max
// is consumed to its end but not returned, and reported as tooLong. At the
// end of r it returns the last line, possibly empty, with io.EOF.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+2 { // room for "\r\n"
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > max {
			tooLong, line = true, nil
		}
		return line, tooLong, err
	}
}

// parseRecord turns one JSONL line into an article. The object is
// decoded field by field so that each error names its field.
func parseRecord(path string, line []byte, lim Limits) (*runnel.Article, error) {
	if !utf8.Valid(line) {
		return nil, fmt.Errorf("not valid UTF-8 (at byte %d)", invalidAt(line))
	}
	if t := bytes.TrimSpace(line); t[0] != '{' {
		return nil, errors.New("want a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	a := &runnel.Article{Source: path}
	var slug, date, lang string
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"slug", &slug},
		{"title", &a.Title},
		{"date", &date},
		{"tags", &a.Tags},
		{"description", &a.Description},
		{"keywords", &a.Keywords},
		{"section", &a.Section},
		{"lang", &lang},
		{"body", &a.Body},
	} {
		v, ok := raw[f.name]
		if !ok {
			continue
		}
		var err error
		switch dst := f.dst.(type) {
		case *[]string:
			*dst, err = jsonList(v)
		case *string:
			*dst, err = jsonString(v, f.name == "section")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	slug = strings.TrimSpace(slug)
	a.Title = strings.TrimSpace(a.Title)
	a.Description = strings.TrimSpace(a.Description)
	a.Section = strings.TrimSpace(a.Section)
	a.Body = trimBody(normalizeNewlines(a.Body))
	if len(a.Body) > lim.MaxBytes {
		return nil, &LimitError{What: "the body", Actual: len(a.Body), Limit: lim.MaxBytes, Unit: "bytes"}
	}
	var err error
	if a.Date, err = parseDate(date); err != nil {
		return nil, fmt.Errorf("date: %w", err)
	}
	if a.Lang, err = runnel.ParseLang(lang); err != nil {
		return nil, fmt.Errorf("lang: %w", err)
	}
	switch {
	case slug != "":
		if a.Slug = slugify(slug, true); a.Slug == "" {
			return nil, fmt.Errorf("slug: %q has no usable characters (a-z, 0-9, -, _, ., /)", slug)
		}
	case a.Title != "":
		if a.Slug = slugify(a.Title, false); a.Slug == "" {
			return nil, fmt.Errorf("no slug, and none can be made from the title %q", a.Title)
		}
	default:
		return nil, errors.New("no slug and no title")
	}
	doc, err := parseBody(a.Body, lim)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if a.Title == "" {
		a.Title = doc.title()
	}
	if a.Title == "" {
		a.Title = titleFromName(a.Slug)
	}
	a.Passages = doc.passages(a)
	return a, nil
}

// jsonString decodes a JSON string, trimmed (the body is kept as it is);
// null is "". If number is set a number is taken as written.
func jsonString(v json.RawMessage, number bool) (string, error) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return "", err
	}
	switch x := x.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case float64:
		if number {
			return string(bytes.TrimSpace(v)), nil
		}
	}
	if number {
		return "", errors.New("want a string or a number")
	}
	return "", errors.New("want a string")
}

// jsonList decodes a JSON list of strings or one comma-separated string,
// cleaned by cleanList.
func jsonList(v json.RawMessage) ([]string, error) {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return nil, err
	}
	switch x := x.(type) {
	case nil:
		return nil, nil
	case string:
		return cleanList(strings.Split(x, ",")), nil
	case []any:
		items := make([]string, 0, len(x))
		for _, it := range x {
			switch it := it.(type) {
			case nil:
			case string:
				items = append(items, it)
			default:
				return nil, errors.New("want a list of strings or a comma-separated string")
			}
		}
		return cleanList(items), nil
	}
	return nil, errors.New("want a list of strings or a comma-separated string")
}
