package deploy_test

// The replica tests run what compose.yaml deploys, on 127.0.0.1: one
// redis-server (Debian's, started by redistest), three "runnel serve"
// processes sharing their runs through it (--redis, a short --run-lease so
// that a dead replica is noticed within a second), and nginx round robin in
// front, with no stickiness, from deploy/nginx/runnel.conf. Each replica
// answers with an OpenAI-compatible fake that runs in the test: it counts
// the requests (the generator ran once), lets each token out only when the
// test says (so "cut mid-answer" is a place in the answer, not a moment),
// and sees its request's context end (the producing replica closed the LLM
// request). nginx adds X-Upstream to each response, so the test knows which
// replica answered.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/redis/redistest"
)

// lease is the replicas' --run-lease.
const lease = time.Second

// answerTokens is how many tokens the fake LLM answers with.
const answerTokens = 12

// TestReplicas runs three replicas behind nginx and checks that any replica
// resumes and cancels the runs of any other, that a dead replica's runs end
// for their readers, that no stream hangs while Redis is away, and that a
// thousand concurrent runs complete and leave no goroutine behind.
func TestReplicas(t *testing.T) {
	nginx := findNginx(t)
	redistest.Binary(t) // skips (or fails, in CI) without a redis-server
	bin := staticBinary(t, runtime.GOARCH)
	cl := startCluster(t, bin, nginx)

	t.Run("resume on another replica", func(t *testing.T) { testResumeElsewhere(t, cl) })
	t.Run("cancel on another replica", func(t *testing.T) { testCancelElsewhere(t, cl) })
	t.Run("kill -9 of the producer", func(t *testing.T) { testKillProducer(t, cl) })
	t.Run("1000 concurrent runs", func(t *testing.T) { testManyRuns(t, cl, 1000) })
	// Last, and each on replicas of its own: Redis restarts empty.
	t.Run("redis restarted at once", func(t *testing.T) { testRedisOutage(t, cl, 0) })
	t.Run("redis away past the lease", func(t *testing.T) { testRedisOutage(t, cl, 2*lease) })
	t.Run("redis away until the streams end", func(t *testing.T) { testRedisOutage(t, cl, -1) })
}

// cluster is what TestReplicas runs.
type cluster struct {
	bin      string
	redis    *redistest.Server
	llm      *fakeLLM
	replicas []*replica
	nginx    string // base URL
}

func startCluster(t *testing.T, bin, nginx string) *cluster {
	t.Helper()
	cl := &cluster{bin: bin, redis: redistest.Start(t), llm: newFakeLLM(t)}
	cl.replicas = cl.startReplicas(t, "r", 3)
	ups := make([]string, len(cl.replicas))
	for i, r := range cl.replicas {
		ups[i] = r.addr
	}
	cl.nginx = startNginx(t, nginx, nginxConfPath(t), ups, "add_header X-Upstream $upstream_addr always;")
	return cl
}

// startReplicas starts n replicas at once, named prefix0, prefix1...
func (cl *cluster) startReplicas(t *testing.T, prefix string, n int) []*replica {
	t.Helper()
	rs := make([]*replica, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i], errs[i] = cl.startReplica(t, fmt.Sprintf("%s%d", prefix, i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return rs
}

// replica is one runnel serve process.
type replica struct {
	name   string
	addr   string // 127.0.0.1:port
	base   string // http://addr
	cmd    *exec.Cmd
	stderr *lockedBuffer
	gone   chan struct{} // closed once it has exited
	err    error         // how it exited, once gone
	killed atomic.Bool   // the test killed or stopped it
}

// crashed reports whether the replica exited without the test asking.
func (r *replica) crashed() bool {
	select {
	case <-r.gone:
		return !r.killed.Load()
	default:
		return false
	}
}

// tail returns the end of the replica's log, where a panic is.
func (r *replica) tail() string {
	s := r.stderr.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// startReplica starts a replica sharing the cluster's Redis and fake LLM,
// and stops it by its PID when the test ends. It returns an error rather
// than fail, so that it can run in a goroutine.
func (cl *cluster) startReplica(t *testing.T, name string) (*replica, error) {
	args := []string{"serve", "--addr", "127.0.0.1:0",
		"--redis", cl.redis.URL(), "--run-lease", lease.String(),
		"--llm-url", cl.llm.URL(), "--llm-model", "fake", "--llm-key", "k", "--llm-retries", "0",
		// Every client here is 127.0.0.1: the 1,000 runs are one client.
		"--max-streams-per-client", "2000",
		"--shutdown-timeout", "2s",
		"--log-format", "json", "--log-level", "info"}
	cmd := exec.Command(cl.bin, args...)
	// None of this machine's RUNNEL_* or OPENAI_* variables reach it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RUNNEL_") && !strings.HasPrefix(kv, "OPENAI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	lines, exited, stderr := start(t, cmd)
	r := &replica{name: name, cmd: cmd, stderr: stderr, gone: make(chan struct{})}
	go func() { r.err = <-exited; close(r.gone) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^runnel: serving \d+ articles on http://(127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("replica %s printed %q\n%s", name, line, stderr.String())
		}
		r.addr, r.base = m[1], "http://"+m[1]
	case <-r.gone:
		r.killed.Store(true) // reported here, not again by stop
		return nil, fmt.Errorf("replica %s exited: %v\n%s", name, r.err, stderr.String())
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("replica %s did not say where it serves within 30s\n%s", name, stderr.String())
	}
	// The log line comes on stderr, which is copied on its own.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), "answers kept in redis"); {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replica %s does not keep its answers in redis:\n%s", name, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r, nil
}

// stop stops the replica with SIGTERM, by its PID, and kills it if it has
// not exited within 15 s.
func (r *replica) stop(t *testing.T) {
	if r.crashed() {
		t.Errorf("replica %s exited by itself: %v\n%s", r.name, r.err, r.tail())
		return
	}
	if r.killed.Swap(true) {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.gone:
		if r.err != nil {
			t.Errorf("replica %s exited with %v after SIGTERM\n%s", r.name, r.err, r.tail())
		}
	case <-time.After(15 * time.Second):
		r.cmd.Process.Kill()
		<-r.gone
		t.Errorf("replica %s did not stop within 15s of SIGTERM; killed\n%s", r.name, r.tail())
	}
	if t.Failed() {
		t.Logf("replica %s (%s) log:\n%s", r.name, r.addr, r.stderr.String())
	}
}

// kill kills the replica with SIGKILL and waits for it.
func (r *replica) kill() {
	r.killed.Store(true)
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.gone
}

// byAddr returns the replica at addr (an X-Upstream), or nil.
func (cl *cluster) byAddr(addr string) *replica {
	for _, r := range cl.replicas {
		if r.addr == addr {
			return r
		}
	}
	return nil
}

// fakeLLM is an OpenAI-compatible /v1/chat/completions that streams the
// same answerTokens tokens to every request. While gated, each request is
// handed to the test (calls) and sends a token only when the test lets it.
type fakeLLM struct {
	srv      *httptest.Server
	requests atomic.Int64
	gated    atomic.Bool
	calls    chan *llmCall
}

// llmCall is one request to the fake.
type llmCall struct {
	gate    chan struct{} // each value lets one token out
	free    chan struct{} // closed: the rest goes out at once
	freeMu  sync.Once
	aborted chan struct{} // closed when the request's context ended before the answer did
}

func newFakeLLM(t *testing.T) *fakeLLM {
	f := &fakeLLM{calls: make(chan *llmCall, 64)}
	f.gated.Store(true)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLLM) URL() string { return f.srv.URL + "/v1" }

func llmToken(i int) string { return fmt.Sprintf("tok%02d ", i) }

// fullAnswer is the answer the fake gives.
func fullAnswer() string {
	var b strings.Builder
	for i := range answerTokens {
		b.WriteString(llmToken(i))
	}
	return b.String()
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	f.requests.Add(1)
	c := &llmCall{gate: make(chan struct{}, answerTokens), free: make(chan struct{}), aborted: make(chan struct{})}
	if f.gated.Load() {
		select {
		case f.calls <- c:
		default:
			http.Error(w, "the test took no call", http.StatusInternalServerError)
			return
		}
	} else {
		c.release()
	}
	ctx := r.Context()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	chunk := func(delta map[string]string, finish any) error {
		b, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "fake",
			"choices": []map[string]any{{"index": 0, "delta": delta, "finish_reason": finish}}})
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		w.(http.Flusher).Flush()
		return nil
	}
	for i := range answerTokens {
		select {
		case <-c.gate:
		case <-c.free:
		case <-ctx.Done():
			close(c.aborted)
			return
		}
		if chunk(map[string]string{"content": llmToken(i)}, nil) != nil {
			close(c.aborted)
			return
		}
	}
	if chunk(map[string]string{}, "stop") != nil {
		close(c.aborted)
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// next returns the next gated request, waiting up to 10 s for it.
func (f *fakeLLM) next(t *testing.T) *llmCall {
	t.Helper()
	select {
	case c := <-f.calls:
		t.Cleanup(c.release) // no handler waits at its gate after the test
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the fake LLM got no request within 10s")
		return nil
	}
}

// let lets n more tokens out.
func (c *llmCall) let(n int) {
	for range n {
		c.gate <- struct{}{}
	}
}

// release lets every remaining token out.
func (c *llmCall) release() { c.freeMu.Do(func() { close(c.free) }) }

// stream is an NDJSON response being read, its events numbered as a
// client numbers them: every line but a ping counts, from 0 or from after.
type stream struct {
	resp     *http.Response
	cancel   context.CancelFunc
	dec      *rhttp.Reader
	next     int    // the number of the next event
	run      string // Runnel-Run-Id
	upstream string // X-Upstream, through nginx
	tokens   []string
	last     runnel.Event // the last event read
}

// open sends method url and returns the stream it answers with, bounded by
// d. It fails unless the answer is 200.
func open(t *testing.T, hc *http.Client, method, u string, after int, d time.Duration) *stream {
	t.Helper()
	s, err := tryOpen(hc, method, u, after, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func tryOpen(hc *http.Client, method, u string, after int, d time.Duration) (*stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	req, _ := http.NewRequestWithContext(ctx, method, u, nil)
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s %s: %s %s", method, u, resp.Status, b)
	}
	return &stream{resp: resp, cancel: cancel, dec: rhttp.NewReader(resp.Body, 0), next: after + 1,
		run: resp.Header.Get(rhttp.RunIDHeader), upstream: resp.Header.Get("X-Upstream")}, nil
}

// close cuts the connection.
func (s *stream) close() {
	s.resp.Body.Close()
	s.cancel()
}

// event returns the next event that is not a ping, with its number.
func (s *stream) event() (runnel.Event, error) {
	for {
		e, err := s.dec.Next()
		if err != nil {
			return e, err
		}
		if e.Type == runnel.EventPing {
			continue
		}
		e.Seq = s.next
		s.next++
		if e.Type == runnel.EventToken {
			s.tokens = append(s.tokens, e.Token)
		}
		s.last = e
		return e, nil
	}
}

// tokensUntil reads until the stream holds n tokens.
func (s *stream) tokensUntil(t *testing.T, n int) {
	t.Helper()
	for len(s.tokens) < n {
		e, err := s.event()
		if err != nil {
			t.Fatalf("reading run %s after %d tokens: %v", s.run, len(s.tokens), err)
		}
		if e.Terminal() {
			t.Fatalf("run %s ended with %s after %d tokens, want %d: %+v", s.run, e.Type, len(s.tokens), n, e)
		}
	}
}

// toEnd reads until the terminal event and returns it, with the error
// that ended the stream before one (io.EOF: a stream that just stopped).
func (s *stream) toEnd() (runnel.Event, error) {
	for {
		e, err := s.event()
		if err != nil {
			return e, err
		}
		if e.Terminal() {
			return e, nil
		}
	}
}

func askURL(base string) string {
	return base + "/articles/stream?question=" + url.QueryEscape(question)
}

func followURL(base, run string, after int) string {
	return base + "/runs/" + run + "?after=" + strconv.Itoa(after)
}

// testResumeElsewhere asks through nginx, cuts the connection mid-answer,
// resumes through nginx on another replica and checks the answer is whole.
func testResumeElsewhere(t *testing.T, cl *cluster) {
	before := cl.llm.requests.Load()
	hc := &http.Client{}
	s := open(t, hc, http.MethodGet, askURL(cl.nginx), -1, 30*time.Second)
	producer := cl.byAddr(s.upstream)
	if producer == nil || s.run == "" {
		t.Fatalf("the answer came from X-Upstream %q, run %q: not a replica's", s.upstream, s.run)
	}
	c := cl.llm.next(t)
	c.let(5)
	s.tokensUntil(t, 5)
	got := append([]string(nil), s.tokens...)
	last := s.next - 1
	s.close() // the reader's connection is cut mid-answer

	// nginx sends each request to the next replica: the resumption lands
	// elsewhere at the first or second try.
	var r *stream
	for try := 0; ; try++ {
		r = open(t, hc, http.MethodGet, followURL(cl.nginx, s.run, last), last, 30*time.Second)
		if r.upstream != s.upstream {
			break
		}
		r.close()
		if try == 5 {
			t.Fatalf("nginx sent every resumption of run %s to its producer %s", s.run, producer.name)
		}
	}
	follower := cl.byAddr(r.upstream)
	if follower == nil {
		t.Fatalf("the resumption came from X-Upstream %q, not a replica", r.upstream)
	}
	t.Logf("run %s: asked on %s, cut after event %d (%d tokens), resumed on %s, through nginx", s.run, producer.name, last, len(got), follower.name)
	c.release()
	e, err := r.toEnd()
	if err != nil || e.Type != runnel.EventDone {
		t.Fatalf("the resumed run on %s ended with %+v, %v; want done", follower.name, e, err)
	}
	got = append(got, r.tokens...)
	if answer := strings.Join(got, ""); answer != fullAnswer() {
		t.Errorf("the answer read in two parts = %q, want %q (nothing missing, nothing twice)", answer, fullAnswer())
	}
	if n := cl.llm.requests.Load() - before; n != 1 {
		t.Errorf("the LLM was asked %d times for one answer, want once", n)
	}
}

// testCancelElsewhere cancels on one replica a run another produces: the
// producer's LLM request ends and every reader gets the canceled event.
func testCancelElsewhere(t *testing.T, cl *cluster) {
	a, b, c := cl.replicas[0], cl.replicas[1], cl.replicas[2]
	hc := &http.Client{}
	s := open(t, hc, http.MethodGet, askURL(a.base), -1, 30*time.Second)
	call := cl.llm.next(t)
	call.let(2)
	s.tokensUntil(t, 2)
	f := open(t, hc, http.MethodGet, followURL(c.base, s.run, -1), -1, 30*time.Second)
	f.tokensUntil(t, 2)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, b.base+"/runs/"+s.run, nil)
	sent := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ ID, State string }
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || res.State != "canceled" {
		t.Fatalf("DELETE /runs/%s on %s: %s %+v %v; want 200 canceled", s.run, b.name, resp.Status, res, err)
	}
	select {
	case <-call.aborted:
		t.Logf("run %s produced on %s, canceled on %s: the LLM request ended %v after the DELETE", s.run, a.name, b.name, time.Since(sent).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("the LLM request of run %s (on %s) did not end within 10s of its cancel on %s", s.run, a.name, b.name)
	}
	for _, r := range []struct {
		name string
		s    *stream
	}{{"the asker on " + a.name, s}, {"the follower on " + c.name, f}} {
		e, err := r.s.toEnd()
		if err != nil || e.Type != runnel.EventCanceled || e.Canceled == nil || e.Canceled.Reason != runnel.CancelByClient {
			t.Errorf("%s: the stream ended with %+v, %v; want canceled by the client", r.name, e, err)
		}
	}
}

// testKillProducer kills the replica producing a run: a reader on another
// replica gets a terminal retryable error within a few leases.
func testKillProducer(t *testing.T, cl *cluster) {
	v, err := cl.startReplica(t, "victim")
	if err != nil {
		t.Fatal(err)
	}
	b := cl.replicas[1]
	hc := &http.Client{}
	s := open(t, hc, http.MethodGet, askURL(v.base), -1, 30*time.Second)
	call := cl.llm.next(t)
	call.let(3)
	s.tokensUntil(t, 3)
	f := open(t, hc, http.MethodGet, followURL(b.base, s.run, -1), -1, 30*time.Second)
	f.tokensUntil(t, 3)

	v.kill()
	killed := time.Now()
	const bound = 15 * time.Second
	done := make(chan struct{})
	var e runnel.Event
	go func() {
		defer close(done)
		e, err = f.toEnd()
	}()
	select {
	case <-done:
	case <-time.After(bound):
		f.close()
		<-done
		t.Fatalf("the follower on %s got no terminal event within %v of kill -9 of %s (lease %v)", b.name, bound, v.name, lease)
	}
	took := time.Since(killed)
	if err != nil || e.Type != runnel.EventError || e.Err == nil || e.Err.Code != runnel.EUNAVAILABLE || !e.Err.Retryable {
		t.Fatalf("the follower on %s: the stream ended with %+v (%v), %v; want a retryable unavailable error", b.name, e, e.Err, err)
	}
	t.Logf("run %s: kill -9 of its producer %s; the follower on %s got %q (retryable) %v later (lease %v)", s.run, v.name, b.name, e.Err.Message, took.Round(time.Millisecond), lease)
	// A resumption anywhere now gets nothing more: the run has ended.
	resp, err := hc.Get(followURL(cl.replicas[2].base, s.run, f.next-1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("GET /runs/%s?after=%d (its terminal event) = %s, want 204", s.run, f.next-1, resp.Status)
	}
}

// downBound bounds how long a stream may wait while Redis is away.
const downBound = 10 * lease

// testRedisOutage stops Redis while runs are in flight, with their askers
// on one replica and followers on another, and starts it again (empty)
// after outage, or with outage < 0 once every stream has ended (within
// downBound): every stream ends with a terminal event, or goes on to done,
// and none hangs. Then new questions work, and are shared again.
func testRedisOutage(t *testing.T, cl *cluster, outage time.Duration) {
	const runs = 6
	type reader struct {
		name string
		s    *stream
	}
	var readers []reader
	var calls []*llmCall
	hc := &http.Client{}
	reps := cl.startReplicas(t, "o", 3)
	for i := range runs {
		a, f := reps[i%3], reps[(i+1)%3]
		s := open(t, hc, http.MethodGet, askURL(a.base), -1, 30*time.Second)
		c := cl.llm.next(t)
		c.let(2)
		s.tokensUntil(t, 2)
		fs := open(t, hc, http.MethodGet, followURL(f.base, s.run, -1), -1, 30*time.Second)
		fs.tokensUntil(t, 2)
		calls = append(calls, c)
		readers = append(readers,
			reader{fmt.Sprintf("run %d's asker on %s", i, a.name), s},
			reader{fmt.Sprintf("run %d's follower on %s", i, f.name), fs})
	}

	cl.redis.Stop()
	stopped := time.Now()
	for _, c := range calls {
		c.let(2) // produced while Redis is away
	}
	// Each stream is bounded by its request's context (30 s from when it
	// was opened): one that hangs ends with that context's error.
	type outcome struct {
		e    runnel.Event
		err  error
		took time.Duration
	}
	outcomes := make([]outcome, len(readers))
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := r.s.toEnd()
			outcomes[i] = outcome{e, err, time.Since(stopped)}
		}()
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	if outage >= 0 {
		time.Sleep(outage) // the outage is the scenario: how long Redis is away
	} else {
		// Away until every stream has ended: none may wait for Redis.
		for _, c := range calls {
			c.release()
		}
		select {
		case <-ended:
			t.Logf("every stream ended %v after Redis stopped, while it was away", time.Since(stopped).Round(time.Millisecond))
		case <-time.After(downBound):
			t.Errorf("streams still open %v after Redis stopped, while it is away: they wait for Redis", downBound)
		}
	}
	cl.redis.Restart()
	t.Logf("redis away for %v", time.Since(stopped).Round(time.Millisecond))
	for _, c := range calls {
		c.release()
	}
	<-ended
	counts := map[string]int{}
	for i, r := range readers {
		o := outcomes[i]
		switch {
		case errors.Is(o.err, context.DeadlineExceeded):
			t.Errorf("%s (run %s) hung: no terminal event within its 30s bound", r.name, r.s.run)
			counts["hung"]++
		case o.err != nil:
			t.Errorf("%s (run %s): the stream stopped without a terminal event after %d tokens, %v after Redis stopped: %v", r.name, r.s.run, len(r.s.tokens), o.took.Round(time.Millisecond), o.err)
			counts["truncated"]++
		case o.e.Type == runnel.EventDone:
			if answer := strings.Join(r.s.tokens, ""); answer != fullAnswer() {
				t.Errorf("%s (run %s) ended with done after the answer %q, want %q: silently truncated", r.name, r.s.run, answer, fullAnswer())
			}
			counts["done"]++
		case o.e.Type == runnel.EventError:
			t.Logf("%s (run %s): error %s (retryable %v) %q after %d tokens, %v after Redis stopped", r.name, r.s.run, o.e.Err.Code, o.e.Err.Retryable, o.e.Err.Message, len(r.s.tokens), o.took.Round(time.Millisecond))
			counts["error "+string(o.e.Err.Code)]++
		default:
			t.Logf("%s (run %s): %s after %d tokens, %v after Redis stopped", r.name, r.s.run, o.e.Type, len(r.s.tokens), o.took.Round(time.Millisecond))
			counts[string(o.e.Type)]++
		}
	}
	t.Logf("the %d streams ended: %v", len(readers), counts)
	for _, r := range reps {
		if r.crashed() {
			t.Fatalf("replica %s crashed during the outage: %v\n%s", r.name, r.err, r.tail())
		}
	}

	// New questions: answered on every replica, and shared through Redis
	// again (a run asked on one is read whole on the next) once the
	// replicas have reconnected.
	cl.llm.gated.Store(false)
	defer cl.llm.gated.Store(true)
	back := time.Now()
	for i, a := range reps {
		f := reps[(i+1)%3]
		for try := 0; ; try++ {
			err := askAndFollow(hc, a, f)
			if err == nil {
				break
			}
			if time.Since(back) > 10*time.Second {
				t.Fatalf("after Redis came back, asking on %s and reading on %s: %v (for %v)", a.name, f.name, err, time.Since(back).Round(time.Millisecond))
			}
			t.Logf("after Redis came back, try %d: %v", try, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("new questions shared across replicas %v after Redis came back", time.Since(back).Round(time.Millisecond))
}

// askAndFollow asks on a and reads the run whole on f.
func askAndFollow(hc *http.Client, a, f *replica) error {
	s, err := tryOpen(hc, http.MethodGet, askURL(a.base), -1, 10*time.Second)
	if err != nil {
		return err
	}
	defer s.close()
	if e, err := s.toEnd(); err != nil || e.Type != runnel.EventDone || strings.Join(s.tokens, "") != fullAnswer() {
		return fmt.Errorf("asked on %s: %+v, %v, answer %q", a.name, e, err, strings.Join(s.tokens, ""))
	}
	r, err := tryOpen(hc, http.MethodGet, followURL(f.base, s.run, -1), -1, 10*time.Second)
	if err != nil {
		return fmt.Errorf("read on %s: %w", f.name, err)
	}
	defer r.close()
	if e, err := r.toEnd(); err != nil || e.Type != runnel.EventDone || strings.Join(r.tokens, "") != fullAnswer() {
		return fmt.Errorf("read on %s: %+v, %v, answer %q", f.name, e, err, strings.Join(r.tokens, ""))
	}
	return nil
}

// testManyRuns asks n questions at once, round robin over the replicas,
// checks that every answer is whole, and that each replica's goroutines
// come back to what they were before.
func testManyRuns(t *testing.T, cl *cluster, n int) {
	// This process holds about four descriptors a run: its connection to
	// a replica and the fake LLM's from it, both ends. (Go raises the soft
	// limit to the hard one at start, the replicas' too.)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(4*n+512) {
		t.Skipf("ulimit -n is %d; %d concurrent runs need about %d descriptors", lim.Cur, n, 4*n+512)
	}
	cl.llm.gated.Store(false)
	defer cl.llm.gated.Store(true)
	// No connection outlives a request: a kept-alive one holds a goroutine
	// on the replica. The replicas' own idle connections to the LLM are
	// closed from the fake's side before each count.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	cl.llm.srv.CloseClientConnections()
	baseline := make([]int, len(cl.replicas))
	for i, r := range cl.replicas {
		baseline[i] = goroutines(t, hc, r)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := cl.replicas[i%len(cl.replicas)]
			err := func() error {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, askURL(r.base), nil)
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(resp.Body)
					return fmt.Errorf("%s %s", resp.Status, b)
				}
				s := &stream{resp: resp, cancel: func() {}, dec: rhttp.NewReader(resp.Body, 0)}
				e, err := s.toEnd()
				if err != nil || e.Type != runnel.EventDone {
					return fmt.Errorf("ended with %+v, %v after %d tokens", e, err, len(s.tokens))
				}
				if got := strings.Join(s.tokens, ""); got != fullAnswer() {
					return fmt.Errorf("answer %q, want %q", got, fullAnswer())
				}
				return nil
			}()
			if err != nil {
				failed.Add(1)
				errs <- fmt.Errorf("run %d on %s: %w", i, r.name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	took := time.Since(start)
	shown := 0
	for err := range errs {
		if shown++; shown <= 5 {
			t.Error(err)
		}
	}
	if failed.Load() > 0 {
		t.Fatalf("%d of %d runs failed", failed.Load(), n)
	}
	t.Logf("%d concurrent runs over %d replicas ended with done in %v", n, len(cl.replicas), took.Round(time.Millisecond))

	// Streams and runs end asynchronously: wait, with a bound, for the
	// goroutines to come back to within a margin of the baseline.
	const margin = 10
	cl.llm.srv.CloseClientConnections()
	deadline := time.Now().Add(20 * time.Second)
	for i, r := range cl.replicas {
		var now, peak int
		for {
			now = goroutines(t, hc, r)
			peak = max(peak, now)
			if now <= baseline[i]+margin {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("replica %s holds %d goroutines 20s after the runs ended, %d before them", r.name, now, baseline[i])
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("replica %s: %d goroutines before the runs, %d after", r.name, baseline[i], now)
	}
}

// goroutines returns the go_goroutines a replica's /metrics reports.
func goroutines(t *testing.T, hc *http.Client, r *replica) int {
	t.Helper()
	resp, err := hc.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %s, %v", r.name, resp.Status, err)
	}
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("GET /metrics on %s has no go_goroutines", r.name)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestReplicasCompose checks that compose.yaml deploys what TestReplicas
// runs: a Redis with a health check and no published port, and at least
// two runnel replicas, which keep their runs in it and start once it
// answers, behind the nginx upstream.
func TestReplicasCompose(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Ports       []string          `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
			Deploy      struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	rd, ok := c.Services["redis"]
	if !ok {
		t.Fatal("compose.yaml has no redis service")
	}
	if !strings.HasPrefix(rd.Image, "redis:") || len(rd.Ports) > 0 {
		t.Errorf("the redis service: image %q, ports %q; want redis:..., no published port", rd.Image, rd.Ports)
	}
	if hc := strings.Join(rd.Healthcheck.Test, " "); !strings.Contains(hc, "redis-cli ping") {
		t.Errorf("the redis service's healthcheck is %q, want redis-cli ping", hc)
	}
	rn := c.Services["runnel"]
	if rn.Deploy.Replicas < 2 {
		t.Errorf("the runnel service runs %d replicas, want at least 2", rn.Deploy.Replicas)
	}
	u, err := url.Parse(rn.Environment["RUNNEL_REDIS_URL"])
	if err != nil || u.Scheme != "redis" || u.Hostname() != "redis" {
		t.Errorf("the runnel service's RUNNEL_REDIS_URL is %q, want redis://redis:6379/...", rn.Environment["RUNNEL_REDIS_URL"])
	}
	if d := rn.DependsOn["redis"].Condition; d != "service_healthy" {
		t.Errorf("the runnel service depends on redis with condition %q, want service_healthy", d)
	}
	conf := readFile(t, nginxConfPath(t))
	up := regexp.MustCompile(`(?s)upstream runnel \{([^}]*)\}`).FindStringSubmatch(conf)
	if up == nil || regexp.MustCompile(`(?m)^\s*server `).FindAllString(up[1], -1) == nil || !strings.Contains(up[1], "server runnel:8080;") {
		t.Errorf("runnel.conf's upstream does not name the runnel service (server runnel:8080;), whose replicas nginx resolves it to")
	}
	if strings.Contains(up[1], "ip_hash") || strings.Contains(up[1], "hash ") || strings.Contains(up[1], "sticky") {
		t.Errorf("runnel.conf's upstream is sticky; the replicas share their runs and need no stickiness:\n%s", up[1])
	}
}
