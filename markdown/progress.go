package markdown

import (
	"fmt"
	"io"
	"time"
)

// progress is the state of Import's progress report.
type progress struct {
	total int
	start time.Time
	last  time.Time // of the last report
	width int       // of the terminal; 0 if unknown
	done  int
	drawn bool // a progress line is on the terminal, without a newline
}

// progress reports that done files of the total have been imported: on a
// terminal by redrawing the line, at most every terminalEvery; elsewhere by
// a line every progressFiles files or progressEvery, never for the last
// file (the summary follows).
func (r *importRun) progress(done int) {
	r.bar.done = done
	if r.Progress == nil {
		return
	}
	now := r.now()
	if r.Terminal {
		if now.Sub(r.bar.last) >= terminalEvery || (!r.bar.drawn && done == 1) {
			r.bar.last = now
			r.draw(r.bar.line(now, false))
		}
		return
	}
	if done < r.bar.total && (done%progressFiles == 0 || now.Sub(r.bar.last) >= progressEvery) {
		r.printf("imported %d/%d files\n", done, r.bar.total)
		r.bar.last = now
	}
}

// endProgress leaves the last progress line on a terminal, with how long
// the import took, and ends it with a newline.
func (r *importRun) endProgress() {
	if r.Progress == nil || !r.Terminal || r.bar.total == 0 {
		return
	}
	r.draw(r.bar.line(r.now(), true))
	io.WriteString(r.Progress, "\n")
	r.bar.drawn = false
}

// draw replaces the terminal's current line with line.
func (r *importRun) draw(line string) {
	if w := r.bar.width; w > 1 && len(line) > w-1 {
		line = line[:w-1] // ASCII; one column spare so the cursor stays on the line
	}
	io.WriteString(r.Progress, "\r\x1b[K"+line)
	r.bar.drawn = true
}

// line is the progress line at now: "imported 300/1200 files  25%  48
// files/s  ETA 19s", or when the import is over "imported 1200/1200 files
// in 25s  48 files/s". The rate and the time left are shown once there is
// a rate to tell.
func (p *progress) line(now time.Time, over bool) string {
	s := fmt.Sprintf("imported %d/%d files", p.done, p.total)
	elapsed := now.Sub(p.start)
	if over {
		s += " in " + roundDuration(elapsed)
	} else {
		s += fmt.Sprintf("  %d%%", p.done*100/max(p.total, 1))
	}
	if elapsed < 50*time.Millisecond || p.done == 0 {
		return s
	}
	rate := float64(p.done) / elapsed.Seconds()
	s += "  " + formatRate(rate)
	if !over {
		left := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
		s += "  ETA " + roundDuration(left)
	}
	return s
}

// formatRate writes files a second with the digits that matter.
func formatRate(rate float64) string {
	if rate < 10 {
		return fmt.Sprintf("%.1f files/s", rate)
	}
	return fmt.Sprintf("%.0f files/s", rate)
}

// roundDuration writes d to the second ("0s", "19s", "2m5s"), or to the
// tenth under ten seconds ("1.3s").
func roundDuration(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
