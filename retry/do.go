package retry

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// Do calls fn until it returns nil or p.Next says to stop, waiting in
// memory between attempts. It is for callers outside a durable workflow:
// its waits and attempt count do not survive a crash.
//
// fn is always called at least once. Each call gets a context derived
// from ctx, with a deadline of p.Timeout if that is positive. A panic in
// fn is recovered and counts as a failed attempt with a [*PanicError].
//
// When p.Next says to stop, Do returns an error that wraps the last
// attempt's error and says how many attempts were made, such as
// "retry: gave up after 3 attempts: <last error>"; a [Permanent] error or
// one Retryable rejects stops at once the same way. If ctx is done after
// a failed attempt or during a wait, Do stops the wait and returns an
// error that wraps both ctx.Err() and the last attempt's error.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context) error) error {
	_, err := DoValue(ctx, p, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return err
}

// DoValue is [Do] for a function that returns a value: it returns the
// value of the first successful call, or T's zero value and Do's error.
func DoValue[T any](ctx context.Context, p Policy, fn func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		v, err := call(ctx, p.Timeout, fn)
		if err == nil {
			return v, nil
		}
		delay, ok := p.Next(attempt, err)
		if !ok {
			return zero, fmt.Errorf("retry: gave up after %s: %w", attempts(attempt), err)
		}
		if ctx.Err() != nil {
			return zero, stopped(ctx, attempt, err)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return zero, stopped(ctx, attempt, err)
		case <-timer.C:
		}
	}
}

// call runs one attempt of fn with the per-attempt timeout, turning a
// panic into a *PanicError.
func call[T any](ctx context.Context, timeout time.Duration, fn func(context.Context) (T, error)) (v T, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// stopped is the error for a ctx that ended the retries.
func stopped(ctx context.Context, n int, last error) error {
	return fmt.Errorf("retry: %w after %s: %w", ctx.Err(), attempts(n), last)
}

// attempts formats "1 attempt" or "n attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}
