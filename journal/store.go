package journal

import (
	"context"
	"strconv"
	"time"
)

// Store keeps runs, their ordered records, their inboxes and the indexes
// over them (runs by status, runs by wake time). It is the whole storage
// boundary of the engine: the engine never sees a transaction or a cursor,
// so a networked backend (Postgres, say) fits behind the same methods.
//
// Every method takes a context first; a canceled context makes a method
// return early with the context's error, and for [Store.Commit] and
// [Store.CreateRun] the write may or may not have happened.
//
// Implementations must be safe for concurrent use. A Store is used by one
// engine at a time, unless it also implements [Coordinator]: then several
// engines, in one process or many, share it.
type Store interface {
	// CreateRun creates run r if no run with r.ID exists, and returns the
	// stored run and true. If the id exists it changes nothing and returns
	// the existing run and false. r.Status must be StatusRunning. A
	// non-zero r.CreatedAt is the creation time (and UpdatedAt); else the
	// store's clock gives it. With a non-empty r.Owner a [Coordinator]
	// creates the run owned by that engine, with Token 1 (an existing
	// run is not claimed); other stores ignore Owner.
	// Errors: [ErrClosed], [ErrInvalid], or an I/O error.
	CreateRun(ctx context.Context, r Run) (Run, bool, error)

	// Commit applies every operation of b atomically: all of them or none.
	// It returns only when the batch is durable. On error nothing of b was
	// applied, and the error names the operation that failed.
	// Errors: [ErrNotFound] (an operation names a run that does not exist),
	// [ErrFinished] (it changes a run that has finished), [ErrConflict] (an
	// appended record's position is taken, or a consumed message is gone),
	// [ErrNotOwner] (b.Fence does not match the run's owner and token: a
	// [Coordinator] only), [ErrInvalid], [ErrClosed], or an I/O error such
	// as a full disk.
	Commit(ctx context.Context, b *Batch) error

	// GetRun returns the run with the given id.
	// Errors: [ErrNotFound], [ErrCorrupt], [ErrClosed].
	GetRun(ctx context.Context, id string) (Run, error)

	// Records returns the records of run id's current epoch in position
	// order (Pos, then Seq). Records of earlier epochs (see
	// Update.ContinueAsNew) are kept until Purge removes them.
	// Errors: [ErrNotFound], [ErrCorrupt] (naming the damaged record),
	// [ErrClosed].
	Records(ctx context.Context, id string) ([]Record, error)

	// Load returns what an engine needs to resume run id, in one read: the
	// run, the records of its current epoch (as Records gives them; none
	// for a terminal run), and whether any message waits in its inbox.
	// Errors: [ErrNotFound], [ErrCorrupt], [ErrClosed].
	Load(ctx context.Context, id string) (Loaded, error)

	// ListRuns returns the runs that match f in id order. A run whose
	// stored value is damaged is left out and named in an [ErrCorrupt]
	// error returned together with the runs that could be read.
	// Errors: [ErrCorrupt] (with partial results), [ErrClosed].
	ListRuns(ctx context.Context, f Filter) ([]Run, error)

	// Messages returns up to limit (0: all) messages waiting in run id's
	// inbox on channel, oldest first.
	// Errors: [ErrNotFound], [ErrCorrupt], [ErrClosed].
	Messages(ctx context.Context, id, channel string, limit int) ([]Message, error)

	// Timers returns up to limit (0: all) entries of the wake-time index
	// with At at or before until, earliest first.
	// Errors: [ErrCorrupt], [ErrClosed].
	Timers(ctx context.Context, until time.Time, limit int) ([]Timer, error)

	// Purge removes up to limit (0: 100) expired items, in one small
	// transaction, and returns how many it removed: finished runs whose
	// status became terminal before before (with their records of every
	// epoch, inbox and index entries), and the records of epochs that
	// ended (by ContinueAsNew) before before. Call it until it returns 0.
	// Errors: [ErrClosed], or an I/O error.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)

	// Close releases the store. Methods called after Close return
	// [ErrClosed]. Close is idempotent.
	Close() error
}

// Status is a run's state as the journal stores it. The zero value is not a
// valid status; as a [Filter] field it means "any".
type Status uint8

// Statuses. Completed, Failed and Canceled are terminal: a terminal run
// accepts no more records, updates or messages.
const (
	StatusRunning   Status = 1 // executing, sleeping or waiting
	StatusParked    Status = 2 // cannot go on with the code at hand; kept
	StatusCompleted Status = 3
	StatusFailed    Status = 4
	StatusCanceled  Status = 5
)

// Terminal reports whether s is a final status.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

func (s Status) valid() bool { return s >= StatusRunning && s <= StatusCanceled }

// String returns the status name in lower case, "status(N)" for an unknown
// value.
func (s Status) String() string {
	switch s {
	case StatusRunning:
		return "running"
	case StatusParked:
		return "parked"
	case StatusCompleted:
		return "completed"
	case StatusFailed:
		return "failed"
	case StatusCanceled:
		return "canceled"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Run is the stored state of one run. Payload fields hold bytes encoded by
// the engine; the journal does not interpret them.
type Run struct {
	ID       string
	Workflow string // name of the workflow definition
	Status   Status
	Parent   string // id of the parent run; "" for a top-level run
	// ParentPos is the position in the parent's journal that waits for
	// this run's result, in the parent's epoch ParentEpoch.
	ParentPos   uint32
	ParentEpoch uint32
	Epoch       uint32 // incremented when the run continues as new
	Input       []byte
	Output      []byte // the result, once Completed
	Err         []byte // the error, once Failed or Canceled, or why it is Parked
	CreatedAt   time.Time
	UpdatedAt   time.Time
	WakeAt      time.Time // earliest pending timer; zero if none (indexed)
	Deadline    time.Time // zero if none
	// CancelRequested is set by a cancel request and never cleared.
	CancelRequested bool
	// Idle: the run waits for its wake time (WakeAt) or a message, and
	// need not be loaded before one comes. Set by [Update].Idle; cleared
	// by the store when a record is appended to the run, a message is
	// sent to it, a cancel is requested or its status changes. See
	// [Run.Ready].
	Idle bool
	// Owner is the engine that owns the run, "" if none, and Token the
	// run's fencing token, incremented by every claim. Only a
	// [Coordinator] keeps them; other stores leave them empty.
	Owner string
	Token uint64
	// Meta is data the engine keeps with the run from its creation (an
	// observer's trace context, say): set by CreateRun or Batch.Create,
	// never changed afterwards, kept across ContinueAsNew. Opaque to the
	// journal, like the payloads.
	Meta []byte
	// Builds are the build ids (durable.Config.BuildID) of the engines
	// that started and resumed the run, oldest first; a build appears
	// again only after another one. At most MaxBuilds are kept: the first
	// and the latest. Set by CreateRun or Batch.Create, extended by
	// Update.Build, kept across ContinueAsNew.
	Builds []string
	// Queue is the queue the run was started on, "" for none; Priority
	// its priority there (higher is admitted first); QueueSeq its place
	// among runs of one priority (assigned by the store when the run is
	// created: first come, first admitted). Set at creation, never
	// changed. See queue.go and [Queues].
	Queue    string
	Priority int32
	QueueSeq uint64
	// Queued: the run waits in Queue and must not execute before
	// [Queues.Admit] admits it. A queued run is created idle (so no
	// recovery or claim loads it) and stays idle until it is admitted or
	// a cancel is requested.
	Queued bool
	// DedupKey, if not "", is unique among the unfinished runs of Queue:
	// creating a run with a key that an unfinished run holds fails with
	// a [*DuplicateError]. The key is free again once that run finished.
	DedupKey string
}

// Record is one entry of a run's journal. Records are keyed by (Pos, Seq):
// Pos is the position of the durable operation that wrote it, Seq numbers
// the records of one position from 0. Kind, Flags, Name, Time and Data are
// the engine's; the journal stores them as they are.
type Record struct {
	Pos   uint32
	Seq   uint32
	Kind  uint8
	Flags uint8
	Name  string
	Time  time.Time
	Data  []byte
}

// Loaded is what [Store.Load] returns.
type Loaded struct {
	Run         Run
	Records     []Record
	HasMessages bool // a message waits in the run's inbox, on any channel
}

// Message is a message waiting in a run's inbox.
type Message struct {
	RunID   string
	Channel string
	Seq     uint64 // assigned by the store, increasing per run
	Data    []byte
	SentAt  time.Time
}

// Timer is an entry of the wake-time index: run RunID has a timer due at At.
type Timer struct {
	At    time.Time
	RunID string
}

// Filter selects runs for [Store.ListRuns]. Zero fields match everything.
type Filter struct {
	Status   Status // 0: any
	Workflow string // "": any
	Parent   string // "": any
	After    string // only ids greater than After (pagination)
	Limit    int    // at most this many runs; 0: no limit
	// ReadyAt, if not zero, keeps only the runs ready at that time (see
	// [Run.Ready]): what an engine must load when it starts.
	ReadyAt time.Time
}

func (f Filter) match(r *Run) bool {
	return (f.ReadyAt.IsZero() || r.Ready(f.ReadyAt)) &&
		(f.Status == 0 || r.Status == f.Status) &&
		(f.Workflow == "" || r.Workflow == f.Workflow) &&
		(f.Parent == "" || r.Parent == f.Parent) &&
		r.ID > f.After
}

// Batch is a set of writes that [Store.Commit] applies atomically, in the
// order of its fields: creations, appends, updates, consumptions, sends,
// deletions.
type Batch struct {
	// Now is the time written as UpdatedAt, CreatedAt and SentAt.
	// Defaults to the store's clock (time.Now).
	Now time.Time
	// Create holds runs to create if absent; an existing id is skipped.
	Create []Run
	// Append holds records to add; each run must exist and not be
	// terminal, and each (Pos, Seq) must be free.
	Append []Append
	// Update holds changes to existing runs.
	Update []Update
	// Consume holds inbox messages to remove; each must exist.
	Consume []MessageKey
	// Send holds messages to add to inboxes; each run must exist and not be
	// terminal. Commit sets Seq and SentAt of each.
	Send []Message
	// Delete holds terminal runs to remove with their records, inbox and
	// index entries. A missing id is skipped.
	Delete []string
	// Fence, if its RunID is not "", makes the whole batch conditional on
	// that run's Owner and Token matching it: otherwise nothing of b is
	// applied and Commit fails with [ErrNotOwner]. Only a [Coordinator]
	// checks it; other stores ignore it. See [Coordinator].
	Fence Fence
}

// NeedsNow reports whether applying b writes a time (a run's UpdatedAt, a
// message's SentAt): the time Commit takes from Now, or from the store's
// clock if Now is zero.
func (b *Batch) NeedsNow() bool {
	return len(b.Create)+len(b.Update)+len(b.Send) > 0
}

// Len is the number of operations in b.
func (b *Batch) Len() int {
	return len(b.Create) + len(b.Append) + len(b.Update) + len(b.Consume) + len(b.Send) + len(b.Delete)
}

// Append adds Record to run RunID's journal, in epoch Epoch, which must
// be the run's current epoch: a writer that still works on an epoch the
// run has left (a child finishing for its parent's old epoch, say) gets
// ErrConflict instead of writing into the new one.
type Append struct {
	RunID string
	Epoch uint32
	Record
}

// Update changes a run's stored state. Zero fields change nothing, except
// as noted.
type Update struct {
	RunID string
	// Status, if not 0, becomes the run's status. A terminal run cannot
	// change status.
	Status Status
	// Output is stored with Status Completed.
	Output []byte
	// Err is stored with Status Failed, Canceled or Parked; with Status
	// Running the stored error is cleared.
	Err []byte
	// SetWake replaces WakeAt (and its index entry) with Wake; a zero Wake
	// removes the timer. A terminal status always removes it.
	SetWake bool
	Wake    time.Time
	// CancelRequested, if true, sets the run's cancel flag (and clears
	// Idle).
	CancelRequested bool
	// Idle, if true, marks the run idle (see [Run].Idle), after this
	// batch's appends (which clear the mark). It is ignored while the
	// run's inbox holds a message or a cancel is requested, so news that
	// came before the mark is never slept through.
	Idle bool
	// ContinueAsNew starts the run afresh in a new epoch: Epoch+1, Input
	// replaced by Input, status Running, Output, Err and WakeAt cleared.
	// The new epoch's journal starts empty; the old epoch's records are
	// kept until Purge removes them. Status must be 0.
	ContinueAsNew bool
	// Input is the new input, with ContinueAsNew.
	Input []byte
	// Build, if not "", is added to the run's Builds unless it is the
	// latest one there.
	Build string
}

// MessageKey names one inbox message.
type MessageKey struct {
	RunID   string
	Channel string
	Seq     uint64
}
