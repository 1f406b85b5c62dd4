package runnel_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/extractive"
)

// TestTableRowsAreNotQuoted asks, offline over the embedded articles, a
// question made of each table row's words, and checks that no answer
// quotes a row: a row is a listing, not a sentence ("Auto reconnect no
// yes, with Last-Event-ID no" is not prose).
func TestTableRowsAreNotQuoted(t *testing.T) {
	a := &runnel.Answerer{Searcher: corpusStore(t), Generator: extractive.New(extractive.Options{})}
	var rows [][]string
	err := fs.WalkDir(corpus.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
			return err
		}
		b, err := fs.ReadFile(corpus.FS(), path)
		if err != nil {
			return err
		}
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "|") || strings.Trim(line, "|:- ") == "" {
				continue
			}
			var cells []string
			for c := range strings.SplitSeq(strings.Trim(line, "|"), "|") {
				if c = strings.TrimSpace(c); c != "" {
					cells = append(cells, c)
				}
			}
			if len(strings.Fields(strings.Join(cells, " "))) >= 4 {
				rows = append(rows, cells)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("the embedded articles have no table rows of four words or more")
	}
	for _, cells := range rows {
		_, answer := ask(t, a, []runnel.Message{user(strings.Join(cells, " ") + "?")})
		// The row as the importer once wrote it (its cells run together),
		// and as it writes it now.
		for _, row := range []string{strings.Join(cells, " "), strings.Join(cells, " | ")} {
			if strings.Contains(answer, row) {
				t.Errorf("the answer to the words of the row %q quotes it:\n%s", cells, answer)
			}
		}
	}
	// The question the table answers best is answered from the prose.
	_, answer := ask(t, a, []runnel.Message{user("how does SSE reconnect?")})
	if !strings.HasPrefix(answer, "EventSource is the only one that reconnects by itself") {
		t.Errorf("how does SSE reconnect? answered:\n%s", answer)
	}
}
