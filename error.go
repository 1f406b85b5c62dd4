package runnel

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. They are part of the protocol: clients switch on them, so a
// code never changes meaning once released. Every code on the wire is here,
// with its HTTP status in Statuses.
const (
	EINVALID     = "invalid"       // the request is malformed (empty question, bad UTF-8)
	ETOOLARGE    = "too_large"     // the request is over a size limit
	ENOTFOUND    = "not_found"     // no such article, run or route
	EINTERNAL    = "internal"      // a fault inside runnel; the details are in the server log
	EUNAVAILABLE = "unavailable"   // runnel cannot serve now (shutting down, overloaded)
	ETIMEOUT     = "timeout"       // the stream reached its maximum duration
	ECANCELED    = "canceled"      // the request was canceled
	EUPSTREAM    = "upstream"      // a generator's upstream refused the request
	EMALFORMED   = "malformed"     // the server sent something that is not the protocol
	ETRUNCATED   = "truncated"     // the stream ended without a terminal event
	ELINETOOLONG = "line_too_long" // a protocol line exceeded the reader's limit

	EMETHOD    = "method_not_allowed"     // the route does not answer this method
	EMEDIATYPE = "unsupported_media_type" // the request body's type is not accepted

	EUNAUTHORIZED = "unauthorized" // the server requires an API key and the request has no valid one
	ERATELIMITED  = "rate_limited" // this client holds too many streams or asks too often; see Retry-After
	EFORBIDDEN    = "forbidden"    // a browser request from a page on an origin the server does not allow

	// Failures of an OpenAI-compatible upstream (see docs/llm.md).
	EUPSTREAMAUTH        = "upstream_auth"         // 401 or 403: the key is missing, wrong or not allowed
	EUPSTREAMMODEL       = "upstream_model"        // 404: no such model (or the URL is not an OpenAI-compatible API)
	EUPSTREAMRATELIMITED = "upstream_rate_limited" // 429: too many requests, or the account's quota is spent
	EUPSTREAMUNAVAILABLE = "upstream_unavailable"  // 5xx or 408, or the server cannot be reached
	EUPSTREAMMALFORMED   = "upstream_malformed"    // a chunk that is not a chat.completion.chunk, or no stream at all
	EUPSTREAMERROR       = "upstream_error"        // the stream carried an error chunk
	EUPSTREAMTRUNCATED   = "upstream_truncated"    // the stream ended before data: [DONE]
	EUPSTREAMSTALLED     = "upstream_stalled"      // nothing arrived for the stall timeout
)

// CodeStatus pairs an error code with the HTTP status of a response that
// refuses a request with it.
type CodeStatus struct {
	Code   string
	Status int
}

// Statuses is the one table of error codes and HTTP statuses, for the
// server, the Go client and (kept in step by a test) the JS client. The
// first code listed for a status is the one a client infers from that
// status when a response has no JSON body. Codes only clients produce
// (truncated, malformed, line_too_long) are not here.
var Statuses = []CodeStatus{
	{EINVALID, 400},
	{EUNAUTHORIZED, 401},
	{EFORBIDDEN, 403},
	{ENOTFOUND, 404},
	{EMETHOD, 405},
	{ETOOLARGE, 413},
	{EMEDIATYPE, 415},
	{ERATELIMITED, 429},
	{EUNAVAILABLE, 503},
	{EINTERNAL, 500},
	{EUPSTREAM, 502},
	{EUPSTREAMAUTH, 502},
	{EUPSTREAMMODEL, 502},
	{EUPSTREAMMALFORMED, 502},
	{EUPSTREAMERROR, 502},
	{EUPSTREAMTRUNCATED, 502},
	{EUPSTREAMRATELIMITED, 503},
	{EUPSTREAMUNAVAILABLE, 503},
	{ETIMEOUT, 504},
	{EUPSTREAMSTALLED, 504},
}

// HTTPStatus returns the HTTP status for an error code: 500 for a code
// Statuses does not list.
func HTTPStatus(code string) int {
	for _, cs := range Statuses {
		if cs.Code == code {
			return cs.Status
		}
	}
	return 500
}

// CodeOf returns the error code a client infers from an HTTP status when the
// response says nothing more: the first code Statuses lists for it, then
// internal for other 5xx and invalid for the rest.
func CodeOf(status int) string {
	for _, cs := range Statuses {
		if cs.Status == status {
			return cs.Code
		}
	}
	if status >= 500 {
		return EINTERNAL
	}
	return EINVALID
}

// Error is an error meant for users: a stable code and a sentence. Operators
// get the wrapped chain in the server log; users get only this.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "runnel: " + e.Code
	}
	return "runnel: " + e.Code + ": " + e.Message
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, ECANCELED or
// ETIMEOUT for context errors, and EINTERNAL for anything else. It returns ""
// for a nil error.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.Canceled):
		return ECANCELED
	case errors.Is(err, context.DeadlineExceeded):
		return ETIMEOUT
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err: the message of the
// first *Error in its chain, or a generic sentence that reveals nothing of
// the internals.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	case errors.Is(err, context.Canceled):
		return "The request was canceled."
	case errors.Is(err, context.DeadlineExceeded):
		return "The answer took too long."
	}
	return "Internal error."
}

// AsError returns err as an *Error for users, keeping the first *Error in its
// chain or building one from ErrorCode and ErrorMessage.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: ErrorCode(err), Message: ErrorMessage(err)}
}
