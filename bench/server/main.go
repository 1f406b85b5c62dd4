// Command server is runnel's load-test server: the real HTTP server, SQLite
// store, run logs and answer pipeline, wired as `runnel serve` wires them,
// with one difference: the generator is paced (bench/internal/paced). It
// emits -tokens tokens -interval apart, each token's text the time it was
// emitted ("t=<unix ns> "), so that a load tool can measure each token's
// latency end to end while the search, the events before the tokens, the
// run logs and the streaming are runnel's own.
//
//	go run ./bench/server -db /tmp/big.db -addr 127.0.0.1:18090 -tokens 200 -interval 10ms
//
// With no -db it answers from the embedded articles, in a temporary
// database removed on exit, as `runnel serve` does. It serves until SIGINT
// or SIGTERM, then shuts down as runnel does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/bench/internal/paced"
	"github.com/runnel/runnel/corpus"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/sqlite"
	"github.com/runnel/runnel/web"
)

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:18090", "listen on `host:port`")
		db       = flag.String("db", "", "runnel SQLite database `path`; empty means a temporary database of the embedded articles")
		tokens   = flag.Int("tokens", 200, "tokens in every answer")
		interval = flag.Duration("interval", 10*time.Millisecond, "pause between tokens; 0 for none")
		logLevel = flag.String("log-level", "warn", "log level: debug, info, warn or error")
		debug    = flag.String("pprof", "", "serve net/http/pprof on `host:port` (a listener of its own), for profiles under load")
		park     = flag.Duration("park-after", 0, "park streams open this long, as serve's --park-after; 0 for the server's default")
		parkIdle = flag.Duration("park-idle", rhttp.DefaultParkIdle, "as serve's --park-idle: park a stream sooner once it has waited this long with nothing to write; 0 for never")
		hold     = flag.Duration("write-hold", rhttp.DefaultWriteHold, "as serve's --write-hold: while the CPU is saturated, a token may wait this long to share a write; 0 for never")
		memRate  = flag.Int("memprofilerate", 0, "record one heap profile sample per this many bytes allocated (runtime.MemProfileRate); 0 for the runtime's default. Smaller is finer and slower")
	)
	flag.Parse()
	if flag.NArg() > 0 || *tokens < 0 || *interval < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}
	if *debug != "" {
		go func() {
			// The default mux carries net/http/pprof's handlers.
			if err := http.ListenAndServe(*debug, nil); err != nil {
				fmt.Fprintln(os.Stderr, "bench/server: pprof:", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *hold <= 0 {
		*hold = -1 // Server.WriteHold: negative is never
	}
	if *parkIdle <= 0 {
		*parkIdle = -1 // Server.ParkIdle: negative is never
	}
	if err := run(ctx, *addr, *db, *logLevel, *park, *parkIdle, *hold, paced.Generator{Tokens: *tokens, Interval: *interval}); err != nil {
		fmt.Fprintln(os.Stderr, "bench/server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, db, logLevel string, parkAfter, parkIdle, writeHold time.Duration, gen runnel.Generator) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	store, closeStore, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer closeStore()

	srv := newServer(store, logger, gen)
	srv.ParkAfter = parkAfter
	srv.ParkIdle = parkIdle
	srv.WriteHold = writeHold
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	_, total, _ := store.List(ctx, runnel.ListOptions{Limit: 1})
	fmt.Printf("bench/server: serving %d articles on http://%s (pid %d)\n", total, ln.Addr(), os.Getpid())
	return srv.Run(ctx, ln)
}

// newServer returns the server as cmd/runnel's serverSettings.server
// builds it, with serve's defaults, and gen instead of the extractive
// generator.
func newServer(store *sqlite.Store, logger *slog.Logger, gen runnel.Generator) *rhttp.Server {
	return &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: gen},
		Store:    store,
		Runs: memory.New(memory.Options{
			Linger:    memory.DefaultLinger,
			Retention: memory.DefaultRetention,
			MaxBytes:  memory.DefaultMaxBytes,
			MaxRuns:   memory.DefaultMaxRuns,
		}),
		Pages:             web.Handler(store),
		Logger:            logger,
		Version:           "bench",
		MaxQuestion:       runnel.DefaultMaxQuestion,
		PingInterval:      rhttp.DefaultPingInterval,
		WriteTimeout:      rhttp.DefaultWriteTimeout,
		MaxStreamDuration: rhttp.DefaultMaxStreamDuration,
		ShutdownTimeout:   rhttp.DefaultShutdownTimeout,
	}
}

// openStore opens db, or, when db is empty, a temporary database of the
// embedded articles that the returned function removes: what `runnel
// serve` does with no -db and no -articles.
func openStore(ctx context.Context, db string) (*sqlite.Store, func(), error) {
	tmp := db == ""
	var store *sqlite.Store
	var closeFn func()
	var err error
	if tmp {
		store, closeFn, err = sqlite.OpenTemp(ctx)
	} else {
		store, err = sqlite.Open(ctx, db)
		closeFn = func() { store.Close() }
	}
	if err != nil {
		return nil, nil, err
	}
	if tmp {
		if _, err := markdown.PutFS(ctx, store, corpus.FS()); err != nil {
			closeFn()
			return nil, nil, fmt.Errorf("load embedded articles: %w", err)
		}
	}
	return store, closeFn, nil
}
