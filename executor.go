package durable

import (
	"container/list"
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// An executor is one incarnation of a run: it calls the workflow function
// in its own goroutine (the workflow goroutine), hands out journal
// positions in call order, replays recorded operations and executes the
// rest. It ends when the function returns, or when it is aborted: the
// engine closes, the run parks, or storage fails. An aborted executor
// records nothing more; the run resumes from its journal.
type executor struct {
	e   *Engine
	run *liveRun
	id  string
	row journal.Run
	ctx *wfContext

	// Replay cursor, used by the workflow goroutine only.
	recs []journal.Record // the journal as loaded, in (Pos, Seq) order
	ri   int              // index of the first record not yet handed out
	next uint32           // next position to hand out

	versions map[string]int // Version's answers in this incarnation, by change
	replay   *replayCheck   // set in a replay check (CheckReplay): execute nothing

	// Cancellation as the workflow sees it: doneCh closes at the position
	// where cancellation was delivered (live, or as recorded on replay).
	doneCh    chan struct{}
	cancelErr error // the cancel error once delivered; workflow goroutine only

	// Cancel scopes (cancel_scope.go), the workflow goroutine's: how many
	// WithCancel made, the children started under one, the scopes whose
	// Done channel waits to be closed, and the steps Go started during
	// replay, scheduled once it is over.
	scopes     uint32
	scopedKids []scopedChild
	watched    []*cancelScope
	deferred   []*stepExec

	// live is the parent of the contexts of steps that can be canceled; it
	// is canceled when the run is canceled or the executor aborts. It is
	// made when a step first runs: a run that only replays (most runs at
	// Open) never registers a context with the engine's.
	liveMu     sync.Mutex
	live       context.Context
	liveCancel context.CancelFunc
	liveDone   bool // canceled before it was made

	abortOnce sync.Once
	abort     chan struct{} // closed by stop
	reason    abortReason
	reasonErr error

	mu        sync.Mutex // guards the futures scheduler
	workers   int
	noWorkers bool // set before wg.Wait: no worker may start after
	ready     []*stepExec
	waiting   []*stepExec
	children  map[string]bool // children to cancel with the run
	idleElem  *list.Element   // in the engine's cache while waiting; cacheMu
	waitGen   atomic.Uint64   // the live run's wake count when wait last found nothing ready
	// noMessagesAt is 1 + the live run's wake count at load when the inbox was
	// empty then (0: not known empty). Until a wake (every Send wakes the
	// run), a receive need not read the inbox.
	noMessagesAt atomic.Uint64
	wg           sync.WaitGroup // futures workers
	// cur is the workflow goroutine's latest operation that replay did not
	// settle: what Engine.Get reports the run doing when the journal
	// holds nothing of it yet (a first attempt, a receive without
	// timeout). Guarded by curMu.
	curMu    sync.Mutex
	cur      curOp
	batch    journal.Batch // reused by the workflow goroutine's commits
	stepExec stepExec      // reused by Step (the workflow goroutine's steps)

	// For Config.Observer (observer.go); set by the workflow goroutine.
	octx        context.Context   // the run's context, from RunStarted or RunResumed
	meta        map[string]string // the run's decoded Meta
	replayStart time.Time
	waitKind    string // what x.wait waits for (see waitFor)
	waitName    string
	waitPos     uint32
	waitBegan   time.Time

	// For Logger (logger.go), which step goroutines may use too.
	logger     *slog.Logger
	replayOver atomic.Bool   // replay is over
	pos        atomic.Uint32 // the next position, as x.next, once logger is set
	// use guards the Context: useBusy during a durable operation, useEnded
	// once the workflow goroutine is gone (see enter).
	use atomic.Int32

	// idle is whether the store has the run marked idle (journal.Run.Idle)
	// as far as this executor knows; idleWait asks wait to mark it.
	idle       atomic.Bool
	idleWait   bool
	childWaits atomic.Int32 // child futures waiting for a result
}

const (
	useFree  int32 = iota // between durable operations
	useBusy               // a durable operation is in progress
	useEnded              // the workflow returned or its goroutine exited
)

type abortReason uint8

const (
	abortNone      abortReason = iota
	abortClose                 // the engine is closing
	abortPark                  // the run cannot go on with this code
	abortSuspend               // storage failed; load again later
	abortGone                  // the run was finished or removed elsewhere
	abortEvict                 // the run waits and the cache is full
	abortReplayEnd             // a replay check reached what it cannot check
	abortLost                  // another engine owns the run now: drop it
)

func newExecutor(lr *liveRun, row journal.Run, recs []journal.Record) *executor {
	x := &executor{
		e:      lr.e,
		run:    lr,
		id:     lr.id,
		row:    row,
		recs:   recs,
		doneCh: make(chan struct{}),
		abort:  make(chan struct{}),
	}
	x.ctx = &wfContext{x: x}
	x.replayOver.Store(len(recs) == 0)
	// A run loaded because its wake time is due is as good as not idle:
	// when it waits again, it marks itself with its new wake time.
	x.idle.Store(row.Idle && !row.WakeAt.IsZero() && row.WakeAt.After(lr.e.clock.Now()) || row.Idle && row.WakeAt.IsZero())
	return x
}

// main is the workflow goroutine.
func (x *executor) main() {
	if x.e.obs != nil {
		x.obsBegin()
	}
	finished := false
	defer func() {
		if !finished {
			x.use.Store(useEnded)
			x.exited() // runtime.Goexit: the executor was aborted
		}
	}()
	out, err := x.call()
	x.use.Store(useEnded)
	finished = true
	x.finish(out, err)
}

// call runs the workflow function, turning a panic into a *PanicError.
func (x *executor) call() (out []byte, err error) {
	if x.row.Queued && x.replay == nil {
		// Loaded while waiting in its queue: only a cancel request does
		// that (see liveRun.load). It ends canceled without running.
		if err := x.run.cancelRequested(); err != nil {
			return nil, err
		}
		return nil, errorf("durable: run %s was loaded while waiting in queue %s: %w", clip.Q(x.id), clip.Q(x.row.Queue), ErrCanceled)
	}
	if err := x.awaitStart(); err != nil {
		return nil, err
	}
	if p := protect(func() { out, err = x.run.def.execute(x.ctx, x.row.Input) }); p != nil {
		return nil, p
	}
	return out, err
}

// enter claims the run's Context for one durable operation, which then
// calls leave. It fails if the workflow has returned or its goroutine
// exited (a Context kept too long: ErrStaleContext), or if another
// goroutine is in a durable operation on it (ErrConcurrentContext): the
// operations share the run's journal cursor, which only one goroutine at
// a time may move. One atomic operation on the way in and one out.
func (x *executor) enter() error {
	if x.use.CompareAndSwap(useFree, useBusy) {
		return nil
	}
	if x.use.Load() == useEnded {
		return ErrStaleContext
	}
	return ErrConcurrentContext
}

// leave ends what enter began.
func (x *executor) leave() { x.use.CompareAndSwap(useBusy, useFree) }

// misused handles a failed enter in an operation that returns no error
// (Now, NewTimer): two goroutines at once park the run, since its journal
// can no longer be trusted to replay; a stale Context changes nothing.
func (x *executor) misused(err error) {
	if err == ErrConcurrentContext {
		x.stop(abortPark, errorf("durable: run %s: %w", clip.Q(x.id), err))
	}
}

// stop aborts the executor for reason. It only marks: the workflow
// goroutine exits at its next durable call or wait, futures workers after
// their current attempt. The first reason wins.
func (x *executor) stop(reason abortReason, err error) {
	x.abortOnce.Do(func() {
		x.reason, x.reasonErr = reason, err
		close(x.abort)
		x.cancelLive()
	})
}

// aborted reports whether stop was called.
func (x *executor) aborted() bool {
	select {
	case <-x.abort:
		return true
	default:
		return false
	}
}

// exit stops the workflow goroutine after stop. Only the workflow
// goroutine calls it.
func (x *executor) exit() {
	runtime.Goexit()
}

// park stops the run because it cannot go on with this code (replay
// diverged, a payload no longer decodes). Workflow goroutine only.
func (x *executor) park(reason error) {
	x.annotate(reason)
	x.stop(abortPark, reason)
	x.exit()
}

// exited cleans up after the workflow goroutine stopped without returning.
func (x *executor) exited() {
	if x.e.obs != nil {
		x.obsExited(x.reason, x.reasonErr)
	}
	if x.replay != nil {
		x.replayExited()
		return
	}
	x.cancelLive()
	x.stopWorkers()
	x.e.markBusy(x)
	lr := x.run
	switch x.reason {
	case abortPark:
		x.e.park(lr, x.reasonErr)
	case abortSuspend:
		lr.setIdle()
		x.e.retryLoad(lr, x.reasonErr)
	case abortGone:
		lr.done()
	case abortLost:
		x.e.lost(lr, x.reasonErr)
	case abortEvict:
		lr.evicted(x.waitGen.Load(), x.idle.Load())
	default: // abortClose
		lr.setIdle()
	}
}

// stopWorkers waits for the futures workers to return (after stop) and
// lets no new one start: no futures commit happens after it returns.
func (x *executor) stopWorkers() {
	x.mu.Lock()
	x.noWorkers = true
	x.mu.Unlock()
	x.wg.Wait()
	x.mu.Lock()
	x.ready, x.waiting = nil, nil
	x.mu.Unlock()
}

// finish records the workflow's outcome, hands it to the parent, and
// releases the live run.
func (x *executor) finish(out []byte, werr error) {
	if x.aborted() {
		x.exited()
		return
	}
	x.skipVersions("")
	if x.ri < len(x.recs) {
		r := x.recs[x.ri]
		nd := &NondeterminismError{RunID: x.id, Workflow: x.run.def.Name(), Position: int(r.Pos), Recorded: describe(r.Kind, r.Name)}
		x.annotate(nd)
		x.stop(abortPark, nd)
		x.exited()
		return
	}
	if x.replay != nil {
		x.stop(abortReplayEnd, nil) // the code follows the journal to its end
		x.exited()
		return
	}
	// Futures nobody waited for: stop them, and let none commit after the
	// run's final record.
	x.stop(abortNone, nil)
	x.stopWorkers()
	var c *continueAsNew
	var isContinue, canceled bool
	if p := protect(func() {
		werr = safeError(werr)
		c, isContinue = x.asContinue(werr)
		canceled = errorsIsCanceled(werr)
	}); p != nil {
		werr, isContinue, canceled = p, false, false // the error's own methods panic
	}
	if isContinue {
		x.continued(c)
		return
	}

	status := journal.StatusCompleted
	u := journal.Update{RunID: x.id, Status: status, Output: out}
	if werr != nil {
		status = journal.StatusFailed
		// Canceled if the run was canceled: live, or as the journal says
		// (after a restart a deadline's cancel request is made again only
		// when its timer fires, which may come after the replay ends).
		if (x.run.cancelRequested() != nil || x.cancelErr != nil) && canceled {
			status = journal.StatusCanceled
		}
		u = journal.Update{RunID: x.id, Status: status, Err: encodeError(werr)}
	}
	res := journal.Record{Flags: flagDone, Data: out}
	if werr != nil {
		res.Flags |= flagError
		res.Data = u.Err
	}
	crashPoint("complete", x.id, -1)
	now, toParent, err := x.e.commitEnd(context.Background(), &x.row, u, res, x.run.fence())
	if err != nil {
		x.reason, x.reasonErr = x.commitFailure(err)
		x.exited()
		return
	}
	crashPoint("completed", x.id, -1)
	if x.e.obs != nil {
		x.obsFinished(status, werr)
	}
	x.run.finish(&journal.Run{ID: x.id, Workflow: x.run.def.Name(), Status: status, Output: u.Output, Err: u.Err})
	x.e.noteFinish(now)
	if toParent != nil {
		x.e.deliverToParent(x.row.Parent, x.row.ParentEpoch, *toParent)
	}
}

// wait blocks the workflow goroutine until ready reports true, checking it
// again after every wake of the run. It exits the goroutine if the
// executor is aborted meanwhile.
func (x *executor) wait(ready func() bool) {
	if x.replay != nil && !ready() {
		x.replayEnd() // nothing runs in a replay check: this would wait for ever
	}
	x.scheduleDeferred()
	cached := false
	for {
		ch, gen := x.run.waitCh()
		if x.aborted() {
			x.waitExit(cached)
		}
		if ready() {
			if cached {
				x.e.markBusy(x)
				if x.e.obs != nil {
					x.obsWaitEnded(false)
				}
			}
			return
		}
		x.waitGen.Store(gen)
		if !cached {
			cached = true
			if x.idleWait && !x.idle.Load() {
				// A receive with no timeout: mark the run idle, then
				// look again (a message sent meanwhile is seen).
				if u, ok := x.idleUpdate(time.Time{}); ok {
					b := &journal.Batch{Update: []journal.Update{u}}
					if !x.commit(b) {
						x.exit()
					}
					cached = false
					continue
				}
			}
			if x.e.obs != nil {
				x.obsWaitStarted()
			}
			x.e.markIdle(x)
		}
		select {
		case <-ch:
		case <-x.abort:
			x.waitExit(cached)
		}
	}
}

// waitExit exits the workflow goroutine from a wait that was aborted.
func (x *executor) waitExit(cached bool) {
	if cached && x.e.obs != nil {
		x.obsWaitEnded(true)
	}
	x.exit()
}

// now is the engine clock's time.
func (x *executor) now() time.Time { return x.e.clock.Now() }
