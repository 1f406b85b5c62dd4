package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

// promptRecorder is a generator that answers "ok" and keeps the prompts it
// was given.
type promptRecorder struct {
	mu      sync.Mutex
	prompts []runnel.Prompt
}

func (g *promptRecorder) Generate(ctx context.Context, p runnel.Prompt, emit func(string) error) (runnel.Done, error) {
	g.mu.Lock()
	g.prompts = append(g.prompts, p)
	g.mu.Unlock()
	if err := emit("ok"); err != nil {
		return runnel.Done{}, err
	}
	return runnel.Done{FinishReason: runnel.FinishStop}, nil
}

func (g *promptRecorder) last(t *testing.T) runnel.Prompt {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.prompts) == 0 {
		t.Fatal("the generator was not called")
	}
	return g.prompts[len(g.prompts)-1]
}

var followUpConversation = []runnel.Message{
	{Role: "user", Content: "what is SSE?"},
	{Role: "assistant", Content: "A one-way stream of text events."},
	{Role: "user", Content: "how does it reconnect?"},
}

// checkFollowUp checks what the pipeline made of followUpConversation.
func checkFollowUp(t *testing.T, g *promptRecorder, events []runnel.Event) {
	t.Helper()
	p := g.last(t)
	if !slices.Equal(p.History, followUpConversation[:2]) {
		t.Errorf("prompt history = %v, want %v", p.History, followUpConversation[:2])
	}
	if p.Question != "how does it reconnect?" || !slices.Equal(p.Terms, []string{"reconnect", "sse"}) {
		t.Errorf("prompt question %q, terms %q; want the follow-up with the term sse borrowed", p.Question, p.Terms)
	}
	if events[len(events)-1].Type != runnel.EventDone {
		t.Errorf("last event %s, want done", events[len(events)-1].Type)
	}
}

// TestConversationRoutes asks a follow-up as messages on each route and
// transport that takes them.
func TestConversationRoutes(t *testing.T) {
	g := &promptRecorder{}
	_, ts := newServer(t, g)
	body, _ := json.Marshal(map[string]any{"messages": followUpConversation})
	for _, path := range []string{"/articles/stream", "/runs"} {
		t.Run("POST "+path, func(t *testing.T) {
			resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var events []runnel.Event
			if err := rhttp.Read(t.Context(), resp.Body, 0, func(e runnel.Event) error {
				events = append(events, e)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if events[0].Query != "how does it reconnect?" {
				t.Errorf("query event %q, want the latest question", events[0].Query)
			}
			checkFollowUp(t, g, events)
		})
	}
	for _, tr := range []rhttp.Transport{rhttp.NDJSON, rhttp.SSE, rhttp.WebSocket} {
		t.Run("client "+tr.String(), func(t *testing.T) {
			c := rhttp.NewClient(ts.URL)
			c.Transport = tr
			var events []runnel.Event
			err := c.AskConversation(t.Context(), followUpConversation, func(e runnel.Event) error {
				events = append(events, e)
				return nil
			})
			if err != nil {
				t.Fatalf("AskConversation: %v", err)
			}
			checkFollowUp(t, g, events)
		})
	}
	t.Run("client error", func(t *testing.T) {
		err := rhttp.NewClient(ts.URL).AskConversation(t.Context(), followUpConversation[:2], func(runnel.Event) error { return nil })
		if runnel.ErrorCode(err) != runnel.EINVALID || runnel.ErrorMessage(err) != "The conversation must end with a user message." {
			t.Errorf("AskConversation(ending with an answer) = %v, want EINVALID", err)
		}
	})
}

// TestConversationBodyErrors: bodies with messages the server refuses
// before the stream, with the status and message of each.
func TestConversationBodyErrors(t *testing.T) {
	_, ts := newServer(t, words("x"), func(s *rhttp.Server) { s.MaxQuestion = 100 })
	tests := []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"both", `{"question":"what is sse?","messages":[{"role":"user","content":"what is sse?"}]}`, 400, runnel.EINVALID,
			`The request body has both "question" and "messages"; send one of them.`},
		{"empty", `{"messages":[]}`, 400, runnel.EINVALID, "The conversation has no messages."},
		{"null", `{"messages":null}`, 400, runnel.EINVALID, `The request body has no "question".`},
		{"not a list", `{"messages":"what is sse?"}`, 400, runnel.EINVALID, ""},
		{"role", `{"messages":[{"role":"tool","content":"x"},{"role":"user","content":"what is sse?"}]}`, 400, runnel.EINVALID,
			`Message 1 has the role "tool"; the roles are user, assistant and system.`},
		{"empty message", `{"messages":[{"role":"user","content":""}]}`, 400, runnel.EINVALID, "Message 1 is empty."},
		{"ends with answer", `{"messages":[{"role":"user","content":"what is sse?"},{"role":"assistant","content":"A stream."}]}`, 400, runnel.EINVALID,
			"The conversation must end with a user message."},
		{"question too long", `{"messages":[{"role":"user","content":"` + strings.Repeat("a", 101) + `"}]}`, 413, runnel.ETOOLARGE,
			"The question is 101 bytes long; the limit is 100."},
		{"earlier question too long", `{"messages":[{"role":"user","content":"` + strings.Repeat("a", 101) + `"},{"role":"assistant","content":"?"},{"role":"user","content":"and sse?"}]}`, 413, runnel.ETOOLARGE,
			"Message 1 is 101 bytes long; the limit for a question is 100."},
		{"invalid UTF-8", "{\"messages\":[{\"role\":\"user\",\"content\":\"caf\xc3\x28\"}]}", 400, runnel.EINVALID, "The request body is not valid UTF-8."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(ts.URL+"/articles/stream", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			var body struct{ Error runnel.Error }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if body.Error.Code != tt.code || (tt.msg != "" && body.Error.Message != tt.msg) {
				t.Errorf("error = %+v, want %s %q", body.Error, tt.code, tt.msg)
			}
		})
	}
}

// TestWebSocketConversation asks a follow-up over a socket, and checks
// that a command with both a question and messages is refused.
func TestWebSocketConversation(t *testing.T) {
	g := &promptRecorder{}
	_, ts := newServer(t, g)
	conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(ts.URL, "http")+"/runs/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	send := func(v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := conn.Write(t.Context(), websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "ask", "question": "what is sse?", "messages": followUpConversation})
	if e := readMessage(t, conn); e.Type != runnel.EventError || e.Err.Code != runnel.EINVALID || e.Run != "" {
		t.Fatalf("ask with both: %+v, want an EINVALID error of no run", e)
	}
	send(map[string]any{"type": "ask", "messages": followUpConversation})
	var events []runnel.Event
	for {
		e := readMessage(t, conn)
		events = append(events, e)
		if e.Type == runnel.EventDone || e.Type == runnel.EventError {
			break
		}
	}
	checkFollowUp(t, g, events)
}
