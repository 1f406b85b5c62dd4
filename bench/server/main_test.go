package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnel/runnel/bench/internal/paced"
)

func TestPacedAnswer(t *testing.T) {
	store, closeStore, err := openStore(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	srv := httptest.NewServer(newServer(store, slog.New(slog.DiscardHandler), paced.Generator{Tokens: 4}).Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/articles/stream?question=what+is+websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var types []string
	titles := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Type string
			Data json.RawMessage
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		types = append(types, e.Type)
		switch e.Type {
		case "titles":
			var ts []string
			json.Unmarshal(e.Data, &ts)
			titles = len(ts)
		case "token":
			var s string
			json.Unmarshal(e.Data, &s)
			if _, ok := paced.Parse([]byte(s)); !ok || !strings.HasSuffix(s, " ") {
				t.Errorf("token %q is not stamped", s)
			}
		}
	}
	if got := strings.Join(types, " "); got != "query tags titles sources token token token token done" {
		t.Fatalf("events: %s", got)
	}
	if titles == 0 {
		t.Errorf("no titles: the search found nothing in the embedded articles")
	}
}
