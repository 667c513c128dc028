package durable

import "sync"

// loader loads idle runs (recovering at Open, or evicted and now woken) with
// at most Config.RecoveryWorkers goroutines. A queued run costs a list
// entry, not a goroutine, so a hundred thousand timers falling due at once
// do not start a hundred thousand loads.
type loader struct {
	mu      sync.Mutex
	queue   []*liveRun
	running int
}

// enqueueLoad queues lr to be loaded unless it is loaded, loading or queued.
func (e *Engine) enqueueLoad(lr *liveRun) {
	lr.mu.Lock()
	if lr.queued || lr.state != stateIdle || lr.stopped {
		lr.mu.Unlock()
		return
	}
	lr.queued = true
	lr.mu.Unlock()

	l := &e.loader
	l.mu.Lock()
	l.queue = append(l.queue, lr)
	start := l.running < e.cfg.RecoveryWorkers
	if start {
		l.running++
	}
	l.mu.Unlock()
	if start && !e.spawn(e.loadWorker) {
		l.mu.Lock()
		l.running--
		l.mu.Unlock()
	}
}

// loadWorker loads queued runs until the queue is empty.
func (e *Engine) loadWorker() {
	l := &e.loader
	for {
		l.mu.Lock()
		if len(l.queue) == 0 || e.ctx.Err() != nil {
			l.running--
			l.mu.Unlock()
			return
		}
		lr := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.mu.Unlock()

		lr.mu.Lock()
		lr.queued = false
		lr.mu.Unlock()
		lr.load()
	}
}
