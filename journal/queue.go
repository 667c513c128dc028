package journal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/durable-go/durable/internal/clip"
)

// Queues is the optional interface of a [Store] that keeps runs waiting in
// named queues until an engine admits them (see Run.Queue, Run.Queued):
// the engine finds it with a type assertion. [Memory], [Bolt] and the
// Postgres store implement it.
//
// A run created with Queued set waits in its queue, ordered by Priority
// (higher first), then QueueSeq (first created first). It is idle: no
// recovery, claim or wake loads it. Admit takes waiting runs in that
// order, atomically with counting the queue's active runs (admitted and
// still running), so engines that share a store never admit more than
// [AdmitRequest].Global at once.
//
// Dedup keys (Run.DedupKey) are kept by the same stores in an index
// written in the same transaction as the run.
//
// Every method takes a context first and is safe for concurrent use.
type Queues interface {
	// Admit admits up to r.Limit waiting runs of queue r.Queue, of the
	// workflows r.Workflows, in queue order, without taking the queue's
	// active runs beyond r.Global (0: no bound). Admitted runs are no
	// longer queued nor idle; with a [Coordinator] and a non-empty
	// r.Engine they are owned by r.Engine with a new token, as by a
	// claim. It returns the admitted runs as stored.
	// Errors: [ErrInvalid] (a bad queue name), [ErrClosed], or an I/O
	// error (nothing was admitted).
	Admit(ctx context.Context, r AdmitRequest) ([]Run, error)

	// QueueStats returns how many runs of queue are active (admitted,
	// running) and waiting.
	// Errors: [ErrClosed], [ErrCorrupt], or an I/O error.
	QueueStats(ctx context.Context, queue string) (QueueStats, error)

	// Waiting returns up to limit (0: all) waiting runs of queue, in the
	// order Admit takes them.
	// Errors: [ErrClosed], [ErrCorrupt], or an I/O error.
	Waiting(ctx context.Context, queue string, limit int) ([]Run, error)

	// QueuePosition returns run r's place in its queue: 1 if Admit takes
	// it next, 0 if it does not wait (r as GetRun returned it).
	// Errors: [ErrClosed], or an I/O error.
	QueuePosition(ctx context.Context, r *Run) (int, error)
}

// AdmitRequest is the argument of [Queues.Admit].
type AdmitRequest struct {
	Queue     string
	Workflows []string // admit only runs of these workflows
	Limit     int      // admit at most this many runs in this call
	// Global bounds the queue's active runs (admitted and running, over
	// every engine of the store) after the admission; 0: no bound.
	Global int
	// Engine, with a [Coordinator], owns the admitted runs; "" leaves
	// them unowned (stores that are not Coordinators ignore it).
	Engine string
	Now    time.Time // UpdatedAt of the admitted runs; zero: the store's clock
}

// QueueStats is what [Queues.QueueStats] returns.
type QueueStats struct {
	Active  int // admitted runs that are running (parked or finished ones do not count)
	Waiting int // queued runs waiting to be admitted
}

type duplicateError struct{}

func (duplicateError) Error() string { return "journal: dedup key held by an unfinished run" }

// Is makes ErrDuplicate match ErrConflict: two starts raced for one key.
func (duplicateError) Is(target error) bool { return target == ErrConflict }

// DuplicateError is the error of a creation refused because an unfinished
// run of the queue holds its dedup key. It matches [ErrDuplicate] and
// [ErrConflict]. Nothing was written.
type DuplicateError struct {
	Queue string
	Key   string
	RunID string // the unfinished run that holds Key
}

func (e *DuplicateError) Error() string {
	q := ""
	if e.Queue != "" {
		q = " in queue " + clip.Q(e.Queue)
	}
	return fmt.Sprintf("journal: dedup key %s%s is held by unfinished run %s", clip.Q(e.Key), q, clip.Q(e.RunID))
}

// Is reports whether target is [ErrDuplicate] or [ErrConflict].
func (e *DuplicateError) Is(target error) bool {
	return target == ErrDuplicate || target == ErrConflict
}

// QueueTx is the optional part of a [Tx] that queues need: a backend
// outside this package implements it for [ApplyCreate] and [ApplyBatch]
// to accept runs with a queue or a dedup key (they fail with
// [ErrInvalid] otherwise).
type QueueTx interface {
	// DedupHolder returns the id of the unfinished run of queue that
	// holds key (as of the transaction's writes so far), "" if none.
	DedupHolder(queue, key string) (string, error)
	// NextQueueSeq returns a number greater than every one it returned
	// before in the store.
	NextQueueSeq() (uint64, error)
}

// CheckQueueName reports whether name can name a queue: 1 to MaxIDLen
// bytes, no NUL byte. Errors: [ErrInvalid].
func CheckQueueName(name string) error {
	if name == "" || len(name) > MaxIDLen || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("queue name %s (%d bytes; want 1 to %d, no NUL byte): %w", clip.Q(name), len(name), MaxIDLen, ErrInvalid)
	}
	return nil
}

// checkQueueFields checks the queue fields of a run to create.
func checkQueueFields(r *Run) error {
	if r.Queue != "" {
		if err := CheckQueueName(r.Queue); err != nil {
			return fmt.Errorf("create run %s: %w", clip.Q(r.ID), err)
		}
	}
	if r.Queued && r.Queue == "" {
		return fmt.Errorf("create run %s: queued on no queue: %w", clip.Q(r.ID), ErrInvalid)
	}
	if len(r.DedupKey) > MaxIDLen || strings.IndexByte(r.DedupKey, 0) >= 0 {
		return fmt.Errorf("create run %s: dedup key of %d bytes (at most %d, no NUL byte): %w", clip.Q(r.ID), len(r.DedupKey), MaxIDLen, ErrInvalid)
	}
	return nil
}

// Waiting, Active and HoldsKey say which queue indexes a run is in. Every
// store keeps its indexes by them, so they agree.

// IsWaiting reports whether r waits in its queue.
func IsWaiting(r *Run) bool {
	return r != nil && r.Queue != "" && r.Queued && r.Status == StatusRunning
}

// IsActive reports whether r counts against its queue's limit: admitted
// and running.
func IsActive(r *Run) bool {
	return r != nil && r.Queue != "" && !r.Queued && r.Status == StatusRunning
}

// HoldsKey reports whether r holds its dedup key: it has one and has not
// finished.
func HoldsKey(r *Run) bool {
	return r != nil && r.DedupKey != "" && !r.Status.Terminal()
}

// newQueued fills in what the store decides for a run it creates with
// queue fields: its sequence number, the idle mark of a queued run, and
// the dedup check.
func newQueued(t txn, r *Run) error {
	if r.Queue == "" && r.DedupKey == "" {
		return nil
	}
	if r.DedupKey != "" {
		holder, err := t.dedupHolder(r.Queue, r.DedupKey)
		if err != nil {
			return err
		}
		if holder != "" {
			return &DuplicateError{Queue: r.Queue, Key: r.DedupKey, RunID: holder}
		}
	}
	if r.Queue != "" {
		seq, err := t.nextQueueSeq()
		if err != nil {
			return err
		}
		r.QueueSeq = seq
	}
	r.Idle = r.Queued // nothing loads it before it is admitted
	return nil
}

// queueLess orders the waiting runs of one queue: higher priority first,
// then lower sequence number.
func queueLess(a, b *Run) int {
	if a.Priority != b.Priority {
		if a.Priority > b.Priority {
			return -1
		}
		return 1
	}
	switch {
	case a.QueueSeq < b.QueueSeq:
		return -1
	case a.QueueSeq > b.QueueSeq:
		return 1
	}
	return strings.Compare(a.ID, b.ID)
}

// admitPlan admits runs as [Queues.Admit] says, through t: counting,
// choosing and updating in one transaction. coordinated tells whether the
// store keeps owners.
func admitPlan(t txn, r AdmitRequest, now time.Time, coordinated bool) ([]Run, error) {
	if err := CheckQueueName(r.Queue); err != nil {
		return nil, fmt.Errorf("admit: %w", err)
	}
	n := r.Limit
	if r.Global > 0 {
		active, err := t.queueActive(r.Queue, r.Global)
		if err != nil {
			return nil, err
		}
		n = min(n, r.Global-active)
	}
	if n <= 0 || len(r.Workflows) == 0 {
		return nil, nil
	}
	var pick []*Run
	err := t.queueWaiting(r.Queue, func(id string) (bool, error) {
		run, err := t.getRun(id)
		if err != nil {
			return false, err
		}
		if run != nil && IsWaiting(run) && !run.CancelRequested && slices.Contains(r.Workflows, run.Workflow) {
			pick = append(pick, run)
		}
		return len(pick) < n, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(pick))
	for _, old := range pick {
		c := *old
		c.Queued, c.Idle, c.UpdatedAt = false, false, now
		if coordinated && r.Engine != "" {
			c.Owner = r.Engine
			c.Token++
		}
		if err := t.putRun(old, &c); err != nil {
			return nil, err
		}
		out = append(out, cloneRun(&c))
	}
	return out, nil
}

// dedupKey is the key of the dedup index: the queue, a 0 byte, the key.
func dedupKey(queue, key string) string { return queue + "\x00" + key }
