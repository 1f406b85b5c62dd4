package main

import (
	"log/slog"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/extractive"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/sqlite"
	"github.com/runnel/runnel/web"
)

// genSettings choose and configure the generator; serve, ask and Lambda
// read them from the same flags and RUNNEL_* variables.
type genSettings struct {
	tokenDelay time.Duration
}

func (g *genSettings) bind(c *config) {
	c.Duration(&g.tokenDelay, "token-delay", "RUNNEL_TOKEN_DELAY", 0,
		"pause between the extractive generator's tokens, to watch an offline answer grow (e.g. 30ms)")
}

// generator returns the generator the settings describe.
func (g *genSettings) generator() (runnel.Generator, error) {
	return extractive.New(extractive.Options{Delay: g.tokenDelay}), nil
}

// serverSettings are the server's settings that serve and Lambda read from
// the same RUNNEL_* variables (serve also from flags).
type serverSettings struct {
	gen                        genSettings
	logFormat, logLevel        string
	maxQuestion                int
	ping, writeTimeout, maxDur time.Duration
}

func (ss *serverSettings) bind(c *config, logFormat string, maxDur time.Duration) {
	ss.gen.bind(c)
	c.String(&ss.logFormat, "log-format", "RUNNEL_LOG_FORMAT", logFormat, "log format: text or json")
	c.String(&ss.logLevel, "log-level", "RUNNEL_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	c.Int(&ss.maxQuestion, "max-question", "RUNNEL_MAX_QUESTION", runnel.DefaultMaxQuestion, "longest question accepted, in `bytes`")
	c.Duration(&ss.ping, "ping-interval", "RUNNEL_PING_INTERVAL", rhttp.DefaultPingInterval, "send a ping after this much silence in a stream")
	c.Duration(&ss.writeTimeout, "write-timeout", "RUNNEL_WRITE_TIMEOUT", rhttp.DefaultWriteTimeout, "drop a client that takes longer than this to accept one write")
	c.Duration(&ss.maxDur, "max-stream-duration", "RUNNEL_MAX_STREAM_DURATION", maxDur, "end a stream with an error event after this long")
}

// server returns the HTTP server answering from store, with the web pages.
func (ss *serverSettings) server(store *sqlite.Store, logger *slog.Logger) (*rhttp.Server, error) {
	gen, err := ss.gen.generator()
	if err != nil {
		return nil, err
	}
	return &rhttp.Server{
		Answerer:          &runnel.Answerer{Searcher: store, Generator: gen},
		Store:             store,
		Pages:             web.Handler(store),
		Logger:            logger,
		Version:           version(),
		MaxQuestion:       ss.maxQuestion,
		PingInterval:      ss.ping,
		WriteTimeout:      ss.writeTimeout,
		MaxStreamDuration: ss.maxDur,
	}, nil
}
