package durable

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// Config configures an [Engine]. The zero value, or a nil *Config, means
// the documented defaults. An engine copies its Config; changing it later
// has no effect.
type Config struct {
	// Workflows are the workflows this engine can start and resume. Their
	// names must be unique. [Start] also registers the workflow it is
	// given, and resumes that workflow's parked runs. Defaults to none.
	Workflows []Definition

	// Clock is the engine's source of time for timers, retries and
	// [Now]. Defaults to the system clock (which testing/synctest fakes).
	Clock Clock

	// Logger receives the engine's warnings (parked runs, failed commits).
	// Defaults to slog.Default().
	Logger *slog.Logger

	// MaxPayloadBytes bounds every encoded payload: inputs, step results,
	// messages, workflow results. A larger payload is refused with an
	// error matching [ErrPayloadTooLarge] before anything is written.
	// Defaults to 1 MiB.
	MaxPayloadBytes int

	// MaxSteps bounds the steps executing at once in this engine, over all
	// runs. Defaults to 1024.
	MaxSteps int

	// MaxStepsPerRun bounds the steps of one run executing at once (with
	// [Go], a run can have many). Futures beyond it wait in a queue, not in
	// goroutines. Defaults to 64.
	MaxStepsPerRun int

	// DefaultRetry is the retry policy of steps that have no [WithRetry].
	// Defaults to retry.Policy{}: 3 attempts, exponential backoff from 1s
	// with equal jitter, capped at 1 minute.
	DefaultRetry *retry.Policy

	// ShutdownTimeout bounds how long [Engine.Close] waits for running
	// steps to return after their contexts are canceled. Defaults to 5
	// seconds.
	ShutdownTimeout time.Duration

	// LockTimeout bounds how long [Open] waits for a journal file that
	// another process or engine holds before it fails with
	// journal.ErrLocked. Defaults to 1 second.
	LockTimeout time.Duration

	// Limits are keyed rate and concurrency limits that steps bind to with
	// [WithLimit], shared by every run. Defaults to none.
	Limits map[string]Limit

	// MaxCachedRuns is how many waiting runs (sleeping, receiving, waiting
	// for a child or a retry) keep their goroutine and replay state in
	// memory. Beyond it the longest-waiting run is evicted and replayed
	// from the journal when what it waits for arrives. Defaults to 4096;
	// a negative value means no limit.
	MaxCachedRuns int

	// MaxHistory is the most durable operations (journal positions) a run
	// may make in one epoch. An operation past it is not recorded and
	// fails with an error matching [ErrTooManyRecords] (Now and NewTimer,
	// which return no error, park the run); a warning is logged at 90%.
	// Long-lived workflows should [ContinueAsNew] before. It counts
	// positions, not records: every failed attempt of a step adds a record
	// at the step's one position, so a step that retries for ever
	// (retry.Policy MaxAttempts < 0) and keeps failing grows its run's
	// journal without bound; bound such a step with MaxAttempts or
	// Retryable. Defaults to 100,000.
	MaxHistory int

	// Retention is how long finished runs (and the journals of epochs that
	// ended by ContinueAsNew) are kept before the engine deletes them, in
	// small transactions, so the file stops growing. Defaults to 7 days; a
	// negative value keeps everything.
	Retention time.Duration

	// RecoveryWorkers is how many runs [Open] and [New] load at once when
	// they resume unfinished runs. Defaults to 4 × GOMAXPROCS.
	RecoveryWorkers int

	// RetrySeed, if not 0, makes retry jitter reproducible: the jitter of
	// a step's backoff (a backoff.Exponential without a Rand of its own,
	// the default policy's among them) is drawn from RetrySeed, the run
	// id, the step's position and the attempt instead of math/rand, so a
	// test sees the same backoff times on every run. durabletest sets it
	// and prints it when a test fails. Defaults to 0: math/rand.
	RetrySeed uint64

	// BuildID names the code this engine runs (a version, a commit, a
	// deploy id). It is stored with each run the engine starts and each
	// run it resumes (RunInfo.Builds), and a parked run's error names the
	// builds that recorded its journal. At most 256 bytes. Defaults to "":
	// nothing is stored.
	BuildID string

	// Observer receives the engine's events (runs, step attempts, waits,
	// commits) for traces and metrics; see [Observer] and the otel
	// module. Defaults to none, which costs the step path nothing
	// measurable.
	Observer Observer

	// MaxRuns is, with a store that several engines share (one that
	// implements journal.Coordinator), the most runs this engine owns at
	// once: it claims ready runs up to it, and more as its runs finish
	// or go idle. Runs it starts itself are not limited. Defaults to
	// 1024.
	MaxRuns int

	// Queues are named queues that [Start] puts runs on with [OnQueue]:
	// each admits its waiting runs in priority order within its limits
	// (see [Queue]). The store must implement journal.Queues (Memory,
	// bbolt and Postgres do). Defaults to none.
	Queues map[string]Queue
}

const (
	defaultMaxPayload      = 1 << 20
	defaultMaxSteps        = 1024
	defaultMaxStepsPerRun  = 64
	defaultShutdownTimeout = 5 * time.Second
	defaultMaxCachedRuns   = 4096
	defaultMaxHistory      = 100_000
	defaultRetention       = 7 * 24 * time.Hour
	defaultMaxRuns         = 1024
)

func (c *Config) resolve() (Config, error) {
	var r Config
	if c != nil {
		r = *c
	}
	if r.Clock == nil {
		r.Clock = systemClock{}
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.MaxPayloadBytes < 0 || r.MaxSteps < 0 || r.MaxStepsPerRun < 0 || r.ShutdownTimeout < 0 || r.LockTimeout < 0 || r.RecoveryWorkers < 0 {
		return r, errors.New("durable: Config: MaxPayloadBytes, MaxSteps, MaxStepsPerRun, ShutdownTimeout, LockTimeout and RecoveryWorkers must not be negative")
	}
	if len(r.BuildID) > journal.MaxBuildLen {
		return r, errorf("durable: Config.BuildID is %d bytes, more than %d", len(r.BuildID), journal.MaxBuildLen)
	}
	if r.MaxPayloadBytes == 0 {
		r.MaxPayloadBytes = defaultMaxPayload
	}
	if r.MaxSteps == 0 {
		r.MaxSteps = defaultMaxSteps
	}
	if r.MaxStepsPerRun == 0 {
		r.MaxStepsPerRun = defaultMaxStepsPerRun
	}
	if r.DefaultRetry == nil {
		r.DefaultRetry = &retry.Policy{}
	}
	if r.ShutdownTimeout == 0 {
		r.ShutdownTimeout = defaultShutdownTimeout
	}
	if r.MaxCachedRuns == 0 {
		r.MaxCachedRuns = defaultMaxCachedRuns
	} else if r.MaxCachedRuns < 0 {
		r.MaxCachedRuns = math.MaxInt
	}
	if r.MaxHistory <= 0 {
		r.MaxHistory = defaultMaxHistory
	}
	if r.Retention == 0 {
		r.Retention = defaultRetention
	}
	if r.RecoveryWorkers == 0 {
		r.RecoveryWorkers = 4 * runtime.GOMAXPROCS(0)
	}
	if r.MaxRuns <= 0 {
		r.MaxRuns = defaultMaxRuns
	}
	return r, nil
}

// Engine runs workflows and journals them in a [journal.Store]. Open one
// with [Open] (a bbolt file) or [New] (any store). An Engine is safe for
// concurrent use. One engine at a time may use a store, unless the store
// implements journal.Coordinator (journal.Memory, the Postgres store):
// then engines in one process or many share its runs (see the package
// documentation, "Several engines").
type Engine struct {
	store     journal.Store
	ownsStore bool
	loads     atomic.Int64        // journal reads to load a run (tests count them)
	finished  outcomes            // the final states of the runs that last finished here
	coord     journal.Coordinator // nil: this engine is the store's only one
	engineID  string              // with coord: this engine's lease
	co        coordination
	cfg       Config
	clock     *safeClock // Config.Clock, its panics contained
	log       *slog.Logger

	ctx    context.Context // canceled by Close: parent of every step context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	defs   map[string]Definition
	runs   map[string]*liveRun // unfinished runs of registered workflows

	cacheMu sync.Mutex
	cache   cache

	loader    loader
	retention retention
	wakes     *wakeLoop
	stepSem   chan struct{}
	limits    map[string]*limiter
	events    eventHub  // wakes GetEvent (event.go)
	queues    *queueSet // Config.Queues and the admission loop (queue.go)
	counters  counters
	since     time.Time
	wg        sync.WaitGroup // every goroutine the engine starts

	obs         Observer    // Config.Observer; nil if none
	obsPanicked atomic.Bool // the observer panicked once (and was logged)
	obsStop     func()      // unsubscribes from the store's commit statistics
}

// Open opens (creating it if needed) the bbolt journal at path and returns
// an engine on it; Close closes the file. cfg may be nil. Bad files fail
// with the journal's typed errors: journal.ErrNotJournal,
// journal.ErrCorrupt, journal.ErrVersion, journal.ErrLocked (after
// Config.LockTimeout). Unfinished runs resume in the background.
func Open(path string, cfg *Config) (*Engine, error) {
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s, err := journal.OpenBolt(path, &journal.BoltOptions{LockTimeout: c.LockTimeout})
	if err != nil {
		return nil, errorf("durable: open %s: %w", path, err)
	}
	e, err := newEngine(s, c)
	if err != nil {
		s.Close()
		return nil, err
	}
	e.ownsStore = true
	return e, nil
}

// New returns an engine on store, which stays the caller's: Close does not
// close it, so a new engine on the same store resumes where this one
// stopped. cfg may be nil. Unfinished runs resume in the background.
func New(store journal.Store, cfg *Config) (*Engine, error) {
	if store == nil {
		return nil, &ArgError{Msg: "durable: New: nil store"}
	}
	c, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return newEngine(store, c)
}

func newEngine(store journal.Store, c Config) (*Engine, error) {
	e := &Engine{
		store:   store,
		cfg:     c,
		clock:   newSafeClock(c.Clock, c.Logger),
		log:     c.Logger,
		defs:    map[string]Definition{},
		runs:    map[string]*liveRun{},
		stepSem: make(chan struct{}, c.MaxSteps),
		obs:     c.Observer,
		since:   c.Clock.Now(),
	}
	var err error
	if e.limits, err = newLimiters(c.Limits); err != nil {
		return nil, err
	}
	if e.queues, err = newQueues(c.Queues, store); err != nil {
		return nil, err
	}
	for i, d := range c.Workflows {
		if d == nil {
			return nil, errorf("durable: Config.Workflows[%d] is nil", i)
		}
		if _, dup := e.defs[d.Name()]; dup {
			return nil, errorf("durable: Config.Workflows: two workflows named %s", clip.Q(d.Name()))
		}
		e.defs[d.Name()] = d
	}
	_, shared := store.(journal.Coordinator)
	if err := e.registerSchedules(shared); err != nil { // schedule_run.go
		return nil, err
	}
	if e.obs != nil {
		e.obsStop = e.obsCommits()
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.retention.kick = make(chan struct{}, 1)
	e.wakes = newWakeLoop(e)
	e.wg.Add(2)
	go e.wakes.loop()
	go func() {
		defer e.wg.Done()
		e.retentionLoop()
	}()
	if c, ok := store.(journal.Coordinator); ok {
		e.coord = c
		if err := e.startCoordination(); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.recover(""); err != nil {
		e.Close()
		return nil, err
	}
	if len(e.queues.list) > 0 && !e.spawn(e.queueLoop) {
		return nil, ErrClosed
	}
	return e, nil
}

// recover resumes the unfinished runs of workflow name (of every
// registered workflow if name is "") that can move now: running runs
// that are ready (not idle: see journal.Run.Ready) and parked runs, which
// run again with this engine's code (and park again if it is not
// compatible). Idle runs load when their timer falls due or a message
// comes; runs of workflows this engine does not have are left alone.
//
// Without a coordinator it lists synchronously, so a Start that follows
// attaches to a recovering run instead of executing it twice. With one,
// parked runs are marked running and the claim loop takes it from there.
func (e *Engine) recover(name string) error {
	if e.coord != nil {
		return e.recoverShared(name)
	}
	var load []*liveRun
	now := e.clock.Now()
	for _, f := range []journal.Filter{{Status: journal.StatusRunning, ReadyAt: now}, {Status: journal.StatusParked}} {
		f.Workflow = name
		f.Limit = 1000
		for {
			page, err := e.store.ListRuns(e.ctx, f)
			if errors.Is(err, journal.ErrCorrupt) {
				// Damaged run values are left out; the others recover.
				// `durable check` names them.
				e.log.Error("durable: runs with damaged stored state cannot be resumed", "err", err)
			} else if err != nil {
				return errorf("durable: list unfinished runs: %w", err)
			}
			if len(page) == 0 {
				break
			}
			f.After = page[len(page)-1].ID
			e.mu.Lock()
			for _, r := range page {
				def := e.defs[r.Workflow]
				if def == nil {
					continue // it waits for an engine that has its workflow
				}
				if _, ok := e.runs[r.ID]; ok {
					continue
				}
				lr := newLiveRun(e, r.ID, def)
				e.runs[r.ID] = lr
				load = append(load, lr)
			}
			e.mu.Unlock()
		}
	}
	e.wakes.addScan(time.Time{}) // idle runs' timers, from the store's index
	if len(load) == 0 {
		return nil
	}
	// spawn, not a bare wg.Add: a Start that registers a workflow can race
	// with Close, and wg.Add must not run concurrently with Close's Wait.
	if !e.spawn(func() {
		for _, s := range load {
			e.enqueueLoad(s)
		}
	}) {
		return ErrClosed
	}
	return nil
}

// recoverShared marks the parked runs of workflow name (or of every
// registered workflow) running, so that an engine claims them, and
// claims.
func (e *Engine) recoverShared(name string) error {
	e.mu.Lock()
	names := []string{name}
	if name == "" {
		names = names[:0]
		for n := range e.defs {
			names = append(names, n)
		}
	}
	e.mu.Unlock()
	for _, n := range names {
		f := journal.Filter{Status: journal.StatusParked, Workflow: n, Limit: 1000}
		for {
			page, err := e.store.ListRuns(e.ctx, f)
			if err != nil && !errors.Is(err, journal.ErrCorrupt) {
				return errorf("durable: list parked runs: %w", err)
			}
			if len(page) == 0 {
				break
			}
			f.After = page[len(page)-1].ID
			for _, r := range page {
				b := &journal.Batch{Now: e.clock.Now(), Update: []journal.Update{{RunID: r.ID, Status: journal.StatusRunning}}}
				if err := e.store.Commit(e.ctx, b); err != nil && !isFinished(err) && !isNotFound(err) {
					e.log.Warn("durable: cannot resume a parked run", "run", r.ID, "err", err)
				}
			}
		}
	}
	e.kickClaims()
	return nil
}

// wakeOrLoad wakes run id, loading it first if it is not loaded, is
// running and its workflow is registered here: a run that was idle when
// the engine started, whose timer fell due or which got a message. With a
// coordinator the store's notes do this.
func (e *Engine) wakeOrLoad(id string) {
	if s := e.liveRunOf(id); s != nil || e.coord != nil {
		if s != nil {
			s.wake()
		}
		return
	}
	r, err := e.store.GetRun(e.ctx, id)
	if err != nil || r.Status != journal.StatusRunning || (r.Queued && !r.CancelRequested) {
		return // a queued run loads when it is admitted
	}
	e.mu.Lock()
	def := e.defs[r.Workflow]
	s := e.runs[id]
	if s == nil && def != nil && !e.closed {
		s = newLiveRun(e, id, def)
		e.runs[id] = s
	}
	e.mu.Unlock()
	if s != nil {
		s.wake()
	}
}

// register adds def to the engine if its name is new, and then resumes
// that workflow's unfinished runs. It fails if another definition has the
// name.
func (e *Engine) register(def Definition) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	old, ok := e.defs[def.Name()]
	if !ok {
		e.defs[def.Name()] = def
	}
	e.mu.Unlock()
	if ok {
		if old != def {
			return errorf("durable: workflow %s: another definition with that name is registered", clip.Q(def.Name()))
		}
		return nil
	}
	if err := e.recover(def.Name()); err != nil {
		e.mu.Lock()
		delete(e.defs, def.Name()) // so the next Start tries again
		e.mu.Unlock()
		if e.isClosed() {
			return ErrClosed
		}
		return err
	}
	return nil
}

// Close stops the engine: it stops every run without failing it (an
// interrupted step is not recorded and runs again when the run resumes;
// an [AtMostOnce] step returns a [*StepInterruptedError] instead),
// cancels the contexts of running steps and waits up to
// Config.ShutdownTimeout for them to return. A step that ignores its
// context is abandoned after that: its result is never recorded. Close
// closes the store if the engine opened it ([Open]). It is idempotent.
//
// A workflow stops at its next durable call: one that loops without
// making any (a busy loop in workflow code) cannot be stopped, and its
// goroutine lives on after Close returns (which then reports steps still
// running after Config.ShutdownTimeout).
func (e *Engine) Close() error {
	if e == nil {
		return errNilEngine
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	live := make([]*liveRun, 0, len(e.runs))
	for _, lr := range e.runs {
		live = append(live, lr)
	}
	e.mu.Unlock()
	for _, lr := range live {
		lr.stop() // mark first, so no interrupted step is recorded
	}
	e.cancel()
	e.wakes.stop()

	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(e.cfg.ShutdownTimeout): // real (or synctest) time: a fake Config.Clock nobody moves must not hang Close
		err = errorf("durable: Close: steps still running after %v were abandoned", e.cfg.ShutdownTimeout)
		e.log.Warn(err.Error())
	}
	if e.obsStop != nil {
		e.obsStop()
	}
	if e.coord != nil {
		// Release the runs. An abandoned step's executor is stopped, so
		// it commits nothing; and the fence refuses a commit that was
		// already under way once another engine claims the run.
		e.stopCoordination()
	}
	if e.ownsStore {
		if cerr := e.store.Close(); err == nil && cerr != nil {
			err = errorf("durable: Close: %w", cerr)
		}
	}
	return err
}

// isClosed reports whether Close has begun.
func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// liveRunOf returns the live run of run id, or nil.
func (e *Engine) liveRunOf(id string) *liveRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[id]
}

// wake tells run id that something it may wait for happened: a timer fell
// due, a message or a child's result arrived. An evicted run is loaded.
func (e *Engine) wake(id string) {
	if lr := e.liveRunOf(id); lr != nil {
		lr.wake()
	}
}

// park records that a run cannot go on with this code, and drops its live run.
// Other runs are not affected; the run resumes when an engine with
// compatible code opens the journal.
func (e *Engine) park(lr *liveRun, reason error) {
	lr.parking.Store(true) // attach waits for done: the parked status may be read before it
	u := journal.Update{RunID: lr.id, Status: journal.StatusParked, Err: encodeError(reason)}
	if _, err := e.updateRun(context.Background(), u, lr.fence()); errors.Is(err, journal.ErrNotOwner) {
		e.lost(lr, err)
		return
	} else if err != nil && !errors.Is(err, journal.ErrFinished) {
		e.log.Error("durable: cannot record that a run is parked", "run_id", lr.id, "workflow", lr.def.Name(), "reason", reason, "err", err)
	} else {
		e.log.Warn("durable: run parked", "run_id", lr.id, "workflow", lr.def.Name(), "reason", reason)
	}
	crashPoint("parked", lr.id, -1)
	lr.finish(&journal.Run{ID: lr.id, Workflow: lr.def.Name(), Status: journal.StatusParked, Err: encodeError(reason)})
	if lr.cancelRequested() != nil {
		// An Engine.Cancel reached the executor as it parked: its code
		// will not act on it, so end the run as a canceled parked run
		// (if the request is in the journal: a run deadline is not one).
		e.spawn(func() {
			if r, err := e.store.GetRun(e.ctx, lr.id); err == nil && r.CancelRequested {
				if err := e.cancelParked(e.ctx, lr.id); err != nil {
					e.log.Warn("durable: cannot cancel a run that parked as it was canceled", "run_id", lr.id, "err", err)
				}
			}
		})
	}
}

// retryLoad loads lr again after a pause, for a run whose journal could not
// be read or written (a full disk, say). The run stays Running.
func (e *Engine) retryLoad(lr *liveRun, cause error) {
	const pause = time.Second
	e.log.Error("durable: run suspended after a storage error; retrying", "run_id", lr.id, "workflow", lr.def.Name(), "err", cause, "in", pause)
	e.spawn(func() {
		select {
		case <-time.After(pause):
			e.enqueueLoad(lr)
		case <-e.ctx.Done():
		}
	})
}

// spawn runs fn in a goroutine the engine waits for on Close. It reports
// false (and does not run fn) once Close has begun.
func (e *Engine) spawn(fn func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
	return true
}

// deliverToParent hands a child's result record, for the parent's epoch,
// to its parent's live run, if the parent is loaded in this engine.
func (e *Engine) deliverToParent(parent string, epoch uint32, r journal.Record) {
	if lr := e.liveRunOf(parent); lr != nil {
		lr.deliverChildResult(epoch, r)
	}
}

// attachOwned makes the live run of run id, which this engine just
// created owned with token, and loads it.
func (e *Engine) attachOwned(id string, def Definition, token uint64, fresh *journal.Run) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	lr := e.runs[id]
	if lr == nil {
		lr = newLiveRun(e, id, def)
		lr.token.Store(token)
		e.runs[id] = lr
	} else {
		fresh = nil // loaded before: read it
	}
	e.mu.Unlock()
	lr.loadFrom(fresh)
	return nil
}

// attach returns the live run of run id, creating and loading it if the run is
// unfinished and not loaded. Concurrent calls for one id share one live run, so
// a run never has two executors.
func (e *Engine) attach(id string, def Definition) (*liveRun, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	lr := e.runs[id]
	for lr != nil && lr.parking.Load() {
		// The run is being parked: its status is committed, its live run
		// not yet gone. Loading through it would do nothing (Resume right
		// after the park would leave the run parked): wait for it to go.
		e.mu.Unlock()
		<-lr.finished
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		lr = e.runs[id]
	}
	if lr == nil {
		lr = newLiveRun(e, id, def)
		e.runs[id] = lr
	}
	e.mu.Unlock()
	if lr.def.Name() != def.Name() {
		return nil, errorf("durable: run %s is a %s run: %w", clip.Q(id), clip.Q(lr.def.Name()), ErrWorkflowMismatch)
	}
	lr.load()
	return lr, nil
}
