package journal

import (
	"fmt"
	"time"
)

// What a Store implemented outside this package (journal/postgres) reuses,
// so that every backend stores the same bytes and applies the same rules:
// the value format with its checksums, and the rules of [Store.Commit] and
// [Store.CreateRun] over a transaction the backend provides.

// EncodeRecord returns the stored form of record r of run runID: the format
// version, a CRC32C over the run id, the record's (Pos, Seq) and the body,
// then the body. [DecodeRecord] reads it back.
func EncodeRecord(runID string, r *Record) []byte { return encodeRecord(runID, r) }

// DecodeRecord decodes the stored form of record (pos, seq) of run runID.
// Errors: [ErrCorrupt] (a [*CorruptError] naming the run and the record)
// when v fails its checksum, was stored under another key, or does not
// decode.
func DecodeRecord(runID string, pos, seq uint32, v []byte) (Record, error) {
	k := recordKey(pos, seq)
	return decodeRecord(runID, k[:], v)
}

// EncodeRun returns the stored form of run r, checksummed with its id.
func EncodeRun(r *Run) []byte { return encodeRun(r) }

// DecodeRun decodes the stored form of run id.
// Errors: [ErrCorrupt] (a [*CorruptError]).
func DecodeRun(id string, v []byte) (Run, error) { return decodeRun(id, v) }

// EncodeMessage returns the stored form of message m, checksummed with its
// run id, channel and sequence number.
func EncodeMessage(m *Message) []byte { return encodeMessage(m) }

// DecodeMessage decodes the stored form of message seq on channel of run
// runID.
// Errors: [ErrCorrupt] (a [*CorruptError]).
func DecodeMessage(runID, channel string, seq uint64, v []byte) (Message, error) {
	return decodeMessage(runID, messageKey(channel, seq), v)
}

// NormTime returns t as the journal stores it and reads it back: Unix
// nanoseconds, in UTC, without a monotonic reading; the zero time stays zero.
func NormTime(t time.Time) time.Time { return normTime(t) }

// UnixNano returns t as the journal stores it: Unix nanoseconds, 0 for the
// zero time (and never 0 for another time).
func UnixNano(t time.Time) int64 { return unixNano(t) }

// Tx is one transaction of a backend as the rules of [Store.Commit] see it:
// point reads, and writes that see the reads and writes before them. A
// backend outside this package implements it and calls [ApplyBatch] and
// [ApplyCreate], so that its Commit and CreateRun accept and refuse exactly
// what [Memory] and [Bolt] do. The rules only read what GetRun returns and
// never keep it past the transaction.
type Tx interface {
	// GetRun returns the run, or nil and nil if there is none.
	GetRun(id string) (*Run, error)
	// PutRun stores r. old is the run as GetRun returned it, nil for a new
	// run. If r.Epoch differs from old.Epoch, the old epoch ended at
	// r.UpdatedAt and its records are kept (until Purge) apart from the
	// new epoch's, which start empty.
	PutRun(old, r *Run) error
	// HasRecord reports whether run id has a record at (pos, seq) in epoch.
	HasRecord(id string, epoch, pos, seq uint32) (bool, error)
	// PutRecord stores r in run id's journal of epoch.
	PutRecord(id string, epoch uint32, r *Record) error
	// HasMessage reports whether the message k waits in its inbox.
	HasMessage(k MessageKey) (bool, error)
	// HasMessages reports whether any message waits in run id's inbox.
	HasMessages(id string) (bool, error)
	// DeleteMessage removes message k, which exists.
	DeleteMessage(k MessageKey) error
	// PutMessage adds m to its run's inbox and sets m.Seq to the next
	// sequence number of that run (one more than the last one assigned,
	// starting at 1, never reused).
	PutMessage(m *Message) error
	// DeleteRun removes run r with its records of every epoch and its
	// inbox.
	DeleteRun(r *Run) error
}

// ApplyBatch applies b through t with the rules of [Store.Commit], as if
// the writes of every earlier ApplyBatch or ApplyCreate on t were visible.
// On an error that the rules find (ErrNotFound, ErrFinished, ErrConflict,
// ErrInvalid, with the operation named) nothing was written through t;
// other errors are t's. now stands in for a zero b.Now.
func ApplyBatch(t Tx, b *Batch, now time.Time) error {
	if !b.Now.IsZero() {
		now = b.Now
	}
	p, err := makePlan(txAdapter{t}, b, now.Round(0))
	if err != nil {
		return err
	}
	return p.apply(txAdapter{t})
}

// ApplyCreate applies [Store.CreateRun] of r through t: it returns the
// stored run and true, or the existing run and false. now is the store's
// clock, used when r.CreatedAt is zero.
func ApplyCreate(t Tx, r Run, now time.Time) (Run, bool, error) {
	old, p, err := createPlan(txAdapter{t}, r, now.Round(0))
	if err != nil {
		return Run{}, false, err
	}
	if old != nil {
		return *old, false, nil
	}
	if err := p.apply(txAdapter{t}); err != nil {
		return Run{}, false, err
	}
	return *p.puts[0].new, true, nil
}

// txAdapter gives a Tx to the rules, which speak txn.
type txAdapter struct{ t Tx }

func (a txAdapter) hasMessages(id string) (bool, error) { return a.t.HasMessages(id) }

func (a txAdapter) getRun(id string) (*Run, error) { return a.t.GetRun(id) }
func (a txAdapter) putRun(old, r *Run) error       { return a.t.PutRun(old, r) }
func (a txAdapter) hasRecord(id string, epoch, pos, seq uint32) (bool, error) {
	return a.t.HasRecord(id, epoch, pos, seq)
}
func (a txAdapter) putRecord(id string, epoch uint32, r *Record) error {
	return a.t.PutRecord(id, epoch, r)
}
func (a txAdapter) hasMessage(k MessageKey) (bool, error) { return a.t.HasMessage(k) }
func (a txAdapter) deleteMessage(k MessageKey) error      { return a.t.DeleteMessage(k) }
func (a txAdapter) putMessage(m *Message) error           { return a.t.PutMessage(m) }
func (a txAdapter) deleteRun(r *Run) error                { return a.t.DeleteRun(r) }

func (a txAdapter) dedupHolder(queue, key string) (string, error) {
	if q, ok := a.t.(QueueTx); ok {
		return q.DedupHolder(queue, key)
	}
	return "", fmt.Errorf("dedup key: the store does not support queues: %w", ErrInvalid)
}

func (a txAdapter) nextQueueSeq() (uint64, error) {
	if q, ok := a.t.(QueueTx); ok {
		return q.NextQueueSeq()
	}
	return 0, fmt.Errorf("queue: the store does not support queues: %w", ErrInvalid)
}

// Backends admit with their own statements (see [Queues]).
func (txAdapter) queueActive(string, int) (int, error) { return 0, ErrInvalid }
func (txAdapter) queueWaiting(string, func(string) (bool, error)) error {
	return ErrInvalid
}

// The rules never purge through a Tx: backends purge with their own
// indexes.
func (txAdapter) expired(time.Time, int) ([]expiry, error) { return nil, nil }
func (txAdapter) purge(expiry) error                       { return nil }
