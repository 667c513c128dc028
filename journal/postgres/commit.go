package postgres

import (
	"context"
	"crypto/rand"
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
// A transaction that failed for want of the server is tried again (after
// finding out whether it landed, when it may have); one that failed
// otherwise is split so that only the culprit fails.
func (s *Store) commitGroup(reqs []*request, isolate bool) {
	var token [16]byte
	rand.Read(token[:])
	var bo backoff
	maybeLanded := false
	for {
		ctx, cancel := context.WithTimeout(s.life, commitTimeout)
		var err error
		landed := false
		if maybeLanded {
			landed, err = s.landed(ctx, token[:])
		}
		if err == nil && !landed {
			err = s.commitTx(ctx, reqs, token[:])
		}
		cancel()
		if err == nil {
			return
		}
		if !transient(err) || s.life.Err() != nil {
			if s.life.Err() != nil {
				err = journal.ErrClosed
			}
			if isolate && len(reqs) > 1 && !maybeLanded && s.life.Err() == nil {
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
		if !pgconn.SafeToRetry(err) {
			maybeLanded = true // from now on, until it is known
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

// landed reports whether the group transaction with token committed.
func (s *Store) landed(ctx context.Context, token []byte) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, s.q.landed, token).Scan(&ok)
	return ok, err
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

// commitTx runs reqs in one transaction: it locks and reads what they
// touch, checks fences, applies the batch rules to that snapshot in Go,
// and writes the result with a few multi-row statements, with token in
// the commits table. A request the rules or its fence refuse gets its
// error and writes nothing; the others commit. Two round trips: BEGIN
// rides with the reads, COMMIT with the writes.
func (s *Store) commitTx(ctx context.Context, reqs []*request, token []byte) (err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	conn := pc.Conn()
	defer func() {
		if err != nil && conn.PgConn().TxStatus() != 'I' {
			// A failed statement left the transaction open (aborted):
			// end it, or drop the connection.
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Close(context.Background())
			}
		}
	}()

	g := newGroupTx(ctx, &s.q, conn)
	for _, r := range reqs {
		g.want(r)
	}
	if err := g.prefetch(); err != nil {
		return err
	}
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
		if g.err != nil {
			return g.err
		}
	}
	prune := s.commitNo.Add(1)%1000 == 0
	if err := g.flush(token, s.notes.channel, prune); err != nil {
		return err
	}
	s.stats.transactions.Add(1)
	s.stats.commits.Add(int64(len(reqs)))
	return nil
}
