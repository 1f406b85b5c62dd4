package http_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
)

// holding is a generator that emits one token and then holds its stream
// open until release is closed or the run ends.
func holding(release <-chan struct{}) runnel.Generator {
	return runnel.GeneratorFunc(func(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
		if err := emit("held "); err != nil {
			return runnel.Done{}, err
		}
		select {
		case <-release:
			return runnel.Done{FinishReason: runnel.FinishStop}, nil
		case <-ctx.Done():
			return runnel.Done{}, ctx.Err()
		}
	})
}

// do sends a request with the given headers and returns the response, its
// body read to the end.
func do(t *testing.T, method, u, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// errorCode returns the code of a JSON error body, or "".
func errorCode(body string) string {
	var e struct{ Error runnel.Error }
	json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

// open starts a stream and returns once its first token has arrived; the
// stream stays open until the test ends or close is called.
func open(t *testing.T, u string, header ...string) (resp *http.Response, close func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		return resp, func() {}
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, `"type":"token"`) || line == "event: token" {
			break
		}
	}
	close = func() { cancel(); resp.Body.Close() }
	t.Cleanup(close)
	return resp, close
}

func TestAPIKeys(t *testing.T) {
	_, ts := newServer(t, words("keyed ", "answer"), func(s *rhttp.Server) { s.APIKeys = []string{"first-key", " second-key "} })
	stream := ts.URL + "/articles/stream?question=websocket"

	t.Run("refused without a valid key", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			header []string
			path   string
		}{
			{"no key", nil, stream},
			{"wrong key", []string{"Authorization", "Bearer nope"}, stream},
			{"a prefix of a key", []string{"Authorization", "Bearer first"}, stream},
			{"empty bearer", []string{"Authorization", "Bearer "}, stream},
			{"another scheme", []string{"Authorization", "Token first-key"}, stream},
			{"wrong query key", nil, stream + "&access_token=nope"},
			{"follow", nil, ts.URL + "/runs/abc"},
		} {
			resp, body := do(t, "GET", tt.path, "", tt.header...)
			if resp.StatusCode != 401 || errorCode(body) != runnel.EUNAUTHORIZED {
				t.Errorf("%s: %d %s, want 401 %s", tt.name, resp.StatusCode, body, runnel.EUNAUTHORIZED)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="runnel"` {
				t.Errorf("%s: WWW-Authenticate %q", tt.name, got)
			}
		}
		resp, body := do(t, "DELETE", ts.URL+"/runs/abc", "")
		if resp.StatusCode != 401 {
			t.Errorf("cancel without a key: %d %s", resp.StatusCode, body)
		}
		resp, body = do(t, "POST", ts.URL+"/articles/stream", `{"question":"websocket"}`,
			"Content-Type", "application/json")
		if resp.StatusCode != 401 {
			t.Errorf("POST without a key: %d %s", resp.StatusCode, body)
		}
		// A key in the query string is for what a browser cannot give
		// headers to: GET.
		resp, body = do(t, "POST", ts.URL+"/articles/stream?access_token=first-key", `{"question":"websocket"}`,
			"Content-Type", "application/json")
		if resp.StatusCode != 401 {
			t.Errorf("POST with a query key: %d %s", resp.StatusCode, body)
		}
		_, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws", nil)
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("WebSocket without a key: %v, %v", err, resp)
		}
		var re *runnel.Error
		if _, err := collect(t, ts.URL, "websocket"); !errors.As(err, &re) || re.Code != runnel.EUNAUTHORIZED {
			t.Errorf("Go client without a key: %v", err)
		}
	})

	t.Run("accepted with a key", func(t *testing.T) {
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:second-key"))
		for _, tt := range []struct {
			name   string
			header []string
			path   string
		}{
			{"bearer", []string{"Authorization", "Bearer first-key"}, stream},
			{"second key, trimmed", []string{"Authorization", "bearer second-key"}, stream},
			{"basic password", []string{"Authorization", basic}, stream},
			{"query", nil, stream + "&access_token=" + url.QueryEscape("first-key")},
		} {
			resp, body := do(t, "GET", tt.path, "", tt.header...)
			if resp.StatusCode != 200 || !strings.Contains(body, `"type":"done"`) {
				t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
			}
		}
		for _, transport := range []rhttp.Transport{rhttp.NDJSON, rhttp.SSE, rhttp.WebSocket} {
			c := rhttp.NewClient(ts.URL)
			c.APIKey, c.Transport = "second-key", transport
			var tokens []string
			err := c.Ask(t.Context(), "websocket", func(e runnel.Event) error {
				if e.Type == runnel.EventToken {
					tokens = append(tokens, e.Token)
				}
				return nil
			})
			if err != nil || strings.Join(tokens, "") != "keyed answer" {
				t.Errorf("Go client over %v: %q, %v", transport, tokens, err)
			}
		}
	})

	t.Run("pages stay public", func(t *testing.T) {
		for _, path := range []string{"/articles", "/articles/dns", "/tags", "/healthz", "/"} {
			if resp, body := do(t, "GET", ts.URL+path, ""); resp.StatusCode != 200 {
				t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			}
		}
	})

	t.Run("pages behind the keys when asked", func(t *testing.T) {
		_, ts := newServer(t, words("x"), func(s *rhttp.Server) {
			s.APIKeys, s.KeysForPages = []string{"k"}, true
		})
		for _, path := range []string{"/articles", "/articles/dns", "/tags", "/"} {
			resp, body := do(t, "GET", ts.URL+path, "")
			if resp.StatusCode != 401 || errorCode(body) != runnel.EUNAUTHORIZED {
				t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			}
			if got := resp.Header.Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[1], "Basic ") {
				t.Errorf("GET %s: WWW-Authenticate %q, want a Basic challenge too", path, got)
			}
			basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(":k"))
			if resp, body := do(t, "GET", ts.URL+path, "", "Authorization", basic); resp.StatusCode != 200 {
				t.Errorf("GET %s with Basic: %d %s", path, resp.StatusCode, body)
			}
		}
		if resp, _ := do(t, "GET", ts.URL+"/healthz", ""); resp.StatusCode != 200 {
			t.Errorf("healthz: %d, want it public", resp.StatusCode)
		}
	})

	t.Run("settings checked", func(t *testing.T) {
		s := &rhttp.Server{KeysForPages: true}
		if err := s.Validate(); err == nil {
			t.Error("KeysForPages without keys: no error")
		}
		s = &rhttp.Server{CORSOrigins: []string{"example.com"}}
		if err := s.Validate(); err == nil {
			t.Error("an origin without a scheme: no error")
		}
	})
}

func TestCORS(t *testing.T) {
	const app = "https://app.example"
	_, ts := newServer(t, words("cors"), func(s *rhttp.Server) { s.CORSOrigins = []string{app + "/"} })
	_, closed := newServer(t, words("closed"))

	t.Run("preflight", func(t *testing.T) {
		resp, _ := do(t, "OPTIONS", ts.URL+"/articles/stream", "",
			"Origin", app, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != app {
			t.Fatalf("preflight: %d, %v", resp.StatusCode, h)
		}
		for _, want := range []string{"Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Errorf("Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
			}
		}
		if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") {
			t.Errorf("Allow-Methods %q", h.Get("Access-Control-Allow-Methods"))
		}
		if h.Get("Access-Control-Max-Age") == "" || h.Get("Vary") != "Origin" {
			t.Errorf("Max-Age %q, Vary %q", h.Get("Access-Control-Max-Age"), h.Get("Vary"))
		}

		resp, _ = do(t, "OPTIONS", ts.URL+"/articles/stream", "",
			"Origin", "https://elsewhere.example", "Access-Control-Request-Method", "POST")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight from another origin: %d, %v", resp.StatusCode, resp.Header)
		}
		resp, _ = do(t, "OPTIONS", ts.URL+"/nope", "", "Origin", app, "Access-Control-Request-Method", "GET")
		if resp.StatusCode != 404 {
			t.Errorf("preflight of a path that is not served: %d", resp.StatusCode)
		}
	})

	t.Run("responses readable from the allowed origin", func(t *testing.T) {
		resp, body := do(t, "POST", ts.URL+"/articles/stream", `{"question":"websocket"}`,
			"Origin", app, "Sec-Fetch-Site", "cross-site", "Content-Type", "application/json")
		h := resp.Header
		if resp.StatusCode != 200 || !strings.Contains(body, `"type":"done"`) {
			t.Fatalf("POST from %s: %d %s", app, resp.StatusCode, body)
		}
		if h.Get("Access-Control-Allow-Origin") != app || !strings.Contains(h.Get("Access-Control-Expose-Headers"), rhttp.RunIDHeader) ||
			!strings.Contains(h.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
			t.Errorf("headers %v", h)
		}
		// Errors too, so the page can read why.
		resp, _ = do(t, "GET", ts.URL+"/articles/stream?question=", "", "Origin", app)
		if resp.StatusCode != 400 || resp.Header.Get("Access-Control-Allow-Origin") != app {
			t.Errorf("error from %s: %d %v", app, resp.StatusCode, resp.Header)
		}
	})

	t.Run("browsers on other origins may not start or cancel answers", func(t *testing.T) {
		for _, base := range []string{ts.URL, closed.URL} {
			resp, body := do(t, "POST", base+"/articles/stream", `{"question":"websocket"}`,
				"Origin", "https://elsewhere.example", "Sec-Fetch-Site", "cross-site", "Content-Type", "application/json")
			if resp.StatusCode != 403 || errorCode(body) != runnel.EFORBIDDEN || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s: POST from elsewhere: %d %s", base, resp.StatusCode, body)
			}
			resp, body = do(t, "DELETE", base+"/runs/abc", "", "Origin", "https://elsewhere.example")
			if resp.StatusCode != 403 {
				t.Errorf("%s: DELETE from elsewhere: %d %s", base, resp.StatusCode, body)
			}
			// Clients that are not browsers send no Origin.
			resp, body = do(t, "POST", base+"/articles/stream", `{"question":"websocket"}`, "Content-Type", "application/json")
			if resp.StatusCode != 200 {
				t.Errorf("%s: POST without Origin: %d %s", base, resp.StatusCode, body)
			}
		}
	})

	t.Run("off by default", func(t *testing.T) {
		resp, _ := do(t, "OPTIONS", closed.URL+"/articles/stream", "", "Origin", app, "Access-Control-Request-Method", "POST")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		if got := resp.Header.Get("Allow"); got != "GET, HEAD, POST, OPTIONS" {
			t.Errorf("Allow %q", got)
		}
		resp, _ = do(t, "GET", closed.URL+"/articles/stream?question=websocket", "", "Origin", app)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET from another origin: %v", resp.Header)
		}
	})

	t.Run("WebSocket from the allowed origin", func(t *testing.T) {
		wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/runs/ws"
		c, _, err := websocket.Dial(t.Context(), wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {app}}})
		if err != nil {
			t.Fatalf("dial from %s: %v", app, err)
		}
		c.CloseNow()
		_, resp, err := websocket.Dial(t.Context(), wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://elsewhere.example"}}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("dial from elsewhere: %v %v", err, resp)
		}
	})
}

func TestMethodsAndMediaTypes(t *testing.T) {
	store := newMemStore(testArticles...)
	runs := memory.New(memory.Options{})
	s := &rhttp.Server{Answerer: &runnel.Answerer{Searcher: store, Generator: words("x")}, Store: store, Runs: runs}
	ts := newHTTPServer(t, s.Handler())

	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PUT", "/articles/stream", 405, "GET, HEAD, POST, OPTIONS"},
		{"DELETE", "/articles/stream", 405, "GET, HEAD, POST, OPTIONS"},
		{"PATCH", "/runs/abc", 405, "GET, HEAD, DELETE, OPTIONS"},
		{"GET", "/runs", 405, "POST, OPTIONS"},
		{"POST", "/tags", 405, "GET, HEAD, OPTIONS"},
		{"POST", "/nope", 404, ""},
		{"PUT", "/", 405, "GET, HEAD, OPTIONS"},
	} {
		resp, body := do(t, tt.method, ts.URL+tt.path, "")
		if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.status, tt.allow)
		}
		if want := map[int]string{405: runnel.EMETHOD, 404: runnel.ENOTFOUND}[tt.status]; errorCode(body) != want {
			t.Errorf("%s %s: body %s, want code %s", tt.method, tt.path, body, want)
		}
	}

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		resp, body := do(t, "POST", ts.URL+"/articles/stream", `{"question":"websocket"}`, "Content-Type", ct)
		if resp.StatusCode != 415 || errorCode(body) != runnel.EMEDIATYPE {
			t.Errorf("POST as %q: %d %s, want 415", ct, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, "POST", ts.URL+"/articles/stream", `{"question":"websocket"}`, "Content-Type", "application/json; charset=utf-8"); resp.StatusCode != 200 {
		t.Errorf("POST as JSON with a charset: %d %s", resp.StatusCode, body)
	}

	t.Run("HEAD", func(t *testing.T) {
		before := runs.Stats()
		resp, body := do(t, "HEAD", ts.URL+"/articles/stream?question=websocket", "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || body != "" {
			t.Errorf("HEAD: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if after := runs.Stats(); after.Live+after.Ended != before.Live+before.Ended {
			t.Errorf("HEAD started a run: %+v, then %+v", before, after)
		}
		resp, _ = do(t, "HEAD", ts.URL+"/articles/stream?question=websocket", "", "Accept", "text/event-stream")
		if resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Errorf("HEAD for SSE: %q", resp.Header.Get("Content-Type"))
		}
		if resp, _ := do(t, "HEAD", ts.URL+"/articles/stream?question=", ""); resp.StatusCode != 400 {
			t.Errorf("HEAD without a question: %d", resp.StatusCode)
		}
		if resp, _ := do(t, "HEAD", ts.URL+"/runs/nope", ""); resp.StatusCode != 404 {
			t.Errorf("HEAD of an unknown run: %d", resp.StatusCode)
		}
	})
}

// newHTTPServer serves h on a loopback port until the test ends.
func newHTTPServer(t *testing.T, h http.Handler) *struct{ URL string } {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &struct{ URL string }{"http://" + ln.Addr().String()}
}

// A body declared over the limit is refused before the server asks for it:
// the client that waits for 100 Continue gets the 413 instead.
func TestExpectContinueOverLimit(t *testing.T) {
	_, ts := newServer(t, words("x"), func(s *rhttp.Server) { s.MaxBody = 1 << 20 })
	for _, length := range []int{2 << 20, 1<<20 + 1} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /articles/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Content-Length: "+strconv.Itoa(length)+"\r\nExpect: 100-continue\r\n\r\n")
		// Nothing of the body is sent: the client waits for the server.
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%d bytes: %v", length, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || errorCode(string(body)) != runnel.ETOOLARGE {
			t.Errorf("%d bytes: %d %s, want 413 %s (not 100 Continue)", length, resp.StatusCode, body, runnel.ETOOLARGE)
		}
	}
}

func TestStreamLimits(t *testing.T) {
	stream := "/articles/stream?question=websocket"

	t.Run("over all clients", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		_, ts := newServer(t, holding(release), func(s *rhttp.Server) { s.Limits.MaxStreams = 2 })
		_, first := open(t, ts.URL+stream)
		open(t, ts.URL+stream)
		resp, body := do(t, "GET", ts.URL+stream, "")
		if resp.StatusCode != 503 || errorCode(body) != runnel.EUNAVAILABLE || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("third stream: %d %s Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
		// A WebSocket is a stream too.
		_, wsResp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws", nil)
		if err == nil || wsResp == nil || wsResp.StatusCode != 503 {
			t.Errorf("WebSocket over the cap: %v %v", err, wsResp)
		}
		first()
		// The stream given back is taken again once its handler ends.
		waitFor(t, func() bool {
			resp, _ := open(t, ts.URL+stream)
			return resp.StatusCode == 200
		})
	})

	t.Run("per client, behind a trusted proxy", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		_, ts := newServer(t, holding(release), func(s *rhttp.Server) {
			s.Limits.MaxStreamsPerClient = 1
			s.Limits.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})
		open(t, ts.URL+stream, "X-Forwarded-For", "203.0.113.7")
		held, _ := open(t, ts.URL+stream, "X-Forwarded-For", "203.0.113.8, 127.0.0.1")
		resp, body := do(t, "GET", ts.URL+stream, "", "X-Forwarded-For", "203.0.113.7")
		if resp.StatusCode != 429 || errorCode(body) != runnel.ERATELIMITED || resp.Header.Get("Retry-After") == "" {
			t.Errorf("second stream of a client: %d %s Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
		// A resume is a stream of its own.
		resp, body = do(t, "GET", ts.URL+"/runs/"+held.Header.Get(rhttp.RunIDHeader), "", "X-Forwarded-For", "198.51.100.1, 203.0.113.8")
		if resp.StatusCode != 429 {
			t.Errorf("a resume of a client at its cap: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("per client, X-Forwarded-For not trusted", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		_, ts := newServer(t, holding(release), func(s *rhttp.Server) { s.Limits.MaxStreamsPerClient = 1 })
		open(t, ts.URL+stream, "X-Forwarded-For", "203.0.113.7")
		resp, body := do(t, "GET", ts.URL+stream, "", "X-Forwarded-For", "203.0.113.9")
		if resp.StatusCode != 429 {
			t.Errorf("a second stream claiming another address: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("question rate", func(t *testing.T) {
		// One question in 1,000 s after a burst of 2: the third is refused
		// however slow the machine.
		_, ts := newServer(t, words("x"), func(s *rhttp.Server) {
			s.Limits.QuestionRate, s.Limits.QuestionBurst = 0.001, 2
		})
		for i := range 2 {
			if resp, body := do(t, "GET", ts.URL+stream, ""); resp.StatusCode != 200 {
				t.Fatalf("question %d: %d %s", i+1, resp.StatusCode, body)
			}
		}
		resp, body := do(t, "GET", ts.URL+stream, "")
		if resp.StatusCode != 429 || errorCode(body) != runnel.ERATELIMITED {
			t.Fatalf("third question: %d %s", resp.StatusCode, body)
		}
		if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); n < 900 || n > 1000 {
			t.Errorf("Retry-After %q, want about 1000", resp.Header.Get("Retry-After"))
		}
		// Over a WebSocket, the refusal is an error message and the
		// socket stays open.
		c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"ask","question":"websocket"}`))
		_, msg, err := c.Read(t.Context())
		if err != nil || !strings.Contains(string(msg), runnel.ERATELIMITED) {
			t.Errorf("ask over a WebSocket: %s, %v", msg, err)
		}
		// Resuming is not asking.
		if resp, body := do(t, "GET", ts.URL+"/runs/nope", ""); resp.StatusCode != 404 {
			t.Errorf("resume: %d %s, want 404", resp.StatusCode, body)
		}
	})
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatal("condition never held")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
