package openai

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/runnel/runnel"
)

// failure is an upstream failure: a *runnel.Error for users, and for
// operators a short reason that never holds the key.
type failure struct {
	user   *runnel.Error
	where  string // the base URL, redacted
	detail string // sanitized

	retry  bool          // Generate may send the request again
	wait   time.Duration // the upstream's Retry-After, if any
	reject string        // a request parameter the upstream does not accept
}

func (f *failure) Error() string {
	return fmt.Sprintf("openai: %s from %s: %s", f.user.Code, f.where, f.detail)
}

// Unwrap returns the error for users, so runnel.AsError finds it.
func (f *failure) Unwrap() error { return f.user }

// messages are the sentences users read, by code.
var messages = map[string]string{
	EUpstreamMalformed: "The language model sent a response runnel cannot read.",
	EUpstreamError:     "The language model failed while answering; ask again.",
	EUpstreamTruncated: "The language model's answer broke off before its end; ask again.",
	EUpstreamStalled:   "The language model stopped sending its answer; ask again.",
}

// retryable says which codes a client may ask again after.
var retryable = map[string]bool{
	EUpstreamRateLimited: true,
	EUpstreamUnavailable: true,
	EUpstreamError:       true,
	EUpstreamTruncated:   true,
	EUpstreamStalled:     true,
}

// fail returns a failure with the usual message for code; msg, when not
// empty, replaces it.
func (g *Generator) fail(code, detail string, msg *string) *failure {
	m := messages[code]
	if msg != nil {
		m = *msg
	}
	return &failure{
		user:   &runnel.Error{Code: code, Message: m, Retryable: retryable[code]},
		where:  g.where,
		detail: detail,
	}
}

// statusFailure classifies a response with an error status.
func (g *Generator) statusFailure(resp *http.Response, body []byte, sentMaxCompletion bool) *failure {
	status := resp.StatusCode
	detail := fmt.Sprintf("HTTP %d: %s", status, g.reason(body))
	var f *failure
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		f = g.fail(EUpstreamAuth, detail, ptr(fmt.Sprintf("The language model refused runnel's credentials (HTTP %d); check the API key.", status)))
	case status == http.StatusNotFound:
		f = g.fail(EUpstreamModel, detail, ptr(fmt.Sprintf("The language model server does not know the model %q, or its URL is not an OpenAI-compatible API (HTTP 404).", g.opts.Model)))
	case status == http.StatusTooManyRequests && strings.Contains(string(body), "insufficient_quota"):
		// OpenAI's billing limit: asking again does not help.
		f = g.fail(EUpstreamRateLimited, detail, ptr("The language model account has used up its quota (HTTP 429)."))
		f.user.Retryable = false
		return f
	case status == http.StatusTooManyRequests:
		f = g.fail(EUpstreamRateLimited, detail, ptr("The language model is rate limiting runnel (HTTP 429); ask again shortly."))
		f.retry = true
	case status == http.StatusRequestTimeout || status >= 500:
		f = g.fail(EUpstreamUnavailable, detail, ptr(fmt.Sprintf("The language model server failed (HTTP %d); ask again shortly.", status)))
		f.retry = true
	default:
		f = g.fail(runnel.EUPSTREAM, detail, ptr(fmt.Sprintf("The language model server rejected the request (HTTP %d).", status)))
		if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
			f.reject = rejectedParam(body, sentMaxCompletion)
		}
	}
	if f.retry {
		f.wait, _ = retryAfter(resp.Header, time.Now())
	}
	return f
}

// connFailure classifies an error from sending the request.
func (g *Generator) connFailure(err error) *failure {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return g.fail(runnel.EUPSTREAM, g.reason([]byte(err.Error())), ptr("The language model request failed."))
	}
	// The inner error: the URL is in the failure already, without what it
	// may hide in its user info or query.
	detail := g.reason([]byte(ue.Err.Error()))
	var cert *tls.CertificateVerificationError
	var dns *net.DNSError
	var f *failure
	switch {
	case errors.As(err, &cert):
		f = g.fail(EUpstreamUnavailable, detail, ptr("The language model server's TLS certificate is not valid."))
	case errors.As(err, &dns) && dns.IsNotFound:
		f = g.fail(EUpstreamUnavailable, detail, ptr("The language model server's host name does not exist."))
	}
	if f != nil {
		// Configuration, not chance: asking again gives the same answer.
		f.user.Retryable = false
		return f
	}
	f = g.fail(EUpstreamUnavailable, detail, ptr("The language model server cannot be reached; ask again shortly."))
	f.retry = true
	return f
}

// rejectedParam returns the request parameter a 400 says the server does
// not support, if it is one Generate can do without: stream_options, or the
// name of the token cap that was sent.
func rejectedParam(body []byte, sentMaxCompletion bool) string {
	sent := "max_tokens"
	if sentMaxCompletion {
		sent = "max_completion_tokens"
	}
	// OpenAI names the parameter; trust that over the message, which may
	// name the other one as the alternative.
	var v struct {
		Error struct {
			Param string `json:"param"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && v.Error.Param != "" {
		if p := v.Error.Param; p == "stream_options" || strings.HasPrefix(p, "stream_options.") {
			return "stream_options"
		} else if p == sent {
			return sent
		}
		return ""
	}
	s := strings.ToLower(string(body))
	unsupported := false
	for _, w := range []string{"unsupported", "not supported", "unknown", "unrecognized", "not permitted", "not allowed", "extra "} {
		if strings.Contains(s, w) {
			unsupported = true
			break
		}
	}
	switch {
	case !unsupported:
		return ""
	case strings.Contains(s, "stream_options"):
		return "stream_options"
	case strings.Contains(s, sent):
		return sent
	}
	return ""
}

// retryAfter reads the wait an error response asks for: OpenAI's
// Retry-After-Ms, or Retry-After in seconds or as a date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms < float64(time.Hour/time.Millisecond) {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(s) && s >= 0 {
		if s > 3600 {
			return time.Hour, true
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// maxReason bounds the upstream text kept in a failure's detail.
const maxReason = 200

// secretLike matches what looks like a credential in upstream text:
// bearer tokens, OpenAI-style keys (also masked, as in OpenAI's "Incorrect
// API key provided: sk-abc***wxyz") and key=value pairs.
var secretLike = regexp.MustCompile(`(?i)bearer\s+\S+|\b[sprk]k-[A-Za-z0-9_*.\-]{3,}|(api[_-]?key|token|secret|password)["']?\s*[=:]\s*["']?[^\s"',}&]+`)

// reason returns upstream text fit for a log: the message of an error
// body when it has one, without the key or anything that looks like a
// credential, on one line, at most maxReason bytes.
func (g *Generator) reason(b []byte) string {
	s := errorMessage(b)
	if k := g.opts.APIKey; k != "" {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	s = secretLike.ReplaceAllString(s, "[redacted]")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) > maxReason {
		i := maxReason
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// errorMessage returns the message of an error body in the shapes servers
// use, {"error": {"message": ...}}, {"error": "..."}, {"message": ...} and
// {"detail": "..."}, or the body itself.
func errorMessage(b []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
	}
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	if len(v.Error) > 0 {
		var e struct {
			Message string `json:"message"`
		}
		var s string
		if json.Unmarshal(v.Error, &e) == nil && e.Message != "" {
			return e.Message
		}
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s
		}
	}
	if v.Message != "" {
		return v.Message
	}
	if d, ok := v.Detail.(string); ok && d != "" {
		return d
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }
