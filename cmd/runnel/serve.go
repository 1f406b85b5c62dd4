package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/extractive"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/web"
)

func runServe(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c := newConfig("serve", env)
	var (
		sf                         storeFlags
		addr, logFormat, logLevel  string
		maxQuestion                int
		ping, writeTimeout, maxDur time.Duration
		shutdown                   time.Duration
	)
	sf.bind(c)
	c.String(&addr, "addr", "RUNNEL_ADDR", "localhost:8080", "listen on `host:port`")
	c.String(&logFormat, "log-format", "RUNNEL_LOG_FORMAT", "text", "log format: text or json")
	c.String(&logLevel, "log-level", "RUNNEL_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	c.Int(&maxQuestion, "max-question", "RUNNEL_MAX_QUESTION", runnel.DefaultMaxQuestion, "longest question accepted, in `bytes`")
	c.Duration(&ping, "ping-interval", "RUNNEL_PING_INTERVAL", rhttp.DefaultPingInterval, "send a ping after this much silence in a stream")
	c.Duration(&writeTimeout, "write-timeout", "RUNNEL_WRITE_TIMEOUT", rhttp.DefaultWriteTimeout, "drop a client that takes longer than this to accept one write")
	c.Duration(&maxDur, "max-stream-duration", "RUNNEL_MAX_STREAM_DURATION", rhttp.DefaultMaxStreamDuration, "end a stream with an error event after this long")
	c.Duration(&shutdown, "shutdown-timeout", "RUNNEL_SHUTDOWN_TIMEOUT", rhttp.DefaultShutdownTimeout, "on SIGTERM, wait this long for open streams")
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage: runnel serve [flags]\n\nServe the HTTP API. With no -db or -articles it answers from the embedded articles.\n\nFlags:\n")
		c.fs.PrintDefaults()
	}
	if err := parse(c.fs, args, stderr); err != nil {
		return err
	}
	if err := c.err(); err != nil {
		return err
	}
	if c.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "runnel serve: unexpected arguments %q\n", c.fs.Args())
		return errUsage
	}
	logger, err := newLogger(stderr, logFormat, logLevel)
	if err != nil {
		return err
	}
	store, closeStore, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()

	srv := &rhttp.Server{
		Answerer: &runnel.Answerer{
			Searcher:  store,
			Generator: extractive.New(extractive.Options{}),
		},
		Store:             store,
		Pages:             web.Handler(store),
		Logger:            logger,
		Version:           version(),
		MaxQuestion:       maxQuestion,
		PingInterval:      ping,
		WriteTimeout:      writeTimeout,
		MaxStreamDuration: maxDur,
		ShutdownTimeout:   shutdown,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	_, total, _ := store.List(ctx, runnel.ListOptions{Limit: 1})
	logger.Info("serving", "addr", "http://"+ln.Addr().String(), "articles", total, "version", version())
	fmt.Fprintf(stdout, "runnel: serving %d articles on http://%s\n", total, ln.Addr())
	return srv.Run(ctx, ln)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
