package journal

import (
	"errors"
	"fmt"

	"github.com/durable-go/durable/internal/errtext"
	"github.com/durable-go/durable/internal/sentinel"
)

// Sentinel errors. Methods wrap them with context; test with errors.Is.
var (
	// ErrNotFound: no run with that id.
	ErrNotFound = errors.New("journal: run not found")
	// ErrFinished: the run is terminal and accepts no more changes.
	ErrFinished = errors.New("journal: run has finished")
	// ErrConflict: a record position is already taken, or a message was
	// already consumed. It means two writers raced for one run.
	ErrConflict = errors.New("journal: conflicting write")
	// ErrInvalid: an operation is malformed (empty id, bad status, a key
	// or value over the store's limits). It matches durable.ErrInvalid
	// too.
	ErrInvalid error = sentinel.New("journal: invalid operation", sentinel.Invalid)
	// ErrClosed: the store has been closed. It matches durable.ErrClosed
	// too.
	ErrClosed error = sentinel.New("journal: store closed", sentinel.Closed)
	// ErrCorrupt: stored data failed its checksum or does not decode, or
	// the file is damaged or truncated. See [CorruptError].
	ErrCorrupt = errors.New("journal: corrupt data")
	// ErrNotJournal: the file is not a durable journal (random bytes, an
	// empty file, or a bbolt file of another program).
	ErrNotJournal = errors.New("journal: not a durable journal")
	// ErrVersion: the file was written in a format this code does not read.
	ErrVersion = errors.New("journal: unsupported format version")
	// ErrDeleted: the journal file was deleted (unlinked, with its
	// directory, say) while the store had it open. What was committed to
	// it since is lost when the store closes; commits fail from then on.
	ErrDeleted = errors.New("journal: file deleted while open")
	// ErrLocked: another process or engine has the file open.
	ErrLocked = errors.New("journal: file is locked by another process")
	// ErrNotOwner: a fenced commit ([Batch].Fence) found the run owned by
	// another engine, or claimed again since: the committing engine lost
	// it and must drop it. It matches [ErrConflict] too.
	ErrNotOwner error = notOwnerError{}
	// ErrDuplicate: a run was created with a dedup key (Run.DedupKey)
	// that an unfinished run of its queue holds. See [DuplicateError].
	// It matches [ErrConflict] too.
	ErrDuplicate error = duplicateError{}
	// ErrLeaseExpired: an engine's lease ran out before it renewed it
	// (see [Coordinator]); other engines may have claimed its runs.
	ErrLeaseExpired = errors.New("journal: engine lease expired")
)

type notOwnerError struct{}

func (notOwnerError) Error() string { return "journal: run is owned by another engine" }

// Is makes ErrNotOwner match ErrConflict: code that handles a conflicting
// write handles a lost run the same way.
func (notOwnerError) Is(target error) bool { return target == ErrConflict }

// CorruptError describes damaged data. It matches [ErrCorrupt].
type CorruptError struct {
	Path   string // the file, if any
	RunID  string // the run the damaged data belongs to, if known
	What   string // "record 3.0", "run", "message", "file", ...
	Reason string
}

func (e *CorruptError) Error() string {
	msg := "journal: corrupt " + e.What
	if e.RunID != "" {
		msg += fmt.Sprintf(" of run %q", e.RunID)
	}
	if e.Path != "" {
		msg += " in " + e.Path
	}
	return errtext.OnePrefix(msg + ": " + e.Reason)
}

// Is reports whether target is [ErrCorrupt].
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corruptf(runID, what, format string, args ...any) error {
	return &CorruptError{RunID: runID, What: what, Reason: fmt.Sprintf(format, args...)}
}

// errorf is fmt.Errorf for this package's messages: the "journal: "
// prefix once, however many of this package's errors it wraps (see
// internal/errtext).
func errorf(format string, args ...any) error { return errtext.Errorf(format, args...) }
