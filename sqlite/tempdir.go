package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A temporary database lives in a directory of its own under os.TempDir,
// named tempPrefix*, that holds a lock file locked for as long as the
// process that made it lives. A process killed before it could remove its
// directory leaves it behind unlocked; the next OpenTemp removes it.
const (
	tempPrefix = "runnel-tmp-"
	lockName   = "lock"
	// A directory younger than this is left alone even when its lock is
	// free: its maker may not have locked it yet.
	tempGrace = 10 * time.Second
)

// OpenTemp opens a new database in a temporary directory. The returned
// function closes it and removes the directory; one a killed process left
// behind is removed by the next OpenTemp.
func OpenTemp(ctx context.Context) (*Store, func(), error) {
	sweepTemp(os.TempDir(), time.Now())
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open temporary database: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("sqlite: lock temporary database: %w", err)
	}
	s, err := Open(ctx, filepath.Join(dir, "runnel.db"))
	if err != nil {
		unlock()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() {
		s.Close()
		os.RemoveAll(dir)
		unlock()
	}, nil
}

// sweepTemp removes the temporary databases under root whose makers are
// gone. It does its best and reports nothing: a directory it cannot remove
// is left for the next time.
func sweepTemp(root string, now time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(root, tempPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || now.Sub(fi.ModTime()) < tempGrace {
			continue
		}
		if abandoned(dir) {
			os.RemoveAll(dir)
		}
	}
}
