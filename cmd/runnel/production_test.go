package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMain lets a test start this binary as the runnel command itself:
// a child process with RUNNEL_TEST_MAIN=1 runs main.
func TestMain(m *testing.M) {
	if os.Getenv("RUNNEL_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// get sends a GET with the given headers and returns the status and body.
func get(t *testing.T, url string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestServeAccessFlags(t *testing.T) {
	keyFile := t.TempDir() + "/keys"
	os.WriteFile(keyFile, []byte("# the team's keys\nfile-key\n\n"), 0o600)
	t.Setenv("RUNNEL_API_KEYS", "env-key")
	url := serve(t, "--api-key-file", keyFile, "--cors-origin", "https://app.example",
		"--max-streams-per-client", "5", "--question-rate", "0.001", "--question-burst", "2")
	stream := url + "/articles/stream?question=what+is+websocket"

	if code, h, body := get(t, stream); code != 401 || !strings.Contains(body, `"unauthorized"`) || h.Get("WWW-Authenticate") == "" {
		t.Errorf("without a key: %d %s", code, body)
	}
	for _, key := range []string{"env-key", "file-key"} {
		if code, _, body := get(t, stream, "Authorization", "Bearer "+key); code != 200 || !strings.Contains(body, `"type":"done"`) {
			t.Errorf("with %s: %d %s", key, code, body)
		}
	}
	// Two questions were the burst.
	if code, h, body := get(t, stream, "Authorization", "Bearer env-key"); code != 429 || h.Get("Retry-After") == "" {
		t.Errorf("third question: %d %s", code, body)
	}
	if code, h, _ := get(t, url+"/healthz", "Origin", "https://app.example"); code != 200 || h.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("CORS: %d %v", code, h)
	}
	if code, _, _ := get(t, url+"/articles"); code != 200 {
		t.Errorf("articles: %d, want public", code)
	}
	// Metrics on the main listener, behind the keys.
	if code, _, _ := get(t, url+"/metrics"); code != 401 {
		t.Errorf("metrics without a key: %d", code)
	}
	code, _, body := get(t, url+"/metrics", "Authorization", "Bearer file-key")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if code != 200 || err != nil {
		t.Fatalf("metrics: %d, %v", code, err)
	}
	for name, want := range map[string]float64{
		"runnel_runs_started_total": 2, "runnel_articles": 45, "runnel_runs_kept": 2, "runnel_build_info": 1,
	} {
		f := fams[name]
		if f == nil || len(f.Metric) != 1 {
			t.Errorf("%s: %v", name, f)
			continue
		}
		m := f.Metric[0]
		got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		if name == "runnel_articles" && got > 0 {
			got = want // the embedded collection's size is not this test's business
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("no Go runtime or process metrics")
	}
}

func TestServeMetricsListener(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "warn"}, nil, pw, io.Discard)
		pw.Close()
	}()
	defer func() { cancel(); <-done }()
	br := bufio.NewReader(pr)
	first, _ := br.ReadString('\n')
	second, _ := br.ReadString('\n')
	go io.Copy(io.Discard, br)
	_, api, _ := strings.Cut(strings.TrimSpace(first), " on ")
	_, metrics, ok := strings.Cut(strings.TrimSpace(second), " on ")
	if !ok {
		t.Fatalf("serve printed %q then %q", first, second)
	}
	if code, _, body := get(t, metrics); code != 200 || !strings.Contains(body, "runnel_runs_started_total") {
		t.Errorf("%s: %d", metrics, code)
	}
	if code, _, _ := get(t, api+"/metrics"); code != 404 {
		t.Errorf("metrics on the API's listener too: %d", code)
	}
}

func TestServeRefusesBadAccessSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--cors-origin", "app.example"},
		{"--trusted-proxy", "not-an-address"},
		{"--keys-for-pages"},
		{"--api-key-file", "/nonexistent/keys"},
		{"--max-streams", "-1"},
	} {
		code, _, errOut := run(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if code == 0 || errOut == "" {
			t.Errorf("serve %q: exit %d, %q", args, code, errOut)
		}
	}
}

// endlessLLM streams 16 KiB chunks until its client goes, and tells flooded
// once it has sent what no socket buffers hold.
func endlessLLM(t *testing.T, flooded chan<- struct{}) string {
	t.Helper()
	var sent atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		c, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
			"choices": []map[string]any{{"index": 0, "delta": map[string]string{"content": strings.Repeat("x", 16<<10)}}}})
		line := []byte(fmt.Sprintf("data: %s\n\n", c))
		for {
			if _, err := w.Write(line); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if sent.Add(16<<10) == 16<<20 {
				close(flooded)
			}
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/v1"
}

// On SIGTERM, a stream whose reader stopped reading is cut when the grace
// runs out, and the process exits 0 then, not after the write timeout.
func TestSIGTERMWithAStuckReader(t *testing.T) {
	flooded := make(chan struct{})
	llm := endlessLLM(t, flooded)
	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--log-level", "warn",
		"--llm-url", llm, "--llm-model", "m", "--llm-key", "k", "--llm-max-duration", "10m", "--llm-max-tokens", "1000000",
		"--write-timeout", "10m", "--shutdown-timeout", "300ms")
	cmd.Env = append(os.Environ(), "RUNNEL_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v; %s", err, stderr.String())
	}
	_, url, _ := strings.Cut(strings.TrimSpace(line), " on http://")

	// A reader with a small buffer that never reads.
	conn, err := net.Dial("tcp", url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	io.WriteString(conn, "GET /articles/stream?question=what+is+websocket HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-flooded:
	case <-time.After(20 * time.Second):
		t.Fatalf("the LLM was never read that far; stderr:\n%s", stderr.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Errorf("exit: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute): // the write timeout is 10 minutes
		t.Fatalf("still running a minute after SIGTERM; stderr:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutdown grace ran out") {
		t.Errorf("stderr does not say the grace ran out:\n%s", stderr.String())
	}
}
