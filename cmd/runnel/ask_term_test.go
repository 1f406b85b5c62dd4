package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// fakeTTY is a terminal of a given width, for tests that need no real one.
type fakeTTY struct {
	bytes.Buffer
	width int
}

func (f *fakeTTY) TerminalWidth() (int, bool) { return f.width, true }

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// plain removes the SGR sequences from s.
func plain(s string) string { return sgr.ReplaceAllString(s, "") }

// wrapAll writes text to a wrapper in pieces of n bytes and returns what
// it wrote.
func wrapAll(t terminal, text string, n int) string {
	var b strings.Builder
	w := newWrapper(&b, t)
	for i := 0; i < len(text); i += n {
		w.Write([]byte(text[i:min(i+n, len(text))]))
	}
	w.Flush()
	return b.String()
}

func TestWrapper(t *testing.T) {
	tests := []struct {
		name  string
		width int
		color bool
		in    string
		want  string
	}{
		{"short", 20, false, "one two", "one two"},
		{"breaks before the word that crosses", 12, false, "the quick brown fox jumps", "the quick\nbrown fox\njumps"},
		{"a line of exactly the width", 9, false, "the quick brown", "the quick\nbrown"},
		{"keeps newlines and blank lines", 10, false, "one two\n\nthree four five", "one two\n\nthree four\nfive"},
		{"keeps indentation", 10, false, "  - one two three", "  - one\ntwo three"},
		{"code fences as they are", 10, false, "a b\n```\nx := aVeryLongIdentifier + another\n```\nc d e f g h", "a b\n```\nx := aVeryLongIdentifier + another\n```\nc d e f g\nh"},
		{"table rows as they are", 10, false, "| column one | column two |\nnext words here", "| column one | column two |\nnext words\nhere"},
		{"a word longer than a line", 5, false, "ab abcdefghij", "ab\nabcde\nfghij"},
		{"a word too long after the indentation", 4, false, "   word", "   \nword"},
		{"wide characters take two columns", 6, false, "日本 語の 文", "日本\n語の\n文"},
		{"bold without the markers", 14, true, "a **strong** point", "a \x1b[1mstrong\x1b[22m point"},
		{"bold markers take no columns", 10, true, "**abcdefgh** x", "\x1b[1mabcdefgh\x1b[22m x"},
		{"markers stay without colour", 40, false, "a **strong** point", "a **strong** point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Any split of the text into tokens gives the same output.
			for n := 1; n <= len(tt.in); n++ {
				if got := wrapAll(terminal{width: tt.width, color: tt.color}, tt.in, n); got != tt.want {
					t.Fatalf("wrap(%q, %d) in pieces of %d = %q, want %q", tt.in, tt.width, n, got, tt.want)
				}
			}
		})
	}
}

func FuzzWrapper(f *testing.F) {
	f.Add("The quick brown fox jumps over the lazy dog.\n\n```\ncode line\n```\nmore", 3, 20)
	f.Fuzz(func(t *testing.T, text string, n, width int) {
		if n < 1 || width < 2 || width > 200 || !utf8.ValidString(text) || strings.ContainsAny(text, "\t\r`~|*") {
			t.Skip()
		}
		got := wrapAll(terminal{width: width}, text, n)
		if !slices.Equal(strings.Fields(got), strings.Fields(text)) && !longWord(text, width) {
			t.Errorf("words changed: %q -> %q", text, got)
		}
		for line := range strings.Lines(got) {
			line = strings.TrimRight(line, "\n")
			if c := cols([]byte(line)); c > width && strings.Contains(strings.TrimSpace(line), " ") {
				t.Errorf("line %q is %d columns, over %d", line, c, width)
			}
		}
	})
}

func longWord(text string, width int) bool {
	for _, w := range strings.Fields(text) {
		if cols([]byte(w)) > width {
			return true
		}
	}
	return false
}

func TestAskTerminal(t *testing.T) {
	question := "what is websocket?"
	_, piped, _ := run(t, "ask", "--token-delay", "0", question)
	if strings.Contains(piped, "\x1b") {
		t.Errorf("ask to a pipe wrote escape sequences:\n%q", piped)
	}
	for _, width := range []int{40, 72} {
		tty := &fakeTTY{width: width}
		var stderr bytes.Buffer
		err := Run(t.Context(), []string{"ask", "--token-delay", "0", question}, nil, tty, &stderr)
		if err != nil {
			t.Fatalf("ask: %v: %s", err, stderr.String())
		}
		out := tty.String()
		if !strings.Contains(out, "\x1b[1mSources:") || !strings.Contains(out, "\x1b[2m") {
			t.Errorf("width %d: no bold or dim:\n%q", width, out)
		}
		text := plain(out)
		_, answer, _ := strings.Cut(text, "\n\n")
		_, pipedAnswer, _ := strings.Cut(piped, "\n\n")
		for line := range strings.Lines(answer) {
			if n := utf8.RuneCountInString(strings.TrimRight(line, "\n")); n > width {
				t.Errorf("width %d: line of %d: %q", width, n, line)
			}
		}
		if !slices.Equal(strings.Fields(answer), strings.Fields(pipedAnswer)) {
			t.Errorf("width %d: the words differ from the piped answer:\n%s\nwant\n%s", width, answer, pipedAnswer)
		}
		if !strings.Contains(text, "  [1] WebSocket — websocket\n") {
			t.Errorf("width %d: no numbered reference to the embedded article:\n%s", width, text)
		}
	}

	t.Setenv("NO_COLOR", "1")
	tty := &fakeTTY{width: 40}
	if err := Run(t.Context(), []string{"ask", "--token-delay", "0", question}, nil, tty, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if out := tty.String(); strings.Contains(out, "\x1b") || !strings.Contains(out, "[1] WebSocket") {
		t.Errorf("NO_COLOR=1: %q", out)
	}
}

func TestAskRemoteWithoutScheme(t *testing.T) {
	url := serve(t)
	code, out, errOut := run(t, "ask", "--server", strings.TrimPrefix(url, "http://"), "what is chunked transfer encoding")
	if code != 0 || !strings.Contains(out, "[1] ") || !strings.Contains(out, " — "+url+"/articles/chunked-transfer-encoding\n") {
		t.Errorf("ask --server host:port = %d, stderr %q\n%s", code, errOut, out)
	}
}

func TestErrorsHaveOnePrefix(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ask", "--server", "127.0.0.1:1", "q"}, 1, "runnel ask: cannot reach http://127.0.0.1:1: connection refused\n"},
		{[]string{"ask", "--server", "http://127.0.0.1:1/", "q"}, 1, "runnel ask: cannot reach http://127.0.0.1:1: connection refused\n"},
		{[]string{"ask", "?!"}, 1, "runnel ask: invalid: "},
		{[]string{"import", "--db", "/nonexistent/dir/x.db", "."}, 1, "runnel import: "},
		{[]string{"serve", "--addr", "256.0.0.1:0"}, 1, "runnel serve: listen tcp"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := run(t, tt.args...)
			if code != tt.code || !strings.HasPrefix(errOut, tt.want) || strings.Count(errOut, "runnel") != 1 {
				t.Errorf("runnel %q = %d, stderr %q; want %d and one prefix, %q", tt.args, code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"ask", "--token-delay", "30", "q"}, nil, 2,
			"runnel ask: --token-delay 30: not a duration; write it with a unit, such as 30ms or 2s\n"},
		{[]string{"ask", "--token-delay=soon", "q"}, nil, 2, "runnel ask: --token-delay soon: not a duration; write a number and a unit"},
		{[]string{"ask", "--max-question", "abc", "q"}, nil, 2, "runnel ask: --max-question abc: not a whole number\n"},
		{[]string{"ask", "--json=maybe", "q"}, nil, 2, "runnel ask: --json=maybe: not true or false\n"},
		{[]string{"serve", "--nope"}, nil, 2, "runnel serve: flag provided but not defined: -nope\n"},
		{[]string{"ask", "q"}, []string{"RUNNEL_TOKEN_DELAY", "30"}, 1,
			"runnel ask: RUNNEL_TOKEN_DELAY=\"30\": not a duration; write it with a unit, such as 30ms or 2s\n"},
		{[]string{"serve"}, []string{"RUNNEL_PING_INTERVAL", "soon"}, 1, "runnel serve: RUNNEL_PING_INTERVAL=\"soon\": not a duration"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.env, tt.args...), " "), func(t *testing.T) {
			if tt.env != nil {
				t.Setenv(tt.env[0], tt.env[1])
			}
			code, _, errOut := run(t, tt.args...)
			if code != tt.code || !strings.HasPrefix(errOut, tt.want) || strings.Contains(errOut, "Flags:") {
				t.Errorf("runnel %q = %d, stderr %q; want %d and %q without the whole usage", tt.args, code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestHelpHasExamples(t *testing.T) {
	if _, out, _ := run(t, "help"); !strings.Contains(out, "Examples:\n  runnel ") {
		t.Errorf("runnel help has no examples:\n%s", out)
	}
	for _, cmd := range []string{"serve", "ask", "import", "version"} {
		code, out, errOut := run(t, cmd, "-h")
		if code != 0 || !strings.Contains(out+errOut, "\nExamples:\n  runnel "+cmd) {
			t.Errorf("runnel %s -h = %d, no examples:\n%s", cmd, code, out+errOut)
		}
	}
}

// cancelOnAnswer cancels with cause once the answer has begun (the first
// write after the blank line that follows the sources).
type cancelOnAnswer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel func()
}

func (w *cancelOnAnswer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(w.buf.String(), "\n\n") {
		w.cancel()
	}
	return w.buf.Write(p)
}

func TestAskInterrupted(t *testing.T) {
	for _, remote := range []bool{false, true} {
		args := []string{"ask", "--token-delay", "20ms", "what is websocket?"}
		name := "local"
		if remote {
			args = append([]string{"ask", "--server", serve(t, "--token-delay", "20ms")}, args[1:]...)
			name = "remote"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(t.Context())
			stdout := &cancelOnAnswer{cancel: func() { cancel(interrupted{os.Interrupt}) }}
			var stderr bytes.Buffer
			err := Run(ctx, args, nil, stdout, &stderr)
			if code := exitCode(err, &stderr); code != 130 || stderr.Len() != 0 {
				t.Errorf("ask interrupted = %d, stderr %q; want 130 and nothing", code, stderr.String())
			}
			if out := stdout.buf.String(); strings.Contains(out, "canceled") || !strings.HasSuffix(out, "\n") {
				t.Errorf("ask interrupted printed %q", out)
			}
		})
	}
}

func TestServeInterruptedExitsZero(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, nil, pw, io.Discard)
		pw.Close()
	}()
	if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
		t.Fatalf("serve did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	cancel(interrupted{os.Interrupt})
	var stderr bytes.Buffer
	if code := exitCode(<-done, &stderr); code != 0 {
		t.Errorf("serve after SIGINT = %d, %s; want 0", code, stderr.String())
	}
}
