package journal

import (
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The committer is one goroutine that owns every bbolt write transaction.
// It takes the first waiting request, then every request that is already
// queued (up to BoltOptions.MaxBatch), applies them in one transaction,
// fsyncs once, and wakes their callers. When it is idle a request goes out
// at once; requests that arrive during an fsync ride the next transaction.
// After a transaction shared by n writers it waits a little (a quarter of
// that commit's duration, at most maxLinger) for n requests, since the
// writers it just woke are likely to commit again: with 64 concurrent runs
// that keeps transactions near 64 commits instead of two alternating
// halves. After a lone writer's commit it never waits.
// A request that fails validation fails alone; if the transaction itself
// fails, each request is retried in a transaction of its own so only the
// culprit fails.

type commitReq struct {
	batch  *Batch // a Commit, or
	create *Run   // a CreateRun, or
	purge  *purgeReq

	existing *Run // CreateRun result: the run that was there
	created  *Run // CreateRun result: the run created
	err      error
	done     chan struct{}
}

type purgeReq struct {
	before time.Time
	limit  int
	n      int
}

// Purge implements [Store.Purge]. It runs in the committer, in a
// transaction of its own size limit, so it never holds up step commits
// for long.
func (s *Bolt) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	req := &commitReq{purge: &purgeReq{before: before, limit: limit}}
	if err := s.submit(ctx, req); err != nil {
		return 0, err
	}
	return req.purge.n, nil
}

func (s *Bolt) submit(ctx context.Context, req *commitReq) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req.done = make(chan struct{})
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if s.queue == nil {
		s.mu.RUnlock()
		return fmt.Errorf("journal: %s is open read-only: %w", s.path, ErrInvalid)
	}
	select {
	case s.queue <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case <-req.done:
		return s.withPath(req.err)
	case <-ctx.Done():
		return fmt.Errorf("journal: commit outcome unknown: %w", ctx.Err())
	}
}

// maxLinger bounds how long the committer waits for writers to come back
// after a shared transaction (see commitLoop).
const maxLinger = time.Millisecond

func (s *Bolt) commitLoop() {
	defer close(s.done)
	reqs := make([]*commitReq, 0, s.opts.MaxBatch)
	lastN, lastTook := 0, time.Duration(0) // the previous transaction's writers and duration
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for req := range s.queue {
		reqs = append(reqs[:0], req)
		reqs = s.drain(reqs)
		if lastN > 1 && len(reqs) < lastN {
			// The previous transaction served several writers, who are
			// likely about to commit again: give them a quarter of a
			// commit's time to join this one. A lone writer (lastN 1)
			// never waits.
			linger.Reset(min(lastTook/4, maxLinger))
		wait:
			for len(reqs) < lastN && len(reqs) < s.opts.MaxBatch {
				select {
				case r, ok := <-s.queue:
					if !ok {
						break wait
					}
					reqs = append(reqs, r)
				case <-linger.C:
					break wait
				}
			}
			linger.Stop()
		}
		start := time.Now()
		s.commitGroup(reqs, true)
		lastN, lastTook = len(reqs), time.Since(start)
		for i, r := range reqs {
			close(r.done)
			reqs[i] = nil
		}
	}
}

// drain adds the requests already queued to reqs, up to MaxBatch.
func (s *Bolt) drain(reqs []*commitReq) []*commitReq {
	for len(reqs) < s.opts.MaxBatch {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return reqs
			}
			reqs = append(reqs, r)
		default:
			return reqs
		}
	}
	return reqs
}

// commitGroup applies reqs in one transaction and sets each one's outcome.
func (s *Bolt) commitGroup(reqs []*commitReq, isolate bool) {
	err := s.update(func(tx *bolt.Tx) error {
		t := newBoltTxn(tx)
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
			if r.create != nil {
				now := time.Now().Round(0)
				r.existing, p, r.err = createPlan(t, *r.create, now)
				if p != nil {
					r.created = p.puts[0].new
				}
			} else {
				now := r.batch.Now
				if now.IsZero() && r.batch.needsNow() {
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
		return
	}
	if isolate && len(reqs) > 1 {
		for _, r := range reqs {
			s.commitGroup([]*commitReq{r}, false)
		}
		return
	}
	for _, r := range reqs {
		r.err = fmt.Errorf("journal: commit: %w", err)
		r.existing, r.created = nil, nil
	}
}

// update runs fn in a write transaction; a panic rolls it back and becomes
// ErrCorrupt.
func (s *Bolt) update(fn func(*bolt.Tx) error) error {
	return guard(s.path, func() error { return s.db.Update(fn) })
}
