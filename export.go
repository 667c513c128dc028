package durable

import (
	"context"

	"github.com/durable-go/durable/journal"
)

// RunJournal returns run id as the journal stores it and the records of
// its current epoch: what `durable export -addr` copies from a running
// application (through package web) into a journal file for
// durabletest.Replay. It fails with an error matching [ErrNotFound] for an
// unknown run.
func (e *Engine) RunJournal(ctx context.Context, id string) (journal.Run, []journal.Record, error) {
	r, err := e.store.GetRun(ctx, id)
	if err != nil {
		return journal.Run{}, nil, errorf("durable: journal of run %q: %w", id, err)
	}
	recs, err := e.store.Records(ctx, id)
	if err != nil {
		return journal.Run{}, nil, errorf("durable: journal of run %q: %w", id, err)
	}
	return r, recs, nil
}
