// Command testserver is the runnel server that the JS client's Node and
// browser tests drive (web/client/test). It is the real thing where it
// matters: rhttp.Server with its stream writer, the pages of package web, the
// SQLite store loaded with the embedded articles, and the extractive
// generator's answers. Only the pace of the tokens and the fate of the
// connection are in the test's hands, through routes under /test/:
//
//	POST /test/reset                 back to mode instant, counters to zero
//	POST /test/mode?mode=M&after=N&steps=S
//	POST /test/release               let a gated answer emit its next step
//	POST /test/expire                the runs are forgotten: Get finds none until reset
//	POST /test/script                the next answers' tokens: a JSON array of strings (until reset)
//	GET  /test/state                 what the generator did (JSON, see state)
//	GET  /test/axios.min.js          the file given by -axios (axios's browser build)
//
// Modes: instant (the answer at once), gated (the answer in S steps, each
// after a release), hang (N tokens, then wait until the client leaves),
// error (N tokens, then an error event), cut (N tokens, then the connection
// closes without the end of the chunked body; with gate=1, only once
// released), cut-after-done (the whole answer and done, then the same), bytes
// (the whole answer, one byte per chunk). Gates, not sleeps: a test waits for
// a state, then releases.
//
// A script (POST /test/script) replaces the extractive answer's tokens with
// the test's own, for answers no article would give (Markdown, citations,
// HTML that tries to get into the page); the sources are still the real
// search's, and the mode still sets the pace.
//
// Runs are kept in memory (package memory), with the linger window given by
// -linger: 30s by default, so that a client cut off mid-answer can resume
// it; 0 cancels a run as soon as its last reader leaves, as protocol v1 did.
//
// -api-keys turns the server's API keys on (rhttp.Server.APIKeys): the
// stream and run routes then need one of them, as a Bearer token, the
// password of Basic credentials or, on GET, access_token. -keys-for-pages
// covers the pages too, and -cors-origins names the origins CORS allows.
// The /test/ routes never need a key: they are the test's, not the server's.
//
// It listens on 127.0.0.1 (a free port unless -addr says otherwise), prints
// its URL on the first line of stdout, and exits on SIGTERM or when its
// standard input closes, so a test that dies cannot leave it running.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/corpus"
	"github.com/runnel/runnel/extractive"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/sqlite"
	"github.com/runnel/runnel/web"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen on `host:port`")
	axios := flag.String("axios", "", "`file` served at /test/axios.min.js")
	linger := flag.Duration("linger", 30*time.Second, "how long a run goes on after its last reader left (0: cancel at once)")
	apiKeys := flag.String("api-keys", "", "comma-separated API `keys`, one of which the stream and run routes then need")
	keysForPages := flag.Bool("keys-for-pages", false, "the pages, articles and tags need a key too")
	corsOrigins := flag.String("cors-origins", "", "comma-separated `origins` whose pages CORS allows, or *")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		io.Copy(io.Discard, os.Stdin) // the parent test is gone when this ends
		stop()
	}()

	dir, err := os.MkdirTemp("", "runnel-testserver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "runnel.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := markdown.PutFS(ctx, store, corpus.FS()); err != nil {
		return fmt.Errorf("load articles: %w", err)
	}

	c := newControl()
	srv := &rhttp.Server{
		Answerer: &runnel.Answerer{
			Searcher:  store,
			Generator: &controlled{c: c, inner: extractive.New(extractive.Options{})},
		},
		Store:           store,
		Runs:            &forgetful{Runs: memory.New(memory.Options{Linger: *linger}), c: c},
		Pages:           web.Handler(store),
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Version:         "test",
		ShutdownTimeout: time.Second,
		APIKeys:         list(*apiKeys),
		KeysForPages:    *keysForPages,
		CORSOrigins:     list(*corsOrigins),
	}
	if err := srv.Validate(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	c.routes(mux, *axios)
	mux.Handle("/", c.relay(srv.Handler()))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// list splits a comma-separated flag; "" is none.
func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// Modes of the control.
const (
	modeInstant      = "instant"
	modeGated        = "gated"
	modeHang         = "hang"
	modeError        = "error"
	modeCut          = "cut"
	modeCutAfterDone = "cut-after-done"
	modeBytes        = "bytes"
)

// control is the test's hand on the server: the mode for the next answers,
// the gate of a gated answer, and what the generator did.
type control struct {
	mu      sync.Mutex
	mode    string
	after   int      // tokens before hang, error or cut
	steps   int      // steps of a gated answer
	cutGate bool     // cut waits for a release
	expired bool     // the runs are forgotten (see forgetful)
	script  []string // the answers' tokens, instead of the extractive ones
	permits chan struct{}
	st      state
}

// state is what GET /test/state reports.
type state struct {
	Mode      string `json:"mode"`
	Started   int    `json:"started"`   // generations begun
	Running   int    `json:"running"`   // generations not yet returned
	Finished  int    `json:"finished"`  // generations that returned with their context alive
	Cancelled int    `json:"cancelled"` // generations whose context ended (the client left)
	Waiting   bool   `json:"waiting"`   // a generation is parked at a gate or hanging
	Step      int    `json:"step"`      // steps of the current gated answer emitted so far
	Steps     int    `json:"steps"`     // steps it has in all
	Tokens    int    `json:"tokens"`    // tokens the current answer emitted so far
	Emitted   string `json:"emitted"`   // their text
	Answer    string `json:"answer"`    // the whole answer the generator would give
	Relayed   string `json:"relayed"`   // in the modes that relay: the tokens sent to the client
	Cutting   bool   `json:"cutting"`   // a gated cut waits for its release
	Expired   bool   `json:"expired"`   // the runs are forgotten
}

func newControl() *control {
	c := &control{}
	c.reset()
	return c
}

func (c *control) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mode, c.after, c.steps, c.cutGate, c.expired = modeInstant, 3, 4, false, false
	c.script = nil
	c.permits = make(chan struct{}, 1000)
	c.st = state{}
}

func (c *control) routes(mux *http.ServeMux, axios string) {
	mux.HandleFunc("POST /test/reset", func(w http.ResponseWriter, r *http.Request) {
		c.reset()
		c.writeState(w)
	})
	mux.HandleFunc("POST /test/mode", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mode := q.Get("mode")
		switch mode {
		case modeInstant, modeGated, modeHang, modeError, modeCut, modeCutAfterDone, modeBytes:
		default:
			http.Error(w, "unknown mode "+strconv.Quote(mode), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.mode = mode
		if n, err := strconv.Atoi(q.Get("after")); err == nil && n >= 0 {
			c.after = n
		}
		if n, err := strconv.Atoi(q.Get("steps")); err == nil && n > 0 {
			c.steps = n
		}
		c.cutGate = q.Get("gate") == "1"
		c.mu.Unlock()
		c.writeState(w)
	})
	mux.HandleFunc("POST /test/release", func(w http.ResponseWriter, r *http.Request) {
		c.permits <- struct{}{}
		c.writeState(w)
	})
	mux.HandleFunc("POST /test/expire", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.expired = true
		c.mu.Unlock()
		c.writeState(w)
	})
	mux.HandleFunc("POST /test/script", func(w http.ResponseWriter, r *http.Request) {
		var tokens []string
		if err := json.NewDecoder(r.Body).Decode(&tokens); err != nil || len(tokens) == 0 {
			http.Error(w, "the body must be a JSON array of one or more strings", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.script = tokens
		c.mu.Unlock()
		c.writeState(w)
	})
	mux.HandleFunc("GET /test/state", func(w http.ResponseWriter, r *http.Request) {
		c.writeState(w)
	})
	mux.HandleFunc("GET /test/axios.min.js", func(w http.ResponseWriter, r *http.Request) {
		if axios == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, axios)
	})
}

func (c *control) writeState(w http.ResponseWriter) {
	c.mu.Lock()
	st := c.st
	st.Mode, st.Expired = c.mode, c.expired
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(st)
}

// forgetful is the server's runs, which the test can make forget them all
// (POST /test/expire): Get then finds none, as when a run has outlived its
// retention or the server restarted, while the runs themselves go on.
type forgetful struct {
	runnel.Runs
	c *control
}

func (f *forgetful) Get(ctx context.Context, id string) (runnel.Run, error) {
	f.c.mu.Lock()
	expired := f.c.expired
	f.c.mu.Unlock()
	if expired {
		return nil, runnel.Errorf(runnel.ENOTFOUND, "No run %q: it never existed or has expired.", id)
	}
	return f.Runs.Get(ctx, id)
}

// controlled is the generator: the extractive answer, emitted as the mode says.
type controlled struct {
	c     *control
	inner runnel.Generator
}

func (g *controlled) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	var tokens []string
	done, err := g.inner.Generate(ctx, p, func(t string) error {
		tokens = append(tokens, t)
		return nil
	})
	if err != nil {
		return done, err
	}
	c := g.c
	c.mu.Lock()
	if c.script != nil {
		tokens = c.script
	}
	mode, after, steps := c.mode, min(c.after, len(tokens)), c.steps
	c.st.Started++
	c.st.Running++
	c.st.Waiting = false
	c.st.Step, c.st.Steps, c.st.Tokens, c.st.Emitted = 0, 0, 0, ""
	c.st.Answer = strings.Join(tokens, "")
	if mode == modeGated {
		c.st.Steps = min(steps, len(tokens))
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.st.Running--
		c.st.Waiting = false
		if ctx.Err() != nil {
			c.st.Cancelled++
		} else {
			c.st.Finished++
		}
		c.mu.Unlock()
	}()

	send := func(ts []string) error {
		for _, t := range ts {
			if err := emit(t); err != nil {
				return err
			}
			c.mu.Lock()
			c.st.Tokens++
			c.st.Emitted += t
			c.mu.Unlock()
		}
		return nil
	}
	// park blocks until a permit or the end of ctx, saying so in the state.
	park := func(permits <-chan struct{}) error {
		c.mu.Lock()
		c.st.Waiting = true
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.st.Waiting = false
			c.mu.Unlock()
		}()
		select {
		case <-permits:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	switch mode {
	case modeGated:
		n := min(steps, len(tokens))
		for i := range n {
			if i > 0 {
				c.mu.Lock()
				permits := c.permits
				c.mu.Unlock()
				if err := park(permits); err != nil {
					return runnel.Done{}, err
				}
			}
			if err := send(tokens[i*len(tokens)/n : (i+1)*len(tokens)/n]); err != nil {
				return runnel.Done{}, err
			}
			c.mu.Lock()
			c.st.Step = i + 1
			c.mu.Unlock()
		}
	case modeHang:
		if err := send(tokens[:after]); err != nil {
			return runnel.Done{}, err
		}
		return runnel.Done{}, park(nil) // only the client's leaving ends this
	case modeError:
		if err := send(tokens[:after]); err != nil {
			return runnel.Done{}, err
		}
		return runnel.Done{}, &runnel.Error{Code: runnel.EUPSTREAM, Message: "The model stopped answering.", Retryable: true}
	default:
		if err := send(tokens); err != nil {
			return runnel.Done{}, err
		}
	}
	return done, nil
}

// relay serves the stream through a connection the test can break: in modes
// cut, cut-after-done and bytes it takes over the client's connection, runs
// the real handler into a pipe, and writes its lines as chunks of its own,
// stopping where the mode says. Everything else goes straight to next.
func (c *control) relay(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		mode, after, gate, permits := c.mode, c.after, c.cutGate, c.permits
		c.mu.Unlock()
		if r.URL.Path != "/articles/stream" || (mode != modeCut && mode != modeCutAfterDone && mode != modeBytes) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body) // before the hijack, which takes the body away
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close() // in cut modes, without the last chunk: a broken stream

		ctx, cancel := context.WithCancel(context.Background())
		inner := r.Clone(ctx)
		inner.Body = io.NopCloser(bytes.NewReader(body))
		pr, pw := io.Pipe()
		resp := &pipeResponse{header: http.Header{}, w: pw}
		go func() {
			next.ServeHTTP(resp, inner)
			pw.Close()
		}()
		defer func() {
			cancel() // the real handler sees its client leave
			io.Copy(io.Discard, pr)
		}()

		c.mu.Lock()
		c.st.Relayed = ""
		c.mu.Unlock()
		lines := bufio.NewReader(pr)
		started, tokens := false, 0
		for {
			line, err := lines.ReadBytes('\n')
			if len(line) > 0 {
				if !started {
					started = true
					fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\n", resp.status, http.StatusText(resp.status))
					resp.header.Del("Content-Length")
					resp.header.Write(brw)
					brw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
				}
				if mode == modeBytes {
					for _, b := range line {
						brw.WriteString("1\r\n")
						brw.WriteByte(b)
						brw.WriteString("\r\n")
						if brw.Flush() != nil {
							return
						}
					}
				} else {
					fmt.Fprintf(brw, "%x\r\n%s\r\n", len(line), line)
					if brw.Flush() != nil {
						return
					}
				}
				var e runnel.Event
				if json.Unmarshal(line, &e) == nil && e.Type == runnel.EventToken {
					tokens++
					c.mu.Lock()
					c.st.Relayed += e.Token
					c.mu.Unlock()
					if mode == modeCut && tokens >= after {
						if gate {
							c.setCutting(true)
							select {
							case <-permits:
							case <-time.After(time.Minute): // a test that never releases
							}
							c.setCutting(false)
						}
						return
					}
				}
			}
			if err != nil {
				break
			}
		}
		if mode == modeCutAfterDone {
			return
		}
		brw.WriteString("0\r\n\r\n")
		brw.Flush()
	})
}

func (c *control) setCutting(v bool) {
	c.mu.Lock()
	c.st.Cutting = v
	c.mu.Unlock()
}

// pipeResponse is a ResponseWriter that writes the body into a pipe. It
// flushes (every write goes straight into the pipe) and sets no deadlines.
type pipeResponse struct {
	header http.Header
	w      *io.PipeWriter
	status int
}

func (p *pipeResponse) Header() http.Header { return p.header }

func (p *pipeResponse) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *pipeResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.w.Write(b)
}

func (p *pipeResponse) Flush() {}
