package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnel/runnel/bench/internal/paced"
)

func TestStream(t *testing.T) {
	srv := httptest.NewServer(handler(3, 0))
	defer srv.Close()
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) { return http.Get(srv.URL + "/articles/stream?question=what++is+tcp") },
		func() (*http.Response, error) {
			return http.Post(srv.URL+"/articles/stream", "application/json", strings.NewReader(`{"question":"what is tcp"}`))
		},
	} {
		resp, err := req()
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
			t.Fatalf("%s, %s", resp.Status, ct)
		}
		var types []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e struct {
				Type string
				Data json.RawMessage
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%q: %v", sc.Text(), err)
			}
			types = append(types, e.Type)
			var s string
			switch e.Type {
			case "query":
				if json.Unmarshal(e.Data, &s); s != "what is tcp?" {
					t.Errorf("query %q", s)
				}
			case "token":
				if json.Unmarshal(e.Data, &s); !strings.HasSuffix(s, " ") {
					t.Errorf("token %q", s)
				} else if _, ok := paced.Parse([]byte(s)); !ok {
					t.Errorf("token %q has no stamp", s)
				}
			}
		}
		resp.Body.Close()
		if got := strings.Join(types, " "); got != "query tags titles sources token token token done" {
			t.Fatalf("events: %s", got)
		}
	}
	resp, err := http.Get(srv.URL + "/articles/stream?question=+")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("blank question: %s", resp.Status)
	}
}
