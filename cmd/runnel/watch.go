package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/sqlite"
)

// watch imports paths into store again, pruning what is gone, whenever a
// file under them is added, changed or removed, until ctx ends. It looks
// every interval: a walk that reads no file, only names, sizes and times,
// so a quiet collection costs a stat a file an interval.
func watch(ctx context.Context, store *sqlite.Store, paths []string, interval time.Duration, logger *slog.Logger) {
	seen := stampFiles(paths)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := stampFiles(paths)
		if sameFiles(seen, now) {
			continue
		}
		seen = now
		im := &markdown.Importer{Store: store, Prune: true, Progress: io.Discard}
		sum, err := im.Import(ctx, paths...)
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("watch: import", "err", err)
			}
			continue
		}
		level := slog.LevelInfo
		if sum.Failed > 0 {
			level = slog.LevelWarn
		}
		logger.Log(ctx, level, "watch: imported", "summary", sum.String())
		for _, p := range sum.Problems {
			logger.Warn("watch: not imported", "problem", fmt.Sprint(p))
		}
	}
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	size int64
	mod  time.Time
}

// stampFiles returns the stamps of the files under paths.
func stampFiles(paths []string) map[string]fileStamp {
	out := map[string]fileStamp{}
	for _, root := range paths {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				out[path] = fileStamp{fi.Size(), fi.ModTime()}
			}
			return nil
		})
		if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
			out[root] = fileStamp{fi.Size(), fi.ModTime()}
		}
	}
	return out
}

func sameFiles(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.mod.Equal(v.mod) || w.size != v.size {
			return false
		}
	}
	return true
}
