package runnel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/runnel/runnel"
)

func TestErrorFuncs(t *testing.T) {
	notFound := runnel.Errorf(runnel.ENOTFOUND, "No article %q.", "ws")
	upstream := &runnel.Error{Code: runnel.EUPSTREAM, Message: "The model did not answer.", Retryable: true}
	secret := errors.New("open /var/lib/runnel/secret.db: permission denied")

	tests := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
		wantSame *runnel.Error // AsError must return this very *Error, if set
	}{
		{"nil", nil, "", "", nil},
		{"*Error", notFound, runnel.ENOTFOUND, `No article "ws".`, notFound},
		{"wrapped *Error", fmt.Errorf("get ws: %w", notFound), runnel.ENOTFOUND, `No article "ws".`, notFound},
		{"twice wrapped *Error", fmt.Errorf("handler: %w", fmt.Errorf("generate: %w", upstream)), runnel.EUPSTREAM, "The model did not answer.", upstream},
		{"*Error in a join", errors.Join(secret, upstream), runnel.EUPSTREAM, "The model did not answer.", upstream},
		{"*Error before a context error", fmt.Errorf("%w: %w", upstream, context.Canceled), runnel.EUPSTREAM, "The model did not answer.", upstream},
		{"context error before *Error", fmt.Errorf("%w: %w", context.Canceled, upstream), runnel.EUPSTREAM, "The model did not answer.", upstream},
		{"context.Canceled", context.Canceled, runnel.ECANCELED, "The request was canceled.", nil},
		{"wrapped context.Canceled", fmt.Errorf("search: %w", context.Canceled), runnel.ECANCELED, "The request was canceled.", nil},
		{"context.DeadlineExceeded", context.DeadlineExceeded, runnel.ETIMEOUT, "The answer took too long.", nil},
		{"wrapped context.DeadlineExceeded", fmt.Errorf("generate: %w", context.DeadlineExceeded), runnel.ETIMEOUT, "The answer took too long.", nil},
		{"plain error", secret, runnel.EINTERNAL, "Internal error.", nil},
		{"wrapped plain error", fmt.Errorf("import corpus: %w", secret), runnel.EINTERNAL, "Internal error.", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runnel.ErrorCode(tt.err); got != tt.wantCode {
				t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.wantCode)
			}
			if got := runnel.ErrorMessage(tt.err); got != tt.wantMsg {
				t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.wantMsg)
			}

			got := runnel.AsError(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Errorf("AsError(nil) = %#v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("AsError(%v) = nil, want an *Error", tt.err)
			}
			if tt.wantSame != nil && got != tt.wantSame {
				t.Errorf("AsError(%v) = %p, want the *Error in the chain %p", tt.err, got, tt.wantSame)
			}
			if got.Code != tt.wantCode || got.Message != tt.wantMsg {
				t.Errorf("AsError(%v) = {%q, %q}, want {%q, %q}", tt.err, got.Code, got.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

// TestErrorMessageHidesInternals checks that users never see the text of an
// error that is not an *Error: it is for the server log only.
func TestErrorMessageHidesInternals(t *testing.T) {
	for _, err := range []error{
		errors.New("open /var/lib/runnel/secret.db: permission denied"),
		fmt.Errorf("query SELECT * FROM secret: %w", errors.New("disk I/O error")),
		fmt.Errorf("dial tcp 10.0.0.7:443: %w", context.DeadlineExceeded),
		fmt.Errorf("secret: %w", context.Canceled),
	} {
		for _, s := range []string{runnel.ErrorMessage(err), runnel.AsError(err).Message, runnel.AsError(err).Error()} {
			if strings.Contains(s, "secret") || strings.Contains(s, "10.0.0.7") || strings.Contains(s, "disk") {
				t.Errorf("user-facing text %q of %q leaks the internal error", s, err)
			}
		}
		if e := runnel.AsError(err); e.Retryable {
			t.Errorf("AsError(%q).Retryable = true, want false", err)
		}
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		name     string
		err      *runnel.Error
		wantText string
		wantJSON string
	}{
		{
			"code and message",
			runnel.Errorf(runnel.ETOOLARGE, "The question is %d bytes long; the limit is %d.", 2400, 2000),
			"runnel: too_large: The question is 2400 bytes long; the limit is 2000.",
			`{"code":"too_large","message":"The question is 2400 bytes long; the limit is 2000."}`,
		},
		{
			"code only",
			&runnel.Error{Code: runnel.ETRUNCATED},
			"runnel: truncated",
			`{"code":"truncated","message":""}`,
		},
		{
			"retryable",
			&runnel.Error{Code: runnel.EUNAVAILABLE, Message: "The server is shutting down.", Retryable: true},
			"runnel: unavailable: The server is shutting down.",
			`{"code":"unavailable","message":"The server is shutting down.","retryable":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
			b, err := json.Marshal(tt.err)
			if err != nil {
				t.Fatalf("json.Marshal(%#v) error = %v", tt.err, err)
			}
			if string(b) != tt.wantJSON {
				t.Errorf("json.Marshal(%#v) = %s, want %s", tt.err, b, tt.wantJSON)
			}
			var back runnel.Error
			if err := json.Unmarshal(b, &back); err != nil || back != *tt.err {
				t.Errorf("json.Unmarshal(%s) = %#v, %v; want %#v", b, back, err, *tt.err)
			}
		})
	}
}

func TestErrorfFormats(t *testing.T) {
	e := runnel.Errorf(runnel.ENOTFOUND, "No article %q.", "a b")
	if e.Code != runnel.ENOTFOUND || e.Message != `No article "a b".` || e.Retryable {
		t.Errorf(`Errorf(ENOTFOUND, "No article %%q.", "a b") = %#v, want code %q and message %q`, e, runnel.ENOTFOUND, `No article "a b".`)
	}
}
