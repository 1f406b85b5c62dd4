// Command load measures a running runnel server from another process: it
// asks questions over loopback with a number of concurrent clients and
// reports, per stage of the stream, the time from sending the request to
// holding the event (p50, p90, p99, max).
//
//	go run ./bench/load -url http://127.0.0.1:8080 -n 2000 -c 8
//
// It stops by itself after -n requests or -duration, whichever comes first.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var questions = []string{
	"what is websocket?", "how does chunked transfer encoding work?", "what is ndjson",
	"why do proxies buffer streaming responses", "what is backpressure", "server-sent events reconnect",
	"how does tls 1.3 handshake work", "what is http/2 multiplexing", "dns ttl caching",
	"cors preflight request", "load balancing long lived connections", "tcp slow start",
	"how to stream from aws lambda", "what is quic", "nagle algorithm delayed ack",
	"graceful shutdown of streams", "rate limiting token bucket", "compression breaks streaming",
}

type sample struct {
	query, titles, token, done time.Duration
	tokens                     int
	err                        error
}

func main() {
	var (
		base     = flag.String("url", "http://127.0.0.1:8080", "runnel server `URL`")
		n        = flag.Int("n", 1000, "number of requests")
		c        = flag.Int("c", 4, "concurrent clients")
		duration = flag.Duration("duration", 2*time.Minute, "stop after this long")
		method   = flag.String("method", "GET", "GET or POST")
	)
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		fmt.Fprintln(os.Stderr, "load: -url must be a loopback address")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *c, DisableCompression: true}}

	var next atomic.Int64
	samples := make([]sample, 0, *n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range *c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n || ctx.Err() != nil {
					return
				}
				s := ask(ctx, client, *base, *method, questions[i%len(questions)])
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var errs int
	var q, ti, tok, done []time.Duration
	tokens := 0
	for _, s := range samples {
		if s.err != nil {
			if errs++; errs <= 5 {
				fmt.Fprintln(os.Stderr, "error:", s.err)
			}
			continue
		}
		q, ti, tok, done = append(q, s.query), append(ti, s.titles), append(tok, s.token), append(done, s.done)
		tokens += s.tokens
	}
	fmt.Printf("%d requests, %d errors, %d clients, %.1f s, %.0f answers/s, %.0f tokens/s\n",
		len(samples), errs, *c, elapsed.Seconds(), float64(len(samples)-errs)/elapsed.Seconds(), float64(tokens)/elapsed.Seconds())
	fmt.Printf("%-12s %10s %10s %10s %10s\n", "event", "p50", "p90", "p99", "max")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"query", q}, {"titles", ti}, {"first token", tok}, {"done", done}} {
		fmt.Printf("%-12s %10s %10s %10s %10s\n", row.name, pct(row.d, 50), pct(row.d, 90), pct(row.d, 99), pct(row.d, 100))
	}
	if errs > 0 {
		os.Exit(1)
	}
}

// ask sends one question and times each stage of its stream.
func ask(ctx context.Context, client *http.Client, base, method, question string) (s sample) {
	var req *http.Request
	var err error
	if method == "POST" {
		body, _ := json.Marshal(map[string]string{"question": question})
		req, err = http.NewRequestWithContext(ctx, "POST", base+"/articles/stream", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, "GET", base+"/articles/stream?question="+url.QueryEscape(question), nil)
	}
	if err != nil {
		return sample{err: err}
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return sample{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return sample{err: fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct{ Type string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return sample{err: err}
		}
		t := time.Since(start)
		switch e.Type {
		case "query":
			s.query = t
		case "titles":
			s.titles = t
		case "token":
			if s.tokens == 0 {
				s.token = t
			}
			s.tokens++
		case "done":
			s.done = t
			return s
		case "error":
			return sample{err: fmt.Errorf("error event: %s", sc.Text())}
		}
	}
	return sample{err: fmt.Errorf("stream truncated: %v", sc.Err())}
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	slices.Sort(d)
	i := min(len(d)-1, (len(d)*p+99)/100-1)
	return strings.TrimSpace(fmt.Sprintf("%.2fms", float64(d[max(i, 0)].Microseconds())/1000))
}
