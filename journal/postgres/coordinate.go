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

// The store is a journal.Coordinator: several engines, in one process or
// many, share its runs. Leases are one row per engine in the engines
// table (heartbeat_at, judged by the database's clock); claims choose
// ready runs with FOR UPDATE SKIP LOCKED, so engines claiming at once
// never wait for each other nor share a run; owner and token are columns
// of runs, checked under the row lock that every group commit takes (see
// commitTx), so a fenced commit from an engine that lost its run records
// nothing.

var _ journal.Coordinator = (*Store)(nil)

// coordQueries are the coordination statements.
type coordQueries struct {
	register, heartbeat, claim, claimed, next, release, unregister string
}

func newCoordQueries(schema string) coordQueries {
	q := func(s string) string { return qualify(schema, s) }
	// $lease: the lease timeout in microseconds. An engine is live if it
	// heartbeated within the lease, or if it last heartbeated before the
	// server started and the server started within the lease: while the
	// server was down (restarted, failed over) no engine could heartbeat,
	// and judging their leases by the old heartbeats would hand every run
	// of every engine to whichever reconnected first, executing again the
	// steps under way (TestFleetKill saw 11 after one restart). So after
	// a start every engine registered before it gets one lease to
	// heartbeat again; a dead engine's runs move one lease later than
	// they would have. Engines that heartbeat after the start are judged
	// by their heartbeats alone.
	live := func(table string, lease int) string {
		return fmt.Sprintf(`(%[1]s.heartbeat_at >= now() - $%[2]d * interval '1 microsecond'
			OR (%[1]s.heartbeat_at < pg_postmaster_start_time() AND pg_postmaster_start_time() >= now() - $%[2]d * interval '1 microsecond'))`, table, lease)
	}
	return coordQueries{
		register: q(`INSERT INTO @.engines (id, heartbeat_at) VALUES ($1, now())
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = now() WHERE ` + live("@.engines", 2) + ` IS NOT TRUE
			RETURNING true`),
		heartbeat: q(`WITH prev AS (SELECT ` + live("@.engines", 2) + ` AS live FROM @.engines WHERE id = $1),
			up AS (INSERT INTO @.engines (id, heartbeat_at) VALUES ($1, now()) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now())
			SELECT coalesce((SELECT live FROM prev), false)`),
		// $1 workflows, $2 now (ns), $3 lease, $4 engine, $5 limit, $6
		// claim id. The candidates: ready runs nobody owns (runs_free,
		// runs_free_idle), and ready runs of engines whose lease expired
		// (through runs_owner; an owner must have its engines row, which
		// Unregister deletes in the statement that frees its runs); the
		// outer WHERE checks each again under its lock.
		// The candidates are gathered first (arrays: each part an index
		// scan, whatever the planner thinks of the table's size) so that
		// the lock and the checks see a few rows, not every ready run.
		claim: q(`WITH dead AS (SELECT array(SELECT e.id FROM @.engines e WHERE NOT (` + live("e", 3) + `)) ids),
			cand AS (SELECT array(
				(SELECT f.id FROM @.runs f WHERE f.status = 1 AND f.owner = '' AND NOT f.idle AND f.workflow = ANY($1)
					ORDER BY f.updated_at LIMIT 2 * $5)
				UNION ALL
				(SELECT f.id FROM @.runs f WHERE f.status = 1 AND f.owner = '' AND f.idle AND f.wake_at <= $2 AND f.workflow = ANY($1)
					ORDER BY f.updated_at LIMIT 2 * $5)
				UNION ALL
				(SELECT d.id FROM @.runs d WHERE cardinality((SELECT ids FROM dead)) > 0 AND d.owner = ANY((SELECT ids FROM dead)::bytea[]) AND d.status = 1 AND d.workflow = ANY($1) AND (NOT d.idle OR d.wake_at <= $2)
					ORDER BY d.updated_at LIMIT 2 * $5)) ids),
			c AS (
				SELECT r.id FROM @.runs r
				WHERE cardinality((SELECT ids FROM cand)) > 0 AND r.id = ANY((SELECT ids FROM cand)::bytea[])
					AND r.status = 1 AND r.workflow = ANY($1) AND (NOT r.idle OR r.wake_at <= $2)
					AND (r.owner = '' OR NOT EXISTS (SELECT FROM @.engines e WHERE e.id = r.owner AND ` + live("e", 3) + `))
					AND EXISTS (SELECT FROM @.engines e WHERE e.id = $4 AND ` + live("e", 3) + `)
				ORDER BY r.updated_at LIMIT $5
				FOR NO KEY UPDATE OF r SKIP LOCKED)
			UPDATE @.runs u SET owner = $4, token = u.token + 1, claim = $6 FROM c WHERE u.id = c.id
			RETURNING u.id, u.value, u.owner, u.token, u.idle,
				EXISTS (SELECT FROM @.engines e WHERE e.id = $4 AND ` + live("e", 3) + `)`),
		// $1 engine, $2 claim id.
		claimed: q(`SELECT id, value, owner, token, idle FROM @.runs WHERE owner = $1 AND claim = $2 AND status = 1`),
		// $1 workflows, $2 now (ns), $3 lease, $4 engine.
		next: q(`WITH dead AS (SELECT array(SELECT e.id FROM @.engines e WHERE NOT (` + live("e", 3) + `)) ids)
			SELECT EXISTS (SELECT FROM @.engines e WHERE e.id = $4 AND ` + live("e", 3) + `),
				least(
					(SELECT min(f.wake_at) FROM @.runs f
						WHERE f.status = 1 AND f.owner = '' AND f.idle AND f.workflow = ANY($1) AND f.wake_at > $2),
					(SELECT min(d.wake_at) FROM @.runs d
						WHERE cardinality((SELECT ids FROM dead)) > 0 AND d.owner = ANY((SELECT ids FROM dead)::bytea[])
							AND d.status = 1 AND d.idle AND d.workflow = ANY($1) AND d.wake_at > $2))`),
		// $1 ids, $2 owners, $3 tokens, $4 channel, $5 now (ns).
		release: q(`WITH rel AS (
				UPDATE @.runs r SET owner = '' FROM unnest($1::bytea[], $2::bytea[], $3::bigint[]) f(id, owner, token)
				WHERE r.id = f.id AND r.owner = f.owner AND r.token = f.token
				RETURNING r.id, r.workflow, r.status, r.idle, r.wake_at)
			SELECT count(pg_notify($4, '1.' || encode(id, 'hex') || '.' || encode(workflow, 'hex') || '.'))
			FROM rel WHERE status = 1 AND (NOT idle OR wake_at <= $5)`),
		// $1 engine, $2 channel, $3 now (ns).
		unregister: q(`WITH rel AS (
				UPDATE @.runs SET owner = '' WHERE owner = $1
				RETURNING id, workflow, status, idle, wake_at),
			del AS (DELETE FROM @.engines WHERE id = $1)
			SELECT count(pg_notify($2, '1.' || encode(id, 'hex') || '.' || encode(workflow, 'hex') || '.'))
			FROM rel WHERE status = 1 AND (NOT idle OR wake_at <= $3)`),
	}
}

func (s *Store) leaseMicros() int64 { return s.opts.LeaseTimeout.Microseconds() }

// Register implements [journal.Coordinator.Register]. The first Register
// of a Store starts its listener (one connection that LISTENs for the
// schema's notes) and returns once it listens.
func (s *Store) Register(ctx context.Context, id string, notify func(journal.Note)) (journal.Lease, error) {
	if id == "" || len(id) > journal.MaxIDLen || notify == nil {
		return journal.Lease{}, fmt.Errorf("postgres: register engine %.40q: an id of 1 to %d bytes and a notify function: %w", id, journal.MaxIDLen, journal.ErrInvalid)
	}
	if err := s.enter(ctx); err != nil {
		return journal.Lease{}, err
	}
	defer s.inflight.Done()
	if err := s.notes.start(ctx, s); err != nil {
		return journal.Lease{}, wrap("register engine: listen", err)
	}
	var ok bool
	err := s.retry(ctx, "register engine", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.cq2.register, []byte(id), s.leaseMicros()).Scan(&ok)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return journal.Lease{}, fmt.Errorf("postgres: register engine %q: a live engine has that id: %w", id, journal.ErrConflict)
	case err != nil:
		return journal.Lease{}, err
	}
	s.notes.add(id, notify)
	return journal.Lease{Timeout: s.opts.LeaseTimeout, Poll: s.opts.PollInterval}, nil
}

// Heartbeat implements [journal.Coordinator.Heartbeat].
func (s *Store) Heartbeat(ctx context.Context, id string) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.inflight.Done()
	var live bool
	if err := s.retry(ctx, "heartbeat", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.cq2.heartbeat, []byte(id), s.leaseMicros()).Scan(&live)
	}); err != nil {
		return err
	}
	if !live {
		return fmt.Errorf("postgres: heartbeat of engine %q: %w (renewed now)", id, journal.ErrLeaseExpired)
	}
	return nil
}

// Claim implements [journal.Coordinator.Claim].
func (s *Store) Claim(ctx context.Context, r journal.ClaimRequest) (journal.ClaimResult, error) {
	var res journal.ClaimResult
	if r.Limit <= 0 || len(r.Workflows) == 0 {
		return res, nil
	}
	if err := s.enter(ctx); err != nil {
		return res, err
	}
	defer s.inflight.Done()
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	wfs := make([][]byte, len(r.Workflows))
	for i, w := range r.Workflows {
		wfs[i] = []byte(w)
	}
	n := journal.UnixNano(now)
	live := false
	// The claim id marks the runs this call claims: if its reply is lost,
	// the retry returns those runs instead of claiming more (else they
	// would stay owned by a live engine that does not know it has them).
	var id [16]byte
	rand.Read(id[:])
	attempt := 0
	err := s.retry(ctx, "claim", func(ctx context.Context) error {
		res.Runs, live = nil, false
		attempt++
		b := &pgx.Batch{}
		query, args := s.cq2.claim, []any{wfs, n, s.leaseMicros(), []byte(r.Engine), r.Limit, id[:]}
		if attempt > 1 {
			var lost []journal.Run
			if err := s.scanRuns(ctx, s.pool, &lost, s.cq2.claimed, []byte(r.Engine), id[:]); err != nil {
				return err
			}
			if len(lost) > 0 {
				res.Runs, live = lost, true
				return nil
			}
		}
		b.Queue(query, args...).Query(func(rows pgx.Rows) error {
			var id []byte
			var c runCols
			_, err := pgx.ForEachRow(rows, []any{&id, &c.value, &c.owner, &c.token, &c.idle, &live}, func() error {
				run, err := c.decode(string(id))
				if err != nil {
					return err
				}
				res.Runs = append(res.Runs, run)
				return nil
			})
			return err
		})
		b.Queue(s.cq2.next, wfs, n, s.leaseMicros(), []byte(r.Engine)).QueryRow(func(row pgx.Row) error {
			var next *int64
			if err := row.Scan(&live, &next); err != nil {
				return err
			}
			res.Next = time.Time{}
			if next != nil {
				res.Next = time.Unix(0, *next).UTC()
			}
			return nil
		})
		return s.pool.SendBatch(ctx, b).Close() // one implicit transaction
	})
	for _, r := range res.Runs {
		s.runs.drop(r.ID) // its token changed: the first commit reads it afresh
	}
	if err == nil && attempt > 1 && live && len(res.Runs) > 0 && res.Next.IsZero() {
		res.Next = now // runs of a lost reply: claim again soon for the rest
	}
	if err != nil {
		return journal.ClaimResult{}, err
	}
	if !live {
		return journal.ClaimResult{}, fmt.Errorf("postgres: claim by engine %q: %w", r.Engine, journal.ErrLeaseExpired)
	}
	return res, nil
}

// Release implements [journal.Coordinator.Release].
func (s *Store) Release(ctx context.Context, runs []journal.Fence) error {
	if len(runs) == 0 {
		return nil
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.inflight.Done()
	ids, owners, tokens := make([][]byte, len(runs)), make([][]byte, len(runs)), make([]int64, len(runs))
	for i, f := range runs {
		ids[i], owners[i], tokens[i] = []byte(f.RunID), []byte(f.Owner), int64(f.Token)
		s.runs.drop(f.RunID)
	}
	return s.retry(ctx, "release", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.cq2.release, ids, owners, tokens, s.notes.channel, journal.UnixNano(time.Now()))
		return err
	})
}

// Unregister implements [journal.Coordinator.Unregister].
func (s *Store) Unregister(ctx context.Context, id string) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.inflight.Done()
	s.notes.remove(id)
	return s.retry(ctx, "unregister", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.cq2.unregister, []byte(id), s.notes.channel, journal.UnixNano(time.Now()))
		return err
	})
}

// scanRuns appends the runs query returns (id, value, owner, token, idle)
// to out.
func (s *Store) scanRuns(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, out *[]journal.Run, query string, args ...any) error {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	var id []byte
	var c runCols
	_, err = pgx.ForEachRow(rows, []any{&id, &c.value, &c.owner, &c.token, &c.idle}, func() error {
		r, err := c.decode(string(id))
		if err != nil {
			return err
		}
		*out = append(*out, r)
		return nil
	})
	return err
}
