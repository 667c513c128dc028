package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is a [journal.Store] in a PostgreSQL database. Several processes
// (or several engines in one process) may open the same database and
// schema. A Store is safe for concurrent use.
type Store struct {
	opts Options
	pool *pgxpool.Pool
	// commitPool: the group commits' connections (see Open).
	commitPool *pgxpool.Pool
	q          queries

	mu       sync.RWMutex // guards closed; held (read) to join inflight
	closed   bool
	inflight sync.WaitGroup // calls under way, for Close to wait for

	cq2   coordQueries
	notes noteHub
	// life ends when Close starts: retries stop then.
	life    context.Context
	endLife context.CancelFunc

	cq    commitQueue
	stats struct{ transactions, commits, fast, fallbacks atomic.Int64 }
	runs  runCache
	hook  atomic.Pointer[func(journal.CommitStats)]
}

// Stats are counters of a [Store] since Open.
type Stats struct {
	// Commits counts Commit and CreateRun calls that reached the
	// database in a transaction that committed; Transactions counts
	// those transactions. Commits/Transactions is how well group commit
	// shares them.
	Commits, Transactions int64
	// OneTrip counts transactions committed in one round trip (the run
	// cache answered every read); Fallbacks counts groups where it could
	// not, or guessed wrong, and the ordinary two round trips were used.
	OneTrip, Fallbacks int64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.stats.commits.Load(), Transactions: s.stats.transactions.Load(),
		OneTrip: s.stats.fast.Load(), Fallbacks: s.stats.fallbacks.Load()}
}

var (
	_ journal.Store          = (*Store)(nil)
	_ journal.CommitReporter = (*Store)(nil)
)

// Open connects to the database that connString names (a libpq URL or
// key=value string, as pgx accepts it), creates or migrates the schema
// (safe when several processes start at once: they take turns under an
// advisory lock) and returns a store that implements journal.Store.
// durable.New(store, cfg) on several processes that open the same
// database and schema gives engines that share the work.
//
// Errors: a bad option (naming the field), a connection error,
// journal.ErrVersion when the schema was written by newer code.
func Open(ctx context.Context, connString string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Group commits, one transaction at a time, have connections of
	// their own, which plan without sequential scans: every statement of
	// a group commit has an index to use, but a table that grew fast since
	// its last ANALYZE (a new schema under load: autovacuum analyzes once
	// a minute at most) keeps the plans made when it was small, which then
	// read every run (the claim queries, on the other pool, need them).
	ccfg := cfg.Copy()
	ccfg.MaxConns = 2
	if _, set := ccfg.ConnConfig.RuntimeParams["enable_seqscan"]; !set {
		ccfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	}
	// And they keep the generic plan of each statement: the custom plans
	// (from the actual array lengths) look cheaper to the planner, so it
	// would plan each execution again, which costs more than executing
	// a one-step commit.
	if _, set := ccfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		ccfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	cfg.MaxConns = o.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	commitPool, err := pgxpool.NewWithConfig(ctx, ccfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	// A server that is restarting is waited for, as every call does.
	var bo backoff
	for {
		err := migrate(ctx, pool, o.Schema)
		if err == nil {
			break
		}
		if !transient(err) || !bo.sleep(ctx, nil) {
			pool.Close()
			commitPool.Close()
			return nil, fmt.Errorf("postgres: open schema %q: %w", o.Schema, err)
		}
		o.Logger.Warn("postgres: open: cannot reach the server; retrying", "err", err)
	}
	s := &Store{opts: o, pool: pool, commitPool: commitPool, q: newQueries(o.Schema), cq2: newCoordQueries(o.Schema)}
	s.notes.channel = channelName(o.Schema)
	s.life, s.endLife = context.WithCancel(context.Background())
	s.cq.arrived = make(chan struct{}, 1)
	return s, nil
}

// Close waits for the calls under way and closes the connections. Methods
// called after Close return journal.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.endLife()
	s.inflight.Wait()
	s.notes.close()
	s.pool.Close()
	s.commitPool.Close()
	return nil
}

// enter starts a call: it fails with ctx's error or ErrClosed, else the
// caller must call s.inflight.Done when it is finished.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return journal.ErrClosed
	}
	s.inflight.Add(1)
	return nil
}

// queries holds the statements, with the schema name filled in.
type queries struct {
	getRun, load, records, messages, timers, listRuns string
	lockRuns, hasRecords, hasMessages, countMessages  string
	guard, txid                                       string
	insertRuns, updateRuns                            string
	deleteRuns, purgeRuns                             []string
	insertRecords, deleteMessages, insertMessages     string
	insertEpochs, expired, purgeEpochs                string
	notify                                            string
	qq                                                queueQueries // queue.go
}

func newQueries(schema string) queries {
	q := func(s string) string { return qualify(schema, s) }
	return queries{
		qq:     newQueueQueries(schema),
		getRun: q(`SELECT value, owner, token, idle FROM @.runs WHERE id = $1`),
		// One statement, one snapshot: the run (pos -1) and its records.
		records: q(`SELECT -1, -1, value, owner, token, idle FROM @.runs WHERE id = $1
			UNION ALL
			SELECT r.pos, r.seq, r.value, '', 0, false FROM @.records r JOIN @.runs u ON r.run_id = u.id AND r.epoch = u.epoch WHERE u.id = $1`),
		load: q(`SELECT -1, -1, value, owner, token, idle FROM @.runs WHERE id = $1
			UNION ALL
			SELECT -2, -2, NULL, '', 0, false FROM (SELECT FROM @.messages WHERE run_id = $1 LIMIT 1) m
			UNION ALL
			SELECT r.pos, r.seq, r.value, '', 0, false FROM @.records r JOIN @.runs u ON r.run_id = u.id AND r.epoch = u.epoch WHERE u.id = $1 AND u.status < 3`),
		messages: q(`SELECT -1, NULL FROM @.runs WHERE id = $1
			UNION ALL
			(SELECT seq, value FROM @.messages WHERE run_id = $1 AND channel = $2 ORDER BY seq LIMIT $3)`),
		timers:   q(`SELECT id, wake_at FROM @.runs WHERE wake_at <= $1 ORDER BY wake_at, id LIMIT $2`),
		listRuns: q(`SELECT id, value, owner, token, idle FROM @.runs WHERE id > $1`),

		lockRuns: q(`SELECT id, msg_seq, value, owner, token, idle, xmin::text::bigint FROM @.runs WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`),
		// $1 ids (sorted), $2 xmins, $3 owners, $4 tokens: see runcache.go.
		// The division by zero fails the transaction when a run changed.
		// Rows that changed are not locked, but then the count is short.
		// Its first column is the transaction's id (as txid's).
		guard: q(`SELECT txid_current(), CASE WHEN count(*) = cardinality($1) THEN 0 ELSE 1 / (count(*) - count(*)) END FROM (
				SELECT FROM unnest($1::bytea[], $2::bigint[], $3::bytea[], $4::bigint[]) v(id, x, owner, token)
				JOIN @.runs r ON r.id = v.id
				WHERE r.xmin::text::bigint = v.x AND r.owner = v.owner AND r.token = v.token
				ORDER BY r.id FOR NO KEY UPDATE OF r) l`),
		txid:          `SELECT txid_current()`,
		countMessages: q(`SELECT count(*) FROM @.messages WHERE run_id = $1`),
		notify:        q(`SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) p`),
		hasRecords:    q(`SELECT r.run_id, r.epoch, r.pos, r.seq FROM @.records r JOIN unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[]) k(run_id, epoch, pos, seq) USING (run_id, epoch, pos, seq)`),
		hasMessages:   q(`SELECT m.run_id, m.channel, m.seq FROM @.messages m JOIN unnest($1::bytea[], $2::bytea[], $3::bigint[]) k(run_id, channel, seq) USING (run_id, channel, seq)`),

		insertRuns: q(`INSERT INTO @.runs (id, workflow, status, parent, epoch, wake_at, updated_at, msg_seq, value, owner, token, idle)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::smallint[], $4::bytea[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bytea[], $10::bytea[], $11::bigint[], $12::boolean[])`),
		updateRuns: q(`UPDATE @.runs u SET status = v.status, epoch = v.epoch, wake_at = v.wake_at, updated_at = v.updated_at, msg_seq = v.msg_seq, value = v.value,
				owner = v.owner, token = v.token, idle = v.idle
			FROM unnest($1::bytea[], $2::smallint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[], $9::bigint[], $10::boolean[])
				v(id, status, epoch, wake_at, updated_at, msg_seq, value, owner, token, idle)
			WHERE u.id = v.id AND u.id = ANY($1)`), // ANY: an index scan, whatever the statistics say
		deleteRuns: []string{
			q(`DELETE FROM @.records WHERE run_id = ANY($1)`),
			q(`DELETE FROM @.messages WHERE run_id = ANY($1)`),
			q(`DELETE FROM @.ended_epochs WHERE run_id = ANY($1)`),
			q(`DELETE FROM @.runs WHERE id = ANY($1)`),
		},
		insertRecords: q(`INSERT INTO @.records (run_id, epoch, pos, seq, value)
			SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[])`),
		deleteMessages: q(`DELETE FROM @.messages m USING unnest($1::bytea[], $2::bytea[], $3::bigint[]) k(run_id, channel, seq)
			WHERE m.run_id = k.run_id AND m.channel = k.channel AND m.seq = k.seq`),
		insertMessages: q(`INSERT INTO @.messages (run_id, channel, seq, value)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bytea[])`),
		insertEpochs: q(`INSERT INTO @.ended_epochs (run_id, epoch, ended_at)
			SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[]) ON CONFLICT DO NOTHING`),
		expired: q(`(SELECT updated_at, id, -1::bigint FROM @.runs WHERE status >= 3 AND updated_at < $1 ORDER BY updated_at, id LIMIT $2)
			UNION ALL
			(SELECT ended_at, run_id, epoch FROM @.ended_epochs WHERE ended_at < $1 ORDER BY ended_at, run_id LIMIT $2)
			ORDER BY 1, 2 LIMIT $2`),
		purgeRuns: []string{
			q(`DELETE FROM @.records WHERE run_id = ANY($1)`),
			q(`DELETE FROM @.messages WHERE run_id = ANY($1)`),
			q(`DELETE FROM @.ended_epochs WHERE run_id = ANY($1)`),
			q(`DELETE FROM @.runs WHERE id = ANY($1)`),
		},
		purgeEpochs: q(`WITH e AS (DELETE FROM @.ended_epochs k USING unnest($1::bytea[], $2::bigint[]) d(run_id, epoch)
				WHERE k.run_id = d.run_id AND k.epoch = d.epoch RETURNING k.run_id, k.epoch)
			DELETE FROM @.records r USING e WHERE r.run_id = e.run_id AND r.epoch = e.epoch`),
	}
}

// wrap gives an error of the database the store's prefix, and keeps
// errors the caller branches on (journal's, a context's) as they are.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// CreateRun implements [journal.Store.CreateRun].
func (s *Store) CreateRun(ctx context.Context, r journal.Run) (journal.Run, bool, error) {
	req := &request{create: &r}
	if err := s.submit(ctx, req); err != nil {
		return journal.Run{}, false, err
	}
	return req.run, req.created, nil
}

// Commit implements [journal.Store.Commit]. Commits of many runs share
// one PostgreSQL transaction (see the package documentation).
func (s *Store) Commit(ctx context.Context, b *journal.Batch) error {
	return s.submit(ctx, &request{batch: b})
}

// GetRun implements [journal.Store.GetRun].
func (s *Store) GetRun(ctx context.Context, id string) (journal.Run, error) {
	if err := s.enter(ctx); err != nil {
		return journal.Run{}, err
	}
	defer s.inflight.Done()
	var c runCols
	err := s.repeat(ctx, "get run", func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, s.q.getRun, []byte(id)).Scan(&c.value, &c.owner, &c.token, &c.idle)
	})
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return journal.Run{}, fmt.Errorf("get run %q: %w", id, journal.ErrNotFound)
		}
		return journal.Run{}, wrap("get run", err)
	}
	return c.decode(id)
}

// Records implements [journal.Store.Records].
func (s *Store) Records(ctx context.Context, id string) ([]journal.Record, error) {
	l, err := s.load(ctx, s.q.records, id, "records of")
	return l.Records, err
}

// Load implements [journal.Store.Load].
func (s *Store) Load(ctx context.Context, id string) (journal.Loaded, error) {
	return s.load(ctx, s.q.load, id, "load")
}

// load runs query (records or load) for run id.
func (s *Store) load(ctx context.Context, query, id, op string) (journal.Loaded, error) {
	var l journal.Loaded
	if err := s.enter(ctx); err != nil {
		return l, err
	}
	defer s.inflight.Done()
	var found bool
	var firstErr error
	err := s.repeat(ctx, op, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, query, []byte(id))
		if err != nil {
			return wrap(op+" run", err)
		}
		defer rows.Close()
		found, firstErr, l = false, nil, journal.Loaded{}
		var pos, seq int64
		var c runCols
		for rows.Next() {
			if err := rows.Scan(&pos, &seq, &c.value, &c.owner, &c.token, &c.idle); err != nil {
				return wrap(op+" run", err)
			}
			v := c.value
			switch pos {
			case -1:
				found = true
				r, err := c.decode(id)
				if err != nil {
					return err
				}
				l.Run = r
			case -2:
				l.HasMessages = true
			default:
				rec, err := journal.DecodeRecord(id, uint32(pos), uint32(seq), v)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				l.Records = append(l.Records, rec)
			}
		}
		return wrap(op+" run", rows.Err())
	})
	if err != nil {
		return journal.Loaded{}, err
	}
	if !found {
		return journal.Loaded{}, fmt.Errorf("%s run %q: %w", op, id, journal.ErrNotFound)
	}
	if firstErr != nil {
		return journal.Loaded{}, firstErr
	}
	slices.SortFunc(l.Records, func(a, b journal.Record) int {
		if a.Pos != b.Pos {
			return cmp.Compare(a.Pos, b.Pos)
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	if l.Records == nil && query == s.q.records {
		l.Records = []journal.Record{}
	}
	return l, nil
}

// ListRuns implements [journal.Store.ListRuns].
func (s *Store) ListRuns(ctx context.Context, f journal.Filter) ([]journal.Run, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	query := s.q.listRuns
	args := []any{[]byte(f.After)}
	if f.Status != 0 {
		args = append(args, int16(f.Status))
		query += " AND status = $" + strconv.Itoa(len(args))
	}
	if f.Workflow != "" {
		args = append(args, []byte(f.Workflow))
		query += " AND workflow = $" + strconv.Itoa(len(args))
	}
	if f.Parent != "" {
		args = append(args, []byte(f.Parent))
		query += " AND parent = $" + strconv.Itoa(len(args))
	}
	if !f.ReadyAt.IsZero() {
		args = append(args, journal.UnixNano(f.ReadyAt))
		query += " AND status = 1 AND (NOT idle OR wake_at <= $" + strconv.Itoa(len(args)) + ")"
	}
	query += " ORDER BY id"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += " LIMIT $" + strconv.Itoa(len(args))
	}
	var out []journal.Run
	var bad []string
	err := s.repeat(ctx, "list runs", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return wrap("list runs", err)
		}
		defer rows.Close()
		out, bad = nil, nil
		var id []byte
		var c runCols
		for rows.Next() {
			if err := rows.Scan(&id, &c.value, &c.owner, &c.token, &c.idle); err != nil {
				return wrap("list runs", err)
			}
			r, err := c.decode(string(id))
			if err != nil {
				bad = append(bad, strconv.Quote(string(id)))
				continue
			}
			out = append(out, r)
		}
		return wrap("list runs", rows.Err())
	})
	if err != nil {
		return nil, err
	}
	if bad != nil {
		return out, &journal.CorruptError{What: "run", Reason: "damaged runs left out: " + strings.Join(bad, ", ")}
	}
	return out, nil
}

// Messages implements [journal.Store.Messages].
func (s *Store) Messages(ctx context.Context, id, channel string, limit int) ([]journal.Message, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	var out []journal.Message
	var found bool
	err := s.repeat(ctx, "messages", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.messages, []byte(id), []byte(channel), lim)
		if err != nil {
			return wrap("messages", err)
		}
		defer rows.Close()
		out, found = nil, false
		var seq int64
		var v []byte
		for rows.Next() {
			if err := rows.Scan(&seq, &v); err != nil {
				return wrap("messages", err)
			}
			if seq == -1 {
				found = true
				continue
			}
			m, err := journal.DecodeMessage(id, channel, uint64(seq), v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return wrap("messages", rows.Err())
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("messages of run %q: %w", id, journal.ErrNotFound)
	}
	slices.SortFunc(out, func(a, b journal.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// Timers implements [journal.Store.Timers].
func (s *Store) Timers(ctx context.Context, until time.Time, limit int) ([]journal.Timer, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	var lim any
	if limit > 0 {
		lim = limit
	}
	var out []journal.Timer
	err := s.repeat(ctx, "timers", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, s.q.timers, journal.UnixNano(until), lim)
		if err != nil {
			return wrap("timers", err)
		}
		defer rows.Close()
		out = nil
		var id []byte
		var at int64
		for rows.Next() {
			if err := rows.Scan(&id, &at); err != nil {
				return wrap("timers", err)
			}
			out = append(out, journal.Timer{At: time.Unix(0, at).UTC(), RunID: string(id)})
		}
		return wrap("timers", rows.Err())
	})
	return out, err
}

// runCols are the columns a run is read from: its encoded value, and the
// coordination columns that claims change without rewriting the value.
type runCols struct {
	value, owner []byte
	token        int64
	idle         bool
}

func (c *runCols) decode(id string) (journal.Run, error) {
	r, err := journal.DecodeRun(id, c.value)
	if err != nil {
		return r, err
	}
	r.Owner, r.Token, r.Idle = string(c.owner), uint64(c.token), c.idle
	return r, nil
}
