package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportLimits imports a folder with articles over the limits through
// the command: each is reported with its path, the limit and its size, the
// others are imported, and the exit status is 1.
func TestImportLimits(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(t.TempDir(), "notes.db")
	writeFiles(t, dir, map[string]string{
		"ok.md":   "# Fine\n\nA small article.\n",
		"deep.md": "# Deep\n\n" + strings.Repeat("- ", 50) + "x\n",
		"big.md":  "# Big\n\n" + strings.Repeat("Two KiB and more. ", 120),
		"huge.md": "",
		"bomb.md": "---\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n---\nLaughs.\n",
		"rows.jsonl": `{"slug":"row","title":"Row","body":"` + strings.Repeat("Two KiB and more. ", 120) + `"}` + "\n" +
			`{"slug":"small","title":"Small","body":"Fits."}` + "\n",
	})
	if err := os.Truncate(filepath.Join(dir, "huge.md"), 1<<30); err != nil { // sparse: takes no disk
		t.Fatal(err)
	}
	runImport := func(env map[string]string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		err := runImport(t.Context(), append([]string{"--db", db}, args...), func(k string) string { return env[k] }, &out, &errb)
		return exitCode(err, &errb), out.String(), errb.String()
	}

	code, out, errOut := runImport(map[string]string{"RUNNEL_MAX_ARTICLE_KB": "2"}, dir)
	if code != 1 || !strings.Contains(out, "6 files: 2 added, 0 updated, 0 unchanged, 0 pruned, 5 failed") {
		t.Fatalf("import = %d, stdout %q, stderr %q; want status 1, 2 added and 5 failed", code, out, errOut)
	}
	for _, want := range []string{
		filepath.Join(dir, "deep.md") + ": line 3: lists and block quotes nested: 50 levels, over the limit of 32 levels",
		filepath.Join(dir, "big.md") + ": the file: 2167 bytes (2.1 KiB), over the limit of 2048 bytes (2.0 KiB)",
		filepath.Join(dir, "huge.md") + ": the file: 1073741824 bytes (1024.0 MiB), over the limit of 2048 bytes (2.0 KiB)",
		filepath.Join(dir, "bomb.md") + ": line 5: front matter aliases: more than 10000 values, over the limit of 10000 values",
		filepath.Join(dir, "rows.jsonl") + ":1: the body: 2160 bytes (2.1 KiB), over the limit of 2048 bytes (2.0 KiB)",
	} {
		if !strings.Contains(errOut, want+"\n") {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	// The flag overrides the environment: big.md and the long JSONL
	// record fit in 4 KiB.
	code, out, errOut = runImport(map[string]string{"RUNNEL_MAX_ARTICLE_KB": "2"}, "--max-article-kb", "4", dir)
	if code != 1 || !strings.Contains(out, "2 added, 0 updated, 2 unchanged, 0 pruned, 3 failed") {
		t.Errorf("import --max-article-kb 4 = %d, stdout %q, stderr %q; want big.md and row added", code, out, errOut)
	}

	for _, bad := range [][]string{{"--max-article-kb", "0", dir}, {"--max-article-kb", "-1", dir}} {
		if code, _, errOut := runImport(nil, bad...); code != 2 || !strings.Contains(errOut, "--max-article-kb") {
			t.Errorf("import %q = %d, %q; want status 2 naming the flag", bad, code, errOut)
		}
	}
	if code, _, errOut := runImport(map[string]string{"RUNNEL_MAX_ARTICLE_KB": "lots"}, dir); code != 1 || !strings.Contains(errOut, "RUNNEL_MAX_ARTICLE_KB") {
		t.Errorf("import with RUNNEL_MAX_ARTICLE_KB=lots = %d, %q; want it refused", code, errOut)
	}
}

// TestImportTerminal imports through the command into a terminal and into
// a pipe: on the terminal progress is drawn in place and left with a
// newline before the summary; in the pipe there is no control character.
// Gzipped pages import and the other files are counted in the summary.
func TestImportTerminal(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.md":     "# A\n\nText.\n",
		"logo.png": "\x89PNG",
		"notes":    "no extension",
	})
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte("# Run\n\nGzipped.\n"))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "run.md.gz"), zipped.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "2 files: 2 added, 0 updated, 0 unchanged, 0 pruned, 0 failed; 2 other files skipped (1 without extension, 1 .png)"

	var out bytes.Buffer
	tty := &fakeTTY{width: 80}
	err := runImport(t.Context(), []string{"--db", filepath.Join(t.TempDir(), "a.db"), dir}, func(string) string { return "" }, &out, tty)
	if err != nil || !strings.Contains(out.String(), want) {
		t.Fatalf("import = %v, stdout %q; want %q", err, out.String(), want)
	}
	if got := tty.String(); !strings.HasPrefix(got, "\r\x1b[Kimported 1/2 files") || !strings.HasSuffix(got, "\n") ||
		!strings.Contains(got, "\r\x1b[Kimported 2/2 files in ") {
		t.Errorf("stderr on a terminal = %q, want the line drawn in place and ended", got)
	}

	out.Reset()
	var pipe bytes.Buffer
	err = runImport(t.Context(), []string{"--db", filepath.Join(t.TempDir(), "b.db"), dir}, func(string) string { return "" }, &out, &pipe)
	if err != nil || !strings.Contains(out.String(), want) || strings.ContainsAny(pipe.String(), "\r\x1b") {
		t.Errorf("import into a pipe = %v, stdout %q, stderr %q; want the summary and no control characters", err, out.String(), pipe.String())
	}
}
