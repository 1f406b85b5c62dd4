package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/redis"
	"github.com/runnel/runnel/sqlite"
)

func runServe(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	c := newConfig("serve", env)
	var (
		sf       storeFlags
		ss       serverSettings
		addr     string
		metrics  string
		shutdown time.Duration
		watchOn  bool
		every    time.Duration
	)
	sf.bind(c)
	ss.bind(c, "text", rhttp.DefaultMaxStreamDuration, memory.DefaultLinger)
	c.String(&addr, "addr", "RUNNEL_ADDR", "localhost:8080", "listen on `host:port`")
	c.String(&metrics, "metrics-addr", "RUNNEL_METRICS_ADDR", "",
		"serve Prometheus metrics at /metrics on this `host:port` of their own; empty serves them at /metrics on -addr (behind the API keys, if any); off for none")
	c.Bool(&watchOn, "watch", "RUNNEL_WATCH", false, "import the -articles again whenever a file under them is added, changed or removed (removed ones are pruned)")
	c.Duration(&every, "watch-interval", "RUNNEL_WATCH_INTERVAL", 2*time.Second, "how often -watch looks for changes")
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
	if watchOn && (sf.articles == "" || every <= 0) {
		fmt.Fprintln(stderr, "runnel serve: --watch needs --articles (the files to watch) and a --watch-interval above 0")
		return errUsage
	}
	store, closeStore, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	if watchOn {
		wctx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watch(wctx, store, sf.paths(), every, logger)
		}()
		defer func() { stopWatch(); <-watched }() // before the store closes
	}

	srv, err := ss.server(store, logger)
	if err != nil {
		return err
	}
	srv.ShutdownTimeout = shutdown
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var metricsURL string
	if metrics != "off" {
		h, err := instrument(srv, store)
		if err != nil {
			ln.Close()
			return err
		}
		if metrics == "" {
			srv.MetricsHandler = h
		} else {
			mln, err := net.Listen("tcp", metrics)
			if err != nil {
				ln.Close()
				return fmt.Errorf("metrics: %w", err)
			}
			metricsURL = "http://" + mln.Addr().String() + "/metrics"
			defer serveMetrics(mln, h, logger)()
		}
	}
	_, total, _ := store.List(ctx, runnel.ListOptions{Limit: 1})
	logger.Info("serving", "addr", "http://"+ln.Addr().String(), "articles", total, "version", version())
	fmt.Fprintf(stdout, "runnel: serving %d articles on http://%s\n", total, ln.Addr())
	if metricsURL != "" {
		fmt.Fprintf(stdout, "runnel: metrics on %s\n", metricsURL)
	}
	err = srv.Run(ctx, ln)
	if ss.shared.closeRuns != nil {
		// The producers have ended; what they appended goes to Redis.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cerr := ss.shared.closeRuns(cctx); cerr != nil {
			logger.Warn("close redis", "err", cerr)
		}
	}
	return err
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

// instrument gives srv its metrics, with the Go runtime's, the process's
// and what the runs and the store hold, and returns the handler of the
// metrics page.
func instrument(srv *rhttp.Server, store *sqlite.Store) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	m, err := rhttp.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	srv.Metrics = m
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "runnel_articles", Help: "Articles in the store.",
		}, func() float64 {
			_, n, _ := store.List(context.Background(), runnel.ListOptions{Limit: 1})
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "runnel_build_info", Help: "Always 1; the version is a label.", ConstLabels: prometheus.Labels{"version": version()},
		}, func() float64 { return 1 }),
	}
	runs, ok := srv.Runs.(*memory.Runs)
	if fr, isShared := srv.Runs.(*fallbackRuns); isShared {
		runs, ok = fr.local.(*memory.Runs)
		if rs, isRedis := fr.shared.(*redis.Runs); isRedis {
			cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "runnel_runs_producing", Help: "Runs kept in Redis that this replica is producing.",
			}, func() float64 { return float64(rs.Stats().Producing) }))
		}
	}
	if ok {
		stat := func(f func(memory.Stats) float64) func() float64 {
			return func() float64 { return f(runs.Stats()) }
		}
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "runnel_runs_live", Help: "Runs still producing their answer."},
				stat(func(s memory.Stats) float64 { return float64(s.Live) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "runnel_runs_kept", Help: "Ended runs kept for readers to resume."},
				stat(func(s memory.Stats) float64 { return float64(s.Ended) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "runnel_runs_kept_bytes", Help: "The size of the ended runs kept."},
				stat(func(s memory.Stats) float64 { return float64(s.Bytes) })),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}), nil
}

// serveMetrics serves h at /metrics on ln until stop is called.
func serveMetrics(ln net.Listener, h http.Handler, logger *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	return func() { srv.Close() }
}
