package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// User code runs on the engine's goroutines: the workflow function, step
// functions, and the methods of values the user hands over (an error's
// Error, Is and As; a retry policy's Retryable and Backoff; a codec's
// MarshalMsgpack; the Clock). A panic in any of them must not kill the
// process. Every such call goes through protect, which turns a panic into
// a *PanicError with the stack where it happened; the caller then decides
// what it means: a failed attempt (a step, a retry policy), a failed run
// (the workflow, its error), or, for the engine-wide Clock, a fallback
// to the system clock with an error logged.

// protect calls fn and returns the panic it raised as a *PanicError, or
// nil. A runtime.Goexit in fn is not a panic and is not stopped.
func protect(fn func()) (perr *PanicError) {
	defer func() {
		if p := recover(); p != nil {
			perr = newPanicError(p)
		}
	}()
	fn()
	return nil
}

// newPanicError describes panic value p, raised in the caller of the
// deferred function that recovered it. fmt.Sprint survives a panicking
// Error or String method of p.
func newPanicError(p any) *PanicError {
	return &PanicError{Value: fmt.Sprint(p), Stack: string(debug.Stack())}
}

// safeError returns err, or a *PanicError if err's Error method (or the
// Is and As methods of its chain, which the engine calls to classify it)
// panics: what the engine records for an error it cannot describe.
func safeError(err error) error {
	if err == nil {
		return nil
	}
	if p := protect(func() { _ = err.Error(); _ = errorsIsCanceled(err) }); p != nil {
		return p
	}
	return err
}

// safeClock is Config.Clock with its panics contained: a Now or TimerAt
// that panics is logged, and the system clock answers instead, so that
// timers still fire and runs go on.
type safeClock struct {
	c   Clock
	log *slog.Logger
}

func newSafeClock(c Clock, log *slog.Logger) *safeClock {
	return &safeClock{c: c, log: log}
}

func (s *safeClock) Now() (t time.Time) {
	if p := protect(func() { t = s.c.Now() }); p != nil {
		s.failed("Now", p)
		return time.Now()
	}
	return t
}

func (s *safeClock) TimerAt(t time.Time) (c <-chan time.Time, stop func() bool) {
	if p := protect(func() { c, stop = s.c.TimerAt(t) }); p != nil || c == nil || stop == nil {
		s.failed("TimerAt", p)
		tm := time.NewTimer(time.Until(t))
		return tm.C, tm.Stop
	}
	return c, s.safeStop(stop)
}

func (s *safeClock) safeStop(stop func() bool) func() bool {
	return func() (ok bool) {
		if p := protect(func() { ok = stop() }); p != nil {
			s.failed("a timer's stop", p)
		}
		return ok
	}
}

func (s *safeClock) failed(what string, p *PanicError) {
	if p == nil {
		s.log.Error("durable: Config.Clock." + what + " returned nil; using the system clock")
		return
	}
	s.log.Error("durable: Config.Clock."+what+" panicked; using the system clock", "panic", p.Value, "stack", p.Stack)
}

// errorsIsCanceled reports whether err says the run was canceled.
func errorsIsCanceled(err error) bool {
	return errors.Is(err, ErrCanceled) || errors.Is(err, context.Canceled)
}
