package openai

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
		ok     bool
	}{
		{nil, 0, false},
		{map[string]string{"Retry-After": "3"}, 3 * time.Second, true},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond, true},
		{map[string]string{"Retry-After": "99999999999999"}, time.Hour, true},
		{map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second, true},
		{map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0, true},
		{map[string]string{"Retry-After": "soon"}, 0, false},
		{map[string]string{"Retry-After": "-1"}, 0, false},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond, true},
		{map[string]string{"Retry-After-Ms": "NaN", "Retry-After": "9"}, 9 * time.Second, true},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		got, ok := retryAfter(h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%v) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRejectedParam(t *testing.T) {
	tests := []struct {
		body              string
		sentMaxCompletion bool
		want              string
	}{
		{`{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","param":"max_tokens"}}`, false, "max_tokens"},
		{`{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","param":"max_tokens"}}`, true, ""},
		{`{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."}}`, false, "max_tokens"},
		{`{"error":{"message":"Unknown parameter: 'stream_options.include_usage'.","param":"stream_options.include_usage"}}`, false, "stream_options"},
		{`{"error":{"message":"Invalid type for 'messages'.","param":"messages"}}`, false, ""},
		{`{"detail":[{"type":"extra_forbidden","loc":["body","max_completion_tokens"],"msg":"Extra inputs are not permitted"}]}`, true, "max_completion_tokens"},
		{`{"error":{"message":"Unrecognized request argument supplied: stream_options"}}`, false, "stream_options"},
		{`{"object":"error","message":"'max_tokens' or 'max_completion_tokens' is too large: 5000."}`, false, ""},
		{`{"error":{"message":"This model's maximum context length is 4096 tokens."}}`, false, ""},
	}
	for _, tt := range tests {
		if got := rejectedParam([]byte(tt.body), tt.sentMaxCompletion); got != tt.want {
			t.Errorf("rejectedParam(%s, %v) = %q, want %q", tt.body, tt.sentMaxCompletion, got, tt.want)
		}
	}
}

func TestReason(t *testing.T) {
	g := &Generator{opts: Options{APIKey: "my-local-secret"}}
	tests := []struct {
		body string
		want string
	}{
		{`{"error":{"message":"Incorrect API key provided: sk-proj-****************abcd."}}`, "Incorrect API key provided: [redacted]"},
		{`{"error":"bad key my-local-secret"}`, "bad key [redacted]"},
		{`{"message":"got Authorization: Bearer abc.def"}`, "got Authorization: [redacted]"},
		{`{"detail":"api_key=abc123 rejected"}`, "[redacted] rejected"},
		{"line one\n\tline\x00two", "line one line two"},
		{``, "(empty)"},
		{strings.Repeat("é", 300), strings.Repeat("é", 100) + "…"},
	}
	for _, tt := range tests {
		if got := g.reason([]byte(tt.body)); got != tt.want {
			t.Errorf("reason(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
