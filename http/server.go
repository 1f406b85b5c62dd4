// Package http serves runnel over HTTP and is its Go client.
//
// The server streams answers as protocol v1 (docs/protocol.md): NDJSON over
// chunked HTTP/1.1, one event a line, each flushed as soon as it exists.
// The client reads that stream back into runnel.Events.
package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// Defaults for Server's limits.
const (
	DefaultPingInterval      = 15 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultMaxStreamDuration = 5 * time.Minute
	DefaultMaxBody           = 64 << 10
	DefaultShutdownTimeout   = 10 * time.Second
)

// Server serves the runnel HTTP API.
type Server struct {
	Answerer *runnel.Answerer
	Store    runnel.Store
	// Runs keeps the runs' logs (memory.New for one server). Required.
	Runs    runnel.Runs
	Logger  *slog.Logger // nil logs nothing
	Version string

	// Pages serves the site for people: the page that asks at /, its files
	// under /static/, and the HTML of /articles, /articles/{slug}, /tags
	// and unknown paths for requests whose Accept header prefers text/html
	// (see pages.go). It sees those requests with their paths unchanged.
	// nil serves the API alone.
	Pages http.Handler

	// APIKeys, when there are any, are the keys a request must carry to
	// ask, follow or cancel an answer: Authorization: Bearer <key> (see
	// guard.authorized for the other ways). The pages, articles, tags and
	// /healthz stay public unless KeysForPages is set.
	APIKeys      []string
	KeysForPages bool
	// CORSOrigins are the origins ("https://app.example.com", or "*") of
	// pages elsewhere that may use the API from a browser. Without them a
	// browser may not read the API from another origin, nor POST or DELETE
	// to it.
	CORSOrigins []string
	Limits      Limits
	// Metrics, when set, records what the server does (NewMetrics);
	// MetricsHandler, when set, serves them at GET /metrics (behind the
	// API keys, when there are any).
	Metrics        *Metrics
	MetricsHandler http.Handler

	// ModelName is the model the OpenAI-compatible API (/v1, see
	// openaiapi.go) lists and answers as; default DefaultModelName.
	ModelName string

	MaxQuestion       int           // bytes; default runnel.DefaultMaxQuestion
	MaxBody           int64         // bytes of a POST body; default 64 KiB
	PingInterval      time.Duration // silence before a ping; default 15 s
	WriteTimeout      time.Duration // per write to a stream; default 10 s
	MaxStreamDuration time.Duration // whole stream; default 5 min
	ShutdownTimeout   time.Duration // grace for streams on shutdown; default 10 s
	// ParkAfter is how long a stream stays in net/http's goroutine before
	// it parks: its connection leaves net/http, and the stream goes on in
	// about 20 KB instead of 40 (park.go). Default DefaultParkAfter when Run
	// serves the streams, which gives each parked stream's connection back
	// to its http.Server at the end; never when only Handler does, unless
	// ParkAfter is set (a parked stream's connection then closes at its
	// end). Negative: never.
	ParkAfter time.Duration
	// ParkIdle parks a stream sooner than ParkAfter once it has waited
	// this long with nothing to write: a stream that waits for a slow
	// search or a model's next token gives up net/http's goroutine and
	// buffers while it waits, and one whose events flow (a burst, which
	// goes faster in net/http's goroutine) stays until ParkAfter. Default
	// DefaultParkIdle; negative: only after ParkAfter. Streams that may
	// not park (ParkAfter) do not park idle either.
	ParkIdle time.Duration
	// WriteHold is how long a token may wait for the next one to share
	// its write while the process's CPU is saturated (hold.go): fewer
	// write system calls when they are what the CPU spends most on.
	// Default DefaultWriteHold; negative: never.
	WriteHold time.Duration

	// AwaitProducers makes a request that started a run return only once
	// the run's producer has stopped, rather than when its reader leaves:
	// for AWS Lambda, where an instance's goroutines freeze when no
	// invocation runs, so a producer left behind would stop renewing its
	// lease and its readers elsewhere would lose the answer.
	AwaitProducers bool

	once      sync.Once
	guard     *guard
	answerer  *runnel.Answerer // Answerer, timed when there are Metrics
	citing    *runnel.Answerer // the same, citing its sources by number (openaiapi.go)
	stopping  chan struct{}    // closed when Run begins shutting down
	base      context.Context  // the producers' parent; ends with errShutdown
	stop      context.CancelCauseFunc
	cut       context.Context // ends when the shutdown grace runs out
	cutNow    context.CancelFunc
	streams   sync.WaitGroup    // pumps
	back      *handbackListener // where parked streams give their connections back; set by Run
	parked    parkedSet
	producers sync.WaitGroup
	deadlines deadlines // the runs' maximum durations
}

func (s *Server) init() {
	s.once.Do(func() {
		s.stopping = make(chan struct{})
		s.base, s.stop = context.WithCancelCause(context.Background())
		s.cut, s.cutNow = context.WithCancel(context.Background())
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		if s.Runs == nil {
			panic("runnel/http: Server.Runs is nil; give it a runnel.Runs such as memory.New(memory.Options{})")
		}
		g, err := newGuard(s)
		if err != nil {
			panic(err.Error() + " (Server.Validate reports this as an error)")
		}
		s.guard = g
		s.answerer = s.Metrics.instrument(s.Answerer)
		s.citing = s.Metrics.instrument(citing(s.Answerer))
	})
}

// Validate reports what is wrong with the server's settings: a CORS origin
// that is not an origin, KeysForPages without keys. A server that does not
// validate panics when it starts.
func (s *Server) Validate() error {
	_, err := newGuard(s)
	return err
}

// Handler returns the server's routes wrapped in request logging.
func (s *Server) Handler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /articles/stream", s.private(s.handleStream))
	mux.HandleFunc("POST /articles/stream", s.private(s.handleStream))
	mux.HandleFunc("POST /runs", s.private(s.handleStream))
	mux.HandleFunc("GET /runs/ws", s.private(s.handleSocket))
	mux.HandleFunc("GET /runs/{id}", s.private(s.handleFollow))
	mux.HandleFunc("DELETE /runs/{id}", s.private(s.handleCancel))
	mux.HandleFunc("POST /runs/{id}/cancel", s.private(s.handleCancel))
	mux.HandleFunc("POST /v1/chat/completions", s.v1(s.handleChatCompletions))
	mux.HandleFunc("GET /v1/models", s.v1(s.handleModels))
	mux.HandleFunc("GET /v1/models/{id...}", s.v1(s.handleModel))
	mux.HandleFunc("GET /articles", s.public(s.page(s.handleArticles)))
	mux.HandleFunc("GET /articles/{slug...}", s.public(s.page(s.handleArticle)))
	mux.HandleFunc("GET /tags", s.public(s.page(s.handleTags)))
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /{$}", s.public(s.page(s.handleIndex)))
	if s.Pages != nil {
		mux.Handle("GET /static/", s.public(s.Pages.ServeHTTP))
	}
	if s.MetricsHandler != nil {
		mux.Handle("GET /metrics", s.private(s.MetricsHandler.ServeHTTP))
	}
	allow := func(r *http.Request) []string { return allowedMethods(mux, r) }
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if methods := allow(r); len(methods) > 0 {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			writeError(w, runnel.Errorf(runnel.EMETHOD, "%s answers %s, not %s.", r.URL.Path, strings.Join(methods, ", "), r.Method))
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.public(s.page(handleNotFound))(w, r)
			return
		}
		handleNotFound(w, r)
	})
	return s.logRequests(s.cors(allow, mux))
}

// allowedMethods returns the methods mux answers at r's path, other than
// with its catch-all: none for a path it does not serve.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead)
			}
		}
	}
	if out != nil {
		out = append(out, http.MethodOptions)
	}
	return out
}

// page returns api, or, with Pages set, a handler that gives browsers the
// page and everyone else api.
func (s *Server) page(api http.HandlerFunc) http.HandlerFunc {
	if s.Pages == nil {
		return api
	}
	return negotiate(api, s.Pages)
}

func handleNotFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, runnel.Errorf(runnel.ENOTFOUND, "No route for %s %s.", r.Method, r.URL.Path))
}

// Run serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, ends open streams with a retryable unavailable error event, and
// waits up to ShutdownTimeout for them to finish.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	s.init()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A fixed WriteTimeout would cut long streams; streams clear it
		// and set a deadline per write instead (see stream.write).
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.back = newHandbackListener(ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.back) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := s.shutdownTimeout()
	s.Logger.Info("shutting down", "grace", grace)
	close(s.stopping)
	s.stop(errShutdown)
	s.parked.shutDown()
	// Streams get the grace to write their error event and end; a stream
	// whose reader does not take it (a client that stopped reading) is cut
	// when the grace runs out, with its connection, never later.
	drained := make(chan error, 1)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		err := srv.Shutdown(sctx)
		s.streams.Wait() // WebSockets too, which Shutdown does not wait for
		drained <- err
	}()
	select {
	case <-drained:
	case <-sctx.Done():
		s.Logger.Warn("shutdown grace ran out; closing the connections still open", "grace", grace)
		s.cutNow()
		s.parked.cut()
		srv.Close()
		<-drained
	}
	s.producers.Wait()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) shutdownTimeout() time.Duration {
	if s.ShutdownTimeout > 0 {
		return s.ShutdownTimeout
	}
	return DefaultShutdownTimeout
}

// question reads the question from the query string (GET) or a JSON body
// (POST), reading a body to its end so that a client's disconnect is seen,
// and parses it. A body holds a "question" or the "messages" of a
// conversation, never both.
func (s *Server) question(w http.ResponseWriter, r *http.Request) (runnel.Query, error) {
	raw, msgs, rerr := s.readQuestion(w, r)
	if rerr != nil {
		return runnel.Query{}, rerr
	}
	return s.parseQuestion(raw, msgs)
}

// parseQuestion parses a question, or the conversation msgs when not nil.
func (s *Server) parseQuestion(raw string, msgs *[]runnel.Message) (runnel.Query, error) {
	if msgs != nil {
		return runnel.ParseConversation(*msgs, s.MaxQuestion)
	}
	return runnel.ParseQuestion(raw, s.MaxQuestion)
}

// readQuestion returns the question or the conversation a request carries.
func (s *Server) readQuestion(w http.ResponseWriter, r *http.Request) (string, *[]runnel.Message, *runnel.Error) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r.URL.Query().Get("question"), nil, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		// A browser sends a form or text/plain from any page without
		// asking; JSON from another origin needs CORS to allow it.
		return "", nil, runnel.Errorf(runnel.EMEDIATYPE, "Send the question as JSON, with Content-Type: application/json.")
	}
	max := s.maxBody()
	if r.ContentLength > max {
		// Refused before reading, so a client that sent Expect:
		// 100-continue gets the 413 and not 100 Continue.
		return "", nil, runnel.Errorf(runnel.ETOOLARGE, "The request body is %d bytes; the limit is %d.", r.ContentLength, max)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return "", nil, runnel.Errorf(runnel.ETOOLARGE, "The request body is over %d bytes.", max)
	case err != nil:
		return "", nil, runnel.Errorf(runnel.EINVALID, "The request body could not be read.")
	case !utf8.Valid(body):
		// encoding/json would quietly turn bad bytes into U+FFFD.
		return "", nil, runnel.Errorf(runnel.EINVALID, "The request body is not valid UTF-8.")
	}
	var req struct {
		Question *string           `json:"question"`
		Messages *[]runnel.Message `json:"messages"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", nil, runnel.Errorf(runnel.EINVALID, "The request body is not a JSON object with a question: %v.", err)
	}
	switch {
	case req.Question != nil && req.Messages != nil:
		return "", nil, runnel.Errorf(runnel.EINVALID, `The request body has both "question" and "messages"; send one of them.`)
	case req.Messages != nil:
		return "", req.Messages, nil
	case req.Question == nil:
		return "", nil, runnel.Errorf(runnel.EINVALID, `The request body has no "question".`)
	}
	return *req.Question, nil, nil
}

// handleStream starts a run for the question and streams it from its first
// event, as NDJSON or, when the request prefers it, SSE. An SSE request
// that carries a Last-Event-ID of one of our runs is an EventSource
// reconnecting: it resumes that run instead of asking again.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	enc := negotiateStream(r)
	if _, ok := enc.(sse); ok && r.Header.Get("Last-Event-ID") != "" {
		s.resume(w, r, enc, "", -1)
		return
	}
	run, cp, reqID, release := s.ask(w, r, enc)
	if run == nil {
		return
	}
	if s.AwaitProducers && cp != nil {
		// Deferred, so that a panic in the stream waits too.
		defer func() { <-cp.produced }()
	}
	s.stream(w, r, run, -1, enc, cp, reqID, release)
}

// ask reads and checks the request's question and starts its run, or
// answers the request with why not and returns a nil run. It is not
// inlined into handleStream, whose frame stays on the stack for the life
// of the stream: the query and the checks would double it (see
// logRequest).
//
//go:noinline
func (s *Server) ask(w http.ResponseWriter, r *http.Request, enc encoder) (runnel.Run, *checkpoints, string, func()) {
	q, err := s.question(w, r)
	if err != nil {
		writeError(w, runnel.AsError(err))
		return nil, nil, "", nil
	}
	if r.Method == http.MethodHead {
		// What a GET would answer, without asking.
		w.Header().Set("Content-Type", enc.contentType())
		w.Header().Set("Cache-Control", "no-cache, no-transform")
		w.WriteHeader(http.StatusOK)
		return nil, nil, "", nil
	}
	if s.shuttingDown() {
		writeError(w, errShutdown)
		return nil, nil, "", nil
	}
	key, ok := idempotencyKey(r)
	if !ok {
		writeError(w, runnel.Errorf(runnel.EINVALID, "The Idempotency-Key header must be 1 to 64 letters, digits, '-', '_' or '.'."))
		return nil, nil, "", nil
	}
	release, ok := s.limited(w, r, true)
	if !ok {
		return nil, nil, "", nil
	}
	reqID := requestID(r)
	run, cp, err := s.start(r.Context(), q, key, reqID)
	if err != nil {
		release()
		s.fail(w, r, err)
		return nil, nil, "", nil
	}
	return run, cp, reqID, release
}

func (s *Server) shuttingDown() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// stream writes the response headers and pumps run from after on. It
// counts as a reader of the run while it does. release, when not nil, is
// the request's admission to give back when the stream ends. A stream
// that parks (park.go) ends in a goroutine of its own, which then does
// the clean-up.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, run runnel.Run, after int, enc encoder, cp *checkpoints, reqID string, release func()) {
	s.streams.Add(1)
	detach := run.Attach()
	done := func() {
		detach()
		if release != nil {
			release()
		}
		s.streams.Done()
	}
	parked := false
	defer func() {
		if !parked {
			done()
		}
	}()
	pk := s.parking(w, r, done) // before the headers go out
	if p := s.newPump(w, r, run, after, enc, cp, reqID); p != nil {
		p.pk = pk
		parked = p.serve(r.Context())
	}
}

// parking returns what a stream needs to park, or nil if it may not:
// only an HTTP/1.1 stream, by default only when Run serves it, and not
// when a request must wait for its producer (AWS Lambda) or is tracked
// (the same).
//
//go:noinline
func (s *Server) parking(w http.ResponseWriter, r *http.Request, done func()) *parking {
	after := s.ParkAfter
	if after == 0 {
		if s.back == nil {
			// Served by an http.Server of someone else's, a parked
			// stream could not give its connection back at the end.
			return nil
		}
		after = DefaultParkAfter
	}
	if after < 0 || s.AwaitProducers || r.ProtoMajor != 1 || r.ProtoMinor < 1 || trackerOf(r) != nil {
		return nil
	}
	if s.back == nil {
		// Nothing could take the connection back after a parked stream:
		// the client must not send another request on it. (Said in the
		// headers, which go out before the stream parks, it costs a short
		// answer that never parks its keep-alive too.)
		w.Header().Set("Connection", "close")
	}
	idle := s.ParkIdle
	if idle == 0 {
		idle = DefaultParkIdle
	}
	return &parking{w: w, at: time.Now().Add(after), idle: max(idle, 0), keep: !r.Close, rec: recorderOf(w), done: done}
}

// recorderOf finds the request's recorder among the writers w wraps.
func recorderOf(w http.ResponseWriter) *recorder {
	for w != nil {
		if rec, ok := w.(*recorder); ok {
			return rec
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// handback gives a parked stream's connection back to the http.Server
// that Run serves, to read its next request. It reports false when there
// is none, or it is shutting down: the connection is then the caller's
// to close.
func (s *Server) handback(c net.Conn) bool {
	if s.back == nil || s.shuttingDown() {
		return false
	}
	return s.back.give(c)
}

// newPump writes the response headers of a stream and returns the pump
// that carries run to it, or nil if the client is gone already. It is not
// inlined into stream: a stream's goroutine stays parked below stream for
// the life of the stream, and a frame with room for all this would keep
// every open stream's stack at twice the size (see logRequest).
//
//go:noinline
func (s *Server) newPump(w http.ResponseWriter, r *http.Request, run runnel.Run, after int, enc encoder, cp *checkpoints, reqID string) *pump {
	h := w.Header()
	h.Set("Content-Type", enc.contentType())
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", reqID)
	h.Set(RunIDHeader, run.ID())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if cp == nil {
		// A reader of a run that has nothing new for it yet still learns
		// at once that it is connected. (A new run's query event goes out
		// at once and carries the headers with it.)
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return nil
		}
	}
	tracker := trackerOf(r)
	if tracker != nil {
		tracker.enc.Store(enc)
	}

	// The server's WriteTimeout would cut a long stream; each write sets
	// its own deadline instead, and the run has a maximum duration.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.Logger.Warn("clear write deadline", "err", err)
	}
	return &pump{
		s: s, run: run, enc: enc, after: after, encoded: after, cp: cp, reqID: reqID, tracker: tracker,
		sink: newResponseSink(w, s.writeTimeout()),
		ping: s.pingInterval(),
		via:  transportName(enc),
	}
}

// RunIDHeader is the response header that names the run a stream carries.
const RunIDHeader = "Runnel-Run-Id"

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (s *Server) pingInterval() time.Duration {
	if s.PingInterval > 0 {
		return s.PingInterval
	}
	return DefaultPingInterval
}

func (s *Server) handleArticles(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 20)
	if err != nil {
		writeError(w, runnel.AsError(err))
		return
	}
	offset, err := intParam(r, "offset", 0)
	if err != nil {
		writeError(w, runnel.AsError(err))
		return
	}
	if limit < 1 || limit > 100 || offset < 0 {
		writeError(w, runnel.Errorf(runnel.EINVALID, "limit must be 1 to 100 and offset 0 or more."))
		return
	}
	tag := r.URL.Query().Get("tag")
	page, total, err := s.Store.List(r.Context(), runnel.ListOptions{Tag: tag, Limit: limit, Offset: offset})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type item struct {
		Slug  string   `json:"slug"`
		Title string   `json:"title"`
		Date  string   `json:"date,omitempty"`
		Tags  []string `json:"tags"`
		URL   string   `json:"url"`
	}
	items := make([]item, len(page))
	for i, a := range page {
		items[i] = item{Slug: a.Slug, Title: a.Title, Date: formatDate(a), Tags: nonNil(a.Tags), URL: articleURL(a.Slug)}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"articles": items, "total": total, "limit": limit, "offset": offset,
	})
}

func (s *Server) handleArticle(w http.ResponseWriter, r *http.Request) {
	a, err := s.Store.Get(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"slug": a.Slug, "title": a.Title, "date": formatDate(*a), "tags": nonNil(a.Tags),
		"description": a.Description, "keywords": a.Keywords, "section": a.Section,
		"url": articleURL(a.Slug), "body": a.Body,
	})
}

func (s *Server) handleTags(w http.ResponseWriter, r *http.Request) {
	tags, err := s.Store.Tags(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if tags == nil {
		tags = []runnel.TagCount{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	_, total, err := s.Store.List(r.Context(), runnel.ListOptions{Limit: 1})
	if err != nil {
		s.Logger.Error("health check", "err", err)
		writeError(w, runnel.Errorf(runnel.EUNAVAILABLE, "The article store is not answering."))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "articles": total, "version": s.Version})
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "runnel %s\n\n"+
		"GET  /articles/stream?question=...   the answer, streamed as NDJSON (SSE with Accept: text/event-stream)\n"+
		"POST /articles/stream                {\"question\": \"...\"} or {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}\n"+
		"GET  /runs/{id}?after=N              resume a run after its event N\n"+
		"DELETE /runs/{id}                    cancel a run\n"+
		"GET  /runs/ws                        WebSocket: ask, resume and cancel\n"+
		"POST /v1/chat/completions            OpenAI-compatible chat completions (GET /v1/models lists the model)\n"+
		"GET  /articles?limit=&offset=&tag=   articles\n"+
		"GET  /articles/{slug}                one article\n"+
		"GET  /tags                           tags and their article counts\n"+
		"GET  /healthz                        health\n", s.Version)
}

// fail writes err as an error response; errors without a user-facing code
// are logged in full and shown to the user only as "internal".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := runnel.AsError(err)
	if e.Code == runnel.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, e)
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, runnel.Errorf(runnel.EINVALID, "%s must be a whole number, not %q.", name, v)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func formatDate(a runnel.Article) string {
	if a.Date.IsZero() {
		return ""
	}
	return a.Date.Format(time.DateOnly)
}

func articleURL(slug string) string { return runnel.ArticleURL("/articles/", slug) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// requestID returns the request's X-Request-Id if it is a sane token, or a
// new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && isToken(id) {
		return id
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// idempotencyKey returns the request's Idempotency-Key header: a client's
// own name for the request, so that a retry of a request whose response
// broke off before it named its run gets that run instead of a new answer.
// ok is false for a key that is not a sane token.
func idempotencyKey(r *http.Request) (key string, ok bool) {
	key = strings.Trim(r.Header.Get("Idempotency-Key"), `"`) // the draft standard quotes it
	if key == "" {
		return "", true
	}
	return key, len(key) <= 64 && isToken(key)
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
