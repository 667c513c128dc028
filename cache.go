package durable

import "container/list"

// The run cache. A run waiting for a timer, a message, a child or a retry
// keeps its workflow goroutine and replay state only while it is among the
// Config.MaxCachedRuns most recently waiting runs. Beyond that the least
// recently waiting run is evicted: its goroutine exits (recording nothing)
// and its live run stays, a few hundred bytes. When what it waits for arrives
// (its timer falls due, a message or its child's result comes, it is
// canceled) the live run loads it again and replay brings it back to the wait,
// which now completes. A run with steps executing is never evicted.

// cache is the list of waiting executors, least recently waiting first.
type cache struct {
	list list.List // of *executor
}

// markIdle records that x's workflow goroutine is about to block, and
// evicts the runs that waited longest beyond the cache size.
func (e *Engine) markIdle(x *executor) {
	e.cacheMu.Lock()
	if x.idleElem == nil {
		x.idleElem = e.cache.list.PushBack(x)
	}
	var victims []*executor
	for e.cache.list.Len() > e.cfg.MaxCachedRuns {
		v := e.cache.list.Remove(e.cache.list.Front()).(*executor)
		v.idleElem = nil
		victims = append(victims, v)
	}
	e.cacheMu.Unlock()
	for _, v := range victims {
		v.evict()
	}
}

// markBusy removes x from the cache: it stopped waiting.
func (e *Engine) markBusy(x *executor) {
	e.cacheMu.Lock()
	if x.idleElem != nil {
		e.cache.list.Remove(x.idleElem)
		x.idleElem = nil
	}
	e.cacheMu.Unlock()
}

// evict stops x if it has no step executing. When it has exited, the live run
// loads the run again at once if a wake came after the workflow last found
// nothing ready (executor.waitGen): a wake it had not seen yet, or one it
// was acting on when stopped (its commit is then refused), must not be
// lost. (Comparing with the wake count at the time of evict would lose a
// wake that lands between the choice of the victim and this call.)
func (x *executor) evict() {
	x.mu.Lock()
	busy := x.workers > 0 || len(x.ready) > 0
	x.mu.Unlock()
	if busy {
		return // it rejoins the cache when it waits again
	}
	x.e.counters.evictions.Add(1)
	x.stop(abortEvict, nil)
}
