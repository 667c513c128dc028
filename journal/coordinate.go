package journal

import (
	"context"
	"time"
)

// Coordinator is the optional interface of a [Store] that several engines
// share at once, in one process or many: it decides which engine executes
// which run. The engine finds it with a type assertion, the way
// database/sql finds a driver's optional interfaces:
//
//	if c, ok := store.(journal.Coordinator); ok { ... }
//
// A store that does not implement it (Bolt: one file, one process) is used
// by one engine at a time, and the engine then pays nothing for
// coordination: no heartbeats, no claims, no fences.
//
// # Leases are per engine
//
// An engine calls [Coordinator.Register] once with an id it made up, then
// [Coordinator.Heartbeat] every [Lease].Timeout/3 or so. One row (or key)
// per engine holds the time of its last heartbeat: the store's load grows
// with the number of engines, never with the number of runs. An engine
// whose last heartbeat is older than [Lease].Timeout is expired: the runs
// it owns may be claimed by others. An expired engine is not told so
// until its next heartbeat or fenced commit; it may keep running runs
// that nobody claimed meanwhile, which is safe (see fences below).
//
// # Owning a run
//
// A run is owned by at most one engine ([Run].Owner; "" for none). Every
// claim of a run increments its fencing token ([Run].Token). An engine
// takes runs with [Coordinator.Claim], or creates them owned
// ([Store.CreateRun] or [Batch].Create with Run.Owner set), and gives them
// up with [Coordinator.Release] or [Coordinator.Unregister]. A run whose
// status leaves Running (it finishes or parks) loses its owner in the
// same commit.
//
// # Fences
//
// Every commit an engine makes for a run it owns carries [Batch].Fence:
// the run, the engine and the token it was claimed with. The store checks
// that the run's Owner and Token still match in the same atomic step that
// applies the batch (for SQL, in the same transaction, with the run's row
// locked or compared in the UPDATE's WHERE clause). If they do not, the
// batch records nothing and Commit fails with an error matching
// [ErrNotOwner] (which matches [ErrConflict]): the engine lost the run, by
// a pause longer than its lease, say, and another engine now executes it.
// Writes an engine makes to runs it does not own (Send, a cancel request,
// a child's result appended to its parent, creating a child) carry no
// fence: they are the cross-run writes every engine may make.
//
// # Ready and idle runs
//
// A run is ready at time t ([Run.Ready]) if its status is Running and it
// is not idle, or it is idle with a wake time at or before t. The engine
// marks a run idle ([Update].Idle) when its workflow waits for a timer or
// a message and nothing else of it is executing; the store clears the
// mark when something may let it move: a record is appended to the run,
// a message is sent to it, a cancel is requested, or its status changes.
// Only ready runs are claimed: a million sleeping runs cost their owner
// nothing and their store an index entry each.
//
// # Notes
//
// The store tells engines, through the function given to Register, when
// a run may have become ready or has news for its owner (a [Note]): a
// message was sent to it, a cancel was requested, a record was appended
// by another run (a child's result), it was created unowned, or it was
// released while ready. A note reaches at least the engine that owns the
// run, or, for an unowned run, every engine (an implementation may narrow
// that to the engines that registered the run's workflow). Notes are
// hints: the engine acts on the store's state, not on the note, and tells
// apart what is not for it. A note should arrive within about 100 ms of
// the commit that caused it. A store that may have lost notes (its
// listening connection dropped, say) sends a [NoteResync]. Engines also
// call Claim every [Lease].Poll, and at the [ClaimResult].Next time, so a
// lost note delays a run, never strands it.
//
// Every method takes a context first and is safe for concurrent use.
type Coordinator interface {
	// Register adds engine id, with a fresh lease, and starts delivering
	// notes to notify until Unregister or Close. notify is called from
	// the store's goroutines, possibly concurrently; it must not block
	// (the engine only queues the note). It returns the store's lease
	// settings.
	// Errors: [ErrInvalid] (an empty or over-long id, a nil notify),
	// [ErrConflict] (an engine with that id is registered and not
	// expired), [ErrClosed], or an I/O error.
	Register(ctx context.Context, id string, notify func(Note)) (Lease, error)

	// Heartbeat renews engine id's lease. If the lease had expired (or the
	// engine is unknown, its row removed meanwhile) it registers the
	// engine afresh and returns an error matching [ErrLeaseExpired]: the
	// engine keeps its runs, but those another engine claimed meanwhile
	// fail their next fenced commit with [ErrNotOwner].
	// Errors: [ErrLeaseExpired], [ErrClosed], or an I/O error (the lease
	// was not renewed; try again soon).
	Heartbeat(ctx context.Context, id string) error

	// Claim gives engine r.Engine up to r.Limit ready runs (see
	// [Run.Ready], at r.Now) of the workflows r.Workflows that no live
	// engine owns: unowned runs, and runs whose owner expired. It sets
	// their Owner to r.Engine and increments their Token, atomically with
	// choosing them, so two engines never claim one run (Postgres:
	// SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE). The runs come back
	// as stored after the claim. It claims nothing (and returns no
	// error) when r.Limit <= 0 or r.Workflows is empty. The order is the
	// store's; oldest ready first is a good choice.
	// Errors: [ErrLeaseExpired] (r.Engine is not registered or expired:
	// nothing was claimed; Heartbeat first), [ErrClosed], or an I/O error.
	Claim(ctx context.Context, r ClaimRequest) (ClaimResult, error)

	// Release gives up each run of runs whose Owner and Token still match
	// the fence; a run that does not match (claimed by another engine
	// meanwhile, finished, or gone) is skipped without error. A released
	// run keeps its records and idle mark, and is claimable at once if
	// ready (a note goes out then).
	// Errors: [ErrClosed], or an I/O error (nothing was released).
	Release(ctx context.Context, runs []Fence) error

	// Unregister releases every run engine id owns, removes its lease and
	// stops its notes. Unregistering an unknown id does nothing.
	// Errors: [ErrClosed], or an I/O error.
	Unregister(ctx context.Context, id string) error
}

// Lease is how a [Coordinator] times engines out.
type Lease struct {
	// Timeout is how long after an engine's last heartbeat its runs may
	// be claimed by other engines. The engine heartbeats every Timeout/3.
	// Zero means the store never times engines out (they are all in this
	// process and release their runs when they close, as on a [Memory]
	// by default): the engine sends no heartbeats.
	Timeout time.Duration
	// Poll is how often an engine calls Claim when no note asked it to:
	// how long a lost note or an expired engine's runs wait at most
	// beyond Timeout. Zero means notes are never lost and engines never
	// expire: the engine claims only when a note, a wake time
	// ([ClaimResult].Next) or its own finished runs ask it to.
	Poll time.Duration
}

// ClaimRequest is the argument of [Coordinator.Claim].
type ClaimRequest struct {
	Engine    string   // the claiming engine's id
	Workflows []string // claim only runs of these workflows
	Limit     int      // claim at most this many runs
	// Now is the time ready runs are judged at (their WakeAt against it).
	// Zero means the store's clock. Leases are always judged by the
	// store's clock.
	Now time.Time
}

// ClaimResult is what [Coordinator.Claim] returns.
type ClaimResult struct {
	// Runs are the claimed runs, owned by the claiming engine.
	Runs []Run
	// Next is the earliest wake time after Now of an idle run of the
	// requested workflows that would be claimable then (unowned, or its
	// owner expired); zero if none. The engine claims again then.
	Next time.Time
}

// Fence names the ownership a commit is made under: run RunID, owned by
// engine Owner, claimed with Token. The zero Fence (RunID "") checks
// nothing.
type Fence struct {
	RunID string
	Owner string
	Token uint64
}

// Note tells an engine that run RunID may have news: see "Notes" at
// [Coordinator].
type Note struct {
	Kind     NoteKind
	RunID    string // "" for NoteResync
	Workflow string // the run's workflow, if the store knows it cheaply
	Owner    string // the run's owner when the note was made; "" if none
}

// NoteKind says what a [Note] is about. Engines must treat an unknown
// kind as [NoteResync].
type NoteKind uint8

// Note kinds.
const (
	// NoteWake: run RunID got a message, a cancel request or a record
	// from another run, or became claimable (created unowned, released
	// while ready). Its owner wakes it; if it has none, engines with its
	// workflow claim.
	NoteWake NoteKind = 1
	// NoteResync: notes may have been lost. Engines wake every run they
	// own and claim.
	NoteResync NoteKind = 2
)

// Ready reports whether run r can move at time now without waiting for
// anything: it is Running and not idle, or idle with a wake time at or
// before now. Stores use it to choose the runs to claim or recover.
func (r *Run) Ready(now time.Time) bool {
	return r.Status == StatusRunning && (!r.Idle || (!r.WakeAt.IsZero() && !r.WakeAt.After(now)))
}
