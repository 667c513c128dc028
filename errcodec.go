package durable

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// RecordedError is an error read back from the journal: the message and Go
// type name of the error that was recorded. Errors of this package's types
// ([StepError], [ChildError], [PanicError], [NondeterminismError],
// [StepInterruptedError]) come back as themselves; any
// other error comes back as a RecordedError.
//
// errors.Is identity of your own error values does not survive the
// journal: after a restart (and, so that replay takes the same branches,
// already the first time a workflow sees a step's error) compare messages
// or Type, or use this package's sentinels, which do survive:
// [ErrCanceled], [ErrDeadlineExceeded], [ErrTimeout], [ErrNotFound],
// [ErrStepInterrupted], [ErrPayload], [ErrPayloadTooLarge],
// [ErrNondeterministic], [ErrNotRegistered], [ErrWorkflowMismatch],
// [ErrTooManyRecords], journal.ErrCorrupt, context.Canceled and
// context.DeadlineExceeded.
type RecordedError struct {
	Type      string // Go type of the original error, e.g. "*fs.PathError"
	Msg       string
	Permanent bool // the error was marked with retry.Permanent
	sentinels []string
}

func (e *RecordedError) Error() string { return e.Msg }

// Is reports whether the recorded error matched target, one of the
// sentinels listed on [RecordedError].
func (e *RecordedError) Is(target error) bool {
	for _, name := range e.sentinels {
		if sentinelByName[name] == target {
			return true
		}
	}
	return false
}

// sentinelNames lists the errors whose identity survives the journal, by
// a stable name. Order matters only for readability.
var sentinelNames = []struct {
	name string
	err  error
}{
	{"canceled", ErrCanceled},
	{"deadline", ErrDeadlineExceeded},
	{"timeout", ErrTimeout},
	{"not_found", ErrNotFound},
	{"finished", ErrFinished},
	{"interrupted", ErrStepInterrupted},
	{"payload", ErrPayload},
	{"payload_too_large", ErrPayloadTooLarge},
	{"nondeterministic", ErrNondeterministic},
	{"not_registered", ErrNotRegistered},
	{"workflow_mismatch", ErrWorkflowMismatch},
	{"too_many_records", ErrTooManyRecords},
	{"invalid", ErrInvalid},
	{"corrupt", journal.ErrCorrupt}, // why a run with damaged records is parked
	{"context.Canceled", context.Canceled},
	{"context.DeadlineExceeded", context.DeadlineExceeded},
}

var sentinelByName = func() map[string]error {
	m := map[string]error{}
	for _, s := range sentinelNames {
		m[s.name] = s.err
	}
	return m
}()

// errRecord is an error as the journal stores it (msgpack, short keys).
type errRecord struct {
	Kind      string     `msgpack:"k,omitempty"` // "", "step", "child", "panic", "nondet", "interrupted", "payload"
	Type      string     `msgpack:"t,omitempty"`
	Msg       string     `msgpack:"m,omitempty"`
	Sentinels []string   `msgpack:"s,omitempty"`
	Permanent bool       `msgpack:"p,omitempty"`
	Workflow  string     `msgpack:"w,omitempty"`
	RunID     string     `msgpack:"r,omitempty"`
	Parent    string     `msgpack:"pw,omitempty"`
	ParentID  string     `msgpack:"pr,omitempty"`
	Step      string     `msgpack:"n,omitempty"`
	Position  int        `msgpack:"i,omitempty"`
	Count     int        `msgpack:"a,omitempty"` // attempts
	Extra     string     `msgpack:"x,omitempty"` // stack, location, key, ...
	Cause     *errRecord `msgpack:"c,omitempty"`
	Builds    []string   `msgpack:"b,omitempty"`  // RecordedBy, of a NondeterminismError
	Build     string     `msgpack:"bd,omitempty"` // Build, of a NondeterminismError
}

// toRecord describes err for the journal, keeping the structure of this
// package's error types and the sentinels err matches.
func toRecord(err error) *errRecord {
	if err == nil {
		return nil
	}
	r := &errRecord{Msg: err.Error(), Type: fmt.Sprintf("%T", err), Permanent: retry.IsPermanent(err)}
	switch e := err.(type) {
	case *StepError:
		r.Kind, r.Workflow, r.RunID, r.Step, r.Position, r.Count = "step", e.Workflow, e.RunID, e.Step, e.Position, e.Attempts
		r.Cause = toRecord(e.Err)
		return r
	case *ChildError:
		r.Kind, r.Parent, r.ParentID, r.Workflow, r.RunID = "child", e.Parent, e.ParentID, e.Workflow, e.RunID
		r.Cause = toRecord(e.Err)
		return r
	case *PanicError:
		r.Kind, r.Msg, r.Extra = "panic", e.Value, e.Stack
		return r
	case *NondeterminismError:
		r.Kind, r.RunID, r.Workflow, r.Position, r.Step, r.Msg, r.Extra = "nondet", e.RunID, e.Workflow, e.Position, e.Recorded, e.Called, e.Location
		r.Builds, r.Build = e.RecordedBy, e.Build
		return r
	case *StepInterruptedError:
		r.Kind, r.Step, r.Extra, r.Count = "interrupted", e.Step, e.Key, e.Attempt
		return r
	case *RecordedError:
		r.Type, r.Permanent = e.Type, e.Permanent
		r.Sentinels = slices.Clone(e.sentinels)
		return r
	}
	if rp := (*retry.PanicError)(nil); errors.As(err, &rp) {
		r.Kind, r.Msg, r.Extra = "panic", fmt.Sprint(rp.Value), string(rp.Stack)
		return r
	}
	for _, s := range sentinelNames {
		if errors.Is(err, s.err) {
			r.Sentinels = append(r.Sentinels, s.name)
		}
	}
	return r
}

// fromRecord rebuilds the error toRecord described.
func fromRecord(r *errRecord) error {
	if r == nil {
		return nil
	}
	switch r.Kind {
	case "step":
		return &StepError{Workflow: r.Workflow, RunID: r.RunID, Step: r.Step, Position: r.Position, Attempts: r.Count, Err: fromRecord(r.Cause)}
	case "child":
		return &ChildError{Parent: r.Parent, ParentID: r.ParentID, Workflow: r.Workflow, RunID: r.RunID, Err: fromRecord(r.Cause)}
	case "panic":
		return &PanicError{Value: r.Msg, Stack: r.Extra}
	case "nondet":
		return &NondeterminismError{RunID: r.RunID, Workflow: r.Workflow, Position: r.Position, Recorded: r.Step, Called: r.Msg, Location: r.Extra, RecordedBy: r.Builds, Build: r.Build}
	case "interrupted":
		return &StepInterruptedError{Step: r.Step, Key: r.Extra, Attempt: r.Count}
	}
	return &RecordedError{Type: r.Type, Msg: r.Msg, Permanent: r.Permanent, sentinels: r.Sentinels}
}

// encodeError encodes err for the journal. It cannot fail: the record holds
// only strings and numbers.
func encodeError(err error) []byte {
	var r *errRecord
	if p := protect(func() { r = toRecord(err) }); p != nil {
		r = toRecord(p) // err's Error, Is or As method panics
	}
	b, encErr := marshal(r)
	if encErr != nil { // unreachable: errRecord is plain data
		b, _ = marshal(&errRecord{Msg: r.Msg})
	}
	return b
}

// decodeError decodes what encodeError wrote; damaged bytes give an error
// that says so rather than nil.
func decodeError(b []byte) error {
	if b == nil {
		return nil
	}
	var r errRecord
	if err := unmarshal(b, &r); err != nil {
		return &RecordedError{Type: "durable.undecodable", Msg: fmt.Sprintf("durable: recorded error does not decode: %v", err)}
	}
	return fromRecord(&r)
}
