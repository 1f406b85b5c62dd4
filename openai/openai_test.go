package openai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/openai"
)

func TestStream(t *testing.T) {
	leakCheck(t)
	// Ambient OpenAI settings must not reach the request.
	t.Setenv("OPENAI_API_KEY", "sk-ambient-key-must-not-be-sent")
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_ORG_ID", "org-ambient")
	f := newFake(t, func(s *sse) {
		s.comment("keep-alive")
		s.role()
		s.token("A ")
		s.token("")
		s.raw(`data:{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"WebSocket "},"finish_reason":null}]}` + "\n\n")
		s.comment("another")
		s.token("is a full-duplex channel [1].")
		s.finish("stop")
		s.usage(321, 7)
		s.done()
	})
	g := newGen(t, f, openai.Options{})
	r := generate(t.Context(), g, question, nil)
	if r.err != nil {
		t.Fatalf("Generate: %v", r.err)
	}
	if want := []string{"A ", "WebSocket ", "is a full-duplex channel [1]."}; !slices.Equal(r.tokens, want) {
		t.Errorf("tokens = %q, want %q", r.tokens, want)
	}
	want := runnel.Done{FinishReason: "stop", Usage: &runnel.Usage{PromptTokens: 321, CompletionTokens: 7, TotalTokens: 328}}
	if !reflect.DeepEqual(r.done, want) {
		t.Errorf("done = %+v (usage %+v), want %+v", r.done, r.done.Usage, want)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if a := req.Header.Get("Authorization"); a != "" {
		t.Errorf("Authorization = %q, want none without a key", a)
	}
	if o := req.Header.Get("OpenAI-Organization"); o != "" {
		t.Errorf("OpenAI-Organization = %q, want none", o)
	}
	b := req.Body
	if b["model"] != "test-model" || b["stream"] != true || b["max_tokens"] != float64(openai.DefaultMaxTokens) {
		t.Errorf("request model, stream, max_tokens = %v, %v, %v; want test-model, true, %d", b["model"], b["stream"], b["max_tokens"], openai.DefaultMaxTokens)
	}
	if so, _ := b["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options = %v, want include_usage true", b["stream_options"])
	}
	if _, ok := b["temperature"]; ok {
		t.Errorf("temperature = %v, want none by default", b["temperature"])
	}
	msgs, _ := b["messages"].([]any)
	system, user := g.Messages(question)
	wantMsgs := []any{
		map[string]any{"role": "system", "content": system},
		map[string]any{"role": "user", "content": user},
	}
	if !reflect.DeepEqual(msgs, wantMsgs) {
		t.Errorf("messages = %v, want the system and user messages of Messages", msgs)
	}
}

func TestRequestOptions(t *testing.T) {
	leakCheck(t)
	f := newFake(t, answer("ok"))
	temp := 0.25
	g := newGen(t, f, openai.Options{APIKey: secretKey, MaxTokens: 77, Temperature: &temp})
	if r := generate(t.Context(), g, question, nil); r.err != nil {
		t.Fatal(r.err)
	}
	req := f.requests()[0]
	if a := req.Header.Get("Authorization"); a != "Bearer "+secretKey {
		t.Errorf("Authorization = %q, want the key as a bearer token", a)
	}
	if req.Body["max_tokens"] != float64(77) || req.Body["temperature"] != 0.25 {
		t.Errorf("max_tokens, temperature = %v, %v; want 77, 0.25", req.Body["max_tokens"], req.Body["temperature"])
	}
}

// TestTokensForwardedAtOnce checks that each token reaches emit before the
// upstream sends the next: the fake waits for emit before it goes on.
func TestTokensForwardedAtOnce(t *testing.T) {
	leakCheck(t)
	tokens := []string{"Each ", "token ", "arrives ", "alone."}
	got := make(chan int, len(tokens))
	f := newFake(t, func(s *sse) {
		s.role()
		for i, tok := range tokens {
			s.token(tok)
			select {
			case j := <-got:
				if j != i {
					t.Errorf("emit saw token %d while the upstream had sent %d", j, i)
				}
			case <-time.After(within):
				t.Errorf("token %d did not reach emit within %v; the generator is buffering", i, within)
				return
			}
		}
		s.finish("stop")
		s.done()
	})
	g := newGen(t, f, openai.Options{})
	r := generate(t.Context(), g, question, func(i int, tok string) error {
		got <- i
		return nil
	})
	if r.err != nil || r.text() != strings.Join(tokens, "") {
		t.Errorf("Generate = %q, %v; want %q", r.text(), r.err, strings.Join(tokens, ""))
	}
}

func TestStreamVariants(t *testing.T) {
	tests := []struct {
		name   string
		script script
		opts   openai.Options
		want   string
		done   runnel.Done
	}{
		{
			name: "length",
			script: func(s *sse) {
				s.token("cut")
				s.finish("length")
				s.usage(10, 1)
				s.done()
			},
			want: "cut",
			done: runnel.Done{FinishReason: "length", Usage: &runnel.Usage{PromptTokens: 10, CompletionTokens: 1, TotalTokens: 11}},
		},
		{
			name:   "no usage, no finish reason",
			script: func(s *sse) { s.token("bare"); s.done() },
			want:   "bare",
			done:   runnel.Done{FinishReason: "stop"},
		},
		{
			name: "refusal",
			script: func(s *sse) {
				s.chunk(`[{"index":0,"delta":{"refusal":"I can't help with that."},"finish_reason":null}]`, "null")
				s.finish("stop")
				s.done()
			},
			want: "I can't help with that.",
			done: runnel.Done{FinishReason: "stop"},
		},
		{
			name: "content filter",
			script: func(s *sse) {
				s.token("partial")
				s.finish("content_filter")
				s.done()
			},
			want: "partial",
			done: runnel.Done{FinishReason: "content_filter"},
		},
		{
			name: "other choices ignored",
			script: func(s *sse) {
				s.chunk(`[{"index":1,"delta":{"content":"other"},"finish_reason":null},{"index":0,"delta":{"content":"first"},"finish_reason":null}]`, "null")
				s.done()
			},
			want: "first",
			done: runnel.Done{FinishReason: "stop"},
		},
		{
			name: "reasoning deltas are not the answer",
			script: func(s *sse) {
				s.chunk(`[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"thinking..."},"finish_reason":null}]`, "null")
				s.token("answer")
				s.done()
			},
			want: "answer",
			done: runnel.Done{FinishReason: "stop"},
		},
		{
			name:   "MaxTokens enforced when the upstream ignores it",
			opts:   openai.Options{MaxTokens: 3},
			script: answer("one ", "two ", "three ", "four ", "five "),
			want:   "one two three ",
			done:   runnel.Done{FinishReason: "length"},
		},
		{
			name: "CRLF line ends",
			script: func(s *sse) {
				s.raw("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"crlf\"}}]}\r\n\r\ndata: [DONE]\r\n\r\n")
			},
			want: "crlf",
			done: runnel.Done{FinishReason: "stop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			g := newGen(t, newFake(t, tt.script), tt.opts)
			r := generate(t.Context(), g, question, nil)
			if r.err != nil {
				t.Fatalf("Generate: %v", r.err)
			}
			if r.text() != tt.want || !reflect.DeepEqual(r.done, tt.done) {
				t.Errorf("Generate = %q, %+v; want %q, %+v", r.text(), r.done, tt.want, tt.done)
			}
		})
	}
}

// maskedKey is the key as OpenAI's 401 message shows it.
var maskedKey = secretKey[:8] + strings.Repeat("*", 12) + secretKey[len(secretKey)-4:]

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		script    script
		opts      openai.Options
		code      string
		retryable bool
		requests  int    // sent, retries included
		tokens    string // emitted before the failure
		holds     bool   // the script holds the request until the client ends it
	}{
		{
			name: "401",
			script: func(s *sse) {
				s.status(401, `{"error":{"message":"Incorrect API key provided: `+maskedKey+`. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			},
			code: openai.EUpstreamAuth, requests: 1,
		},
		{
			name:   "403",
			script: func(s *sse) { s.status(403, `{"detail":"key `+secretKey+` may not use this model; got `+s.auth()+`"}`) },
			code:   openai.EUpstreamAuth, requests: 1,
		},
		{
			name: "404 unknown model (Ollama)",
			script: func(s *sse) {
				s.status(404, `{"error":{"message":"model \"test-model\" not found, try pulling it first","type":"api_error","param":null,"code":null}}`)
			},
			code: openai.EUpstreamModel, requests: 1,
		},
		{
			name: "404 unknown model (vLLM)",
			script: func(s *sse) {
				s.status(404, `{"object":"error","message":"The model test-model does not exist.","type":"NotFoundError","param":null,"code":404}`)
			},
			code: openai.EUpstreamModel, requests: 1,
		},
		{
			name:   "404 with a plain-string error",
			script: func(s *sse) { s.status(404, `{"error":"no such model"}`) },
			code:   openai.EUpstreamModel, requests: 1,
		},
		{
			name: "429 retried, then given up",
			script: func(s *sse) {
				s.status(429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, "Retry-After-Ms", "1")
			},
			code: openai.EUpstreamRateLimited, retryable: true, requests: 3,
		},
		{
			name:   "429 with a Retry-After too long to wait",
			script: func(s *sse) { s.status(429, `{"error":{"message":"slow down"}}`, "Retry-After", "120") },
			code:   openai.EUpstreamRateLimited, retryable: true, requests: 1,
		},
		{
			name: "429 out of quota",
			script: func(s *sse) {
				s.status(429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`)
			},
			code: openai.EUpstreamRateLimited, requests: 1,
		},
		{
			name: "500 retried",
			script: func(s *sse) {
				s.status(500, `{"error":{"message":"The server had an error while processing your request. `+s.auth()+`"}}`)
			},
			code: openai.EUpstreamUnavailable, retryable: true, requests: 3,
		},
		{
			name:   "503 not JSON",
			opts:   openai.Options{Retries: -1},
			script: func(s *sse) { s.status(503, "<html>Service Unavailable</html>") },
			code:   openai.EUpstreamUnavailable, retryable: true, requests: 1,
		},
		{
			name: "400 rejected",
			script: func(s *sse) {
				s.status(400, `{"error":{"message":"This model's maximum context length is 4096 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}`)
			},
			code: runnel.EUPSTREAM, requests: 1,
		},
		{
			name:   "malformed chunk",
			script: func(s *sse) { s.token("Hello"); s.data(`{"choices":[{"delta":`); s.done() },
			code:   openai.EUpstreamMalformed, requests: 1, tokens: "Hello",
		},
		{
			name:   "chunk of the wrong shape",
			script: func(s *sse) { s.data(`{"choices":"Hello"}`); s.done() },
			code:   openai.EUpstreamMalformed, requests: 1,
		},
		{
			name: "a whole completion instead of a stream",
			script: func(s *sse) {
				s.w.Header().Set("Content-Type", "application/json")
				s.raw(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}`)
			},
			code: openai.EUpstreamMalformed, requests: 1,
		},
		{
			name: "error chunk",
			script: func(s *sse) {
				s.token("Hello")
				s.data(`{"error":{"message":"The server had an error processing your request ` + s.auth() + `","type":"server_error"}}`)
			},
			code: openai.EUpstreamError, retryable: true, requests: 1, tokens: "Hello",
		},
		{
			name:   "error event",
			script: func(s *sse) { s.raw("event: error\ndata: {\"message\":\"overloaded\"}\n\n") },
			code:   openai.EUpstreamError, retryable: true, requests: 1,
		},
		{
			name:   "ended before [DONE]",
			script: func(s *sse) { s.role(); s.token("Hello"); s.finish("stop") },
			code:   openai.EUpstreamTruncated, retryable: true, requests: 1, tokens: "Hello",
		},
		{
			name:   "connection cut mid-stream",
			script: func(s *sse) { s.token("Hello"); s.abort() },
			code:   openai.EUpstreamTruncated, retryable: true, requests: 1, tokens: "Hello",
		},
		{
			name:   "cut inside an event",
			script: func(s *sse) { s.token("Hello"); s.raw(`data: {"choices":[{"index":0,"delta":{"content":" wor`) },
			code:   openai.EUpstreamTruncated, retryable: true, requests: 1, tokens: "Hello",
		},
		{
			name:   "empty 200",
			script: func(s *sse) { s.start() },
			code:   openai.EUpstreamTruncated, retryable: true, requests: 1,
		},
		{
			name:   "stall before the first chunk",
			opts:   openai.Options{StallTimeout: 250 * time.Millisecond},
			script: func(s *sse) { s.start(); s.rc.Flush(); s.hold() },
			code:   openai.EUpstreamStalled, retryable: true, requests: 1, holds: true,
		},
		{
			name:   "stall mid-stream",
			opts:   openai.Options{StallTimeout: 250 * time.Millisecond},
			script: func(s *sse) { s.token("Hello"); s.comment("keep-alive"); s.hold() },
			code:   openai.EUpstreamStalled, retryable: true, requests: 1, tokens: "Hello", holds: true,
		},
		{
			name:   "maximum duration",
			opts:   openai.Options{MaxDuration: 400 * time.Millisecond},
			script: func(s *sse) { s.token("Hello"); s.hold() },
			code:   runnel.ETIMEOUT, requests: 1, tokens: "Hello", holds: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			f := newFake(t, tt.script)
			tt.opts.APIKey = secretKey
			g := newGen(t, f, tt.opts)
			r := generate(t.Context(), g, question, nil)
			if tt.holds {
				f.waitGone(t)
			}
			checkFailure(t, r, tt.code, tt.retryable)
			if r.text() != tt.tokens {
				t.Errorf("tokens before the failure = %q, want %q", r.text(), tt.tokens)
			}
			if n := len(f.requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

// checkFailure checks that r failed with a *runnel.Error of code, and that
// neither the error for users nor the one for the log shows the key.
func checkFailure(t *testing.T, r result, code string, retryable bool) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("Generate = %q, %+v; want error %s", r.text(), r.done, code)
	}
	var e *runnel.Error
	if !errors.As(r.err, &e) {
		t.Fatalf("Generate error %v (%T) has no *runnel.Error", r.err, r.err)
	}
	if e.Code != code || e.Retryable != retryable {
		t.Errorf("Generate error code %q, retryable %v; want %q, %v (%v)", e.Code, e.Retryable, code, retryable, r.err)
	}
	if e.Message == "" || !strings.HasSuffix(e.Message, ".") {
		t.Errorf("message %q: want a sentence", e.Message)
	}
	if r.done != (runnel.Done{}) {
		t.Errorf("done = %+v with an error, want none", r.done)
	}
	for _, s := range []string{r.err.Error(), e.Message, fmt.Sprintf("%v %+v %#v", r.err, r.err, r.err)} {
		for _, secret := range []string{secretKey, "SECRET", maskedKey, secretKey[len(secretKey)-6:]} {
			if strings.Contains(s, secret) {
				t.Errorf("error text %q contains the key (%q)", s, secret)
			}
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	leakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := newGen(t, nil, openai.Options{BaseURL: "http://" + addr + "/v1", APIKey: secretKey})
	r := generate(t.Context(), g, question, nil)
	checkFailure(t, r, openai.EUpstreamUnavailable, true)
	if !strings.Contains(r.err.Error(), "connection refused") {
		t.Errorf("error %q: want the cause, connection refused, for the log", r.err)
	}
}

func TestRetryThenSucceed(t *testing.T) {
	leakCheck(t)
	f := newFake(t,
		func(s *sse) { s.status(503, `{"error":{"message":"overloaded"}}`) },
		func(s *sse) { s.status(429, `{"error":{"message":"slow down"}}`, "Retry-After", "0") },
		answer("third ", "time"),
	)
	g := newGen(t, f, openai.Options{})
	r := generate(t.Context(), g, question, nil)
	if r.err != nil || r.text() != "third time" {
		t.Fatalf("Generate = %q, %v; want %q", r.text(), r.err, "third time")
	}
	if n := len(f.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestRetryHonoursRetryAfter checks the wait before a retry is the one the
// upstream asked for, measured at the upstream.
func TestRetryHonoursRetryAfter(t *testing.T) {
	leakCheck(t)
	var first time.Time
	f := newFake(t,
		func(s *sse) { first = time.Now(); s.status(429, `{}`, "Retry-After-Ms", "300") },
		func(s *sse) {
			if d := time.Since(first); d < 300*time.Millisecond {
				t.Errorf("retried after %v, want at least the 300ms of Retry-After-Ms", d)
			}
			answer("ok")(s)
		},
	)
	g := newGen(t, f, openai.Options{})
	if r := generate(t.Context(), g, question, nil); r.err != nil {
		t.Fatal(r.err)
	}
}

// TestNoRetryAfterFirstToken: once text has been streamed, a failure is
// final.
func TestNoRetryAfterFirstToken(t *testing.T) {
	leakCheck(t)
	f := newFake(t, func(s *sse) { s.token("Hello"); s.abort() }, answer("never"))
	g := newGen(t, f, openai.Options{Retries: 5})
	r := generate(t.Context(), g, question, nil)
	checkFailure(t, r, openai.EUpstreamTruncated, true)
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestRetryWaitCanceled: a client that leaves during the backoff ends
// Generate at once.
func TestRetryWaitCanceled(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithCancel(t.Context())
	f := newFake(t, func(s *sse) {
		s.status(429, `{}`, "Retry-After", "20")
		cancel()
	})
	g := newGen(t, f, openai.Options{})
	start := time.Now()
	r := generate(ctx, g, question, nil)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Generate = %v, want context.Canceled", r.err)
	}
	if d := time.Since(start); d > within {
		t.Errorf("Generate took %v after the cancel", d)
	}
}

func TestAdaptToServer(t *testing.T) {
	tests := []struct {
		name   string
		reject script
		check  func(t *testing.T, first, second, third map[string]any)
	}{
		{
			name: "stream_options",
			reject: func(s *sse) {
				s.status(400, `{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}`)
			},
			check: func(t *testing.T, first, second, third map[string]any) {
				if _, ok := first["stream_options"]; !ok {
					t.Error("first request has no stream_options")
				}
				for i, b := range []map[string]any{second, third} {
					if _, ok := b["stream_options"]; ok {
						t.Errorf("request %d still has stream_options", i+2)
					}
				}
			},
		},
		{
			name: "max_tokens",
			reject: func(s *sse) {
				s.status(400, `{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}`)
			},
			check: func(t *testing.T, first, second, third map[string]any) {
				if first["max_tokens"] == nil {
					t.Error("first request has no max_tokens")
				}
				for i, b := range []map[string]any{second, third} {
					if b["max_tokens"] != nil || b["max_completion_tokens"] != float64(openai.DefaultMaxTokens) {
						t.Errorf("request %d: max_tokens %v, max_completion_tokens %v; want only max_completion_tokens", i+2, b["max_tokens"], b["max_completion_tokens"])
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			f := newFake(t, tt.reject, answer("fine"))
			g := newGen(t, f, openai.Options{Retries: -1})
			for range 2 {
				if r := generate(t.Context(), g, question, nil); r.err != nil || r.text() != "fine" {
					t.Fatalf("Generate = %q, %v; want fine", r.text(), r.err)
				}
			}
			reqs := f.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3 (rejected, adapted, remembered)", len(reqs))
			}
			tt.check(t, reqs[0].Body, reqs[1].Body, reqs[2].Body)
		})
	}
}

func TestMaxCompletionTokensForOpenAI(t *testing.T) {
	leakCheck(t)
	f := newFake(t, answer("ok"))
	// The host decides; route api.openai.com to the fake.
	addr := f.srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	g := newGen(t, f, openai.Options{BaseURL: "http://api.openai.com/v1", HTTPClient: &http.Client{Transport: tr}})
	t.Cleanup(tr.CloseIdleConnections)
	if r := generate(t.Context(), g, question, nil); r.err != nil {
		t.Fatal(r.err)
	}
	b := f.requests()[0].Body
	if b["max_tokens"] != nil || b["max_completion_tokens"] != float64(openai.DefaultMaxTokens) {
		t.Errorf("max_tokens %v, max_completion_tokens %v; want only max_completion_tokens for api.openai.com", b["max_tokens"], b["max_completion_tokens"])
	}
}

func TestNoPassagesNoCall(t *testing.T) {
	leakCheck(t)
	f := newFake(t, answer("should not be asked"))
	g := newGen(t, f, openai.Options{})
	for _, p := range []runnel.Prompt{
		{Question: "what is websocket?"},
		{Question: "what is websocket?", Passages: []runnel.Passage{{Slug: "empty", Title: "Empty", Text: " \n "}}},
	} {
		r := generate(t.Context(), g, p, nil)
		if r.err != nil || r.text() != openai.NotCovered || r.done.FinishReason != runnel.FinishStop {
			t.Errorf("Generate(%d passages) = %q, %+v, %v; want %q", len(p.Passages), r.text(), r.done, r.err, openai.NotCovered)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

// TestCancelClosesUpstream: when the caller's context ends, Generate
// returns its error and the upstream sees its request end.
func TestCancelClosesUpstream(t *testing.T) {
	leakCheck(t)
	f := newFake(t, func(s *sse) { s.token("Hello"); s.hold() })
	g := newGen(t, f, openai.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := generate(ctx, g, question, func(int, string) error { cancel(); return nil })
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Generate = %v, want context.Canceled", r.err)
	}
	f.waitGone(t)
}

// TestEmitErrorClosesUpstream: when emit fails (the client left), Generate
// returns emit's error and closes the upstream request.
func TestEmitErrorClosesUpstream(t *testing.T) {
	leakCheck(t)
	f := newFake(t, func(s *sse) { s.token("Hello"); s.hold() })
	g := newGen(t, f, openai.Options{})
	errGone := errors.New("client gone")
	r := generate(t.Context(), g, question, func(int, string) error { return errGone })
	if r.err != errGone {
		t.Errorf("Generate = %v, want emit's error itself", r.err)
	}
	f.waitGone(t)
}

func TestCanceledBeforeStart(t *testing.T) {
	leakCheck(t)
	f := newFake(t, answer("never"))
	g := newGen(t, f, openai.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if r := generate(ctx, g, question, nil); !errors.Is(r.err, context.Canceled) {
		t.Errorf("Generate = %v, want context.Canceled", r.err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

// TestConnectionReuse: answers that end with [DONE] leave their connection
// to the next question.
func TestConnectionReuse(t *testing.T) {
	leakCheck(t)
	f := newFake(t, answer("one"))
	g := newGen(t, f, openai.Options{})
	for range 3 {
		if r := generate(t.Context(), g, question, nil); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if n := f.conns.Load(); n != 1 {
		t.Errorf("3 answers opened %d connections, want 1", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		opts    openai.Options
		want    string // g.String(), or "" for an error
		wantErr string
	}{
		{opts: openai.Options{Model: "m"}, want: "m at https://api.openai.com/v1"},
		{opts: openai.Options{Model: "m", BaseURL: "http://localhost:11434"}, want: "m at http://localhost:11434/v1"},
		{opts: openai.Options{Model: "m", BaseURL: "http://localhost:11434/v1/"}, want: "m at http://localhost:11434/v1"},
		{opts: openai.Options{Model: "m", BaseURL: "http://localhost:8000/v1/chat/completions"}, want: "m at http://localhost:8000/v1"},
		{opts: openai.Options{Model: "m", BaseURL: "https://user:pw@llm.example/openai/v1?api-key=k"}, want: "m at https://llm.example/openai/v1"},
		{opts: openai.Options{BaseURL: "http://localhost:11434/v1"}, wantErr: "no model"},
		{opts: openai.Options{Model: "m", BaseURL: "localhost:11434"}, wantErr: "http:// or https://"},
		{opts: openai.Options{Model: "m", BaseURL: "ftp://secret@host/v1"}, wantErr: "http:// or https://"},
	}
	for _, tt := range tests {
		g, err := openai.New(tt.opts)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%v) = %v, want error with %q", tt.opts, err, tt.wantErr)
			} else if strings.Contains(err.Error(), "secret") {
				t.Errorf("New(%v) error %q shows the URL's user info", tt.opts, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%v): %v", tt.opts, err)
			continue
		}
		if got := g.String(); got != tt.want {
			t.Errorf("New(%v).String() = %q, want %q", tt.opts, got, tt.want)
		}
	}
}

// TestOptionsHideKey: printing or logging Options never shows the key.
func TestOptionsHideKey(t *testing.T) {
	o := openai.Options{BaseURL: "http://localhost:11434/v1", Model: "m", APIKey: secretKey}
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("llm", "options", o)
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%v %+v %#v %s", o, o, o, o), fmt.Sprint(&o), log.String()} {
		if strings.Contains(s, secretKey) {
			t.Errorf("%q shows the key", s)
		}
		if !strings.Contains(s, "m") {
			t.Errorf("%q: want the model", s)
		}
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want openai.Options
	}{
		{nil, openai.Options{}},
		{
			map[string]string{"OPENAI_API_KEY": "ko", "OPENAI_BASE_URL": "uo"},
			openai.Options{BaseURL: "uo", APIKey: "ko"},
		},
		{
			map[string]string{"OPENAI_API_KEY": "ko", "OPENAI_BASE_URL": "uo", "RUNNEL_LLM_URL": "ur", "RUNNEL_LLM_API_KEY": "kr", "RUNNEL_LLM_MODEL": "mr"},
			openai.Options{BaseURL: "ur", Model: "mr", APIKey: "kr"},
		},
		{
			map[string]string{"OPENAI_MODEL": "mo", "RUNNEL_LLM_MODEL": ""},
			openai.Options{},
		},
	}
	for _, tt := range tests {
		got := openai.FromEnv(func(k string) string { return tt.env[k] })
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FromEnv(%v) = %+v, want %+v (keys %q, %q)", tt.env, got, tt.want, got.APIKey, tt.want.APIKey)
		}
	}
}

// TestUntrustedCertificate: a certificate that does not verify is not
// retried, and asking again will not help.
func TestUntrustedCertificate(t *testing.T) {
	leakCheck(t)
	var requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	g := newGen(t, nil, openai.Options{BaseURL: srv.URL + "/v1", APIKey: secretKey})
	r := generate(t.Context(), g, question, nil)
	checkFailure(t, r, openai.EUpstreamUnavailable, false)
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server, want none", n)
	}
}
