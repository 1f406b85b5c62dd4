package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ask and serve read the database import writes by default, and refuse a
// database that does not exist instead of answering from an empty one.
func TestDefaultDatabase(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	articles := t.TempDir()
	writeFiles(t, articles, map[string]string{
		"kites.md": "---\ntitle: Flying kites\n---\nA kite flies when wind pushes against its sail and the line holds it at an angle.\n",
	})

	// Nothing imported: the embedded articles.
	code, out, errOut := run(t, "ask", "--token-delay", "0", "how does a kite fly?")
	if code != 0 || strings.Contains(out, "Flying kites") {
		t.Fatalf("ask before import = %d: %q %q; want an answer from the embedded articles", code, out, errOut)
	}

	// A typo is an error, and makes no file.
	for _, cmd := range [][]string{{"ask", "--db", "typo.db", "what is sse"}, {"serve", "--addr", "127.0.0.1:0", "--db", "typo.db"}} {
		code, _, errOut := run(t, cmd...)
		if code != 1 || !strings.Contains(errOut, "no database at typo.db") || !strings.Contains(errOut, "runnel import") {
			t.Errorf("%s --db typo.db = %d, %q; want 1 and how to make one", cmd[0], code, errOut)
		}
		if _, err := os.Stat(filepath.Join(work, "typo.db")); !os.IsNotExist(err) {
			t.Errorf("%s --db typo.db made the file", cmd[0])
		}
	}

	// import writes ./runnel.db; ask and serve then read it.
	if code, _, errOut := run(t, "import", articles); code != 0 {
		t.Fatalf("import = %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(work, defaultDB)); err != nil {
		t.Fatalf("import made no %s: %v", defaultDB, err)
	}
	code, out, errOut = run(t, "ask", "--token-delay", "0", "how does a kite fly?")
	if code != 0 || !strings.Contains(out, "kite") || !strings.Contains(errOut, "answering from runnel.db") {
		t.Errorf("ask after import = %d: %q %q; want the imported article, and a word on where it came from", code, out, errOut)
	}
	url := serve(t)
	if _, _, body := get(t, url+"/healthz"); !strings.Contains(body, `"articles":1`) {
		t.Errorf("serve after import: %s, want the 1 imported article", body)
	}
}

// An import that imports nothing into a database it created leaves no file
// behind; one into an existing database leaves it as it was.
func TestFailedImportLeavesNoDatabase(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{"broken.md": "---\ntitle: [unclosed\n---\nbody\n"})
	for _, args := range [][]string{{"import", bad}, {"import", "/does/not/exist"}, {"import", "--db", "notes.db", bad}} {
		code, out, _ := run(t, args...)
		if code != 1 {
			t.Errorf("%q = %d, want 1", args, code)
		}
		if args[1] != "/does/not/exist" && !strings.Contains(out, "nothing imported") {
			t.Errorf("%q printed %q", args, out)
		}
		for _, name := range []string{defaultDB, "notes.db", "notes.db-wal", "notes.db-shm", defaultDB + "-wal"} {
			if _, err := os.Stat(filepath.Join(work, name)); !os.IsNotExist(err) {
				t.Errorf("%q left %s behind", args, name)
			}
		}
	}
	good := t.TempDir()
	writeFiles(t, good, map[string]string{"a.md": "# A\n\nSome text about kites.\n"})
	if code, _, errOut := run(t, "import", good); code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	if code, _, _ := run(t, "import", bad); code != 1 {
		t.Errorf("a failed import into an existing database = %d", code)
	}
	if _, err := os.Stat(filepath.Join(work, defaultDB)); err != nil {
		t.Errorf("a failed import removed an existing database: %v", err)
	}
}
