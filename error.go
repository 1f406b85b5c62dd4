package runnel

import (
	"context"
	"errors"
	"fmt"
)

// Error codes. They are part of the protocol: clients switch on them, so a
// code never changes meaning once released.
const (
	EINVALID     = "invalid"       // the request is malformed (empty question, bad UTF-8)
	ETOOLARGE    = "too_large"     // the request is over a size limit
	ENOTFOUND    = "not_found"     // no such article or route
	EINTERNAL    = "internal"      // a fault inside runnel; the details are in the server log
	EUNAVAILABLE = "unavailable"   // runnel cannot serve now (shutting down, overloaded)
	ETIMEOUT     = "timeout"       // the stream reached its maximum duration
	ECANCELED    = "canceled"      // the request was canceled
	EUPSTREAM    = "upstream"      // a generator's upstream failed
	EMALFORMED   = "malformed"     // the server sent something that is not protocol v1
	ETRUNCATED   = "truncated"     // the stream ended without a terminal event
	ELINETOOLONG = "line_too_long" // a protocol line exceeded the reader's limit
)

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
