package durable

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

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

	mu           sync.Mutex
	state        runState
	x            *executor                 // the running executor, in stateActive
	bcast        chan struct{}             // closed and replaced by every wake
	gen          uint64                    // counts wakes
	cancel       atomic.Pointer[error]     // ErrCanceled or ErrDeadlineExceeded once requested
	childResults map[uint32]journal.Record // results of children, by the parent's position, not yet taken
	stopped      bool                      // the engine is closing
	queued       bool                      // waiting in the loader's queue
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
func (s *liveRun) waitCh() (<-chan struct{}, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bcast, s.gen
}

// wake notifies the active executor, or loads an idle run.
func (s *liveRun) wake() {
	s.mu.Lock()
	close(s.bcast)
	s.bcast = make(chan struct{})
	s.gen++
	idle := s.state == stateIdle && !s.stopped
	x := s.x
	s.mu.Unlock()
	if x != nil {
		x.requeue()
	}
	if idle {
		s.e.enqueueLoad(s)
	}
}

// deliverChildResult hands the live run a record written for it by
// another run (a child's result), then wakes it.
func (s *liveRun) deliverChildResult(r journal.Record) {
	s.mu.Lock()
	if s.childResults == nil {
		s.childResults = map[uint32]journal.Record{}
	}
	s.childResults[r.Pos] = r
	s.mu.Unlock()
	s.wake()
}

// takeChildResult returns the record delivered for pos, if any.
func (s *liveRun) takeChildResult(pos uint32) (journal.Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.childResults[pos]
	if ok {
		delete(s.childResults, pos)
	}
	return r, ok
}

// stop marks the live run as stopping with the engine and aborts its executor.
func (s *liveRun) stop() {
	s.mu.Lock()
	s.stopped = true
	x := s.x
	s.mu.Unlock()
	if x != nil {
		x.stop(abortClose, nil)
	}
}

// load reads the run and its journal and starts an executor for it. It
// does nothing unless the live run is idle.
func (s *liveRun) load() {
	s.mu.Lock()
	if s.state != stateIdle || s.stopped {
		s.mu.Unlock()
		return
	}
	s.state = stateLoading
	s.mu.Unlock()

	e := s.e
	_, gen := s.waitCh() // wakes from here on may bring messages the read misses
	l, err := e.store.Load(context.Background(), s.id)
	row, recs := l.Run, l.Records
	if err == nil && row.Status.Terminal() {
		s.done() // finished elsewhere (or before a restart): nothing to run
		return
	}
	if err != nil {
		switch {
		case errors.Is(err, journal.ErrNotFound):
			s.done()
		case errors.Is(err, journal.ErrCorrupt):
			e.park(s, err)
		default:
			s.setIdle()
			e.retryLoad(s, err)
		}
		return
	}
	if row.Status == journal.StatusParked {
		// Resumed by an engine that may have compatible code: running
		// again (it parks again if not).
		b := &journal.Batch{Now: e.clock.Now(), Update: []journal.Update{{RunID: s.id, Status: journal.StatusRunning}}}
		if err := e.store.Commit(context.Background(), b); err != nil {
			s.setIdle()
			e.retryLoad(s, err)
			return
		}
	}
	x := newExecutor(s, row, recs)
	if !l.HasMessages {
		x.noMessagesAt.Store(gen + 1) // +1: 0 means "unknown"
	}
	s.mu.Lock()
	if s.stopped {
		s.state = stateIdle
		s.mu.Unlock()
		return
	}
	s.state = stateActive
	s.x = x
	if row.CancelRequested {
		var canceled error = ErrCanceled
		s.cancel.CompareAndSwap(nil, &canceled)
	}
	if s.cancelRequested() != nil {
		x.cancelLive()
	}
	s.mu.Unlock()
	if !row.Deadline.IsZero() {
		e.wakes.add(s.id, row.Deadline, true)
	}
	if !e.spawn(x.main) {
		s.setIdle()
	}
}

// setIdle returns the live run to idle after its executor exited.
func (s *liveRun) setIdle() {
	s.mu.Lock()
	s.state = stateIdle
	s.x = nil
	s.mu.Unlock()
}

// evicted returns the live run to idle after an eviction, and loads the run
// again at once if a wake came after the eviction was decided.
func (s *liveRun) evicted(gen uint64) {
	s.mu.Lock()
	s.state = stateIdle
	s.x = nil
	woken := s.gen != gen && !s.stopped
	s.mu.Unlock()
	if woken {
		s.e.enqueueLoad(s)
	}
}

// done removes the live run from the engine: the run finished or parked.
func (s *liveRun) done() {
	s.mu.Lock()
	if s.state == stateDone {
		s.mu.Unlock()
		return
	}
	s.state = stateDone
	s.x = nil
	s.mu.Unlock()
	e := s.e
	e.mu.Lock()
	if e.runs[s.id] == s {
		delete(e.runs, s.id)
	}
	e.mu.Unlock()
	close(s.finished)
}
