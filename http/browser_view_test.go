package http_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Accept headers as clients send them.
const (
	chromeNavigation  = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
	firefoxNavigation = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

// get sends a GET with accept (none when empty) and returns the response
// with its body read.
func get(t *testing.T, method, u, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, string(body)
}

// runID is the run's id in the done event, which differs from run to run.
var runID = regexp.MustCompile(`"id":"[^"]*"`)

// sameBytes reports whether two NDJSON bodies are byte for byte the same
// but for their runs' ids.
func sameBytes(a, b string) bool {
	return runID.ReplaceAllString(a, `"id":""`) == runID.ReplaceAllString(b, `"id":""`)
}

// TestStreamInBrowser: a browser that opens the stream's address (or a
// run's) is sent the NDJSON bytes as text/plain, which it shows instead of
// downloading; every other client gets exactly what it got before.
func TestStreamInBrowser(t *testing.T) {
	_, ts := newServer(t, words("Server", "-Sent ", "Events."))
	stream := ts.URL + "/articles/stream?question=" + url.QueryEscape("what is sse?")

	_, want := get(t, "GET", stream, "application/x-ndjson")
	if !strings.HasPrefix(want, `{"type":"query"`) || !strings.HasSuffix(want, "\n") {
		t.Fatalf("NDJSON body = %q", want)
	}

	tests := []struct {
		name, accept, contentType string
	}{
		{"chrome navigation", chromeNavigation, "text/plain; charset=utf-8"},
		{"firefox navigation", firefoxNavigation, "text/plain; charset=utf-8"},
		{"html only", "text/html", "text/plain; charset=utf-8"},
		{"html above ndjson", "text/html, application/x-ndjson;q=0.5", "text/plain; charset=utf-8"},
		{"no accept", "", "application/x-ndjson"},
		{"curl", "*/*", "application/x-ndjson"},
		{"go and js clients", "application/x-ndjson", "application/x-ndjson"},
		{"html no higher than ndjson", "text/html, application/x-ndjson", "application/x-ndjson"},
		{"ndjson above html", "text/html;q=0.5, application/x-ndjson", "application/x-ndjson"},
		{"json", "application/json", "application/x-ndjson"},
		{"eventsource", "text/event-stream", "text/event-stream"},
		{"html and event-stream", "text/html, text/event-stream", "text/event-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, "GET", stream, tt.accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Accept %q: Content-Type %q, want %q", tt.accept, got, tt.contentType)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if got := resp.Header.Get("Content-Disposition"); got != "" {
				t.Errorf("Content-Disposition %q, want none", got)
			}
			if tt.contentType != "text/event-stream" && !sameBytes(body, want) {
				t.Errorf("Accept %q: body\n%s\nwant the NDJSON bytes\n%s", tt.accept, body, want)
			}

			head, _ := get(t, "HEAD", stream, tt.accept)
			if got := head.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("HEAD: Content-Type %q, want %q", got, tt.contentType)
			}
		})
	}

	// A run's own address, as a browser opens it after the run ended.
	resp, _ := get(t, "GET", stream, "application/x-ndjson")
	run := ts.URL + "/runs/" + resp.Header.Get("Runnel-Run-Id")
	_, wantRun := get(t, "GET", run, "application/x-ndjson")
	for _, accept := range []string{chromeNavigation, "application/x-ndjson", "*/*"} {
		resp, body := get(t, "GET", run, accept)
		ct := "application/x-ndjson"
		if accept == chromeNavigation {
			ct = "text/plain; charset=utf-8"
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct || body != wantRun {
			t.Errorf("GET /runs/{id} with Accept %q = %d %q\n%s\nwant 200 %q\n%s",
				accept, resp.StatusCode, resp.Header.Get("Content-Type"), body, ct, wantRun)
		}
	}
}
