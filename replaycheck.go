package durable

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// ReplayResult is what [CheckReplay] found for one run.
type ReplayResult struct {
	RunID, Workflow string
	Status          Status // the run's status in the journal
	// Err is why the run would park on this code: a [*NondeterminismError]
	// (the code diverged from the journal), a recorded payload that no
	// longer decodes, a Version outside its range, an unregistered
	// workflow. Nil if the code follows the journal.
	Err error
	// Positions is how many journal positions the journal holds, and
	// Checked how many of them the replay met. Checked < Positions with a
	// nil Err means the code stopped where it would have to execute
	// something (a step the journal has no result for, a wait) before
	// reaching the later positions (those of steps started with Go, say),
	// which were not checked.
	Positions, Checked int
}

// replayCheck is an executor's state in a replay check: it executes
// nothing, writes nothing, and stops where it would have to.
type replayCheck struct {
	terminal bool          // the run has finished: Version past its end answers DefaultVersion
	done     chan struct{} // closed when the executor is gone
	err      error         // why the run would park
	failed   error         // the check itself failed (storage)
}

// CheckReplay replays run id of store against the workflows defs, as an
// engine would on resume, but executes no step, waits for nothing and
// writes nothing: it reports whether the current code follows the run's
// journal (a finished run's too). It is what durabletest.Replay runs for
// each run of a journal file; use it to check a deploy against real
// journals. The store is only read.
//
// The result's Err says why the run would park; the error returned is a
// failure of the check itself: the run does not exist (ErrNotFound), its
// records cannot be read, ctx ended.
func CheckReplay(ctx context.Context, store journal.Store, id string, defs ...Definition) (ReplayResult, error) {
	row, err := store.GetRun(ctx, id)
	if err != nil {
		return ReplayResult{}, errorf("durable: check replay of run %s: %w", clip.Q(id), err)
	}
	res := ReplayResult{RunID: id, Workflow: row.Workflow, Status: Status(row.Status)}
	recs, err := store.Records(ctx, id)
	if err != nil {
		if errors.Is(err, journal.ErrCorrupt) {
			res.Err = err // an engine parks such a run
			return res, nil
		}
		return res, errorf("durable: check replay of run %s: %w", clip.Q(id), err)
	}
	if len(recs) > 0 {
		res.Positions = int(recs[len(recs)-1].Pos) + 1
	}
	var def Definition
	for _, d := range defs {
		if d != nil && d.Name() == row.Workflow {
			def = d
		}
	}
	if def == nil {
		res.Err = errorf("durable: run %s: workflow %s: %w", clip.Q(id), clip.Q(row.Workflow), ErrNotRegistered)
		return res, nil
	}
	c, err := (&Config{Logger: slog.New(slog.DiscardHandler)}).resolve()
	if err != nil {
		return res, err
	}
	e := &Engine{
		store:   readOnlyStore{store},
		cfg:     c,
		clock:   newSafeClock(c.Clock, c.Logger),
		log:     c.Logger,
		defs:    map[string]Definition{def.Name(): def},
		runs:    map[string]*liveRun{},
		stepSem: make(chan struct{}, 1),
	}
	e.ctx, e.cancel = context.WithCancel(ctx)
	defer e.cancel()
	e.wakes = newWakeLoop(e) // never started: nothing waits in a check
	s := newLiveRun(e, id, def)
	x := newExecutor(s, row, recs)
	x.replay = &replayCheck{terminal: row.Status.Terminal(), done: make(chan struct{})}
	go x.main()
	select {
	case <-x.replay.done:
	case <-ctx.Done():
		x.stop(abortClose, ctx.Err())
		<-x.replay.done
	}
	res.Checked = min(int(x.next), res.Positions)
	res.Err = x.replay.err
	if x.replay.failed != nil {
		return res, errorf("durable: check replay of run %s: %w", clip.Q(id), x.replay.failed)
	}
	return res, nil
}

// replayEnd stops a replay check where the run would have to execute
// something. Workflow goroutine only.
func (x *executor) replayEnd() {
	x.stop(abortReplayEnd, nil)
	x.exit()
}

// replayExited reports the end of a replay check.
func (x *executor) replayExited() {
	x.cancelLive()
	switch x.reason {
	case abortPark:
		x.replay.err = x.reasonErr
	case abortReplayEnd, abortNone:
	default:
		x.replay.failed = x.reasonErr
		if x.replay.failed == nil {
			x.replay.failed = errors.New("replay stopped")
		}
	}
	close(x.replay.done)
}

// pastEnd reports whether the run finished at the end of its journal:
// only a replay check replays a finished run.
func (x *executor) pastEnd() bool {
	return x.replay != nil && x.replay.terminal && !x.replaying()
}

// readOnlyStore refuses every write: a replay check must change nothing,
// even through a path its hooks missed.
type readOnlyStore struct{ journal.Store }

var errReadOnly = errorf("durable: replay check writes nothing: %w", journal.ErrInvalid)

func (readOnlyStore) CreateRun(context.Context, journal.Run) (journal.Run, bool, error) {
	return journal.Run{}, false, errReadOnly
}
func (readOnlyStore) Commit(context.Context, *journal.Batch) error { return errReadOnly }
func (readOnlyStore) Purge(context.Context, time.Time, int) (int, error) {
	return 0, errReadOnly
}
func (readOnlyStore) Close() error { return nil }
