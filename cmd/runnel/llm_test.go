package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeLLM is an OpenAI-compatible chat completions endpoint that streams a
// fixed answer word by word and records the requests it got.
func fakeLLM(t *testing.T, answer string) (*httptest.Server, func() []http.Header) {
	t.Helper()
	var mu sync.Mutex
	var seen []http.Header
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := func(delta, finish string) {
			c := map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
				"choices": []map[string]any{{"index": 0, "delta": map[string]string{"content": delta}}}}
			if finish != "" {
				c["choices"].([]map[string]any)[0]["finish_reason"] = finish
			}
			b, _ := json.Marshal(c)
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
		for _, word := range strings.SplitAfter(answer, " ") {
			chunk(word, "")
		}
		chunk("", "stop")
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(ts.Close)
	return ts, func() []http.Header { mu.Lock(); defer mu.Unlock(); return seen }
}

func TestAskWithLLM(t *testing.T) {
	llm, seen := fakeLLM(t, "WebSocket is a full-duplex protocol [1].")
	code, out, errOut := run(t, "ask", "--llm-url", llm.URL+"/v1", "--llm-model", "m", "--llm-key", "sk-test-secret", "what is websocket")
	if code != 0 {
		t.Fatalf("ask = %d: %s", code, errOut)
	}
	if !strings.Contains(out, "WebSocket is a full-duplex protocol [1].") {
		t.Errorf("ask printed %q, want the model's answer", out)
	}
	if h := seen(); len(h) != 1 || h[0].Get("Authorization") != "Bearer sk-test-secret" {
		t.Errorf("the LLM got %d requests, headers %v", len(h), h)
	}
}

func TestServeWithLLMFromEnvironment(t *testing.T) {
	llm, seen := fakeLLM(t, "From the model.")
	t.Setenv("RUNNEL_LLM_URL", llm.URL+"/v1")
	t.Setenv("RUNNEL_LLM_MODEL", "m")
	t.Setenv("OPENAI_API_KEY", "sk-env-secret")
	code, out, errOut := run(t, "serve", "-h")
	if code != 0 || strings.Contains(out+errOut, "sk-env-secret") {
		t.Errorf("serve -h = %d and prints the key: %q", code, out+errOut)
	}
	url := serve(t)
	resp, err := http.Get(url + "/articles/stream?question=what+is+websocket")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `{"type":"token","data":"From "}`) || !strings.Contains(string(body), `"type":"done"`) {
		t.Errorf("stream = %s, want the model's tokens and done", body)
	}
	if h := seen(); len(h) != 1 || h[0].Get("Authorization") != "Bearer sk-env-secret" {
		t.Errorf("the LLM got %d requests, headers %v", len(h), h)
	}
}
