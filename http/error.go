package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/patinadb/patina"
)

// codeStatus is the one table from patina error codes to HTTP status.
var codeStatus = map[string]int{
	patina.EINVALID:      http.StatusBadRequest,
	patina.EUNAUTHORIZED: http.StatusUnauthorized,
	patina.ENOTFOUND:     http.StatusNotFound,
	patina.ECONFLICT:     http.StatusConflict,
	patina.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	patina.ERATELIMIT:    http.StatusTooManyRequests,
	patina.EUNAVAILABLE:  http.StatusServiceUnavailable,
	patina.ETIMEOUT:      http.StatusGatewayTimeout,
	patina.EGONE:         http.StatusGone,
	patina.EINTERNAL:     http.StatusInternalServerError,
}

// retryAfterSeconds is the Retry-After sent with 429 and 503.
const retryAfterSeconds = 1

// ErrorStatus returns the HTTP status for err's patina error code.
func ErrorStatus(err error) int {
	if status, ok := codeStatus[patina.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// statusCode is the inverse of codeStatus, for the client.
func statusCode(status int) string {
	for code, s := range codeStatus {
		if s == status {
			return code
		}
	}
	switch {
	case status >= 400 && status < 500:
		return patina.EINVALID
	case status == http.StatusBadGateway:
		return patina.EUNAVAILABLE
	}
	return patina.EINTERNAL
}

// errorBody is every error response: {"error": "..."}.
type errorBody struct {
	Error string `json:"error"`
}

// setErrorHeaders sets the headers an error status needs and returns the
// status.
func setErrorHeaders(w http.ResponseWriter, err error) int {
	status := ErrorStatus(err)
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="patina"`)
	}
	return status
}

// writeError writes err as {"error": "..."} with its mapped status, and logs
// internal errors.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := setErrorHeaders(w, err)
	s.logError(r, status, err)
	writeJSON(w, status, errorBody{Error: patina.ErrorMessage(err)})
}

func (s *Server) logError(r *http.Request, status int, err error) {
	if status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
		s.logger().Error("api request failed", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyStatus, status, logKeyErr, err)
	} else {
		s.logger().Debug("api request refused", logKeyMethod, r.Method, logKeyPath, r.URL.Path, logKeyStatus, status, logKeyErr, err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// timeoutError is the cause set on a request context whose ?timeout fired,
// so that a timeout reports what timed out, the limit and what to try.
type timeoutError struct{ err *patina.Error }

func (e *timeoutError) Error() string { return e.err.Message }

// withTimeout bounds ctx by d (none when d is 0) with a cause that explains
// the timeout of what.
func withTimeout(ctx context.Context, d time.Duration, what, hint string) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	cause := &timeoutError{patina.Errorf(patina.ETIMEOUT,
		"%s did not finish within its timeout of %s; %s, or raise the limit with ?timeout=SECONDS (0 = no limit)",
		what, formatDuration(d), hint)}
	return context.WithTimeoutCause(ctx, d, cause)
}

// contextError replaces err with the request's timeout explanation when the
// request ran out of time, and gives a bare context error a message a person
// can act on.
func contextError(ctx context.Context, err error, what string) error {
	var te *timeoutError
	if ctx.Err() != nil && errors.As(context.Cause(ctx), &te) {
		return te.err
	}
	if patina.ErrorCode(err) == patina.EINTERNAL {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return patina.Errorf(patina.ETIMEOUT, "%s timed out inside the agent (%v); retry, or retry with a smaller request", what, err)
		case errors.Is(err, context.Canceled):
			return patina.Errorf(patina.EUNAVAILABLE, "%s was cancelled (%v): the client went away or the agent is shutting down; retry", what, err)
		}
	}
	return err
}

func formatDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

func formatBytes(n int64) string {
	const mib = 1 << 20
	const kib = 1 << 10
	switch {
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib && n%kib == 0:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d bytes", n)
}
