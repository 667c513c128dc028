package durable

import (
	"sync/atomic"
	"time"

	"github.com/durable-go/durable/journal"
)

// Stats are an engine's figures since it was opened (see [Engine.Stats]).
// Counters are totals: compute rates from two readings.
type Stats struct {
	// Since is when the engine was opened.
	Since time.Time
	// Steps is how many steps recorded their outcome (a result or a final
	// error) in this engine.
	Steps uint64
	// LoadedRuns is how many unfinished runs this engine holds: executing,
	// waiting in memory, or evicted and ready to load.
	LoadedRuns int
	// CachedRuns is how many waiting runs keep their goroutine in memory
	// (see Config.MaxCachedRuns).
	CachedRuns int
	// Evictions is how many times a waiting run was evicted from memory.
	Evictions uint64
	// Store holds the journal's commit figures; zero if the store keeps
	// none (it does not implement journal.StatsReporter).
	Store journal.StoreStats
}

// counters are the engine's atomic counters behind [Stats].
type counters struct {
	steps, evictions atomic.Uint64
}

// Stats returns the engine's figures. It is cheap and safe to call at any
// time.
func (e *Engine) Stats() Stats {
	st := Stats{Since: e.since, Steps: e.counters.steps.Load(), Evictions: e.counters.evictions.Load()}
	e.mu.Lock()
	st.LoadedRuns = len(e.runs)
	e.mu.Unlock()
	e.cacheMu.Lock()
	st.CachedRuns = e.cache.list.Len()
	e.cacheMu.Unlock()
	if r, ok := e.store.(journal.StatsReporter); ok {
		st.Store = r.Stats()
	}
	return st
}
