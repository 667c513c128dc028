package durable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable/journal"
)

// Several engines on one store. When the store implements
// journal.Coordinator, the engine registers itself with a lease it renews
// (one heartbeat per engine, whatever its number of runs), claims ready
// runs of its workflows up to Config.MaxRuns, fences every commit of a run
// it owns with the token it claimed it with, drops a run whose commit is
// fenced out (another engine took it over: nothing more is recorded), and
// releases its runs on Close. The store's notes wake runs and claims; a
// poll every Lease.Poll, and a claim at the next wake time of an idle run,
// cover notes that were lost. Without a coordinator none of this runs and
// no commit carries a fence.

// coordination is the engine's state for a journal.Coordinator.
type coordination struct {
	lease     journal.Lease
	claimKick chan struct{}
	noteKick  chan struct{}

	mu      sync.Mutex
	notes   []journal.Note
	adopted chan struct{} // closed and replaced when a run is adopted

	own localLease // the engine's own view of its lease: steps start within it

	// Test hooks: paused stops heartbeats, claims and notes (a process
	// stopped by SIGSTOP); dead makes Close release nothing (SIGKILL).
	paused atomic.Bool
	dead   atomic.Bool
}

// newEngineID returns a unique id for an engine: host, pid and random
// bytes, so a person reading the owner column sees where a run is.
func newEngineID() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// startCoordination registers the engine and starts its heartbeat, claim
// and note goroutines.
func (e *Engine) startCoordination() error {
	e.engineID = newEngineID()
	e.co.claimKick = make(chan struct{}, 1)
	e.co.noteKick = make(chan struct{}, 1)
	e.co.own.init()
	sent := time.Now()
	lease, err := e.coord.Register(e.ctx, e.engineID, e.onNote)
	if err != nil {
		return errorf("durable: register engine with the store: %w", err)
	}
	e.co.lease = lease
	e.co.own.renew(sent, lease.Timeout)
	e.co.adopted = make(chan struct{})
	e.wg.Add(2)
	if lease.Timeout > 0 {
		e.wg.Add(1)
		go func() { defer e.wg.Done(); e.heartbeatLoop() }()
	}
	go func() { defer e.wg.Done(); e.claimLoop() }()
	go func() { defer e.wg.Done(); e.noteLoop() }()
	return nil
}

// stopCoordination releases every run the engine owns (unless a test
// killed it). Called by Close after the runs stopped.
func (e *Engine) stopCoordination() {
	if e.co.dead.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.ShutdownTimeout)
	defer cancel()
	if err := e.coord.Unregister(ctx, e.engineID); err != nil && !errors.Is(err, journal.ErrClosed) {
		e.log.Warn("durable: cannot release this engine's runs; others claim them when its lease expires", "engine", e.engineID, "err", err)
	}
}

func (e *Engine) heartbeatLoop() {
	t := time.NewTicker(e.co.lease.Timeout / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-e.co.own.kick: // a step waits: its lease looked expired
		case <-e.ctx.Done():
			return
		}
		if e.co.paused.Load() {
			continue
		}
		e.heartbeat()
	}
}

func (e *Engine) heartbeat() {
	sent := time.Now()
	err := e.coord.Heartbeat(e.ctx, e.engineID)
	switch {
	case e.ctx.Err() != nil:
	case err == nil:
		e.co.own.renew(sent, e.co.lease.Timeout)
	case errors.Is(err, journal.ErrLeaseExpired):
		// Runs other engines claimed meanwhile are dropped here before
		// the renewed lease lets steps start again (lease.go); the others
		// go on.
		e.log.Warn("durable: this engine's lease had expired; other engines may have taken over some of its runs", "engine", e.engineID)
		e.resync()
		e.co.own.renew(sent, e.co.lease.Timeout)
	default:
		e.log.Warn("durable: heartbeat failed; retrying", "engine", e.engineID, "err", err)
	}
}

// kickClaims asks the claim loop to claim now.
func (e *Engine) kickClaims() {
	if e.coord == nil {
		return
	}
	select {
	case e.co.claimKick <- struct{}{}:
	default:
	}
}

func (e *Engine) claimLoop() {
	for {
		e.kickQueues() // what makes a claim worth trying may free a queue's slot
		next := e.claim()
		var at, poll <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			at, stop = e.clock.TimerAt(next)
		}
		var pt *time.Timer
		if e.co.lease.Poll > 0 {
			pt = time.NewTimer(e.co.lease.Poll)
			poll = pt.C
		}
		select {
		case <-e.co.claimKick:
		case <-poll:
		case <-at:
		case <-e.ctx.Done():
		}
		if pt != nil {
			pt.Stop()
		}
		stop()
		if e.ctx.Err() != nil {
			return
		}
	}
}

// registered returns the names of the workflows this engine has, and its
// free capacity (Config.MaxRuns less its live runs); no names once Close
// began.
func (e *Engine) registered() (names []string, free int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, 0
	}
	names = make([]string, 0, len(e.defs))
	for name := range e.defs {
		names = append(names, name)
	}
	return names, e.cfg.MaxRuns - len(e.runs)
}

// claim claims ready runs up to the engine's free capacity and loads
// them. It returns when to claim again at the latest (zero: at the poll).
func (e *Engine) claim() time.Time {
	if e.co.paused.Load() {
		return time.Time{}
	}
	names, free := e.registered()
	if len(names) == 0 || free <= 0 {
		return time.Time{}
	}
	res, err := e.coord.Claim(e.ctx, journal.ClaimRequest{Engine: e.engineID, Workflows: names, Limit: free, Now: e.clock.Now()})
	if err != nil {
		if errors.Is(err, journal.ErrLeaseExpired) {
			e.heartbeat()
		} else if e.ctx.Err() == nil {
			e.log.Warn("durable: claiming runs failed; retrying", "engine", e.engineID, "err", err)
		}
		return time.Time{}
	}
	for i := range res.Runs {
		e.adopt(&res.Runs[i])
	}
	if len(res.Runs) == free {
		e.kickClaims() // there may be more; the capacity check stops it
	}
	return res.Next
}

// adopt makes a slot for run r, just claimed, and loads it.
func (e *Engine) adopt(r *journal.Run) {
	f := journal.Fence{RunID: r.ID, Owner: e.engineID, Token: r.Token}
	e.mu.Lock()
	def := e.defs[r.Workflow]
	old := e.runs[r.ID]
	if e.closed || def == nil || old != nil {
		e.mu.Unlock()
		if old != nil {
			// Still held from an earlier claim this engine lost without
			// noticing: drop that copy, and let the run be claimed
			// afresh.
			old.mu.Lock()
			x := old.x
			old.mu.Unlock()
			if x != nil {
				x.stop(abortLost, journal.ErrNotOwner)
			} else {
				old.done()
			}
		}
		if err := e.coord.Release(context.Background(), []journal.Fence{f}); err != nil {
			e.log.Warn("durable: cannot release a run", "run", r.ID, "err", err)
		}
		return
	}
	s := newLiveRun(e, r.ID, def)
	s.token.Store(r.Token)
	e.runs[r.ID] = s
	e.mu.Unlock()
	e.enqueueLoad(s)
	e.co.mu.Lock()
	close(e.co.adopted)
	e.co.adopted = make(chan struct{})
	e.co.mu.Unlock()
}

// adoptedCh returns a channel closed when the engine next adopts a run.
func (e *Engine) adoptedCh() <-chan struct{} {
	e.co.mu.Lock()
	defer e.co.mu.Unlock()
	return e.co.adopted
}

// lost drops a run another engine owns now: its executor has stopped
// (recording nothing), its slot goes, and a waiting Handle.Result reads
// the outcome from the store.
func (e *Engine) lost(s *liveRun, cause error) {
	e.log.Warn("durable: run taken over by another engine; dropped here", "run", s.id, "engine", e.engineID, "err", cause)
	s.done()
}

// releaseRun gives up run s (an idle run evicted from the cache), and drops
// its slot.
func (e *Engine) releaseRun(s *liveRun) {
	if err := e.coord.Release(context.Background(), []journal.Fence{s.fence()}); err != nil {
		e.log.Warn("durable: cannot release a run; it waits for this engine", "run", s.id, "err", err)
	}
	s.done()
}

// onNote queues a note from the store; it never blocks.
func (e *Engine) onNote(n journal.Note) {
	e.co.mu.Lock()
	e.co.notes = append(e.co.notes, n)
	e.co.mu.Unlock()
	select {
	case e.co.noteKick <- struct{}{}:
	default:
	}
}

func (e *Engine) noteLoop() {
	for {
		select {
		case <-e.co.noteKick:
		case <-e.ctx.Done():
			return
		}
		e.co.mu.Lock()
		notes := e.co.notes
		e.co.notes = nil
		e.co.mu.Unlock()
		if e.co.paused.Load() {
			continue // a stopped process hears nothing; resync on resume
		}
		claim := false
		for _, n := range notes {
			if n.Kind != journal.NoteWake {
				e.resync()
				continue
			}
			if s := e.liveRunOf(n.RunID); s != nil {
				e.refresh(s)
				s.wake()
			} else if n.Owner != e.engineID {
				claim = true
			}
		}
		if claim {
			e.kickClaims()
		}
	}
}

// resync wakes every run the engine holds and claims: notes may have been
// lost.
func (e *Engine) resync() {
	e.mu.Lock()
	slots := make([]*liveRun, 0, len(e.runs))
	for _, s := range e.runs {
		slots = append(slots, s)
	}
	e.mu.Unlock()
	for _, s := range slots {
		e.refresh(s)
		s.wake()
	}
	e.kickClaims()
}

// refresh brings what another engine wrote for a run this engine holds:
// a cancel request, or a child's result appended to its journal (a child
// that ran there), if it waits for one; and drops the run if another
// engine owns it now.
func (e *Engine) refresh(s *liveRun) {
	r, err := e.store.GetRun(e.ctx, s.id)
	if err != nil {
		return // the run is woken anyway; a later note or resync retries
	}
	if r.Owner != e.engineID || r.Token != s.token.Load() {
		s.mu.Lock()
		x := s.x
		s.mu.Unlock()
		if x != nil {
			x.stop(abortLost, fmt.Errorf("run %q is owned by %q (token %d): %w", s.id, r.Owner, r.Token, journal.ErrNotOwner))
		}
		return // an idle slot finds out when it loads
	}
	if r.CancelRequested {
		s.requestCancel(ErrCanceled)
	}
	s.mu.Lock()
	x := s.x
	s.mu.Unlock()
	if x == nil || x.childWaits.Load() == 0 {
		return
	}
	epoch := r.Epoch // the records read next are of this epoch
	recs, err := e.store.Records(e.ctx, s.id)
	if err != nil {
		return // the run is woken anyway; a later note or resync retries
	}
	for _, r := range recs {
		if r.Kind == kindChild && r.Seq == 1 && r.Flags&flagDone != 0 {
			s.deliverQuiet(epoch, r)
		}
	}
}

// pauseForTest stops (true) or resumes (false) heartbeats, claims and
// notes, as SIGSTOP and SIGCONT would: the engine's runs stay in memory.
func (e *Engine) pauseForTest(paused bool) {
	e.co.paused.Store(paused)
	if !paused {
		e.heartbeat()
		e.resync()
	}
}

// killForTest closes the engine as a SIGKILL would: runs stop and nothing
// is released; other engines claim them when the lease expires.
func (e *Engine) killForTest() {
	e.co.dead.Store(true)
	e.co.paused.Store(true)
	e.Close()
}
