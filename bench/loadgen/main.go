// Command loadgen is runnel's load generator for scenarios with many open
// streams. It opens -conns connections to a server on loopback (evenly over
// -ramp), asks -per questions one after another on each (keep-alive), and
// reports what a client sees and what the server spends:
//
//   - connect: the TCP connect of each new connection
//   - first byte: from the request written to the first byte of the response
//   - titles: from the request written to the `titles` event
//   - token latency: the arrival time of each `token` event minus the time
//     stamped in its text ("t=<unix ns> ", bench/internal/paced); client and
//     server share the machine's clock
//   - stream length: from the request written to the `done` event
//   - errors (no response, a status other than 200, an `error` or `canceled`
//     event), broken streams (the body ended without a terminal event) and
//     cut streams (still open when -timeout ended the run)
//   - of the server process -pid, from /proc: peak RSS (VmHWM), CPU seconds
//     (utime+stime), write system calls per event received (syscw of
//     /proc/<pid>/io), and, while the most streams were open, its RSS minus
//     its RSS before the run, per open stream
//   - with -perf, write, writev, sendto and sendmsg calls per event counted
//     by `perf stat` (syscw does not count send(2) and sendmsg(2), which
//     Python's asyncio writes sockets with)
//
// Questions come from -questions, one a line, dealt in a shuffled order so
// that consecutive requests ask different questions.
//
//	go run ./bench/loadgen -url http://127.0.0.1:18090 -conns 100 -per 2 -ramp 1s -pid 1234
//
// -json appends the result as one JSON line to a file; `loadgen -table FILE`
// prints the lines of such a file as Markdown tables, one a scenario, a row
// a server. loadgen stops by itself after its requests or -timeout.
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
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runnel/runnel/bench/internal/paced"
)

type config struct {
	base      string
	conns     int
	per       int
	ramp      time.Duration
	questions []string
	method    string
	timeout   time.Duration
	pid       int
	sample    time.Duration
	perf      bool
	seed      uint64
	warmup    int
}

func main() {
	var (
		c        config
		qfile    string
		jsonOut  string
		scenario string
		server   string
		table    string
		describe string
	)
	flag.StringVar(&c.base, "url", "http://127.0.0.1:18090", "server `URL` (loopback only)")
	flag.IntVar(&c.conns, "conns", 100, "connections, each a client asking one question after another")
	flag.IntVar(&c.per, "per", 1, "questions asked one after another on each connection (keep-alive)")
	flag.DurationVar(&c.ramp, "ramp", 0, "open the connections evenly over this long")
	flag.StringVar(&qfile, "questions", "bench/questions.txt", "file of questions, one a line")
	flag.StringVar(&c.method, "method", "GET", "GET or POST")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Minute, "end the run after this long; streams still open are counted as cut")
	flag.IntVar(&c.pid, "pid", 0, "server process `id` to read memory, CPU and writes of from /proc; 0 for none")
	flag.DurationVar(&c.sample, "sample", 50*time.Millisecond, "how often to sample the server's RSS")
	flag.BoolVar(&c.perf, "perf", false, "also count the server's write-type system calls with perf stat")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the questions' order")
	flag.IntVar(&c.warmup, "warmup", 3, "before measuring, ask this many questions one at a time, each read up to its sources event")
	flag.StringVar(&jsonOut, "json", "", "append the result as a JSON line to this `file`")
	flag.StringVar(&scenario, "scenario", "", "scenario name, for -json and -table")
	flag.StringVar(&server, "server", "", "server name, for -json and -table")
	flag.StringVar(&table, "table", "", "print the results in this JSONL `file` as Markdown tables, and exit")
	flag.StringVar(&describe, "describe", "", "scenario description, for -json and -table")
	cpuprofile := flag.String("cpuprofile", "", "write the load generator's own CPU profile to this `file`")
	flag.Parse()

	if table != "" {
		if err := printTables(os.Stdout, table); err != nil {
			fatal(err)
		}
		return
	}
	u, err := url.Parse(c.base)
	if err != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		fatal(errors.New("-url must be http:// on a loopback address"))
	}
	if c.conns < 1 || c.per < 1 || c.ramp < 0 || c.timeout <= 0 || (c.method != "GET" && c.method != "POST") {
		fatal(errors.New("want -conns >= 1, -per >= 1, -ramp >= 0, -timeout > 0, -method GET or POST"))
	}
	if c.questions, err = readQuestions(qfile); err != nil {
		fatal(err)
	}

	// A guard: whatever happens, the process ends soon after -timeout.
	time.AfterFunc(c.timeout+30*time.Second, func() {
		fmt.Fprintln(os.Stderr, "loadgen: still running 30 s after -timeout; exiting")
		os.Exit(3)
	})
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	r := run(c)
	r.Scenario, r.Server, r.Describe = scenario, server, describe
	r.print(os.Stdout)
	if jsonOut != "" {
		if err := appendJSON(jsonOut, r); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(2)
}

func readQuestions(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var qs []string
	seen := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !seen[l] {
			seen[l] = true
			qs = append(qs, l)
		}
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no questions", path)
	}
	return qs, nil
}

// outcome is how one stream ended.
type outcome int

const (
	ok     outcome = iota
	failed         // no response, a status other than 200, or an error or canceled event
	broken         // the body ended without a terminal event
	cut            // the run's timeout ended it
)

// stream is what one question's stream measured.
type stream struct {
	outcome        outcome
	err            error
	firstByte      time.Duration
	connect        time.Duration // TCP connect, when the stream dialed
	titles, done   time.Duration
	events, tokens int
	dialed         bool // on a new connection
}

// worker is one connection's share of the measurements, merged at the end.
type worker struct {
	streams []stream
	tokLat  []time.Duration
}

// Result is one run's report, also its JSON line.
type Result struct {
	Scenario string  `json:"scenario"`
	Server   string  `json:"server"`
	Describe string  `json:"describe,omitempty"`
	URL      string  `json:"url"`
	Conns    int     `json:"conns"`
	Per      int     `json:"per"`
	RampS    float64 `json:"ramp_s"`
	Method   string  `json:"method"`

	Streams  int      `json:"streams"`
	OK       int      `json:"ok"`
	Errors   int      `json:"errors"`
	Broken   int      `json:"broken"`
	Cut      int      `json:"cut"`
	Dials    int      `json:"dials"`
	Events   int64    `json:"events"`
	Tokens   int64    `json:"tokens"`
	ElapsedS float64  `json:"elapsed_s"`
	EventsPS float64  `json:"events_per_s"`
	FirstErr []string `json:"first_errors,omitempty"`

	Connect   Pct `json:"connect_ms"`
	FirstByte Pct `json:"first_byte_ms"`
	Titles    Pct `json:"titles_ms"`
	TokenLat  Pct `json:"token_latency_ms"`
	Length    Pct `json:"stream_ms"`

	PeakOpen int `json:"peak_open"`

	Proc      *Proc   `json:"proc,omitempty"`
	ClientCPU float64 `json:"client_cpu_s"`
}

// Proc is what the server's /proc entries said.
type Proc struct {
	PID            int     `json:"pid"`
	RSSBeforeKiB   int64   `json:"rss_before_kib"`
	PeakRSSKiB     int64   `json:"peak_rss_kib"`     // VmHWM at the end: the process's lifetime peak
	PeakSampledKiB int64   `json:"peak_sampled_kib"` // the highest VmRSS sampled during the run
	RSSAtOpenKiB   int64   `json:"rss_at_open_kib"`  // the highest VmRSS sampled while PeakOpen streams were open
	OpenAtSample   int     `json:"open_at_sample"`   // streams open at that sample
	KiBPerOpen     float64 `json:"kib_per_open"`     // (RSSAtOpen - RSSBefore) / OpenAtSample
	CPUS           float64 `json:"cpu_s"`            // utime+stime delta
	Syscw          int64   `json:"syscw"`            // /proc/<pid>/io syscw delta
	SyscwPerEvent  float64 `json:"syscw_per_event"`
	PerfWrites     int64   `json:"perf_writes,omitempty"` // write+writev+sendto+sendmsg, from perf stat
	PerfPerEvent   float64 `json:"perf_writes_per_event,omitempty"`
	PerfErr        string  `json:"perf_error,omitempty"`
}

// Pct holds percentiles in milliseconds.
type Pct struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(d []time.Duration) Pct {
	if len(d) == 0 {
		return Pct{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(float64(len(d))*p/100+0.999999) - 1 // nearest rank
		i = max(0, min(len(d)-1, i))
		return float64(d[i]) / 1e6
	}
	return Pct{N: len(d), P50: at(50), P99: at(99), Max: float64(d[len(d)-1]) / 1e6}
}

func run(c config) *Result {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	if c.warmup > 0 {
		warmup(ctx, c)
	}
	var perf *perfStat
	var before procSnap
	if c.pid > 0 {
		if c.perf {
			perf = startPerf(c.pid)
		}
		before = readProc(c.pid)
	}
	cpuBefore := selfCPU()

	var open, peakOpen atomic.Int64
	var sampler sync.WaitGroup
	stopSampling := make(chan struct{})
	var peakSampled, rssAtOpen int64
	var openAtSample int
	if c.pid > 0 {
		sampler.Go(func() {
			t := time.NewTicker(c.sample)
			defer t.Stop()
			for {
				o := int(open.Load())
				rss := readRSS(c.pid)
				peakSampled = max(peakSampled, rss)
				if o > openAtSample || (o == openAtSample && o > 0 && rss > rssAtOpen) {
					openAtSample, rssAtOpen = o, rss
				}
				select {
				case <-stopSampling:
					return
				case <-t.C:
				}
			}
		})
	}

	order := rand.New(rand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15)).Perm(len(c.questions))
	workers := make([]worker, c.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c.conns {
		wg.Go(func() {
			if c.ramp > 0 {
				if !sleepUntil(ctx, start.Add(c.ramp*time.Duration(i)/time.Duration(c.conns))) {
					return
				}
			}
			tr := &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
				DisableCompression:  true,
				MaxIdleConns:        1,
				MaxIdleConnsPerHost: 1,
				MaxConnsPerHost:     1,
				IdleConnTimeout:     90 * time.Second,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			w := &workers[i]
			for j := range c.per {
				if ctx.Err() != nil {
					return
				}
				q := c.questions[order[(i*c.per+j)%len(order)]]
				s := ask(ctx, client, c, q, &open, &peakOpen, &w.tokLat)
				w.streams = append(w.streams, s)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	sampler.Wait()

	r := &Result{URL: c.base, Conns: c.conns, Per: c.per, RampS: c.ramp.Seconds(), Method: c.method, ElapsedS: elapsed.Seconds()}
	var conn, fb, ti, lat, length []time.Duration
	for _, w := range workers {
		lat = append(lat, w.tokLat...)
		for _, s := range w.streams {
			r.Streams++
			r.Events += int64(s.events)
			r.Tokens += int64(s.tokens)
			if s.dialed {
				r.Dials++
			}
			if s.connect > 0 {
				conn = append(conn, s.connect)
			}
			if s.firstByte > 0 {
				fb = append(fb, s.firstByte)
			}
			if s.titles > 0 {
				ti = append(ti, s.titles)
			}
			switch s.outcome {
			case ok:
				r.OK++
				length = append(length, s.done)
			case failed:
				r.Errors++
			case broken:
				r.Broken++
			case cut:
				r.Cut++
			}
			if s.err != nil && s.outcome != cut && len(r.FirstErr) < 5 {
				r.FirstErr = append(r.FirstErr, s.err.Error())
			}
		}
	}
	// Connections that never started because the run timed out during the ramp.
	r.Cut += c.conns*c.per - r.Streams
	r.EventsPS = float64(r.Events) / elapsed.Seconds()
	r.Connect = percentiles(conn)
	r.FirstByte, r.Titles, r.TokenLat, r.Length = percentiles(fb), percentiles(ti), percentiles(lat), percentiles(length)
	r.PeakOpen = int(peakOpen.Load())
	r.ClientCPU = selfCPU() - cpuBefore

	if c.pid > 0 {
		after := readProc(c.pid)
		p := &Proc{
			PID:            c.pid,
			RSSBeforeKiB:   before.rss,
			PeakRSSKiB:     after.hwm,
			PeakSampledKiB: peakSampled,
			RSSAtOpenKiB:   rssAtOpen,
			OpenAtSample:   openAtSample,
			CPUS:           after.cpu - before.cpu,
			Syscw:          after.syscw - before.syscw,
		}
		if openAtSample > 0 {
			p.KiBPerOpen = float64(rssAtOpen-before.rss) / float64(openAtSample)
		}
		if r.Events > 0 {
			p.SyscwPerEvent = float64(p.Syscw) / float64(r.Events)
		}
		if perf != nil {
			n, err := perf.stop()
			if err != nil {
				p.PerfErr = err.Error()
			} else {
				p.PerfWrites = n
				if r.Events > 0 {
					p.PerfPerEvent = float64(n) / float64(r.Events)
				}
			}
		}
		r.Proc = p
	}
	return r
}

// warmup asks c.warmup questions, the last of the file, each on its own
// connection, reads each stream to its sources event and leaves: enough for
// the server to have loaded what it loads lazily before the measurements
// start. (A runnel run left this way lingers and finishes its answer.)
func warmup(ctx context.Context, c config) {
	for i := range c.warmup {
		q := c.questions[len(c.questions)-1-i%len(c.questions)]
		req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/articles/stream?question="+url.QueryEscape(q), nil)
		if err != nil {
			return
		}
		tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 16<<10), 1<<20)
			for sc.Scan() && !bytes.Contains(sc.Bytes(), []byte(`"type":"sources"`)) {
			}
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
	}
	sleepUntil(ctx, time.Now().Add(200*time.Millisecond))
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

const tokenPrefix = `{"type":"token","data":"`

// ask sends one question and measures its stream.
func ask(ctx context.Context, client *http.Client, c config, question string, open, peakOpen *atomic.Int64, tokLat *[]time.Duration) (s stream) {
	var (
		req *http.Request
		err error
	)
	if c.method == "POST" {
		body, _ := json.Marshal(map[string]string{"question": question})
		req, err = http.NewRequestWithContext(ctx, "POST", c.base+"/articles/stream", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, "GET", c.base+"/articles/stream?question="+url.QueryEscape(question), nil)
	}
	if err != nil {
		return stream{outcome: failed, err: err}
	}
	var wrote, first, connStart, connDone atomic.Int64 // Unix ns
	var dialed atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:              func(info httptrace.GotConnInfo) { dialed.Store(!info.Reused) },
		ConnectStart:         func(string, string) { connStart.Store(time.Now().UnixNano()) },
		ConnectDone:          func(string, string, error) { connDone.Store(time.Now().UnixNano()) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) },
		GotFirstResponseByte: func() { first.Store(time.Now().UnixNano()) },
	}))
	fail := func(o outcome, err error) stream {
		if ctx.Err() != nil {
			o = cut
		}
		s.outcome, s.err, s.dialed = o, err, dialed.Load()
		return s
	}
	sent := time.Now()
	resp, err := client.Do(req)
	if w := wrote.Load(); w > 0 {
		sent = time.Unix(0, w)
	}
	if f := first.Load(); f > 0 {
		s.firstByte = time.Unix(0, f).Sub(sent)
	}
	if a, b := connStart.Load(), connDone.Load(); a > 0 && b >= a {
		s.connect = time.Duration(b - a)
	}
	if err != nil {
		return fail(failed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fail(failed, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b)))
	}
	if n := open.Add(1); n > peakOpen.Load() {
		for p := peakOpen.Load(); n > p && !peakOpen.CompareAndSwap(p, n); p = peakOpen.Load() {
		}
	}
	defer open.Add(-1)

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 16<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		now := time.Now()
		s.events++
		if bytes.HasPrefix(line, []byte(tokenPrefix)) {
			s.tokens++
			if ns, ok := paced.Parse(line[len(tokenPrefix):]); ok {
				*tokLat = append(*tokLat, time.Duration(now.UnixNano()-ns))
			}
			continue
		}
		var e struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return fail(failed, fmt.Errorf("malformed line %.80q: %v", line, err))
		}
		switch e.Type {
		case "token":
			s.tokens++
			var tok string
			if json.Unmarshal(e.Data, &tok) == nil {
				if ns, ok := paced.Parse([]byte(tok)); ok {
					*tokLat = append(*tokLat, time.Duration(now.UnixNano()-ns))
				}
			}
		case "titles":
			s.titles = now.Sub(sent)
		case "done":
			s.done = now.Sub(sent)
			s.outcome, s.dialed = ok, dialed.Load()
			// Read the end of the chunked body so that the connection is
			// reused for the next question.
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			return s
		case "error", "canceled":
			return fail(failed, fmt.Errorf("%s event: %s", e.Type, e.Data))
		}
	}
	err = sc.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fail(broken, fmt.Errorf("stream ended without a terminal event after %d events: %w", s.events, err))
}

// procSnap is a reading of /proc/<pid>.
type procSnap struct {
	rss, hwm int64 // KiB
	cpu      float64
	syscw    int64
}

func readProc(pid int) procSnap {
	var p procSnap
	p.rss, p.hwm = statusKiB(pid, "VmRSS:"), statusKiB(pid, "VmHWM:")
	p.cpu = procCPU(fmt.Sprintf("/proc/%d/stat", pid))
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "syscw:"); ok {
				p.syscw, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	return p
}

func readRSS(pid int) int64 { return statusKiB(pid, "VmRSS:") }

func statusKiB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on Linux for every architecture Go supports.
const clockTicks = 100

// procCPU returns utime+stime in seconds from a /proc/<pid>/stat file.
func procCPU(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state is field 3, utime 14 and stime 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(ut+st) / clockTicks
}

func selfCPU() float64 { return procCPU("/proc/self/stat") }

// perfStat is a `perf stat` counting the server's write-type system calls.
type perfStat struct {
	cmd *exec.Cmd
	out string
	err error
}

var perfEvents = []string{
	"syscalls:sys_enter_write", "syscalls:sys_enter_writev",
	"syscalls:sys_enter_sendto", "syscalls:sys_enter_sendmsg",
}

func startPerf(pid int) *perfStat {
	dir, err := os.MkdirTemp("", "loadgen-perf-")
	if err != nil {
		return &perfStat{err: err}
	}
	p := &perfStat{out: filepath.Join(dir, "perf.csv")}
	p.cmd = exec.Command("perf", "stat", "-x", ",", "-e", strings.Join(perfEvents, ","), "-p", strconv.Itoa(pid), "-o", p.out)
	if p.err = p.cmd.Start(); p.err != nil {
		p.cmd = nil
		return p
	}
	time.Sleep(300 * time.Millisecond) // let it attach to every thread
	return p
}

// stop ends perf (SIGINT, as ^C does) and returns the sum of its counts.
func (p *perfStat) stop() (int64, error) {
	defer os.RemoveAll(filepath.Dir(p.out))
	if p.cmd == nil {
		return 0, fmt.Errorf("perf: %v", p.err)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return 0, fmt.Errorf("perf: %v", err)
	}
	var total int64
	found := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 || !slices.Contains(perfEvents, f[2]) {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("perf: %s: %q", f[2], f[0]) // "<not supported>" and the like
		}
		total += n
		found++
	}
	if found != len(perfEvents) {
		return 0, fmt.Errorf("perf: %d of %d counts in %q", found, len(perfEvents), strings.TrimSpace(string(b)))
	}
	return total, nil
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %d connections x %d questions, ramp %.1f s, %s %s\n", r.Scenario, r.Server, r.Conns, r.Per, r.RampS, r.Method, r.URL)
	fmt.Fprintf(w, "  streams %d: ok %d, errors %d, broken %d, cut %d; connections dialed %d; peak open %d\n",
		r.Streams, r.OK, r.Errors, r.Broken, r.Cut, r.Dials, r.PeakOpen)
	fmt.Fprintf(w, "  %d events (%d tokens) in %.2f s: %.0f events/s; client CPU %.2f s\n", r.Events, r.Tokens, r.ElapsedS, r.EventsPS, r.ClientCPU)
	for _, row := range []struct {
		name string
		p    Pct
	}{{"connect", r.Connect}, {"first byte", r.FirstByte}, {"titles", r.Titles}, {"token latency", r.TokenLat}, {"stream length", r.Length}} {
		fmt.Fprintf(w, "  %-14s p50 %9s  p99 %9s  max %9s  (n=%d)\n", row.name, ms(row.p.P50, row.p.N), ms(row.p.P99, row.p.N), ms(row.p.Max, row.p.N), row.p.N)
	}
	if p := r.Proc; p != nil {
		fmt.Fprintf(w, "  server pid %d: CPU %.2f s; RSS before %s, peak (VmHWM) %s, peak sampled %s\n",
			p.PID, p.CPUS, mib(p.RSSBeforeKiB), mib(p.PeakRSSKiB), mib(p.PeakSampledKiB))
		fmt.Fprintf(w, "  RSS with %d streams open %s: %.1f KiB per open stream\n", p.OpenAtSample, mib(p.RSSAtOpenKiB), p.KiBPerOpen)
		fmt.Fprintf(w, "  syscw %d: %.3f per event", p.Syscw, p.SyscwPerEvent)
		switch {
		case p.PerfErr != "":
			fmt.Fprintf(w, "; %s", p.PerfErr)
		case p.PerfWrites > 0:
			fmt.Fprintf(w, "; perf write+writev+sendto+sendmsg %d: %.3f per event", p.PerfWrites, p.PerfPerEvent)
		}
		fmt.Fprintln(w)
	}
	for _, e := range r.FirstErr {
		fmt.Fprintln(w, "  error:", e)
	}
}

func ms(v float64, n int) string {
	switch {
	case n == 0:
		return "-"
	case v >= 10000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func appendJSON(path string, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const legend = `Streams: ok / errors (no response, not 200, an error event) / broken (ended without done or error) / cut (open when the
scenario's timeout ended it). Connect is the TCP connect of each new connection. The other times are from the request
written; token latency is arrival minus the time stamped in the token.
Server CPU s, peak RSS (VmHWM), RSS / open stream ((RSS with the most streams open - RSS before) / streams open) and syscw
come from /proc/<pid>; syscw counts write(2) and writev(2) but not send(2) or sendmsg(2), so it reads 0 for Python's asyncio,
which writes sockets with send(2). writes+sends counts write, writev, sendto and sendmsg with perf stat. loadgen CPU s is the
load generator's own CPU on its core: near the run's length, the client was a bottleneck too.
`

// printTables prints the results of a JSONL file as one Markdown table a
// scenario, in the order the scenarios first appear, a row a server.
func printTables(w io.Writer, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var order []string
	by := map[string][]Result{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var r Result
		if err := json.Unmarshal(l, &r); err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if _, ok := by[r.Scenario]; !ok {
			order = append(order, r.Scenario)
		}
		by[r.Scenario] = append(by[r.Scenario], r)
	}
	for _, sc := range order {
		rs := by[sc]
		fmt.Fprintf(w, "%s: %s\n\n", sc, rs[0].Describe)
		fmt.Fprintln(w, "| server | ok / err / broken / cut | connect p50 / p99 | first byte p50 / p99 | titles p50 / p99 | token p50 / p99 | stream p50 / p99 | events/s | server CPU s | peak RSS | RSS / open stream | syscw / event | writes+sends / event | loadgen CPU s |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range rs {
			pair := func(p Pct) string { return ms(p.P50, p.N) + " / " + ms(p.P99, p.N) }
			cpu, rss, per, sw, pw := "-", "-", "-", "-", "-"
			if p := r.Proc; p != nil {
				cpu = fmt.Sprintf("%.1f", p.CPUS)
				rss = fmt.Sprintf("%.0f MiB", float64(p.PeakRSSKiB)/1024)
				if p.OpenAtSample > 0 {
					per = fmt.Sprintf("%.1f KiB (%d open)", p.KiBPerOpen, p.OpenAtSample)
				}
				sw = fmt.Sprintf("%.3f", p.SyscwPerEvent)
				if p.PerfErr == "" && p.PerfWrites > 0 {
					pw = fmt.Sprintf("%.3f", p.PerfPerEvent)
				}
			}
			fmt.Fprintf(w, "| %s | %d / %d / %d / %d | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %.1f |\n",
				r.Server, r.OK, r.Errors, r.Broken, r.Cut, pair(r.Connect), pair(r.FirstByte), pair(r.Titles), pair(r.TokenLat), pair(r.Length),
				r.EventsPS, cpu, rss, per, sw, pw, r.ClientCPU)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, legend)
	return nil
}
