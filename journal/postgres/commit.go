package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit, leader style, as journal.Bolt does it (journal's
// bolt_commit.go): a committing goroutine queues its request; if the queue
// was empty it is the leader and commits the queued requests (up to
// Options.MaxBatch) in one PostgreSQL transaction, wakes their goroutines,
// and hands the lead to the first request that queued meanwhile. A lone
// writer commits at once in its own goroutine; requests that arrive while
// a transaction is under way ride the next one, so 64 runs stepping at once
// share one transaction and one WAL flush. After a transaction shared by n
// writers the next leader waits a little (a quarter of that commit's
// duration, at most maxLinger) for n requests, since the writers just
// woken are likely to commit again. A request that breaks the batch rules
// fails alone; if the transaction itself fails, each request is retried in
// a transaction of its own so only the culprit fails.

// request is one CreateRun or Commit waiting for the leader.
type request struct {
	batch  *journal.Batch // a Commit, or
	create *journal.Run   // a CreateRun

	run      journal.Run // CreateRun: the stored run
	created  bool        // CreateRun: whether it created it
	err      error
	wake     chan struct{} // a send: finished, or now the leader
	finished bool          // set by the leader before it wakes the request
}

// commitQueue is the queue of requests waiting for the leader.
type commitQueue struct {
	mu       sync.Mutex
	reqs     []*request // the leader's request first
	lastN    int        // requests in the previous transaction
	lastTook time.Duration
	arrived  chan struct{} // a send on each enqueue, for a lingering leader
}

// maxLinger bounds how long a leader waits for writers to come back after
// a shared transaction.
const maxLinger = time.Millisecond

// commitTimeout bounds one group's transaction.
const commitTimeout = time.Minute

// submit commits req. Once the request is queued it completes whatever
// ctx does: it may be leading others' commits.
func (s *Store) submit(ctx context.Context, req *request) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
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
	return req.err
}

// lead commits one group from the front of the queue (the leader's own
// request first), finishes its requests and passes the lead on.
func (s *Store) lead() {
	q := &s.cq
	max := s.opts.MaxBatch
	q.mu.Lock()
	n := min(len(q.reqs), max)
	lastN, lastTook := q.lastN, q.lastTook
	q.mu.Unlock()
	if lastN > 1 && n < lastN && n < max {
		timer := time.NewTimer(min(lastTook/4, maxLinger))
	linger:
		for n < lastN && n < max {
			select {
			case <-q.arrived:
			case <-timer.C:
				break linger
			}
			q.mu.Lock()
			n = min(len(q.reqs), max)
			q.mu.Unlock()
		}
		timer.Stop()
	}
	q.mu.Lock()
	group := append([]*request(nil), q.reqs[:n]...) // its own: the next leader may start before this one has woken its group
	q.mu.Unlock()

	start := time.Now()
	s.commitGroup(group, true)
	took := time.Since(start)

	q.mu.Lock()
	q.lastN, q.lastTook = n, took
	rest := copy(q.reqs, q.reqs[n:])
	clear(q.reqs[rest:])
	q.reqs = q.reqs[:rest]
	var next *request
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

// commitGroup applies reqs in one transaction and sets each one's outcome.
// A transaction that failed for want of the server is tried again, once
// it is known not to have committed (see retry.go); one that failed
// otherwise is split so that only the culprit fails.
func (s *Store) commitGroup(reqs []*request, isolate bool) {
	var bo backoff
	var sent int64 // the transaction id of an attempt whose COMMIT was sent and not answered
	for {
		ctx, cancel := context.WithTimeout(s.life, commitTimeout)
		var err error
		landed := false
		if sent != 0 {
			if landed, err = s.landed(ctx, sent); err == nil && !landed {
				sent = 0 // it did not commit: run the group again
			}
		}
		if err == nil && !landed {
			sent, err = s.commitTx(ctx, reqs)
		}
		cancel()
		if err == nil {
			if landed {
				s.opts.Logger.Info("postgres: commit: the reply was lost but the transaction had committed", "commits", len(reqs))
			}
			return // committed now, or by the attempt whose reply was lost
		}
		if !transient(err) || s.life.Err() != nil {
			if s.life.Err() != nil {
				err = journal.ErrClosed
			}
			if isolate && len(reqs) > 1 && sent == 0 && s.life.Err() == nil {
				for _, r := range reqs {
					s.commitGroup([]*request{r}, false)
				}
				return
			}
			for _, r := range reqs {
				r.err = commitErr(err)
			}
			return
		}
		s.opts.Logger.Warn("postgres: commit: cannot reach the server; retrying", "commits", len(reqs), "err", err)
		if !bo.sleep(context.Background(), s.life.Done()) {
			for _, r := range reqs {
				r.err = commitErr(journal.ErrClosed)
			}
			return
		}
	}
}

// landed reports whether transaction xid committed: true if it did, false
// if it aborted; an error (transient: ask again) while the server has not
// finished it, or when the server no longer knows (then the outcome stays
// unknown and the commit fails).
func (s *Store) landed(ctx context.Context, xid int64) (bool, error) {
	var status *string
	if err := s.pool.QueryRow(ctx, "SELECT txid_status($1)", xid).Scan(&status); err != nil {
		return false, err
	}
	switch {
	case status == nil:
		return false, fmt.Errorf("transaction %d: the server no longer knows whether it committed", xid)
	case *status == "committed":
		return true, nil
	case *status == "aborted":
		return false, nil
	}
	return false, &pgconn.PgError{Code: "40001", Message: fmt.Sprintf("transaction %d is still in progress", xid)} // transient: ask again
}

// commitErr maps an error of a group's transaction to what Commit returns.
func commitErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, journal.ErrClosed):
		return err
	case errors.As(err, &pe) && pe.Code == "23505": // unique_violation: another writer got there first
		return fmt.Errorf("postgres: commit: %s: %w", pe.Message, journal.ErrConflict)
	}
	return fmt.Errorf("postgres: commit: %w", err)
}

// commitTx runs reqs in one transaction: it reads what they touch, checks
// fences, applies the batch rules to that snapshot in Go, and writes the
// result with a few multi-row statements. A request the rules or its
// fence refuse gets its error and writes nothing; the others commit. One
// round trip when the run cache answers every read (fastcommit.go), else
// two: BEGIN rides with the reads (the runs locked), COMMIT with the
// writes. If the commit was sent and no answer came it returns the
// transaction's id with the error, so that the caller can find out
// whether it landed.
func (s *Store) commitTx(ctx context.Context, reqs []*request) (sent int64, err error) {
	start := time.Now()
	pc, err := s.commitPool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer pc.Release()
	conn := pc.Conn()
	defer func() {
		if err != nil && conn.PgConn().TxStatus() != 'I' && !conn.PgConn().IsClosed() {
			// A failed statement left the transaction open (aborted):
			// end it, or drop the connection.
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Close(context.Background())
			}
		}
	}()

	g := newGroupTx(ctx, &s.q, conn, &s.runs)
	for _, r := range reqs {
		g.want(r)
	}
	if g.canSpeculate() {
		g.spec = true
		if s.apply(g, reqs) && !g.specFailed {
			// The first statement returns the transaction's id: the
			// guard, or txid_current when no run is read from the cache.
			first, ok := g.guard()
			if !ok {
				first = stmt{sql: s.q.txid}
			}
			writes := g.writes(s.notes.channel)
			st := append([]stmt{first}, writes...)
			if one, ok := s.q.combine(first, writes); ok {
				st = []stmt{one}
			}
			var xid int64
			err := runPipeline(ctx, conn, &xid, st)
			switch {
			case err == nil:
				s.stats.fast.Add(1)
				g.remember(xid)
				s.committed(g, reqs, start)
				return 0, nil
			case !speculationFailed(err):
				g.forget()
				if !transient(err) || pgconn.SafeToRetry(err) {
					return 0, err
				}
				return xid, err // 0 if the server never sent it: it did not get to the writes
			}
		}
		// The cache was wrong or could not answer: the ordinary way.
		s.stats.fallbacks.Add(1)
		g.forget()
		g = newGroupTx(ctx, &s.q, conn, &s.runs)
		for _, r := range reqs {
			g.want(r)
		}
	}
	if err := g.prefetch(); err != nil {
		g.forget()
		return 0, err
	}
	if !s.apply(g, reqs) {
		g.forget()
		return 0, g.err
	}
	if err := g.flush(s.notes.channel); err != nil {
		g.forget()
		if !transient(err) || pgconn.SafeToRetry(err) {
			return 0, err // a statement failed (so COMMIT did not run), or nothing was sent
		}
		// The connection failed or the server shut down (a FATAL error may
		// follow a COMMIT that completed): whether it landed is unknown.
		return g.xid, err
	}
	g.remember(g.xid)
	s.committed(g, reqs, start)
	return 0, nil
}

// apply applies each request's rules through g, setting its outcome. It
// reports false if a read failed (g.err, or the speculation: g.specFailed)
// or, while speculating, a rule refused a request (the cache may be what
// is wrong: the ordinary way decides).
func (s *Store) apply(g *groupTx, reqs []*request) bool {
	for _, r := range reqs {
		r.err, r.run, r.created = nil, journal.Run{}, false
		now := time.Now()
		if r.create != nil {
			r.run, r.created, r.err = journal.ApplyCreate(g, *r.create, now)
			if r.err == nil && r.created && r.run.Owner == "" {
				g.note(r.run.ID)
			}
		} else if r.err = g.checkFence(r.batch.Fence); r.err == nil {
			if r.err = journal.ApplyBatch(g, r.batch, now); r.err == nil {
				g.notes(r.batch)
			}
		}
		if g.err != nil || g.specFailed || (g.spec && r.err != nil) {
			return false
		}
	}
	return true
}

// committed counts a group that committed and reports it.
func (s *Store) committed(g *groupTx, reqs []*request, start time.Time) {
	s.stats.transactions.Add(1)
	s.stats.commits.Add(int64(len(reqs)))
	if fn := s.hook.Load(); fn != nil {
		ops := 0
		for _, r := range reqs {
			if r.create != nil {
				ops++
			} else {
				ops += r.batch.Len()
			}
		}
		(*fn)(journal.CommitStats{Commits: len(reqs), Operations: ops, Bytes: g.bytes, Duration: time.Since(start)})
	}
}

// ReportCommits implements [journal.CommitReporter]: fn receives the
// statistics of every group transaction that commits.
func (s *Store) ReportCommits(fn func(journal.CommitStats)) (stop func()) {
	p := &fn
	s.hook.Store(p)
	return func() { s.hook.CompareAndSwap(p, nil) }
}
