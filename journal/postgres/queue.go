package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5"
)

// Queues (journal.Queues). A run's queue fields are in its encoded value
// and copied into columns for the indexes (schema version 4): queue,
// priority, queue_seq (from the sequence queue_seq), queued and dedup.
// Group commits write the columns of runs that have a queue or a dedup
// key with one more statement (queueRows), so the hot path of runs on no
// queue is unchanged.
//
// Admit serializes the admissions of one queue with a transaction-level
// advisory lock on the queue's name, then counts the queue's running
// admitted runs and takes waiting ones in (priority desc, queue_seq)
// order, in the same transaction: engines admitting at once take turns,
// and none sees a count that another's uncommitted admission makes stale.
// A dedup key is unique among unfinished runs of a queue by a partial
// unique index, so two transactions that both found the key free cannot
// both commit; the loser's commit fails with journal.ErrConflict (the
// engine tries again, and then finds the holder).

var _ journal.Queues = (*Store)(nil)

type queueQueries struct {
	lock, active, pick, admit, claimed, stats, waiting, position, holder, nextSeq, setCols string
}

func newQueueQueries(schema string) queueQueries {
	q := func(s string) string { return qualify(schema, s) }
	return queueQueries{
		lock:   `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		active: q(`SELECT count(*) FROM @.runs WHERE queue = $1 AND NOT queued AND status = 1`),
		// $1 queue, $2 workflows, $3 limit. A queued run with a cancel
		// request is not idle: it is claimed, to end canceled.
		pick: q(`SELECT id, value, owner, token, idle FROM @.runs
			WHERE queue = $1 AND queued AND status = 1 AND idle AND workflow = ANY($2)
			ORDER BY priority DESC, queue_seq LIMIT $3
			FOR NO KEY UPDATE SKIP LOCKED`),
		// $1 ids, $2 values, $3 owner, $4 updated (ns), $5 claim id.
		admit: q(`UPDATE @.runs u SET value = v.value, queued = false, idle = false, updated_at = $4,
				owner = $3, token = CASE WHEN $3 = ''::bytea THEN u.token ELSE u.token + 1 END, claim = $5
			FROM unnest($1::bytea[], $2::bytea[]) v(id, value) WHERE u.id = v.id
			RETURNING u.id, u.value, u.owner, u.token, u.idle`),
		claimed: q(`SELECT id, value, owner, token, idle FROM @.runs WHERE claim = $1 AND queue = $2 AND NOT queued AND status = 1`),
		stats:   q(`SELECT count(*) FILTER (WHERE NOT queued), count(*) FILTER (WHERE queued) FROM @.runs WHERE queue = $1 AND status = 1`),
		waiting: q(`SELECT id, value, owner, token, idle FROM @.runs WHERE queue = $1 AND queued AND status = 1
			ORDER BY priority DESC, queue_seq LIMIT $2`),
		// $1 queue, $2 priority, $3 seq, $4 id.
		position: q(`SELECT CASE WHEN EXISTS (SELECT FROM @.runs WHERE id = $4 AND queued AND status = 1) THEN count(*) ELSE 0 END
			FROM @.runs WHERE queue = $1 AND queued AND status = 1 AND (priority > $2 OR (priority = $2 AND queue_seq <= $3))`),
		holder:  q(`SELECT id FROM @.runs WHERE queue = $1 AND dedup = $2 AND dedup <> '' AND status < 3`),
		nextSeq: q(`SELECT nextval('@.queue_seq')`),
		setCols: q(`UPDATE @.runs u SET queue = v.queue, priority = v.priority, queue_seq = v.seq, queued = v.queued, dedup = v.dedup
			FROM unnest($1::bytea[], $2::bytea[], $3::integer[], $4::bigint[], $5::boolean[], $6::bytea[]) v(id, queue, priority, seq, queued, dedup)
			WHERE u.id = v.id`),
	}
}

// Admit implements [journal.Queues.Admit].
func (s *Store) Admit(ctx context.Context, r journal.AdmitRequest) ([]journal.Run, error) {
	if err := journal.CheckQueueName(r.Queue); err != nil {
		return nil, fmt.Errorf("admit: %w", err)
	}
	if r.Limit <= 0 || len(r.Workflows) == 0 {
		return nil, nil
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = journal.NormTime(now)
	wfs := make([][]byte, len(r.Workflows))
	for i, w := range r.Workflows {
		wfs[i] = []byte(w)
	}
	// The claim id marks the runs this call admits: if the reply to its
	// COMMIT is lost, the retry returns them instead of admitting more.
	var id [16]byte
	rand.Read(id[:])
	var out []journal.Run
	attempt := 0
	err := s.retry(ctx, "admit", func(ctx context.Context) error {
		out = nil
		attempt++
		if attempt > 1 {
			if err := s.scanRuns(ctx, s.pool, &out, s.q.qq.claimed, id[:], []byte(r.Queue)); err != nil || len(out) > 0 {
				return err
			}
		}
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, s.q.qq.lock, s.opts.Schema+" queue "+r.Queue); err != nil {
				return err
			}
			n := r.Limit
			if r.Global > 0 {
				var active int
				if err := tx.QueryRow(ctx, s.q.qq.active, []byte(r.Queue)).Scan(&active); err != nil {
					return err
				}
				n = min(n, r.Global-active)
			}
			if n <= 0 {
				return nil
			}
			var pick []journal.Run
			if err := s.scanRuns(ctx, tx, &pick, s.q.qq.pick, []byte(r.Queue), wfs, n); err != nil || len(pick) == 0 {
				return err
			}
			ids, vals := make([][]byte, len(pick)), make([][]byte, len(pick))
			for i := range pick {
				p := &pick[i]
				p.Queued, p.Idle, p.UpdatedAt = false, false, now
				ids[i], vals[i] = []byte(p.ID), journal.EncodeRun(p)
			}
			return s.scanRuns(ctx, tx, &out, s.q.qq.admit, ids, vals, []byte(r.Engine), journal.UnixNano(now), id[:])
		})
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		s.runs.drop(out[i].ID) // admitted and claimed: the first commit reads it afresh
	}
	return out, nil
}

// QueueStats implements [journal.Queues.QueueStats].
func (s *Store) QueueStats(ctx context.Context, queue string) (journal.QueueStats, error) {
	if err := s.enter(ctx); err != nil {
		return journal.QueueStats{}, err
	}
	defer s.inflight.Done()
	var st journal.QueueStats
	err := s.retry(ctx, "queue stats", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q.qq.stats, []byte(queue)).Scan(&st.Active, &st.Waiting)
	})
	return st, err
}

// Waiting implements [journal.Queues.Waiting].
func (s *Store) Waiting(ctx context.Context, queue string, limit int) ([]journal.Run, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var out []journal.Run
	err := s.retry(ctx, "waiting runs", func(ctx context.Context) error {
		out = nil
		return s.scanRuns(ctx, s.pool, &out, s.q.qq.waiting, []byte(queue), lim)
	})
	return out, err
}

// QueuePosition implements [journal.Queues.QueuePosition].
func (s *Store) QueuePosition(ctx context.Context, r *journal.Run) (int, error) {
	if !journal.IsWaiting(r) {
		return 0, nil
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.inflight.Done()
	var pos int
	err := s.retry(ctx, "queue position", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q.qq.position, []byte(r.Queue), r.Priority, int64(r.QueueSeq), []byte(r.ID)).Scan(&pos)
	})
	return pos, err
}

// DedupHolder implements [journal.QueueTx]: the group's own writes first,
// then the database (whose holder the group may have finished). The run
// cache cannot answer it: a group that creates a run with a key goes the
// ordinary way.
func (g *groupTx) DedupHolder(queue, key string) (string, error) {
	if g.spec {
		return "", g.abandon()
	}
	for _, id := range g.order {
		if rs := g.runs[id]; rs != nil && rs.run != nil && rs.run.Queue == queue && rs.run.DedupKey == key && journal.HoldsKey(rs.run) {
			return id, nil
		}
	}
	var id []byte
	err := g.tx.QueryRow(g.ctx, g.q.qq.holder, []byte(queue), []byte(key)).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil
	case err != nil:
		g.err = err
		return "", err
	}
	if rs := g.runs[string(id)]; rs != nil && rs.dirty && !journal.HoldsKey(rs.run) {
		return "", nil // finished (or deleted) in this group
	}
	return string(id), nil
}

// NextQueueSeq implements [journal.QueueTx].
func (g *groupTx) NextQueueSeq() (uint64, error) {
	if g.spec {
		return 0, g.abandon()
	}
	var n int64
	if err := g.tx.QueryRow(g.ctx, g.q.qq.nextSeq).Scan(&n); err != nil {
		g.err = err
		return 0, err
	}
	return uint64(n), nil
}

// queueRows queues the statement that writes the queue columns of the
// runs the group wrote that have a queue or a dedup key; none for the
// others.
func (g *groupTx) queueRows(b *stmts) {
	var ids, queues, dedups [][]byte
	var prios []int32
	var seqs []int64
	var queued []bool
	for _, id := range g.order {
		rs := g.runs[id]
		if rs == nil || rs.run == nil || (rs.run.Queue == "" && rs.run.DedupKey == "") {
			continue
		}
		r := rs.run
		ids, queues, dedups = append(ids, []byte(id)), append(queues, []byte(r.Queue)), append(dedups, []byte(r.DedupKey))
		prios, seqs, queued = append(prios, r.Priority), append(seqs, int64(r.QueueSeq)), append(queued, r.Queued)
	}
	if len(ids) > 0 {
		b.Queue(g.q.qq.setCols, ids, queues, prios, seqs, queued, dedups)
	}
}
