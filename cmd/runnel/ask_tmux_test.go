package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// These tests run "runnel ask" in a real terminal, tmux, at a fixed size,
// and read the screen back with capture-pane. They are skipped where tmux
// is missing, unless RUNNEL_REQUIRE_TMUX=1 (CI) makes that a failure.

// tmux is a private tmux server (its own socket) with one session.
type tmux struct {
	t            *testing.T
	sock, target string // the server's socket, the session's name
}

// startTmux starts command (a sh script) in a new tmux session of width
// columns and returns it; the session and its server end with the test.
func startTmux(t *testing.T, width int, script string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("RUNNEL_REQUIRE_TMUX") == "1" {
			t.Fatal("tmux is not installed and RUNNEL_REQUIRE_TMUX=1 (bash scripts/ensure-tmux.sh)")
		}
		t.Skip("tmux is not installed")
	}
	// The server's socket lives in a directory of the test's (short: a
	// socket's path has a length limit), so nothing stays behind.
	dir, err := os.MkdirTemp("", "tmux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	name := fmt.Sprintf("runnel-test-%d", time.Now().UnixNano())
	tm := &tmux{t: t, sock: filepath.Join(dir, "s"), target: name}
	// "exec cat" keeps the pane, and what it shows, until the test is done.
	tm.run("new-session", "-d", "-s", name, "-x", fmt.Sprint(width), "-y", "50",
		"sh", "-c", script+`; echo "exit=$?"; exec cat`)
	t.Cleanup(func() {
		exec.Command("tmux", "-S", tm.sock, "kill-session", "-t", tm.target).Run()
		exec.Command("tmux", "-S", tm.sock, "kill-server").Run()
	})
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// capture returns the pane's text, with its history; flags such as -J
// (join the lines the terminal wrapped) and -e (keep the escapes) add.
func (tm *tmux) capture(flags ...string) string {
	tm.t.Helper()
	return tm.run(append([]string{"capture-pane", "-p", "-S", "-", "-t", tm.target}, flags...)...)
}

// waitFor polls the screen until it shows s, for at most 30 seconds.
func (tm *tmux) waitFor(s string) string {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		screen := tm.capture()
		if strings.Contains(screen, s) {
			return screen
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the screen never showed %q:\n%s", s, screen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runnelScript returns a sh command that runs this test binary as the
// runnel command with args.
func runnelScript(t *testing.T, env string, args ...string) string {
	bin, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd := []string{env, "RUNNEL_TEST_MAIN=1", shQuote(bin)}
	for _, a := range args {
		cmd = append(cmd, shQuote(a))
	}
	return strings.Join(cmd, " ")
}

func TestAskInTmux(t *testing.T) {
	question := "how do proxies break streaming?"
	_, piped, _ := run(t, "ask", "--token-delay", "0", question)
	want := strings.Fields(piped)
	for _, width := range []int{60, 100} {
		for _, noColor := range []bool{false, true} {
			env := "unset NO_COLOR;"
			if noColor {
				env = "NO_COLOR=1"
			}
			t.Run(fmt.Sprintf("%d columns %s", width, env), func(t *testing.T) {
				tm := startTmux(t, width, runnelScript(t, env, "ask", "--token-delay", "0", question))
				tm.waitFor("exit=")
				joined := tm.capture("-J")
				text, status, _ := strings.Cut(joined, "exit=")
				if !strings.HasPrefix(status, "0\n") {
					t.Fatalf("exit=%s\n%s", status, joined)
				}
				// -J joins what the terminal wrapped: a line over the width is
				// one that runnel did not wrap.
				_, answer, _ := strings.Cut(text, "\n\n")
				for line := range strings.Lines(answer) {
					if n := utf8.RuneCountInString(strings.TrimRight(line, "\n")); n > width {
						t.Errorf("a line of %d columns:\n%s", n, line)
					}
				}
				// No word broken across lines ("produ|ced"): the screen holds the
				// words of the answer written to a pipe, in order.
				if got := strings.Fields(tm.capture()); !slices.Equal(got[:len(got)-1], want) {
					t.Errorf("the words on the screen differ from the answer's:\n%s\nwant\n%s", tm.capture(), piped)
				}
				colored := strings.Contains(tm.capture("-e"), "\x1b[")
				if colored == noColor {
					t.Errorf("escape sequences on the screen: %v, with %s", colored, env)
				}
			})
		}
	}
}

func TestAskCtrlCInTmux(t *testing.T) {
	// The shell survives the Ctrl-C (its trap) to print runnel's status.
	script := "trap : INT; " + runnelScript(t, "", "ask", "--token-delay", "200ms", "what is websocket?")
	tm := startTmux(t, 80, script)
	tm.waitFor("WebSocket is")
	tm.run("send-keys", "-t", tm.target, "C-c")
	screen := tm.waitFor("exit=")
	if !strings.Contains(screen, "exit=130\n") || strings.Contains(screen, "context canceled") || strings.Contains(screen, "runnel ask:") {
		t.Errorf("after Ctrl-C the screen shows:\n%s\nwant exit=130 and no error", screen)
	}
	if strings.Contains(screen, "WebSocket is one ordered, reliable stream") {
		t.Errorf("the answer ran to its end; Ctrl-C came too late to test anything:\n%s", screen)
	}
}
