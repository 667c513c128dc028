package durable

import (
	"container/heap"
	"sync"
	"time"
)

// wakeLoop is the engine's one timer goroutine. Runs register the times
// they wait for; when one falls due the loop wakes the run (loading it if
// it was evicted) or, for a deadline, cancels it. Entries are cheap (a
// time and an id) and may repeat; a wake that finds nothing due is a no-op.
type wakeLoop struct {
	e    *Engine
	mu   sync.Mutex
	h    wakeHeap
	kick chan struct{}
	quit chan struct{}
	once sync.Once
	// scanAt is when the next scan of the store's wake index is due
	// (zero: none scheduled); see addScan.
	scanAt time.Time
}

type wakeEntry struct {
	at       time.Time
	id       string
	deadline bool
	scan     bool // read the store's wake index (id is "")
}

type wakeHeap []wakeEntry

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(v any)        { *h = append(*h, v.(wakeEntry)) }
func (h *wakeHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func newWakeLoop(e *Engine) *wakeLoop {
	return &wakeLoop{e: e, kick: make(chan struct{}, 1), quit: make(chan struct{})}
}

// add registers a wake-up of run id at at; deadline entries cancel the run
// with ErrDeadlineExceeded instead.
func (t *wakeLoop) add(id string, at time.Time, deadline bool) {
	t.mu.Lock()
	heap.Push(&t.h, wakeEntry{at: at, id: id, deadline: deadline})
	first := t.h[0].id == id && t.h[0].at.Equal(at)
	t.mu.Unlock()
	if first {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

func (t *wakeLoop) stop() { t.once.Do(func() { close(t.quit) }) }

// addScan schedules a scan of the store's wake index at at (zero: now),
// for runs that are not loaded: idle runs the engine did not load when it
// started. A scan wakes or loads the due runs and schedules the next one
// at the earliest later timer. Without a coordinator only.
func (t *wakeLoop) addScan(at time.Time) {
	if at.IsZero() {
		at = t.e.clock.Now()
	}
	t.mu.Lock()
	if !t.scanAt.IsZero() && !t.scanAt.After(at) {
		t.mu.Unlock()
		return
	}
	t.scanAt = at
	heap.Push(&t.h, wakeEntry{at: at, scan: true})
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// scan wakes or loads the runs whose timers in the store's index are due,
// and schedules the next scan.
func (t *wakeLoop) scan(at time.Time) {
	t.mu.Lock()
	if !t.scanAt.Equal(at) {
		t.mu.Unlock()
		return // superseded by an earlier scan
	}
	t.scanAt = time.Time{}
	t.mu.Unlock()
	e := t.e
	const page = 1000
	now := e.clock.Now()
	due, err := e.store.Timers(e.ctx, now, page)
	if err != nil {
		if e.ctx.Err() == nil {
			e.log.Warn("durable: cannot read the wake index; retrying", "err", err)
			t.addScan(now.Add(time.Second))
		}
		return
	}
	for _, d := range due {
		e.wakeOrLoad(d.RunID)
	}
	if len(due) == page {
		// Many due at once, or entries of runs this engine does not
		// load (their workflow is not registered here): look again soon.
		t.addScan(now.Add(time.Second))
		return
	}
	// The due entries stay until their runs move on: skip them.
	later, err := e.store.Timers(e.ctx, maxJournalTime, len(due)+1)
	if err != nil {
		return
	}
	for _, l := range later {
		if l.At.After(now) {
			t.addScan(l.At)
			return
		}
	}
}

// maxJournalTime is later than any time a journal holds.
var maxJournalTime = time.Unix(1<<62, 0)

func (t *wakeLoop) loop() {
	defer t.e.wg.Done()
	clock := t.e.clock
	for {
		now := clock.Now()
		var due []wakeEntry
		var next time.Time
		t.mu.Lock()
		for len(t.h) > 0 && !t.h[0].at.After(now) {
			due = append(due, heap.Pop(&t.h).(wakeEntry))
		}
		if len(t.h) > 0 {
			next = t.h[0].at
		}
		t.mu.Unlock()
		for _, d := range due {
			if d.scan {
				t.scan(d.at)
				continue
			}
			if d.deadline {
				t.e.deadline(d.id)
			} else {
				t.e.wake(d.id)
			}
		}
		var c <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			c, stop = clock.TimerAt(next) // immune to the clock moving meanwhile
		}
		select {
		case <-c:
		case <-t.kick:
		case <-t.quit:
			stop()
			return
		}
		stop()
	}
}
