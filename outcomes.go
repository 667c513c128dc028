package durable

import (
	"sync"

	"github.com/durable-go/durable/journal"
)

// Bounds of the engine's memory of finished runs (see outcomes).
const (
	maxRecentOutcomes     = 1024
	maxRecentOutcomeBytes = 16 << 20
)

// outcomes remembers the final state of the runs that last finished in this
// engine, so a Handle's Result returns a finished run's outcome even when
// retention deleted the run right after, and even when the live run the
// handle held was replaced meanwhile (released and claimed again, under a
// coordinator). It keeps the last maxRecentOutcomes runs, and at most
// maxRecentOutcomeBytes of their outputs and errors. Safe for concurrent
// use; the zero value is ready.
type outcomes struct {
	mu    sync.Mutex
	byID  map[string]*journal.Run
	order []string // oldest first
	bytes int
}

// add remembers run r's final state.
func (o *outcomes) add(r *journal.Run) {
	if r == nil || !r.Status.Terminal() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byID == nil {
		o.byID = map[string]*journal.Run{}
	}
	if old, ok := o.byID[r.ID]; ok {
		o.bytes -= len(old.Output) + len(old.Err)
	} else {
		o.order = append(o.order, r.ID)
	}
	o.byID[r.ID] = r
	o.bytes += len(r.Output) + len(r.Err)
	for len(o.order) > 0 && (len(o.order) > maxRecentOutcomes || o.bytes > maxRecentOutcomeBytes) {
		id := o.order[0]
		o.order = o.order[1:]
		if old, ok := o.byID[id]; ok {
			o.bytes -= len(old.Output) + len(old.Err)
			delete(o.byID, id)
		}
	}
}

// get returns the remembered final state of run id, or nil.
func (o *outcomes) get(id string) *journal.Run {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byID[id]
}
