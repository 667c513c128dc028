package durable

import (
	"context"
	"errors"
	"time"

	"github.com/durable-go/durable/journal"
)

// Fork starts a new run, newID ("" for a new unique id), from a copy of
// run id's journal up to position pos (the records of positions 0 to
// pos-1), with the current code from there: the copied operations replay
// (their steps are not executed again) and the rest runs live. It is the
// way out for a run parked by a change of code that cannot be reverted:
// fork it at the position its error names, where the journal and the code
// part. The source run is left as it is (cancel it if it is parked for
// good). It returns the new run's id.
//
// The fork is a top-level run of the same workflow with the same input,
// without the source's deadline; it records this engine's build. Its
// journal is the source's current epoch. A pos past a child workflow that
// has not finished is refused (the child reports to its own parent):
// fork at the child's position or before. Fork fails with an error
// matching [ErrNotFound] for an unknown run, [ErrNotRegistered] if this
// engine does not have the workflow, and [ErrWorkflowMismatch] if newID
// exists.
func (e *Engine) Fork(ctx context.Context, id string, pos int, newID string) (string, error) {
	if e.isClosed() {
		return "", ErrClosed
	}
	src, err := e.store.GetRun(ctx, id)
	if err != nil {
		return "", errorf("durable: fork run %q: %w", id, err)
	}
	e.mu.Lock()
	def := e.defs[src.Workflow]
	e.mu.Unlock()
	if def == nil {
		return "", errorf("durable: fork run %q: workflow %q: %w", id, src.Workflow, ErrNotRegistered)
	}
	var meta func(string) []byte
	if e.obs != nil {
		meta = func(newID string) []byte { return e.obsInject(ctx, RunEvent{RunID: newID, Workflow: src.Workflow}) }
	}
	newID, err = forkRun(ctx, e.store, id, pos, newID, e.clock.Now(), e.startBuilds(), meta)
	if err != nil {
		return "", err
	}
	if _, err := e.attach(newID, def); err != nil {
		return newID, errorf("durable: fork run %q: start %q: %w", id, newID, err)
	}
	return newID, nil
}

// ForkRun is [Engine.Fork] on a journal that no engine has open (what
// `durable fork` runs): it writes the new run, and the next engine with
// the workflow that opens the journal runs it.
func ForkRun(ctx context.Context, store journal.Store, id string, pos int, newID string) (string, error) {
	return forkRun(ctx, store, id, pos, newID, journalTime(systemClock{}.Now()), nil, nil)
}

// meta, if not nil, gives the new run's Meta (Config.Observer's InjectRun).
func forkRun(ctx context.Context, store journal.Store, id string, pos int, newID string, now time.Time, builds []string, meta func(newID string) []byte) (string, error) {
	if err := checkRunID(newID); err != nil {
		return "", err
	}
	src, err := store.GetRun(ctx, id)
	if err != nil {
		return "", errorf("durable: fork run %q: %w", id, err)
	}
	recs, err := store.Records(ctx, id)
	if err != nil {
		return "", errorf("durable: fork run %q: %w", id, err)
	}
	positions := 0
	if len(recs) > 0 {
		positions = int(recs[len(recs)-1].Pos) + 1
	}
	if pos < 0 || pos > positions {
		return "", errorf("durable: fork run %q at position %d: the run has positions 0 to %d: %w", id, pos, positions, journal.ErrInvalid)
	}
	if newID == "" {
		newID = newRunID()
	}
	if newID == id {
		return "", errorf("durable: fork run %q: the fork needs another id: %w", id, ErrWorkflowMismatch)
	}
	var copied []journal.Append
	for i, r := range recs {
		if int(r.Pos) >= pos {
			break
		}
		if r.Kind == kindChild && r.Seq == 0 && r.Flags&flagDone == 0 && !childDone(recs[i:], r.Pos) {
			return "", errorf("durable: fork run %q at position %d: position %d started child run %q, which has not finished and reports to %q; fork at position %d or before: %w",
				id, pos, r.Pos, r.Data, id, r.Pos, journal.ErrInvalid)
		}
		r.Data = append([]byte(nil), r.Data...)
		copied = append(copied, journal.Append{RunID: newID, Record: r})
	}
	b := &journal.Batch{
		Now:    now,
		Create: []journal.Run{{ID: newID, Workflow: src.Workflow, Status: journal.StatusRunning, Input: src.Input, Builds: builds}},
		Append: copied,
	}
	if _, err := store.GetRun(ctx, newID); err == nil {
		return "", errorf("durable: fork run %q: run %q exists: %w", id, newID, ErrWorkflowMismatch)
	} else if !errors.Is(err, journal.ErrNotFound) {
		return "", errorf("durable: fork run %q: %w", id, err)
	}
	if meta != nil {
		b.Create[0].Meta = meta(newID)
	}
	if err := store.Commit(ctx, b); err != nil {
		return "", errorf("durable: fork run %q as %q: %w", id, newID, err)
	}
	return newID, nil
}

// newRunID is newID, which the fork's parameter shadows.
var newRunID = newID

// childDone reports whether recs (from a child's start record on) hold
// the child's result at pos.
func childDone(recs []journal.Record, pos uint32) bool {
	for _, r := range recs {
		if r.Pos != pos {
			return false
		}
		if r.Flags&flagDone != 0 {
			return true
		}
	}
	return false
}
