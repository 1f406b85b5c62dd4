package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/corpus"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/markdown"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/sqlite"
	"github.com/runnel/runnel/web"
)

// question is what the streaming tests ask: the embedded articles cover it,
// so the answer reaches the generator.
const question = "what is websocket?"

// clientAddr is the address a client says it forwards for (a proxy before
// nginx would add it); nginx must append the address it saw.
const clientAddr = "203.0.113.7"

// TestNginx runs nginx with the configuration compose.yaml mounts in front
// of a runnel server and reads answers through it: each token must reach
// the client before the generator may produce the next one, over NDJSON (GET
// and POST), SSE and WebSocket, with a browser's Origin. It also checks what
// runnel sees of the client (Host, X-Forwarded-For, X-Forwarded-Proto), that
// the connection to runnel is kept alive, and that nginx compresses the
// pages but no stream.
func TestNginx(t *testing.T) {
	bin := findNginx(t)
	up := startRunnel(t)
	base := startNginx(t, bin, nginxConfPath(t), []string{up.addr}, "")
	origin := base // what a browser on the page sends
	host := strings.TrimPrefix(base, "http://")

	// browser is how every request below goes out: with the page's
	// Origin, an X-Forwarded-For from a proxy before nginx, and
	// Accept-Encoding set by hand, so that a compressed stream would reach
	// the reader compressed (Go unpacks it only when it asked by itself).
	var browser http.RoundTripper = roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Origin", origin)
		r.Header.Set("X-Forwarded-For", clientAddr)
		r.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(r)
		stream := strings.HasPrefix(r.URL.Path, "/articles/stream") || strings.HasPrefix(r.URL.Path, "/runs")
		if err == nil && stream && resp.Header.Get("Content-Encoding") != "" {
			resp.Body.Close()
			return nil, fmt.Errorf("%s %s came back with Content-Encoding %q: nginx compressed a stream",
				r.Method, r.URL.Path, resp.Header.Get("Content-Encoding"))
		}
		return resp, err
	})
	hc := &http.Client{Transport: browser}

	for _, tr := range []rhttp.Transport{rhttp.NDJSON, rhttp.SSE, rhttp.WebSocket} {
		t.Run("streams/"+tr.String(), func(t *testing.T) {
			up.reset()
			c := rhttp.NewClient(base)
			c.HTTPClient = hc
			c.Transport = tr
			c.Retries = -1 // a break through nginx is a failure here, not something to resume
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var got []string
			err := c.Ask(ctx, question, up.gen.follow(ctx, &got))
			if err != nil {
				t.Fatalf("Ask over %s through nginx: %v (%d of %d tokens arrived, %d produced)%s",
					tr, err, len(got), up.gen.tokens, up.gen.produced.Load(), heldBack(err))
			}
			if want := up.gen.answer(); strings.Join(got, "") != want {
				t.Errorf("answer through nginx = %q, want %q", strings.Join(got, ""), want)
			}
			up.checkForwarded(t, host)
		})
	}

	// GET /articles/stream?question=..., as curl -N reads it.
	t.Run("streams/get", func(t *testing.T) {
		up.reset()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/articles/stream?question="+url.QueryEscape(question), nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%v%s", err, heldBack(err))
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /articles/stream: %s", resp.Status)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("Content-Type through nginx = %q, want application/x-ndjson", ct)
		}
		if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) {
			t.Errorf("Transfer-Encoding through nginx = %q, want chunked", resp.TransferEncoding)
		}
		var got []string
		var last runnel.EventType
		follow := up.gen.follow(ctx, &got)
		err = rhttp.Read(ctx, resp.Body, 0, func(e runnel.Event) error {
			last = e.Type
			return follow(e)
		})
		if err != nil || last != runnel.EventDone {
			t.Fatalf("reading the stream through nginx: %v, last event %q (%d of %d tokens)%s", err, last, len(got), up.gen.tokens, heldBack(err))
		}
		up.checkForwarded(t, host)
	})

	t.Run("pages", func(t *testing.T) {
		up.reset()
		// Compressed: so the streams' lack of it above is nginx's
		// configuration at work, not an nginx that never compresses.
		for _, path := range []string{"/", "/articles?limit=50"} {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
			if path == "/" {
				req.Header.Set("Accept", "text/html")
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
				t.Errorf("GET %s through nginx: %s, Content-Encoding %q; want 200 and gzip", path, resp.Status, resp.Header.Get("Content-Encoding"))
			}
		}
		up.checkForwarded(t, host)
	})

	t.Run("health and keep-alive", func(t *testing.T) {
		up.reset()
		for range 3 {
			resp, err := http.Get(base + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			var h struct{ Status, Version string }
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Version != "deploytest" {
				t.Fatalf("GET /healthz through nginx: %s, %+v, %v", resp.Status, h, err)
			}
		}
		// One connection to runnel, kept alive: nginx sent no
		// "Connection: close" and returned it to its idle pool each time.
		var remotes []string
		for _, s := range up.requests() {
			remotes = append(remotes, s.remote)
		}
		if len(slices.Compact(slices.Clone(remotes))) != 1 {
			t.Errorf("runnel saw the requests from %q, want one kept-alive connection", remotes)
		}
	})
}

// TestNginxConfig checks the settings of deploy/nginx/runnel.conf that the
// running test cannot wait for: nginx must wait through a stream's longest
// silence, runnel's ping interval.
func TestNginxConfig(t *testing.T) {
	conf := readFile(t, nginxConfPath(t))
	stream := regexp.MustCompile(`(?s)location ~ \^/\(articles/stream\|runs\)[^{]*\{([^}]*)\}`).FindStringSubmatch(conf)
	if stream == nil {
		t.Fatal("runnel.conf has no location for ^/(articles/stream|runs)")
	}
	for _, dir := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		m := regexp.MustCompile(`(?m)^\s*` + dir + `\s+(\S+);`).FindStringSubmatch(stream[1])
		if m == nil {
			t.Errorf("the stream location sets no %s (nginx's default is 60s)", dir)
			continue
		}
		d, ok := parseNginxTime(m[1])
		if !ok || d < 2*rhttp.DefaultPingInterval {
			t.Errorf("%s %s: want at least twice runnel's ping interval (%v)", dir, m[1], rhttp.DefaultPingInterval)
		}
	}
	for _, want := range []string{"proxy_buffering off;", "gzip off;"} {
		if !strings.Contains(stream[1], want) {
			t.Errorf("the stream location does not say %s", want)
		}
	}
	// The upstream is the compose service, on the port it exposes.
	c := readCompose(t)
	if !strings.Contains(conf, "server runnel:8080;") || !slices.Contains(c.Services["runnel"].Expose, "8080") {
		t.Errorf("runnel.conf's upstream (server runnel:8080) and the runnel service's expose %q do not match", c.Services["runnel"].Expose)
	}
}

// findNginx returns the nginx to run: $RUNNEL_NGINX, else nginx on PATH or
// in /usr/sbin (Debian's, outside a user's PATH).
func findNginx(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RUNNEL_NGINX"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("RUNNEL_REQUIRE_NGINX") == "1" {
		t.Fatal("no nginx, and RUNNEL_REQUIRE_NGINX=1: run scripts/ensure-nginx.sh")
	}
	t.Skip("no nginx (bash scripts/ensure-nginx.sh installs Debian's, or set RUNNEL_NGINX)")
	return ""
}

// gated is the generator behind nginx: it emits token i, then waits until
// the client has received token i before it emits token i+1. A proxy that
// holds events back stalls the answer, and the test fails at its deadline.
type gated struct {
	tokens   int
	produced atomic.Int64
	received chan int
}

var _ runnel.Generator = (*gated)(nil)

func (g *gated) Generate(ctx context.Context, _ runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	g.produced.Store(0)
	for i := range g.tokens {
		if i > 0 {
			select {
			case got := <-g.received:
				if got != i-1 {
					return runnel.Done{}, fmt.Errorf("the client confirmed token %d, want %d", got, i-1)
				}
			case <-ctx.Done():
				return runnel.Done{}, ctx.Err()
			}
		}
		g.produced.Add(1)
		if err := emit(g.token(i)); err != nil {
			return runnel.Done{}, err
		}
	}
	return runnel.Done{FinishReason: runnel.FinishStop}, nil
}

func (g *gated) token(i int) string { return "t" + strconv.Itoa(i) + " " }

func (g *gated) answer() string {
	var b strings.Builder
	for i := range g.tokens {
		b.WriteString(g.token(i))
	}
	return b.String()
}

// follow returns the callback that reads a gated answer into got: on token
// i it checks the generator is parked right after it, then lets it go on.
func (g *gated) follow(ctx context.Context, got *[]string) func(runnel.Event) error {
	return func(e runnel.Event) error {
		if e.Type != runnel.EventToken {
			return nil
		}
		i := len(*got)
		*got = append(*got, e.Token)
		if p := g.produced.Load(); p != int64(i+1) {
			return fmt.Errorf("token %d arrived when the generator had produced %d", i, p)
		}
		if i < g.tokens-1 {
			select {
			case g.received <- i:
			case <-ctx.Done():
				return fmt.Errorf("token %d: the generator never took it back: %w", i, ctx.Err())
			}
		}
		return nil
	}
}

// upstream is the runnel server behind nginx, and what it saw of each
// request.
type upstream struct {
	addr string
	gen  *gated

	mu   sync.Mutex
	seen []seen
}

type seen struct {
	method, path, host, forwardedFor, proto, remote string
}

// startRunnel starts runnel's HTTP server on a loopback port, with the
// embedded articles in SQLite, the pages, and the gated generator.
func startRunnel(t *testing.T) *upstream {
	t.Helper()
	ctx := context.Background()
	store, closeStore, err := sqlite.OpenTemp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeStore)
	if _, err := markdown.PutFS(ctx, store, corpus.FS()); err != nil {
		t.Fatal(err)
	}
	up := &upstream{gen: &gated{tokens: 4, received: make(chan int)}}
	srv := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: store, Generator: up.gen},
		Store:    store,
		// A reader that leaves ends the run at once: a failed test
		// leaves no generator waiting at its gate.
		Runs:    memory.New(memory.Options{Linger: 0}),
		Pages:   web.Handler(store),
		Version: "deploytest",
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: up.record(srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-served
	})
	up.addr = ln.Addr().String()
	return up
}

func (u *upstream) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, seen{
			method:       r.Method,
			path:         r.URL.Path,
			host:         r.Host,
			forwardedFor: strings.Join(r.Header.Values("X-Forwarded-For"), ", "),
			proto:        r.Header.Get("X-Forwarded-Proto"),
			remote:       r.RemoteAddr,
		})
		u.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (u *upstream) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = nil
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// checkForwarded checks that runnel saw every request since the last reset
// with the client's Host, the client's address appended to X-Forwarded-For,
// and the scheme.
func (u *upstream) checkForwarded(t *testing.T, host string) {
	t.Helper()
	reqs := u.requests()
	if len(reqs) == 0 {
		t.Fatal("runnel saw no request")
	}
	for _, s := range reqs {
		if s.host != host || s.forwardedFor != clientAddr+", 127.0.0.1" || s.proto != "http" {
			t.Errorf("runnel saw %s %s with Host %q, X-Forwarded-For %q, X-Forwarded-Proto %q; want %q, %q, http",
				s.method, s.path, s.host, s.forwardedFor, s.proto, host, clientAddr+", 127.0.0.1")
		}
	}
}

// startNginx runs nginx with the server configuration in conf (relative to
// the repository's root), changed only to proxy to the upstreams (the
// upstream block's server lines become one line for each) and to listen on
// a loopback port, with extra (directives, maybe none) added to the server
// block, and returns its base URL. nginx runs in the foreground with its
// pid file, logs and temporary files in a directory of its own; the test's
// cleanup stops it by its PID.
func startNginx(t *testing.T, bin, conf string, upstreams []string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	// The listening socket is made here and handed to nginx (its
	// inherited-sockets protocol, the NGINX variable), so the port is
	// known, no other process can take it, and a request made before
	// nginx is ready waits in the socket's queue instead of failing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lnFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()

	site := readFile(t, conf)
	var servers strings.Builder
	for i, u := range upstreams {
		if i > 0 {
			servers.WriteString("\n    ")
		}
		servers.WriteString("server " + u + ";")
	}
	for old, new := range map[string]string{
		"server runnel:8080;": servers.String(),
		"listen 80;":          "listen " + ln.Addr().String() + ";\n    " + extra,
	} {
		if n := strings.Count(site, old); n != 1 {
			t.Fatalf("%s says %q %d times, want once (the test replaces it)", conf, old, n)
		}
		site = strings.Replace(site, old, new, 1)
	}
	sitePath := filepath.Join(dir, "runnel.conf")
	if err := os.WriteFile(sitePath, []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	// What the nginx image's own nginx.conf provides around conf.d/*.conf,
	// with every path in dir so that nginx runs unprivileged.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers stay able to reach dir's temp paths
	}
	main := fmt.Sprintf(`%[2]s
daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[3]s;
}
`, dir, user, sitePath)
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", mainPath}
	if out, err := exec.Command(bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, site)
	}

	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{lnFile} // fd 3
	cmd.Env = append(os.Environ(), "NGINX=3;")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logs := func() string {
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return fmt.Sprintf("nginx output:\n%s\nerror.log:\n%s", out.String(), errLog)
	}
	t.Cleanup(func() {
		// The pid file must name the nginx this test started: that is
		// the process stopped here, by its PID (SIGTERM: a fast shutdown
		// that does not wait for open WebSockets).
		if b, err := os.ReadFile(filepath.Join(dir, "nginx.pid")); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != cmd.Process.Pid {
				t.Errorf("nginx.pid says %d, but the nginx started is %d", pid, cmd.Process.Pid)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stopping nginx: %v", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("nginx exited with %v\n%s", err, logs())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("nginx did not stop within 10s of SIGTERM; killed\n%s", logs())
		}
		if t.Failed() {
			t.Log(logs())
		}
	})
	return "http://" + ln.Addr().String()
}

// heldBack explains a deadline: the generator waits for the client to
// receive each token, so a proxy that holds one back stalls the answer.
func heldBack(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return ": the generator waits for each token to reach the client, so nginx held the stream back"
	}
	return ""
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
