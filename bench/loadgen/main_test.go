package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/bench/internal/paced"
)

// fakeServer streams answers of n stamped tokens; with cutAfter > 0 it
// ends every stream after that many tokens, without done.
func fakeServer(t *testing.T, n, cutAfter int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("question") == "" {
			http.Error(w, `{"error":{"code":"invalid"}}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprint(w, `{"type":"query","data":"q?"}`+"\n"+`{"type":"tags","data":[]}`+"\n"+
			`{"type":"titles","data":["A"]}`+"\n"+`{"type":"sources","data":[]}`+"\n")
		for i := range n {
			if cutAfter > 0 && i == cutAfter {
				return
			}
			fmt.Fprintf(w, `{"type":"token","data":"%s"}`+"\n", paced.Stamp(nil, time.Now()))
			w.(http.Flusher).Flush()
		}
		// A token with other JSON spacing takes the slow path.
		fmt.Fprintf(w, `{"type": "token", "data": "%s"}`+"\n", paced.Stamp(nil, time.Now()))
		fmt.Fprint(w, `{"type":"done","data":{"finish_reason":"stop"}}`+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(url string) config {
	return config{base: url, conns: 3, per: 2, method: "GET", timeout: 10 * time.Second,
		sample: 10 * time.Millisecond, questions: []string{"what is tcp", "what is udp", "what is quic"}}
}

func TestRunCountsStreams(t *testing.T) {
	srv := fakeServer(t, 5, 0)
	c := testConfig(srv.URL)
	c.pid = os.Getpid() // this process stands in for the server
	r := run(c)
	if r.Streams != 6 || r.OK != 6 || r.Errors+r.Broken+r.Cut != 0 {
		t.Fatalf("streams %d ok %d errors %d broken %d cut %d, want 6 ok: %v", r.Streams, r.OK, r.Errors, r.Broken, r.Cut, r.FirstErr)
	}
	if r.Events != 6*(4+6+1) || r.Tokens != 36 || r.TokenLat.N != 36 || r.Titles.N != 6 || r.Length.N != 6 {
		t.Fatalf("events %d tokens %d latencies %d titles %d lengths %d", r.Events, r.Tokens, r.TokenLat.N, r.Titles.N, r.Length.N)
	}
	if r.Dials != 3 {
		t.Errorf("dials %d, want 3 (one connection a client, kept alive)", r.Dials)
	}
	if r.Proc == nil || r.Proc.PeakRSSKiB <= 0 {
		t.Errorf("proc %+v: want a peak RSS", r.Proc)
	}
}

func TestRunBrokenAndErrors(t *testing.T) {
	r := run(testConfig(fakeServer(t, 5, 2).URL))
	if r.Broken != 6 || r.OK != 0 {
		t.Fatalf("broken %d ok %d, want 6 broken", r.Broken, r.OK)
	}
	c := testConfig(fakeServer(t, 5, 0).URL)
	c.questions = []string{""}
	if r := run(c); r.Errors != 6 {
		t.Fatalf("errors %d, want 6 (400s)", r.Errors)
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.N != 100 || p.P50 != 50 || p.P99 != 99 || p.Max != 100 {
		t.Fatalf("%+v", p)
	}
	if p := percentiles(nil); p.N != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestProcCPU(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	stat := "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0"
	if err := os.WriteFile(path, []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := procCPU(path); got != 3 {
		t.Fatalf("procCPU = %v, want 3 (300 ticks)", got)
	}
}

func TestTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	for _, s := range []string{"plain", "runnel"} {
		r := &Result{Scenario: "S1", Server: s, Describe: "d", OK: 1, Proc: &Proc{SyscwPerEvent: 1}}
		if err := appendJSON(path, r); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	if err := printTables(&b, path); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "| plain | 1 / 0 / 0 / 0 |") || !strings.Contains(out, "| runnel |") {
		t.Fatalf("table:\n%s", out)
	}
}
