package patina

import (
	"errors"
	"fmt"
)

// Error codes, mapped to HTTP status in one table in package http.
const (
	EINVALID      = "invalid"      // the request is malformed or refused by a rule
	ENOTFOUND     = "not_found"    // a named thing does not exist
	ECONFLICT     = "conflict"     // the request conflicts with current state
	EUNAUTHORIZED = "unauthorized" // missing or wrong credentials
	ETOOLARGE     = "too_large"    // a request or value exceeds a limit
	ERATELIMIT    = "rate_limited" // a rate limit was hit; retry later
	EUNAVAILABLE  = "unavailable"  // overloaded or shutting down; retry later
	ETIMEOUT      = "timeout"      // an operation ran out of time
	EGONE         = "gone"         // asked-for history is no longer kept; start over
	EINTERNAL     = "internal"     // a bug or an I/O failure
)

// Error is a user-facing error: a code and a message a person can act on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// other non-nil errors and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// err.Error() for other errors.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
