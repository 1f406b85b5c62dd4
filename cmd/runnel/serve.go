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
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

func runServe(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c := newConfig("serve", env)
	var (
		sf       storeFlags
		ss       serverSettings
		addr     string
		shutdown time.Duration
	)
	sf.bind(c)
	ss.bind(c, "text", rhttp.DefaultMaxStreamDuration, memory.DefaultLinger)
	c.String(&addr, "addr", "RUNNEL_ADDR", "localhost:8080", "listen on `host:port`")
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
	logger, err := newLogger(stderr, ss.logFormat, ss.logLevel)
	if err != nil {
		return err
	}
	store, closeStore, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()

	srv, err := ss.server(store, logger)
	if err != nil {
		return err
	}
	srv.ShutdownTimeout = shutdown
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
