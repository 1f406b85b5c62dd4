package sqlite

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTempDatabasesOfDeadProcessesAreRemoved(t *testing.T) {
	root := t.TempDir()
	t.Setenv("TMPDIR", root)
	old := time.Now().Add(-time.Hour)
	mkdir := func(name string, lock bool, mtime time.Time) string {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "runnel.db"), []byte("x"), 0o600)
		if lock {
			os.WriteFile(filepath.Join(dir, lockName), nil, 0o600)
		}
		os.Chtimes(dir, mtime, mtime)
		return dir
	}
	dead := mkdir(tempPrefix+"dead", true, old)          // its maker was killed
	young := mkdir(tempPrefix+"young", true, time.Now()) // its maker may be about to lock it
	foreign := mkdir(tempPrefix+"nolock", false, old)    // not made by OpenTemp
	other := mkdir("someone-else", true, old)

	// A live store's directory, locked by this process.
	live, closeLive, err := OpenTemp(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	liveDir := filepath.Dir(live.path)
	os.Chtimes(liveDir, old, old)

	// The next OpenTemp sweeps.
	_, closeNext, err := OpenTemp(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer closeNext()
	for dir, want := range map[string]bool{dead: false, young: true, foreign: true, other: true, liveDir: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	closeLive()
	if _, err := os.Stat(liveDir); !os.IsNotExist(err) {
		t.Errorf("closed store's directory: %v", err)
	}
}
