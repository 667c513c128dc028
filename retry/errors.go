package retry

import (
	"errors"
	"fmt"
	"time"
)

// permanentError marks an error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that no retry can fix, such as invalid
// input: [Policy.Next] never retries an error with this mark anywhere in
// its chain, whatever its Retryable says. The result has err's message
// unchanged and unwraps to err. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err or any error in its chain was marked by
// [Permanent].
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

// retryAfterError carries a "retry no sooner than" hint.
type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// After attaches a hint to err: retry no sooner than d from now, as an
// HTTP 429 or 503 response's Retry-After header asks. [Policy.Next] waits
// at least d before a retry, but the hint does not make err retryable if
// the policy would otherwise stop. A negative d counts as zero. The
// result has err's message unchanged and unwraps to err. After(nil, d) is
// nil.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, d: max(d, 0)}
}

// RetryAfter returns the hint attached by [After] to err or an error in
// its chain. If there are several, it returns the first found by
// errors.As, which is the outermost.
func RetryAfter(err error) (time.Duration, bool) {
	if e, ok := errors.AsType[*retryAfterError](err); ok {
		return e.d, true
	}
	return 0, false
}

// PanicError is the error [Do] and [DoValue] report for an attempt that
// panicked. It counts as a failed attempt like any other error.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack trace where the panic was recovered,
	// as formatted by runtime/debug.Stack.
	Stack []byte
}

// Error returns "retry: panic: " followed by the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("retry: panic: %v", e.Value) }

// Unwrap returns Value if it is an error, so errors.Is and errors.As see
// through a panic(err); otherwise it returns nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
