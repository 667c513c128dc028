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
}

type wakeEntry struct {
	at       time.Time
	id       string
	deadline bool
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
