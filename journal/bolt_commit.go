package journal

import (
	"context"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit, leader style (as in LevelDB): a committing goroutine
// queues its request; if the queue was empty it is the leader and commits
// the queued requests (up to BoltOptions.MaxBatch) in one bbolt
// transaction, fsyncs once, wakes their goroutines, and hands the lead to
// the first request that queued meanwhile. A lone writer so commits in its
// own goroutine, with no hand-off, at once; requests that arrive during an
// fsync ride the next transaction. After a transaction shared by n writers
// the next leader waits a little (a quarter of that commit's duration, at
// most maxLinger) for n requests, since the writers just woken are likely
// to commit again: with 64 concurrent runs that keeps transactions near 64
// commits instead of two alternating halves. A lone writer never waits.
// A request that fails validation fails alone; if the transaction itself
// fails, each request is retried in a transaction of its own so only the
// culprit fails.

type commitReq struct {
	batch  *Batch // a Commit, or
	create *Run   // a CreateRun, or
	purge  *purgeReq
	admit  *admitReq // a Queues.Admit (bolt_queue.go)

	existing *Run // CreateRun result: the run that was there
	created  *Run // CreateRun result: the run created
	err      error
	wake     chan struct{} // a send: finished, or now the leader
	finished bool          // set by the leader before it wakes the request
}

// commitQueue is the queue of requests waiting for the leader.
type commitQueue struct {
	mu       sync.Mutex
	reqs     []*commitReq // the leader's request first
	lastN    int          // requests in the previous transaction
	lastTook time.Duration
	arrived  chan struct{} // a send on each enqueue, for a lingering leader
}

type purgeReq struct {
	before time.Time
	limit  int
	n      int
}

// Purge implements [Store.Purge]. It goes through group commit, in a
// transaction of its own size limit, so it never holds up step commits
// for long.
func (s *Bolt) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	req := &commitReq{purge: &purgeReq{before: before, limit: limit}}
	if err := s.submit(ctx, req); err != nil {
		return 0, err
	}
	return req.purge.n, nil
}

// submit commits req (see the comment at the top of the file). Once the
// request is queued it completes whatever ctx does: it may be leading
// others' commits.
func (s *Bolt) submit(ctx context.Context, req *commitReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if s.opts.ReadOnly {
		s.mu.RUnlock()
		return errorf("journal: %s is open read-only: %w", s.path, ErrInvalid)
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()

	req.wake = make(chan struct{}, 1)
	q := &s.cq
	q.mu.Lock()
	q.reqs = append(q.reqs, req)
	lead := len(q.reqs) == 1
	q.mu.Unlock()
	select {
	case q.arrived <- struct{}{}:
	default:
	}
	if !lead {
		<-req.wake
	}
	if !req.finished {
		s.lead()
	}
	return s.withPath(req.err)
}

// maxLinger bounds how long a leader waits for writers to come back after
// a shared transaction.
const maxLinger = time.Millisecond

// lead commits one group from the front of the queue (the leader's own
// request first), finishes its requests and passes the lead on.
func (s *Bolt) lead() {
	q := &s.cq
	q.mu.Lock()
	n := min(len(q.reqs), s.opts.MaxBatch)
	lastN, lastTook := q.lastN, q.lastTook
	q.mu.Unlock()
	if lastN > 1 && n < lastN && n < s.opts.MaxBatch {
		timer := time.NewTimer(min(lastTook/4, maxLinger))
	linger:
		for n < lastN && n < s.opts.MaxBatch {
			select {
			case <-q.arrived:
			case <-timer.C:
				break linger
			}
			q.mu.Lock()
			n = min(len(q.reqs), s.opts.MaxBatch)
			q.mu.Unlock()
		}
		timer.Stop()
	}
	q.mu.Lock()
	group := append([]*commitReq(nil), q.reqs[:n]...) // its own: the next leader may start before this one has woken its group
	q.mu.Unlock()

	start := time.Now()
	written, err := s.commitGroup(group, true)
	if err == nil && written > 0 {
		if lerr := s.checkLinked(); lerr != nil {
			err = lerr
			for _, r := range group {
				if r.err == nil {
					r.err = lerr
				}
			}
		}
	}
	took := time.Since(start)
	s.stats.add(n, took)
	if fn := s.hook.get(); fn != nil {
		fn(groupStats(group, written, took, err))
	}

	q.mu.Lock()
	q.lastN, q.lastTook = n, took
	rest := copy(q.reqs, q.reqs[n:])
	clear(q.reqs[rest:])
	q.reqs = q.reqs[:rest]
	var next *commitReq
	if rest > 0 {
		next = q.reqs[0]
	}
	q.mu.Unlock()
	for i, r := range group {
		r.finished = true
		if i > 0 {
			r.wake <- struct{}{}
		}
	}
	if next != nil {
		next.wake <- struct{}{} // it leads the next group
	}
}

// groupStats describes the transaction that applied group.
func groupStats(group []*commitReq, written int, took time.Duration, err error) CommitStats {
	cs := CommitStats{Commits: len(group), Bytes: written, Duration: took, Err: err}
	for _, r := range group {
		switch {
		case r.err != nil:
		case r.batch != nil:
			cs.Operations += r.batch.Len()
		case r.purge != nil:
			cs.Operations += r.purge.n
		default:
			cs.Operations++
		}
	}
	return cs
}

// commitGroup applies reqs in one transaction and sets each one's outcome.
// It returns the bytes written and the transaction's error (after
// isolating, the last one's).
func (s *Bolt) commitGroup(reqs []*commitReq, isolate bool) (written int, txErr error) {
	err := s.update(func(tx *bolt.Tx) error {
		t := newBoltTxn(tx)
		defer func() { written = t.written }()
		for _, r := range reqs {
			r.err, r.existing, r.created = nil, nil, nil
			var p *plan
			if r.purge != nil {
				n, err := purgePlan(t, r.purge.before, r.purge.limit)
				if err != nil {
					return err
				}
				r.purge.n = n
				continue
			}
			if r.admit != nil {
				runs, err := admitPlan(t, r.admit.req, r.admit.req.Now, false)
				if err != nil {
					return err
				}
				r.admit.runs = runs
				continue
			}
			if r.create != nil {
				now := time.Now().Round(0)
				r.existing, p, r.err = createPlan(t, *r.create, now)
				if p != nil {
					r.created = p.puts[0].new
				}
			} else {
				now := r.batch.Now
				if now.IsZero() && r.batch.NeedsNow() {
					now = time.Now()
				}
				p, r.err = makePlan(t, r.batch, now.Round(0))
			}
			if r.err != nil || p == nil {
				continue
			}
			if err := p.apply(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return written, nil
	}
	if isolate && len(reqs) > 1 {
		written = 0
		for _, r := range reqs {
			w, e := s.commitGroup([]*commitReq{r}, false)
			written, txErr = written+w, e
		}
		return written, txErr
	}
	for _, r := range reqs {
		r.err = errorf("journal: commit: %w", err)
		r.existing, r.created = nil, nil
	}
	return 0, err
}

// update runs fn in a write transaction; a panic rolls it back and becomes
// ErrCorrupt.
func (s *Bolt) update(fn func(*bolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.Update(fn) })
}
