package durable

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/internal/errtext"
	kin "github.com/durable-go/durable/internal/sentinel"
	"github.com/durable-go/durable/journal"
)

// Sentinel errors. Test them with errors.Is; they survive a restart (see
// [RecordedError]).
var (
	// ErrNotFound: no run with that id. It is journal.ErrNotFound.
	ErrNotFound = journal.ErrNotFound
	// ErrFinished: the run has finished (Send to it, for instance). It is
	// journal.ErrFinished.
	ErrFinished = journal.ErrFinished
	// ErrNondeterministic: replay diverged from the journal. See
	// [NondeterminismError].
	ErrNondeterministic = errors.New("durable: nondeterministic workflow")
	// ErrCanceled: the run was canceled. Errors that match it also match
	// context.Canceled.
	ErrCanceled = &sentinel{msg: "durable: run canceled", also: context.Canceled}
	// ErrDeadlineExceeded: the run's deadline passed. Errors that match it
	// also match ErrCanceled and context.DeadlineExceeded.
	ErrDeadlineExceeded = &sentinel{msg: "durable: run deadline exceeded", also: context.DeadlineExceeded, parent: ErrCanceled}
	// ErrParked: the run is parked (see [StatusParked]); the error that
	// carries it says why.
	ErrParked = errors.New("durable: run is parked")
	// ErrNotRegistered: the run's workflow is not registered with this
	// engine.
	ErrNotRegistered = errors.New("durable: workflow not registered")
	// ErrWorkflowMismatch: an id was started with one workflow and is used
	// with another.
	ErrWorkflowMismatch = errors.New("durable: run belongs to another workflow")
	// ErrClosed: the engine is closed. It matches journal.ErrClosed, and
	// journal.ErrClosed matches it: a store closed under an engine gives
	// errors that match both.
	ErrClosed error = kin.New("durable: engine closed", kin.Closed)
	// ErrInvalid: an argument is invalid (a nil *Engine, a step or
	// channel name the journal cannot hold, ...); nothing was executed or
	// written. It matches journal.ErrInvalid, and journal.ErrInvalid
	// matches it.
	ErrInvalid error = kin.New("durable: invalid argument", kin.Invalid)
	// ErrStaleContext: a durable operation was called with a [Context]
	// whose workflow function has returned, or whose run stopped running
	// in this process (the engine closed, the run was evicted from the
	// cache or parked). Only the workflow goroutine of a live run may use
	// its Context.
	ErrStaleContext = errors.New("durable: Context used after its workflow returned or its run stopped")
	// ErrConcurrentContext: two goroutines called durable operations on
	// one [Context] at once. A Context belongs to the workflow goroutine;
	// run steps concurrently with [Go] and wait with [Future.Get] or
	// [AwaitAll].
	ErrConcurrentContext = errors.New("durable: Context used by two goroutines at once; run concurrent steps with durable.Go")
	// ErrPayload: a payload cannot be encoded or decoded, or is too large.
	// See [PayloadError].
	ErrPayload = errors.New("durable: bad payload")
	// ErrPayloadTooLarge: a payload is over Config.MaxPayloadBytes. It also
	// matches ErrPayload.
	ErrPayloadTooLarge = &sentinel{msg: "durable: payload too large", parent: ErrPayload}
	// ErrTimeout: a wait with a timeout (ReceiveTimeout) ran out.
	ErrTimeout = errors.New("durable: timed out")
	// ErrStepInterrupted: an at-most-once step was interrupted by a crash
	// and is not run again. See [StepInterruptedError].
	ErrStepInterrupted = errors.New("durable: at-most-once step interrupted")
	// ErrTooManyRecords: the run made Config.MaxHistory durable operations
	// in its epoch; see [ContinueAsNew].
	ErrTooManyRecords = errors.New("durable: run has too many records")
)

// sentinel is an error value that also matches a standard error (so
// ErrCanceled matches context.Canceled) and a parent sentinel.
type sentinel struct {
	msg    string
	also   error
	parent error
}

func (s *sentinel) Error() string { return s.msg }

func (s *sentinel) Is(target error) bool {
	return target == s.also || (s.parent != nil && errors.Is(s.parent, target))
}

// NondeterminismError says where and how a replay diverged from the
// journal. It matches [ErrNondeterministic].
type NondeterminismError struct {
	RunID    string
	Workflow string
	Position int
	Recorded string // what the journal holds at Position, e.g. `step "charge"`
	Called   string // what the code asked for, e.g. `step "reserve"`
	Location string // file:line of the call, if known
	// RecordedBy are the builds (Config.BuildID) that started and resumed
	// the run before Build, oldest first, and Build the build that found
	// the divergence; empty if the engines had none. RunInfo.Builds has
	// them all, Build included once it resumed the run.
	RecordedBy []string
	Build      string
}

func (e *NondeterminismError) Error() string {
	msg := fmt.Sprintf("durable: run %q (workflow %q) diverged from its journal at position %d: the journal has %s, the code ",
		e.RunID, e.Workflow, e.Position, e.Recorded)
	if e.Called == "" {
		msg += "returned"
	} else {
		msg += "called " + e.Called
	}
	if e.Location != "" {
		msg += " at " + e.Location
	}
	return msg + e.fixes()
}

// Is reports whether target is [ErrNondeterministic].
func (e *NondeterminismError) Is(target error) bool { return target == ErrNondeterministic }

// StepError is a step's final failure: its retries ran out, or its error
// was permanent. Its message reads like a stack across await points:
//
//	durable: order(o-1) → step "charge" failed after 3 attempts: card declined
type StepError struct {
	Workflow string
	RunID    string
	Step     string
	Position int
	Attempts int
	Err      error // the last attempt's error
}

func (e *StepError) Error() string {
	n := "attempts"
	if e.Attempts == 1 {
		n = "attempt"
	}
	return errtext.OnePrefix(fmt.Sprintf("durable: %s(%s) → step %s failed after %d %s: %v", e.Workflow, e.RunID, clip.Q(e.Step), e.Attempts, n, e.Err))
}

// Unwrap returns the last attempt's error.
func (e *StepError) Unwrap() error { return e.Err }

// ChildError is the failure of a child workflow, as its parent sees it. Its
// message continues the path of the child's own error:
//
//	durable: order(o-1) → shipping(o-1/4) → step "book" failed after 3 attempts: 503
type ChildError struct {
	Parent   string // the parent's workflow name
	ParentID string
	Workflow string // the child's workflow name
	RunID    string // the child's run id
	Err      error  // the child's error
}

func (e *ChildError) Error() string {
	inner := e.Err.Error()
	var step *StepError
	var child *ChildError
	if (errors.As(e.Err, &step) && step.RunID == e.RunID) || (errors.As(e.Err, &child) && child.ParentID == e.RunID) {
		inner = strings.TrimPrefix(inner, "durable: ")
	} else {
		inner = fmt.Sprintf("%s(%s): %s", e.Workflow, e.RunID, inner)
	}
	return fmt.Sprintf("durable: %s(%s) → %s", e.Parent, e.ParentID, inner)
}

// Unwrap returns the child's error.
func (e *ChildError) Unwrap() error { return e.Err }

// PanicError is a panic in workflow or step code, turned into an error
// with the panic value and the stack where it happened.
type PanicError struct {
	Value string // fmt.Sprint of the panic value
	Stack string
}

func (e *PanicError) Error() string { return "durable: panic: " + e.Value }

// StepInterruptedError is returned by an at-most-once step (see
// [AtMostOnce]) whose previous execution was interrupted by a crash: the
// engine cannot know whether its effect happened, so it does not run it
// again. Use Key to ask the external system. It matches
// [ErrStepInterrupted].
type StepInterruptedError struct {
	Step    string
	Key     string // the step's idempotency key
	Attempt int    // the attempt that was interrupted
}

func (e *StepInterruptedError) Error() string {
	return fmt.Sprintf("durable: at-most-once step %q (key %s) was interrupted at attempt %d; not running it again", e.Step, e.Key, e.Attempt)
}

// Is reports whether target is [ErrStepInterrupted].
func (e *StepInterruptedError) Is(target error) bool { return target == ErrStepInterrupted }

// PayloadError says which payload could not be encoded or decoded, or was
// too large. It matches [ErrPayload], and [ErrPayloadTooLarge] when Size is
// over Limit.
type PayloadError struct {
	What  string // "input of run r-1", "result of step \"fetch\"", ...
	Op    string // "encode" or "decode"
	Size  int    // encoded size, when known
	Limit int    // the limit, when Size is over it
	Err   error  // the codec's error, if any
}

func (e *PayloadError) Error() string {
	if e.Limit > 0 && e.Size > e.Limit {
		return fmt.Sprintf("durable: %s is %d bytes, over the limit of %d", e.What, e.Size, e.Limit)
	}
	return errtext.OnePrefix(fmt.Sprintf("durable: cannot %s %s: %v", e.Op, e.What, e.Err))
}

// Unwrap returns the codec's error.
func (e *PayloadError) Unwrap() error { return e.Err }

// Is matches ErrPayload, and ErrPayloadTooLarge for a size error.
func (e *PayloadError) Is(target error) bool {
	return target == ErrPayload || (target == ErrPayloadTooLarge && e.Limit > 0 && e.Size > e.Limit)
}

// ParkedError is what [Handle.Result] returns for a parked run. It matches
// [ErrParked] and unwraps to the reason (a [NondeterminismError], an error
// matching [ErrNotRegistered] or [ErrPayload], ...).
type ParkedError struct {
	RunID  string
	Reason error
}

func (e *ParkedError) Error() string {
	return errtext.OnePrefix(fmt.Sprintf("durable: run %s is parked: %v", clip.Q(e.RunID), e.Reason))
}

// Unwrap returns the reason.
func (e *ParkedError) Unwrap() error { return e.Reason }

// Is reports whether target is [ErrParked].
func (e *ParkedError) Is(target error) bool { return target == ErrParked }

func isNotFound(err error) bool { return errors.Is(err, journal.ErrNotFound) }
func isFinished(err error) bool { return errors.Is(err, journal.ErrFinished) }

// ArgError is a bad argument to one of this package's functions, found
// before anything was executed or written. It matches [ErrInvalid].
type ArgError struct {
	Msg string
}

func (e *ArgError) Error() string { return e.Msg }

// Is reports whether target is [ErrInvalid] (or journal.ErrInvalid).
func (e *ArgError) Is(target error) bool { return errors.Is(ErrInvalid, target) }

// invalidf returns an *ArgError with a formatted message.
func invalidf(format string, args ...any) error {
	return &ArgError{Msg: fmt.Sprintf(format, args...)}
}

// errNilEngine is the error of an operation on a nil *Engine.
var errNilEngine = &ArgError{Msg: "durable: nil *Engine"}

// errorf is fmt.Errorf for this package's messages: the "durable: "
// prefix once, however many errors of this package or the journal's it
// wraps (see internal/errtext).
func errorf(format string, args ...any) error { return errtext.Errorf(format, args...) }
