package openai_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
	"github.com/runnel/runnel/memory"
	"github.com/runnel/runnel/openai"
)

// These tests run the generator behind runnel's own HTTP server and read
// the answer with runnel's Go client, as a user of runnel serve would.

// searcher is a Searcher that always finds the same passages.
type searcher []runnel.Passage

func (s searcher) Search(_ context.Context, _ runnel.Query, limit int) ([]runnel.Passage, error) {
	return s[:min(limit, len(s))], nil
}

func (s searcher) TagsNamed(context.Context, []string) ([]string, error) { return nil, nil }

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serve starts runnel's HTTP server answering with g and returns a client
// for it, the server's log, and a function that stops the server once its
// requests are done (the log is then complete).
func serve(t testing.TB, g runnel.Generator) (*rhttp.Client, *syncBuffer, func()) {
	t.Helper()
	log := new(syncBuffer)
	s := &rhttp.Server{
		Answerer: &runnel.Answerer{Searcher: searcher(question.Passages), Generator: g},
		Runs:     memory.New(memory.Options{}),
		Logger:   slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	t.Cleanup(tr.CloseIdleConnections)
	c := rhttp.NewClient(ts.URL)
	c.HTTPClient = &http.Client{Transport: tr}
	return c, log, ts.Close
}

// TestHTTPTokensArriveAtOnce: each token reaches runnel's client before the
// upstream sends the next one.
func TestHTTPTokensArriveAtOnce(t *testing.T) {
	leakCheck(t)
	tokens := []string{"Streams ", "are ", "not ", "buffered ", "[1]."}
	got := make(chan string, len(tokens))
	f := newFake(t, func(s *sse) {
		s.role()
		for i, tok := range tokens {
			s.token(tok)
			select {
			case g := <-got:
				if g != tok {
					t.Errorf("client got %q while the upstream had sent %q", g, tok)
				}
			case <-time.After(within):
				t.Errorf("token %d did not reach runnel's client within %v", i, within)
				return
			}
		}
		s.finish("stop")
		s.usage(50, 5)
		s.done()
	})
	c, _, _ := serve(t, newGen(t, f, openai.Options{}))
	var done *runnel.Done
	err := c.Ask(t.Context(), "what is websocket", func(e runnel.Event) error {
		switch e.Type {
		case runnel.EventToken:
			got <- e.Token
		case runnel.EventDone:
			done = e.Done
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Ask: %v", err)
	}
	if done == nil || done.FinishReason != "stop" || done.Usage == nil || done.Usage.TotalTokens != 55 || done.ID == "" {
		t.Errorf("done = %+v, want stop, usage 55 tokens and the request id", done)
	}
}

// TestHTTPClientLeaves: a client that disconnects mid-answer closes the
// upstream request.
func TestHTTPClientLeaves(t *testing.T) {
	leakCheck(t)
	f := newFake(t, func(s *sse) { s.role(); s.token("Hello"); s.hold() })
	c, _, _ := serve(t, newGen(t, f, openai.Options{}))
	errLeave := errors.New("leaving")
	err := c.Ask(t.Context(), "what is websocket", func(e runnel.Event) error {
		if e.Type == runnel.EventToken {
			return errLeave
		}
		return nil
	})
	if !errors.Is(err, errLeave) {
		t.Errorf("Ask = %v, want the callback's error", err)
	}
	f.waitGone(t)
}

// TestHTTPErrors: upstream failures reach runnel's client as error events
// with their codes, and neither the client nor the server log sees the key.
func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name   string
		script script
		code   string
		tokens string
	}{
		{"truncated", func(s *sse) { s.token("Half "); s.abort() }, openai.EUpstreamTruncated, "Half "},
		{"auth", func(s *sse) { s.status(401, `{"error":{"message":"bad key `+s.auth()+`"}}`) }, openai.EUpstreamAuth, ""},
		{"error chunk", func(s *sse) { s.token("Half "); s.data(`{"error":{"message":"died; key=` + secretKey + `"}}`) }, openai.EUpstreamError, "Half "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			f := newFake(t, tt.script)
			c, log, stop := serve(t, newGen(t, f, openai.Options{APIKey: secretKey, Retries: -1}))
			var tokens strings.Builder
			err := c.Ask(t.Context(), "what is websocket", func(e runnel.Event) error {
				tokens.WriteString(e.Token)
				return nil
			})
			var re *runnel.Error
			if !errors.As(err, &re) || re.Code != tt.code {
				t.Fatalf("Ask = %v, want a *runnel.Error with code %s", err, tt.code)
			}
			if tokens.String() != tt.tokens {
				t.Errorf("tokens = %q, want %q", tokens.String(), tt.tokens)
			}
			stop()
			for name, s := range map[string]string{"error": re.Message, "log": log.String()} {
				if strings.Contains(s, "SECRET") {
					t.Errorf("the %s shows the key:\n%s", name, s)
				}
			}
			if !strings.Contains(log.String(), "openai: "+tt.code) {
				t.Errorf("server log lacks the reason for operators:\n%s", log)
			}
		})
	}
}
