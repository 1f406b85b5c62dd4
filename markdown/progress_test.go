package markdown

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestImportProgressTerminal imports 250 files that take 30 ms each on a
// terminal: the line is redrawn in place ("\r", erase to the end), no
// more than every 100 ms, with the count, the rate and the time left; a
// problem is written on a line of its own, and the import ends with the
// last state of the line and a newline.
func TestImportProgressTerminal(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"n/bad.md": ""}
	for i := range 249 {
		files[fmt.Sprintf("n/%03d.md", i)] = fmt.Sprintf("# Note %d\n\nText %d.\n", i, i)
	}
	writeFiles(t, dir, files)

	var progress bytes.Buffer
	now := time.Unix(0, 0)
	im := &Importer{Store: newMemStore(), Progress: &progress, Terminal: true, Now: func() time.Time {
		now = now.Add(30 * time.Millisecond)
		return now
	}}
	mustImport(t, im, dir)
	out := progress.String()

	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 2 {
		t.Fatalf("progress %q: want two lines, the problem's and the last, each ending in a newline", out)
	}
	draws := strings.Split(out, "\r\x1b[K")
	if draws[0] != "" {
		t.Errorf("progress starts with %q, want every line drawn after \\r and erase", draws[0])
	}
	draws = draws[1:]
	// 251 clock reads of 30 ms: about 7.5 s, so at most 76 redraws of the line,
	// one erase before the problem and the final line.
	if n := len(draws); n < 20 || n > 78 {
		t.Errorf("%d draws, want one about every 100 ms of the 7.5 s", n)
	}
	if first := draws[0]; first != "imported 1/250 files  0%" {
		t.Errorf("first draw %q, want the count at once", first)
	}
	line := regexp.MustCompile(`^imported (\d+)/250 files  \d+%  [\d.]+ files/s  ETA [\dms.]+$`)
	withETA := 0
	for _, d := range draws[1 : len(draws)-1] {
		if strings.Contains(d, "bad.md: ") {
			continue // the problem
		}
		if !line.MatchString(d) {
			t.Errorf("draw %q, want the count, percent, rate and ETA", d)
			continue
		}
		withETA++
	}
	if withETA < 10 {
		t.Errorf("%d draws with an ETA, want most", withETA)
	}
	if !strings.Contains(out, "\r\x1b[K"+filepath.Join(dir, "n", "bad.md")+": file is empty\n") {
		t.Errorf("the problem is not on a line of its own after erasing the bar:\n%q", out)
	}
	last := draws[len(draws)-1]
	if ok, _ := regexp.MatchString(`^imported 250/250 files in 7\.5s  33 files/s\n$`, last); !ok {
		t.Errorf("last draw %q, want the total, the time taken and the rate, and a newline", last)
	}
	// Files every 30 ms: 33 files/s, and the 149 files left after 101 in 4.5 s.
	if !strings.Contains(out, "\r\x1b[Kimported 101/250 files  40%  33 files/s  ETA 4.5s\r") {
		t.Errorf("progress lacks the line at 100 files with its ETA:\n%q", out)
	}

	t.Run("cut to the width", func(t *testing.T) {
		var narrow bytes.Buffer
		now := time.Unix(0, 0)
		im := &Importer{Store: newMemStore(), Progress: &narrow, Terminal: true, Width: 20, Now: func() time.Time {
			now = now.Add(30 * time.Millisecond)
			return now
		}}
		mustImport(t, im, dir)
		for _, d := range strings.Split(narrow.String(), "\r\x1b[K") {
			if d = strings.TrimSuffix(d, "\n"); len(d) > 19 && !strings.Contains(d, "bad.md") {
				t.Errorf("draw %q is wider than 19 columns", d)
			}
		}
	})

	t.Run("not a terminal", func(t *testing.T) {
		var plain bytes.Buffer
		now := time.Unix(0, 0)
		im := &Importer{Store: newMemStore(), Progress: &plain, Now: func() time.Time { return now }}
		mustImport(t, im, dir)
		if got := plain.String(); strings.Contains(got, "\r") || strings.Contains(got, "\x1b") ||
			!strings.HasPrefix(got, "imported 100/250 files\nimported 200/250 files\n") {
			t.Errorf("progress = %q, want plain lines every 100 files", got)
		}
	})
}
