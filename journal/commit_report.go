package journal

import (
	"sync/atomic"
	"time"
)

// CommitStats describes one write transaction of a store: the commits
// (Commit, CreateRun and Purge calls) it applied together, and what it cost.
type CommitStats struct {
	// Commits is how many calls the transaction applied together (group
	// commit); 1 for a store that does not group.
	Commits int
	// Operations counts the operations of those calls ([Batch.Len]; one
	// for a CreateRun, one per item a Purge removed).
	Operations int
	// Bytes is the size of the values written (0 for [Memory], which
	// encodes nothing).
	Bytes int
	// Duration is the transaction's time, fsync included.
	Duration time.Duration
	// Err is the transaction's error, nil if it committed. A call that
	// fails its own checks does not fail the transaction.
	Err error
}

// CommitReporter is an optional interface of a [Store] that reports its
// write transactions, for metrics. [Bolt] and [Memory] implement it; an
// engine discovers it with a type assertion.
type CommitReporter interface {
	// ReportCommits makes fn receive the statistics of every write
	// transaction from now on, until stop is called. fn runs on a
	// committing goroutine after the transaction and before its commits
	// return, so it must be quick and must not call the store. A later
	// call replaces fn; stop only removes the fn it was returned with.
	ReportCommits(fn func(CommitStats)) (stop func())
}

var (
	_ CommitReporter = (*Bolt)(nil)
	_ CommitReporter = (*Memory)(nil)
)

// commitHook holds a store's CommitReporter function.
type commitHook struct {
	fn atomic.Pointer[func(CommitStats)]
}

func (h *commitHook) set(fn func(CommitStats)) (stop func()) {
	p := &fn
	h.fn.Store(p)
	return func() { h.fn.CompareAndSwap(p, nil) }
}

// get returns the function, or nil: one atomic load when none is set.
func (h *commitHook) get() func(CommitStats) {
	if p := h.fn.Load(); p != nil {
		return *p
	}
	return nil
}

// ReportCommits implements [CommitReporter].
func (s *Bolt) ReportCommits(fn func(CommitStats)) (stop func()) { return s.hook.set(fn) }

// ReportCommits implements [CommitReporter].
func (m *Memory) ReportCommits(fn func(CommitStats)) (stop func()) { return m.hook.set(fn) }
