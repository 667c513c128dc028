package durable

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
	"golang.org/x/time/rate"
)

// Queue is a named queue of runs (Config.Queues): runs started on it with
// [OnQueue] wait, in priority order, until the queue has room for them,
// then run as any other run. A waiting run holds no goroutine and nothing
// in memory: it is a row in the journal's queue index, admitted by the
// engine's admission loop when a slot frees. The zero value is a queue
// without limits (runs are admitted at once, in order). A Queue is a
// value; the engine copies it.
//
// A run holds its slot from its admission until it finishes, sleeping and
// waiting included; a parked run frees it (and takes it again, beyond the
// limit if need be, when it is resumed).
type Queue struct {
	// Concurrency is the most runs of the queue that this engine runs at
	// once. With a store that engines do not share (bbolt) it is the
	// queue's limit. 0: no limit.
	Concurrency int
	// GlobalConcurrency is the most runs of the queue running at once
	// over every engine that shares the store (a journal.Coordinator such
	// as the Postgres store): the store counts them in the transaction
	// that admits, so engines never admit more together. A slot freed in
	// another engine is taken at this engine's next claim round (the
	// store's notes, or its poll: every second on Postgres by default).
	// 0: no limit.
	GlobalConcurrency int
	// Rate is how many runs per second this engine admits from the queue
	// at most (a token bucket of Burst); it paces starts, not the runs'
	// steps (see [WithLimit] for those). The rate is per engine: n
	// engines admit up to n × Rate. 0: no limit.
	Rate rate.Limit
	// Burst is the token bucket's size with a Rate. Defaults to 1.
	Burst int
}

// OnQueue starts the run on queue name (a key of Config.Queues): it is
// created at once (its id is taken; [Engine.Get] shows it with
// RunInfo.Queue and its RunInfo.QueuePosition) and its workflow function
// is called once the queue admits it. Runs of one queue are admitted by
// priority ([WithPriority], higher first), then in the order they were
// created. A canceled waiting run ends canceled without running. Only
// [Start] takes it (not children or [SendWithStart]), and not with
// [StartAt] or [StartAfter].
func OnQueue(name string) StartOption {
	return func(c *startConfig) { c.queue = name }
}

// WithPriority sets the priority of a run started [OnQueue]: higher is
// admitted first. Defaults to 0; negative values are allowed.
func WithPriority(p int) StartOption {
	return func(c *startConfig) { c.priority, c.prioritySet = p, true }
}

// WithDedupKey makes [Start] refuse to create the run while an unfinished
// run of the same queue (or of no queue, without [OnQueue]) holds key: it
// returns a [*DuplicateError] naming that run, and stores nothing. The key
// is free again once that run finished (completed, failed or canceled; a
// parked run still holds it). The check is made by the journal in the
// commit that creates the run, so concurrent starts with one key, in one
// engine or many, create one run. Only [Start] takes it.
func WithDedupKey(key string) StartOption {
	return func(c *startConfig) { c.dedupKey = key }
}

// ErrDuplicate: a start was refused because an unfinished run holds its
// dedup key ([WithDedupKey]). It is journal.ErrDuplicate; it also matches
// journal.ErrConflict. See [DuplicateError].
var ErrDuplicate = journal.ErrDuplicate

// DuplicateError is the error of a [Start] refused by [WithDedupKey]: the
// run RunID holds Key in Queue. It matches [ErrDuplicate]. Nothing was
// stored: to wait for the run that holds the key, [Attach] to RunID.
type DuplicateError struct {
	RunID string // the unfinished run that holds the key
	Queue string // "" for a key of runs on no queue
	Key   string
}

func (e *DuplicateError) Error() string {
	q := ""
	if e.Queue != "" {
		q = " of queue " + clip.Q(e.Queue)
	}
	return fmt.Sprintf("durable: dedup key %s%s is held by unfinished run %s", clip.Q(e.Key), q, clip.Q(e.RunID))
}

// Is reports whether target is [ErrDuplicate].
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// queueSet is the engine's queues: their settings and rate limiters, the
// runs of each it holds, and the admission loop's wake-up.
type queueSet struct {
	store  journal.Queues // nil: the store has no queues
	list   []*queueState  // Config.Queues, by name
	byName map[string]*queueState
	kick   chan struct{}

	mu       sync.Mutex
	held     map[string]*queueState // runs of a queue admitted or loaded here, by id
	admitted chan struct{}          // closed and replaced when runs are admitted here
}

type queueState struct {
	name  string
	cfg   Queue
	lim   *rate.Limiter // nil: no rate
	local int           // runs of the queue held here (queueSet.mu)
}

// maxAdmit bounds the runs one Admit call takes.
const maxAdmit = 64

// newQueues checks Config.Queues and makes the engine's queue set.
func newQueues(cfg map[string]Queue, store journal.Store) (*queueSet, error) {
	qs := &queueSet{byName: map[string]*queueState{}, kick: make(chan struct{}, 1), held: map[string]*queueState{}, admitted: make(chan struct{})}
	qs.store, _ = store.(journal.Queues)
	if len(cfg) > 0 && qs.store == nil {
		return nil, errorf("durable: Config.Queues: the store (%T) does not implement journal.Queues", store)
	}
	for name, q := range cfg {
		if err := journal.CheckQueueName(name); err != nil {
			return nil, errorf("durable: Config.Queues: %w", err)
		}
		if q.Concurrency < 0 || q.GlobalConcurrency < 0 || q.Burst < 0 || q.Rate < 0 || math.IsNaN(float64(q.Rate)) {
			return nil, errorf("durable: Config.Queues[%s]: Concurrency, GlobalConcurrency, Rate and Burst must not be negative", clip.Q(name))
		}
		s := &queueState{name: name, cfg: q}
		if q.Rate > 0 && q.Rate != rate.Inf {
			s.lim = rate.NewLimiter(q.Rate, max(q.Burst, 1))
		}
		qs.list = append(qs.list, s)
		qs.byName[name] = s
	}
	slices.SortFunc(qs.list, func(a, b *queueState) int { return strings.Compare(a.name, b.name) })
	return qs, nil
}

// kickQueues asks the admission loop to admit now.
func (e *Engine) kickQueues() {
	if len(e.queues.list) == 0 {
		return
	}
	select {
	case e.queues.kick <- struct{}{}:
	default:
	}
}

// admittedCh returns a channel closed when this engine next admits runs.
func (e *Engine) admittedCh() <-chan struct{} {
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	return e.queues.admitted
}

// queueLoop admits queued runs whenever a slot may have freed (a run of a
// queue finished here, a run was queued here, a claim round: a note or the
// store's poll) and at a queue's next rate token.
func (e *Engine) queueLoop() {
	for {
		next := e.admitAll()
		var at <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			at, stop = e.clock.TimerAt(next)
		}
		select {
		case <-e.queues.kick:
		case <-at:
		case <-e.ctx.Done():
		}
		stop()
		if e.ctx.Err() != nil {
			return
		}
	}
}

// admitAll admits what each queue has room for. It returns when to try
// again at the latest (zero: when kicked).
func (e *Engine) admitAll() time.Time {
	if e.coord != nil && e.co.paused.Load() {
		return time.Time{}
	}
	names, _ := e.registered()
	if len(names) == 0 {
		return time.Time{}
	}
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, q := range e.queues.list {
		now := e.clock.Now()
		n := maxAdmit
		global := q.cfg.GlobalConcurrency
		if c := q.cfg.Concurrency; c > 0 {
			if e.coord == nil {
				// One engine: the store's count of the queue's running
				// runs is this engine's.
				if global == 0 || c < global {
					global = c
				}
			} else {
				e.queues.mu.Lock()
				n = min(n, c-q.local)
				e.queues.mu.Unlock()
			}
		}
		if q.lim != nil {
			tokens := q.lim.TokensAt(now)
			if tokens < 1 {
				later(now.Add(time.Duration((1 - tokens) / float64(q.lim.Limit()) * float64(time.Second))))
				continue
			}
			n = min(n, int(tokens))
		}
		if n <= 0 {
			continue
		}
		req := journal.AdmitRequest{Queue: q.name, Workflows: names, Limit: n, Global: global, Now: now}
		if e.coord != nil {
			req.Engine = e.engineID
		}
		runs, err := e.queues.store.Admit(e.ctx, req)
		if err != nil {
			if e.ctx.Err() == nil {
				e.log.Warn("durable: admitting runs from a queue failed; retrying", "queue", q.name, "err", err)
				later(now.Add(time.Second))
			}
			continue
		}
		if len(runs) == 0 {
			if e.coord != nil && q.cfg.GlobalConcurrency > 0 && e.co.lease.Poll <= 0 {
				// Room may free in another engine, and no claim poll
				// kicks this loop: look again in a second.
				later(now.Add(time.Second))
			}
			continue
		}
		if q.lim != nil {
			q.lim.AllowN(now, len(runs))
		}
		e.queues.mu.Lock()
		for i := range runs {
			e.queues.held[runs[i].ID] = q
			q.local++
		}
		e.queues.mu.Unlock()
		for i := range runs {
			e.startAdmitted(&runs[i])
		}
		// After the runs have their live runs: a Handle.Result that saw
		// one admitted and not yet live looks again now.
		e.queues.mu.Lock()
		close(e.queues.admitted)
		e.queues.admitted = make(chan struct{})
		e.queues.mu.Unlock()
		if len(runs) == n {
			e.kickQueues() // there may be more
		}
	}
	return next
}

// startAdmitted gives run r, just admitted, its live run and queues its
// load.
func (e *Engine) startAdmitted(r *journal.Run) {
	if e.coord != nil {
		e.adopt(r)
		return
	}
	e.mu.Lock()
	def := e.defs[r.Workflow]
	lr := e.runs[r.ID]
	if lr == nil && def != nil && !e.closed {
		lr = newLiveRun(e, r.ID, def)
		e.runs[r.ID] = lr
	}
	e.mu.Unlock()
	if lr == nil {
		e.releaseQueued(r.ID) // closing: it runs at the next Open
		return
	}
	e.enqueueLoad(lr)
}

// holdsQueued reports whether run id holds a slot of a queue here.
func (e *Engine) holdsQueued(id string) bool {
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	_, ok := e.queues.held[id]
	return ok
}

// holdQueued counts a loaded run of a queue (admitted elsewhere, or before
// a restart) against this engine's Concurrency.
func (e *Engine) holdQueued(row *journal.Run) {
	if !journal.IsActive(row) {
		return
	}
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	if _, ok := e.queues.held[row.ID]; ok {
		return
	}
	if q := e.queues.byName[row.Queue]; q != nil {
		e.queues.held[row.ID] = q
		q.local++
	}
}

// releaseQueued frees the slot run id held here, if it held one, and
// kicks admission.
func (e *Engine) releaseQueued(id string) {
	e.queues.mu.Lock()
	q := e.queues.held[id]
	if q != nil {
		delete(e.queues.held, id)
		q.local--
	}
	e.queues.mu.Unlock()
	if q != nil {
		e.kickQueues()
	}
}

// QueueInfo describes a queue: its settings, and its runs as the journal
// counts them.
type QueueInfo struct {
	Name string
	Queue
	// Running counts the queue's admitted runs that have not finished
	// (in every engine of a shared store); Local those of them this
	// engine holds; Waiting the runs waiting to be admitted.
	Running, Local, Waiting int
	// Next lists the first waiting runs (up to the limit asked for), in
	// the order they will be admitted: Next[i] has position i+1.
	Next []QueuedRun
}

// QueuedRun is a run waiting in a queue.
type QueuedRun struct {
	ID, Workflow string
	Priority     int
	Position     int // 1: the next to be admitted
	CreatedAt    time.Time
}

// Queues describes the engine's queues (Config.Queues), by name, each
// with up to next of its waiting runs (0: none, negative: all).
func (e *Engine) Queues(ctx context.Context, next int) ([]QueueInfo, error) {
	if e == nil {
		return nil, errNilEngine
	}
	out := make([]QueueInfo, 0, len(e.queues.list))
	for _, q := range e.queues.list {
		st, err := e.queues.store.QueueStats(ctx, q.name)
		if err != nil {
			return nil, errorf("durable: queue %s: %w", clip.Q(q.name), err)
		}
		e.queues.mu.Lock()
		qi := QueueInfo{Name: q.name, Queue: q.cfg, Running: st.Active, Local: q.local, Waiting: st.Waiting}
		e.queues.mu.Unlock()
		if next != 0 {
			runs, err := e.queues.store.Waiting(ctx, q.name, max(next, 0))
			if err != nil {
				return nil, errorf("durable: queue %s: %w", clip.Q(q.name), err)
			}
			for i, r := range runs {
				qi.Next = append(qi.Next, QueuedRun{ID: r.ID, Workflow: r.Workflow, Priority: int(r.Priority), Position: i + 1, CreatedAt: r.CreatedAt})
			}
		}
		out = append(out, qi)
	}
	return out, nil
}

// queueRow sets the queue fields of a run Start creates, and checks them.
func (e *Engine) queueRow(sc *startConfig, row *journal.Run) error {
	if sc.queue == "" && sc.dedupKey == "" {
		if sc.prioritySet {
			return &ArgError{Msg: "durable: Start: WithPriority without OnQueue"}
		}
		return nil
	}
	if sc.queue != "" {
		if e.queues.byName[sc.queue] == nil {
			return &ArgError{Msg: fmt.Sprintf("durable: Start: OnQueue(%s): no such queue in Config.Queues", clip.Q(sc.queue))}
		}
		if !sc.startAt.IsZero() || sc.startAfter > 0 {
			return &ArgError{Msg: "durable: Start: OnQueue with StartAt or StartAfter: a queued run starts when the queue admits it"}
		}
	}
	if e.queues.store == nil {
		return &ArgError{Msg: fmt.Sprintf("durable: Start: the store (%T) has no queues or dedup keys", e.store)}
	}
	if sc.priority < math.MinInt32 || sc.priority > math.MaxInt32 {
		return &ArgError{Msg: fmt.Sprintf("durable: Start: priority %d is out of the int32 range", sc.priority)}
	}
	if sc.dedupKey != "" && len(sc.dedupKey) > journal.MaxIDLen {
		return &ArgError{Msg: fmt.Sprintf("durable: Start: dedup key of %d bytes, more than %d", len(sc.dedupKey), journal.MaxIDLen)}
	}
	row.Queue, row.Priority, row.DedupKey = sc.queue, int32(sc.priority), sc.dedupKey
	if sc.queue != "" {
		row.Queued = true
		row.Owner = "" // admitted by whichever engine has room
	}
	return nil
}

// createQueued is Store.CreateRun for a run with queue fields: a refused
// dedup key becomes a *DuplicateError, and a conflict (two transactions
// raced for one key on a shared store) is tried again, when the key's
// holder is visible.
func (e *Engine) createQueued(ctx context.Context, row journal.Run) (journal.Run, bool, error) {
	for attempt := 0; ; attempt++ {
		got, created, err := e.store.CreateRun(ctx, row)
		var de *journal.DuplicateError
		switch {
		case errors.As(err, &de):
			return got, false, &DuplicateError{RunID: de.RunID, Queue: de.Queue, Key: de.Key}
		case err != nil && errors.Is(err, journal.ErrConflict) && row.DedupKey != "" && attempt < 3:
			continue
		}
		return got, created, err
	}
}
