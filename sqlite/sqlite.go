// Package sqlite implements runnel.Store on an embedded SQLite database,
// using the pure-Go driver modernc.org/sqlite so that runnel stays one static
// binary built with CGO_ENABLED=0.
//
// Passages are found by a full-text index in memory (index.go), built from
// the database when the store opens and kept in step with every write, and
// ranked with BM25, weighting a match in an article's title or tags above
// one in its body. The schema is created and upgraded by the SQL files in
// migrations/, embedded in the binary; the database records the version it
// is at in PRAGMA user_version.
//
// The database runs in WAL mode, so searches proceed while an import writes.
// Writes go through a pool of a single connection that starts its
// transactions with BEGIN IMMEDIATE: writers in this process queue in Go
// rather than fail with SQLITE_BUSY, and a writer in another process (an
// import while the server runs) is waited for up to the busy timeout.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/runnel/runnel"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var _ runnel.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeout is how long, in milliseconds, a statement waits for a lock
// another process holds before it fails with SQLITE_BUSY.
const busyTimeout = 5000

// Store is a runnel.Store in one SQLite file. It is safe for concurrent use.
type Store struct {
	path string
	read *sql.DB // query_only connections, as many as there are readers
	rw   *sql.DB // the single connection that writes

	ranking atomic.Pointer[Ranking] // nil means DefaultRanking
	stmts   stmtCache               // prepared read statements

	idx   atomic.Pointer[index] // the full-text index, in memory (index.go)
	turns chan struct{}         // a token for each search that may run at once (Search)

	searches  chan *searchJob // to an idle search goroutine (searchApart)
	searchers atomic.Int32    // search goroutines running
	closed    chan struct{}   // closed by Close: the search goroutines end
	syncMu    sync.Mutex      // held while the index changes: by a write, or applying the changes table
	writeMu   sync.Mutex      // held by a write from its transaction to its update of the index

	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating it if it does not exist, and
// brings its schema up to date. It fails if the database was created by a
// newer runnel, whose schema this one does not know.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s := &Store{path: path, turns: make(chan struct{}, runtime.GOMAXPROCS(0)), searches: make(chan *searchJob), closed: make(chan struct{})}

	// The pragmas go in the DSN because database/sql opens connections when
	// it likes: a pragma run once on Open would reach one connection only.
	common := []string{
		"busy_timeout(" + strconv.Itoa(busyTimeout) + ")",
		"foreign_keys(1)", // the cascades from articles to tags and passages rely on it
		"journal_mode(WAL)",
		"synchronous(NORMAL)", // in WAL mode: durable except on power loss, and no fsync per commit
	}
	s.rw, err = sql.Open("sqlite", dsn(abs, common, "_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.rw.SetMaxOpenConns(1)
	s.rw.SetMaxIdleConns(1)

	// The writer migrates (and so switches the file to WAL) before any
	// reader connects: a query_only reader could not do either.
	if err := s.migrate(ctx); err != nil {
		s.rw.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var mode string
	if err := s.rw.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.rw.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		// Without WAL, readers and the writer block each other; better to
		// say so now than to fail with SQLITE_BUSY under load.
		s.rw.Close()
		return nil, fmt.Errorf("sqlite: open %s: journal mode is %q, not wal (is the file on a network file system?)", path, mode)
	}

	s.read, err = sql.Open("sqlite", dsn(abs, append(common, "query_only(1)")))
	if err != nil {
		s.rw.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(readers)
	s.read.SetMaxIdleConns(readers)
	if err := s.read.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.buildIndex(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: index: %w", path, err)
	}
	return s, nil
}

// dsn returns the driver's name for the database file at the absolute path
// abs, with pragmas to run on every new connection and driver options given
// as key, value pairs. A file: URI escapes characters such as '?' and '#'
// that would otherwise end the path.
func dsn(abs string, pragmas []string, options ...string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	for i := 0; i+1 < len(options); i += 2 {
		q.Set(options[i], options[i+1])
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path // a Windows drive letter: file:///C:/...
	}
	return u.String()
}

// Close closes the database. It lets SQLite refresh its query planner
// statistics first, as SQLite advises applications do before closing.
// Closing again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	close(s.closed)
	var errs []error
	if s.rw != nil {
		if _, err := s.rw.Exec("PRAGMA optimize"); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.stmts.close())
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.rw != nil {
		errs = append(errs, s.rw.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.path, err)
	}
	return nil
}

// migration is one file of migrations/: the schema version it leads to and
// the SQL that gets there.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Their file names
// start with the version they lead to, 1, 2, 3 ... without gaps.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := filepath.Base(name)
		digits := base[:len(base)-len(strings.TrimLeft(base, "0123456789"))]
		v, err := strconv.Atoi(digits)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name does not start with a version number", base)
		}
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// migrate applies the migrations the database lacks, each in its own
// transaction together with the new user_version, so that a failed migration
// leaves the database at the previous version rather than half-way.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	for {
		done, err := s.migrateOne(ctx, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration the database lacks, and reports
// whether there was none. The version is read inside the (immediate)
// transaction, so two processes opening a new database at once cannot both
// apply the same migration.
func (s *Store) migrateOne(ctx context.Context, ms []migration) (done bool, err error) {
	tx, err := s.rw.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, err
	}
	switch {
	case version > len(ms):
		return false, fmt.Errorf("schema version %d is newer than the latest this program knows (%d): upgrade runnel", version, len(ms))
	case version == len(ms):
		return true, nil
	}
	m := ms[version]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	// PRAGMA takes no bound parameters; the version is an integer we made.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version)); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	return false, nil
}

// stmtCache keeps the statements that every search runs, prepared: in
// this SQLite, preparing a statement costs about a sixth of a search.
// database/sql prepares a cached statement again on each connection that
// runs it, once.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds the cache: the texts of search statements depend on the
// ranking, which SetRanking may change any number of times.
const maxStmts = 64

// query runs a read query, in tx if it is not nil, through a statement
// prepared once per Store, or unprepared when the cache is full.
func (s *Store) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	switch {
	case st == nil && tx == nil:
		return s.read.QueryContext(ctx, query, args...)
	case st == nil:
		return tx.QueryContext(ctx, query, args...)
	case tx == nil:
		return st.QueryContext(ctx, args...)
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// stmt returns the read statement for query, prepared once, or nil when
// the cache is full.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	if len(c.m) >= maxStmts {
		return nil, nil
	}
	st, err := s.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}
