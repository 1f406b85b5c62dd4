package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/runnel/runnel"
)

// Who may use the server, and how much: API keys, CORS, cross-origin
// protection, and the limits on streams and new questions. The server
// builds one guard from its fields when it starts.

// Limits bound what the clients of a server may hold and ask. A zero field
// sets no limit.
type Limits struct {
	// MaxStreams is the most streams (NDJSON, SSE or WebSocket, new
	// answers and resumes alike) open at once over all clients. A stream
	// over it is refused with 503 and Retry-After.
	MaxStreams int
	// MaxStreamsPerClient is the most streams one client address may hold
	// open at once; one more is refused with 429 and Retry-After. IPv6
	// addresses count by their /64 network, which one host usually holds.
	MaxStreamsPerClient int
	// QuestionRate is how many new questions a second one client address
	// may ask on average, with QuestionBurst (default: the rate rounded
	// up, at least 1) asked at once above it. A question over it is
	// refused with 429 and a Retry-After of when the next one is allowed.
	QuestionRate  float64
	QuestionBurst int
	// TrustedProxies are the proxies whose X-Forwarded-For header is
	// believed. A request from one of them counts as coming from the
	// address it names, read from the right and skipping the trusted
	// proxies in it; any other request counts as its peer address, and its
	// X-Forwarded-For is ignored (anyone can send one).
	TrustedProxies []netip.Prefix
}

// any reports whether l limits anything.
func (l Limits) any() bool {
	return l.MaxStreams > 0 || l.MaxStreamsPerClient > 0 || l.QuestionRate > 0
}

// Headers a page on another origin may read from a response, and send.
const (
	corsExposed = "Runnel-Run-Id, X-Request-Id, Retry-After"
	corsAllowed = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id"
	corsMethods = "GET, HEAD, POST, DELETE"
	corsMaxAge  = "600"
)

type guard struct {
	keys      [][sha256.Size]byte // hashes of the API keys; none means no key is needed
	pages     bool                // the pages and articles need a key too
	anyOrigin bool
	origins   []string // exact origins allowed by CORS, as "scheme://host[:port]"
	csrf      *http.CrossOriginProtection

	limits Limits
	burst  int

	mu      sync.Mutex
	open    int                     // streams open
	clients map[string]*clientShare // by client key, while it holds a stream or a rate limiter that is not full
	swept   time.Time
}

// clientShare is one client address's share of the limits.
type clientShare struct {
	open    int
	limiter *rate.Limiter
}

func newGuard(s *Server) (*guard, error) {
	g := &guard{pages: s.KeysForPages, limits: s.Limits, clients: map[string]*clientShare{}}
	for _, k := range s.APIKeys {
		if k = strings.TrimSpace(k); k != "" {
			g.keys = append(g.keys, sha256.Sum256([]byte(k)))
		}
	}
	if g.pages && len(g.keys) == 0 {
		return nil, errorString("KeysForPages is set but no API key is")
	}
	for _, o := range s.CORSOrigins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch {
		case o == "":
		case o == "*":
			g.anyOrigin = true
		default:
			if err := validOrigin(o); err != nil {
				return nil, err
			}
			g.origins = append(g.origins, o)
		}
	}
	if !g.anyOrigin {
		// A browser on a page elsewhere may not POST or DELETE (start or
		// cancel an answer in a visitor's name) unless CORS allows its
		// origin. Clients that are not browsers send no Origin and pass.
		g.csrf = http.NewCrossOriginProtection()
		for _, o := range g.origins {
			if err := g.csrf.AddTrustedOrigin(o); err != nil {
				return nil, err
			}
		}
	}
	g.burst = s.Limits.QuestionBurst
	if g.burst <= 0 {
		g.burst = max(1, int(math.Ceil(s.Limits.QuestionRate)))
	}
	return g, nil
}

type errorString string

func (e errorString) Error() string { return "runnel/http: " + string(e) }

// validOrigin reports whether o is an origin: a scheme, "://", and a host
// with an optional port, and nothing else.
func validOrigin(o string) error {
	scheme, host, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#@ ") {
		return errorString("CORS origin " + strconv.Quote(o) + " is not scheme://host[:port]")
	}
	return nil
}

// allowsOrigin reports whether CORS lets a page on origin read responses.
func (g *guard) allowsOrigin(origin string) bool {
	return origin != "" && (g.anyOrigin || slices.Contains(g.origins, origin))
}

// cors answers preflight requests and marks the responses a page on an
// allowed origin may read. Other pages' browsers get no CORS headers and
// keep the response from them. OPTIONS without a preflight says which
// methods the path takes.
func (s *Server) cors(allow func(*http.Request) []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.guard.answer(w, r, allow) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// answer sets the CORS headers of r's response, and answers r itself if it
// is a preflight or OPTIONS request, or an unsafe one from a page on an
// origin that is not allowed. It is not inlined into cors: a stream's
// goroutine stays parked below cors for the life of the stream, and its
// frame would be kept on every open stream's stack (see logRequest).
//
//go:noinline
func (g *guard) answer(w http.ResponseWriter, r *http.Request, allow func(*http.Request) []string) (answered bool) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	ok := g.allowsOrigin(origin)
	if ok {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", corsExposed)
	}
	if g.anyOrigin || len(g.origins) > 0 {
		h.Add("Vary", "Origin")
	}
	if r.Method != http.MethodOptions {
		if g.csrf != nil && g.csrf.Check(r) != nil {
			writeError(w, runnel.Errorf(runnel.EFORBIDDEN, "This server does not take %s requests from pages on other origins; its operator can allow an origin with --cors-origin.", r.Method))
			return true
		}
		return false
	}
	methods := allow(r)
	if len(methods) == 0 {
		handleNotFound(w, r)
		return true
	}
	h.Set("Allow", strings.Join(methods, ", "))
	if ok && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowed)
		h.Set("Access-Control-Max-Age", corsMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// private wraps a handler that needs an API key when the server has keys.
func (s *Server) private(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.refuse(w, r) {
			return
		}
		h(w, r)
	}
}

// refuse answers r with 401 if it does not carry a key the server needs.
// Like guard.answer, it stays out of a stream's parked frames.
//
//go:noinline
func (s *Server) refuse(w http.ResponseWriter, r *http.Request) bool {
	if s.guard.authorized(r) {
		return false
	}
	s.unauthorized(w, r)
	return true
}

// public wraps a handler of the pages and articles: public, unless the
// server's keys cover them too.
func (s *Server) public(h http.HandlerFunc) http.HandlerFunc {
	if s.guard.pages {
		return s.private(h)
	}
	return h
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	s.Metrics.refused(runnel.EUNAUTHORIZED)
	h := w.Header()
	h.Set("WWW-Authenticate", `Bearer realm="runnel"`)
	if s.guard.pages {
		// A browser asks its user for Basic credentials, and then sends
		// them with the page's own requests: the key as the password.
		h.Add("WWW-Authenticate", `Basic realm="runnel", charset="UTF-8"`)
	}
	_, _, basic := r.BasicAuth()
	msg := "This server needs an API key: send Authorization: Bearer <key>."
	if r.Header.Get("Authorization") != "" || r.URL.Query().Has("access_token") || basic {
		msg = "The API key is not one this server accepts."
	}
	writeError(w, runnel.Errorf(runnel.EUNAUTHORIZED, "%s", msg))
}

// authorized reports whether r carries one of the keys, or the server has
// none. The key may come as a Bearer token, as the password of Basic
// credentials (what a browser sends after asking its user), or, for GET
// requests that a browser's EventSource and WebSocket make without
// headers, as an access_token query parameter. Every key is compared, in
// constant time, whatever matches.
func (g *guard) authorized(r *http.Request) bool {
	if len(g.keys) == 0 {
		return true
	}
	cred, ok := credential(r)
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(cred))
	match := 0
	for i := range g.keys {
		match |= subtle.ConstantTimeCompare(sum[:], g.keys[i][:])
	}
	return match == 1
}

func credential(r *http.Request) (string, bool) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, rest, _ := strings.Cut(auth, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			rest = strings.TrimSpace(rest)
			return rest, rest != ""
		case strings.EqualFold(scheme, "Basic"):
			_, pw, ok := r.BasicAuth()
			return pw, ok && pw != ""
		}
		return "", false
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if v := r.URL.Query().Get("access_token"); v != "" {
			return v, true
		}
	}
	return "", false
}

// clientKey returns the address r counts as for the per-client limits.
func (g *guard) clientKey(r *http.Request) string {
	addr := peerAddr(r.RemoteAddr)
	if !addr.IsValid() {
		return r.RemoteAddr
	}
	if g.trusted(addr) {
		if fwd := forwardedFor(r, g.trusted); fwd.IsValid() {
			addr = fwd
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func (g *guard) trusted(a netip.Addr) bool {
	for _, p := range g.limits.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwardedFor returns the first address from the right of r's
// X-Forwarded-For headers that is not a trusted proxy: the client as the
// nearest proxy it did not pass through saw it. An address that does not
// parse ends the walk, at the last one that did.
func forwardedFor(r *http.Request, trusted func(netip.Addr) bool) netip.Addr {
	var last netip.Addr
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return last
			}
			a = a.Unmap()
			if !trusted(a) {
				return a
			}
			last = a
		}
	}
	return last
}

// refusal is why a stream or question was not admitted.
type refusal struct {
	err   *runnel.Error
	after time.Duration // for Retry-After
}

// admit counts a new stream of client against the limits, and a new
// question too when question is set. It returns the function that gives
// the stream back, or why it was refused.
func (g *guard) admit(client string, question bool, now time.Time) (release func(), no *refusal) {
	l := g.limits
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	if l.MaxStreams > 0 && g.open >= l.MaxStreams {
		return nil, &refusal{retryable(runnel.Errorf(runnel.EUNAVAILABLE, "The server is holding as many streams as it may (%d); try again shortly.", l.MaxStreams)), time.Second}
	}
	c := g.clients[client]
	if c == nil {
		c = &clientShare{}
	}
	if l.MaxStreamsPerClient > 0 && c.open >= l.MaxStreamsPerClient {
		return nil, &refusal{retryable(runnel.Errorf(runnel.ERATELIMITED, "This client already holds %d open streams, the most it may; close one first.", l.MaxStreamsPerClient)), time.Second}
	}
	if question {
		if no := g.rate(client, c, now); no != nil {
			g.clients[client] = c
			return nil, no
		}
	}
	c.open++
	g.open++
	g.clients[client] = c
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			c.open--
			g.open--
		})
	}, nil
}

// question counts a new question of client against the question rate, or
// says why it may not ask now.
func (g *guard) question(client string, now time.Time) *refusal {
	if g.limits.QuestionRate <= 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	c := g.clients[client]
	if c == nil {
		c = &clientShare{}
		g.clients[client] = c
	}
	return g.rate(client, c, now)
}

// rate takes one question from c's limiter. g.mu is held.
func (g *guard) rate(key string, c *clientShare, now time.Time) *refusal {
	l := g.limits
	if l.QuestionRate <= 0 {
		return nil
	}
	if c.limiter == nil {
		c.limiter = rate.NewLimiter(rate.Limit(l.QuestionRate), g.burst)
	}
	r := c.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &refusal{retryable(runnel.Errorf(runnel.ERATELIMITED, "This client is asking more than %g questions a second; try again in %ss.", l.QuestionRate, retryAfter(d))), d}
	}
	return nil
}

// websocketOptions lets a WebSocket in from the pages CORS allows, besides
// the server's own.
func (g *guard) websocketOptions() *websocket.AcceptOptions {
	switch {
	case g.anyOrigin:
		return &websocket.AcceptOptions{InsecureSkipVerify: true}
	case len(g.origins) == 0:
		return nil
	}
	hosts := make([]string, len(g.origins))
	for i, o := range g.origins {
		_, hosts[i], _ = strings.Cut(o, "://")
	}
	return &websocket.AcceptOptions{OriginPatterns: hosts}
}

// sweep forgets, once a minute, the clients that hold no stream and whose
// rate limiter has filled up again, so the map holds only the clients of
// the last while.
func (g *guard) sweep(now time.Time) {
	if now.Sub(g.swept) < time.Minute {
		return
	}
	g.swept = now
	for k, c := range g.clients {
		if c.open == 0 && (c.limiter == nil || c.limiter.TokensAt(now) >= float64(g.burst)) {
			delete(g.clients, k)
		}
	}
}

func retryable(e *runnel.Error) *runnel.Error {
	e.Retryable = true
	return e
}

// retryAfter formats d as a Retry-After value: whole seconds, rounded up,
// at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// limited admits a new stream (and question) of r, or writes the refusal
// and returns ok false. The caller calls release when the stream ends.
//
//go:noinline
func (s *Server) limited(w http.ResponseWriter, r *http.Request, question bool) (release func(), ok bool) {
	g := s.guard
	if !g.limits.any() {
		return func() {}, true
	}
	release, no := g.admit(g.clientKey(r), question, time.Now())
	if no != nil {
		s.Metrics.refused(no.err.Code)
		w.Header().Set("Retry-After", retryAfter(no.after))
		writeError(w, no.err)
		return nil, false
	}
	return release, true
}
