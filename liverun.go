package durable

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable/journal"
)

// A liveRun is the engine's long-lived handle on one unfinished run of a
// registered workflow. It outlives executors: a run that is evicted or
// suspended and loaded again keeps its liveRun, its waiters and its pending
// notifications. The engine's runs map holds a liveRun from the moment the
// run is started or recovered until it finishes or parks.
type liveRun struct {
	e   *Engine
	id  string
	def Definition

	finished chan struct{} // closed when the run finished or parked
	parking  atomic.Bool   // park is recording the parked status; done follows
	// outcome is the run's final state as this engine saw it (status,
	// output, error), set before finished closes; nil if the run was not
	// finished here. Handles read it, so a result does not depend on the
	// run still being in the journal (Config.Retention may delete it).
	outcome *journal.Run

	mu           sync.Mutex
	state        runState
	x            *executor                   // the running executor, in stateActive
	bcast        chan struct{}               // closed and replaced by every wake
	gen          uint64                      // counts wakes
	cancel       atomic.Pointer[error]       // ErrCanceled or ErrDeadlineExceeded once requested
	childResults map[childKey]journal.Record // results of children, by the parent's epoch and position, not yet taken
	stopped      bool                        // the engine is closing
	queued       bool                        // waiting in the loader's queue
	obsEpoch     int64                       // 1 + the epoch of the last executor, for Config.Observer

	// token is the fencing token this engine claimed the run with, when
	// the store is a journal.Coordinator (see coordinate.go).
	token atomic.Uint64
}

// fence is what every commit for the run carries: nothing without a
// coordinator, else this engine's claim of the run.
func (lr *liveRun) fence() journal.Fence {
	if lr.e.coord == nil {
		return journal.Fence{}
	}
	return journal.Fence{RunID: lr.id, Owner: lr.e.engineID, Token: lr.token.Load()}
}

// childKey is where a child's result goes in its parent: the parent's
// epoch and position. The epoch keeps a result that reached the live run
// late (after the parent read it from its journal and continued as new)
// from being taken by the child started at that position in a later epoch.
type childKey struct{ epoch, pos uint32 }

// deliverQuiet is deliverChildResult without the wake (the caller wakes).
func (lr *liveRun) deliverQuiet(epoch uint32, r journal.Record) {
	lr.mu.Lock()
	if lr.childResults == nil {
		lr.childResults = map[childKey]journal.Record{}
	}
	lr.childResults[childKey{epoch, r.Pos}] = r
	lr.mu.Unlock()
}

type runState uint8

const (
	stateIdle    runState = iota // not loaded: recovering, evicted or suspended
	stateLoading                 // reading the journal
	stateActive                  // an executor runs the workflow
	stateDone                    // finished or parked; out of the map
)

func newLiveRun(e *Engine, id string, def Definition) *liveRun {
	return &liveRun{e: e, id: id, def: def, finished: make(chan struct{}), bcast: make(chan struct{})}
}

// waitCh returns the channel the next wake closes, and the count of wakes
// so far. Take it before checking the condition being waited for, so a
// wake in between is not lost.
func (lr *liveRun) waitCh() (<-chan struct{}, uint64) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.bcast, lr.gen
}

// wake notifies the active executor, or loads an idle run.
func (lr *liveRun) wake() {
	lr.mu.Lock()
	close(lr.bcast)
	lr.bcast = make(chan struct{})
	lr.gen++
	idle := lr.state == stateIdle && !lr.stopped
	x := lr.x
	lr.mu.Unlock()
	if x != nil {
		x.requeue()
	}
	if idle {
		lr.e.enqueueLoad(lr)
	}
}

// deliverChildResult hands the live run a record written for it by
// another run (a child's result, for the parent's epoch), then wakes it.
func (lr *liveRun) deliverChildResult(epoch uint32, r journal.Record) {
	lr.deliverQuiet(epoch, r)
	lr.wake()
}

// takeChildResult returns the record delivered for pos of epoch, if any.
func (lr *liveRun) takeChildResult(epoch, pos uint32) (journal.Record, bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	k := childKey{epoch, pos}
	r, ok := lr.childResults[k]
	if ok {
		delete(lr.childResults, k)
	}
	return r, ok
}

// stop marks the live run as stopping with the engine and aborts its executor.
func (lr *liveRun) stop() {
	lr.mu.Lock()
	lr.stopped = true
	x := lr.x
	lr.mu.Unlock()
	if x != nil {
		x.stop(abortClose, nil)
	}
}

// load reads the run and its journal and starts an executor for it. It
// does nothing unless the live run is idle.
func (lr *liveRun) load() { lr.loadFrom(nil) }

// loadFrom is load, with the run as created (no records yet) when fresh
// is not nil: a run this engine has just created needs no read of the
// store (one round trip per run on a database).
func (lr *liveRun) loadFrom(fresh *journal.Run) {
	lr.mu.Lock()
	if lr.state != stateIdle || lr.stopped {
		lr.mu.Unlock()
		return
	}
	lr.state = stateLoading
	lr.mu.Unlock()

	e := lr.e
	_, gen := lr.waitCh() // wakes from here on may bring messages the read misses
	var l journal.Loaded
	var err error
	if fresh != nil {
		// As the store would read it back; messages may have come since:
		// unknown, so not "none".
		l = journal.Loaded{Run: *fresh, HasMessages: true}
		for _, t := range []*time.Time{&l.Run.CreatedAt, &l.Run.UpdatedAt, &l.Run.WakeAt, &l.Run.Deadline} {
			*t = journal.NormTime(*t)
		}
	} else {
		e.loads.Add(1)
		l, err = e.store.Load(context.Background(), lr.id)
	}
	row, recs := l.Run, l.Records
	if err == nil && row.Status.Terminal() {
		lr.finish(&row) // finished elsewhere (or before a restart): nothing to run
		return
	}
	if err == nil && e.coord != nil && (row.Owner != e.engineID || row.Token != lr.token.Load()) {
		e.lost(lr, fmt.Errorf("run %q is owned by %q (token %d): %w", lr.id, row.Owner, row.Token, journal.ErrNotOwner))
		return
	}
	if err == nil && row.Queued && !row.CancelRequested {
		lr.done() // it waits in its queue: it loads when admitted (queue.go)
		return
	}
	if err == nil {
		e.holdQueued(&row)
	}
	if err != nil {
		switch {
		case errors.Is(err, journal.ErrNotFound):
			lr.done()
		case errors.Is(err, journal.ErrCorrupt):
			if e.obs != nil {
				e.obsParkedIdle(lr.id, lr.def.Name(), nil, err)
			}
			e.park(lr, err)
		default:
			lr.setIdle()
			e.retryLoad(lr, err)
		}
		return
	}
	if u, ok := e.resumeUpdate(&row); ok {
		// A parked run resumed by an engine that may have compatible code
		// is running again (it parks again if not); a run resumed by
		// another build records the build.
		if _, err := e.updateRun(context.Background(), u, lr.fence()); err != nil {
			if errors.Is(err, journal.ErrNotOwner) {
				e.lost(lr, err)
				return
			}
			lr.setIdle()
			e.retryLoad(lr, err)
			return
		}
	}
	x := newExecutor(lr, row, recs)
	if !l.HasMessages {
		x.noMessagesAt.Store(gen + 1) // +1: 0 means "unknown"
	}
	lr.mu.Lock()
	if lr.stopped {
		lr.state = stateIdle
		lr.mu.Unlock()
		return
	}
	lr.state = stateActive
	lr.x = x
	if row.CancelRequested {
		var canceled error = ErrCanceled
		lr.cancel.CompareAndSwap(nil, &canceled)
	}
	if lr.cancelRequested() != nil {
		x.cancelLive()
	}
	lr.mu.Unlock()
	if !row.Deadline.IsZero() {
		e.wakes.add(lr.id, row.Deadline, true)
	}
	if !e.spawn(x.main) {
		lr.setIdle()
	}
}

// setIdle returns the live run to idle after its executor exited.
func (lr *liveRun) setIdle() {
	lr.mu.Lock()
	lr.state = stateIdle
	lr.x = nil
	lr.mu.Unlock()
}

// evicted returns the live run to idle after an eviction, and loads the run
// again at once if a wake came after the eviction was decided.
func (lr *liveRun) evicted(gen uint64, idle bool) {
	lr.mu.Lock()
	lr.x = nil
	woken := lr.gen != gen && !lr.stopped
	// A run of a queue stays with the engine that admitted it: it counts
	// against that engine's Queue.Concurrency until it finishes.
	release := !woken && idle && lr.e.coord != nil && !lr.e.holdsQueued(lr.id)
	if release {
		// Not idle while it is released: a wake in between must not load
		// it here (an executor with the old token would run steps that the
		// engine claiming it runs too). The store's note for the released
		// run, or the claim at its wake time, brings it back.
		lr.state = stateLoading
	} else {
		lr.state = stateIdle
	}
	lr.mu.Unlock()
	if woken {
		lr.e.enqueueLoad(lr)
	} else if release {
		// Marked idle in the store: whichever engine claims it when its
		// timer falls due or a message comes runs it.
		lr.e.releaseRun(lr)
	}
}

// finalOutcome returns the outcome the run finished with here, if it is
// terminal (a parked run may be resumed); nil if none.
func (lr *liveRun) finalOutcome() *journal.Run {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if o := lr.outcome; o != nil && o.Status.Terminal() {
		return o
	}
	return nil
}

// finish is done for a run whose final state is out (nil: unknown).
func (lr *liveRun) finish(out *journal.Run) {
	lr.mu.Lock()
	if lr.state != stateDone {
		lr.outcome = out
	}
	lr.mu.Unlock()
	lr.e.finished.add(out)
	lr.done()
}

// done removes the live run from the engine: the run finished or parked.
func (lr *liveRun) done() {
	lr.mu.Lock()
	if lr.state == stateDone {
		lr.mu.Unlock()
		return
	}
	lr.state = stateDone
	lr.x = nil
	lr.mu.Unlock()
	e := lr.e
	e.mu.Lock()
	if e.runs[lr.id] == lr {
		delete(e.runs, lr.id)
	}
	e.mu.Unlock()
	close(lr.finished)
	e.kickClaims() // room for one more
	e.releaseQueued(lr.id)
}
