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
	// Limits holds, for each Config.Limits key with a MaxConcurrent, its
	// concurrency now; nil if there is none.
	Limits map[string]LimitStats
}

// LimitStats are the concurrency figures of one Config.Limits key.
type LimitStats struct {
	// Concurrency is the bound now: MaxConcurrent, or less while an
	// adaptive limit backs off.
	Concurrency int
	// InFlight is how many attempts hold a slot.
	InFlight int
	// Backoffs is how many times an adaptive bound was halved.
	Backoffs uint64
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
	for key, lim := range e.limits {
		if lim.conc == nil {
			continue
		}
		if st.Limits == nil {
			st.Limits = make(map[string]LimitStats)
		}
		var ls LimitStats
		ls.Concurrency, ls.InFlight, ls.Backoffs = lim.conc.stats()
		st.Limits[key] = ls
	}
	if r, ok := e.store.(journal.StatsReporter); ok {
		st.Store = r.Stats()
	}
	return st
}
