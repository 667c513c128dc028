package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema. Identifiers (run ids, workflow names, channels) are bytea:
// the journal allows any bytes but NUL in them, which text would refuse
// when they are not UTF-8, and bytea sorts in byte order, the order
// ListRuns promises. Values are the journal package's checksummed
// encodings (journal.EncodeRun and friends), so a damaged row reads as
// journal.ErrCorrupt exactly as in a bbolt file; the plain columns beside
// them are copies for indexes and WHERE clauses. Times are Unix
// nanoseconds (bigint), as the journal encodes them.
//
// migrations[i] takes the schema from version i to version i+1. Open runs
// the missing ones in order, each in its own transaction, while it holds
// an advisory lock on the schema's name, so processes that start together
// migrate once. A schema newer than this code is refused (ErrVersion).
var migrations = []string{
	// 1: runs, records, inboxes, ended epochs.
	`CREATE TABLE @.runs (
		id         bytea PRIMARY KEY,
		workflow   bytea NOT NULL,
		status     smallint NOT NULL,
		parent     bytea NOT NULL,
		epoch      bigint NOT NULL,
		wake_at    bigint,
		updated_at bigint NOT NULL,
		msg_seq    bigint NOT NULL,
		value      bytea NOT NULL
	);
	CREATE INDEX runs_status ON @.runs (status, id);
	CREATE INDEX runs_workflow ON @.runs (workflow, id);
	CREATE INDEX runs_parent ON @.runs (parent, id) WHERE parent <> '';
	CREATE INDEX runs_wake ON @.runs (wake_at, id) WHERE wake_at IS NOT NULL;
	CREATE INDEX runs_finished ON @.runs (updated_at, id) WHERE status >= 3;
	CREATE TABLE @.records (
		run_id bytea NOT NULL,
		epoch  bigint NOT NULL,
		pos    bigint NOT NULL,
		seq    bigint NOT NULL,
		value  bytea NOT NULL,
		PRIMARY KEY (run_id, epoch, pos, seq)
	);
	CREATE TABLE @.messages (
		run_id  bytea NOT NULL,
		channel bytea NOT NULL,
		seq     bigint NOT NULL,
		value   bytea NOT NULL,
		PRIMARY KEY (run_id, channel, seq)
	);
	CREATE TABLE @.ended_epochs (
		run_id   bytea NOT NULL,
		epoch    bigint NOT NULL,
		ended_at bigint NOT NULL,
		PRIMARY KEY (run_id, epoch)
	);
	CREATE INDEX ended_epochs_at ON @.ended_epochs (ended_at, run_id);`,

	// 2: coordination: an owner, a fencing token and an idle mark per run
	// (the run's encoded value does not hold owner and token: claims
	// change these columns alone), the id of the Claim call that took the
	// run (to find a claim whose reply was lost), one lease row per engine.
	`ALTER TABLE @.runs
		ADD COLUMN owner bytea NOT NULL DEFAULT '',
		ADD COLUMN token bigint NOT NULL DEFAULT 0,
		ADD COLUMN idle boolean NOT NULL DEFAULT false,
		ADD COLUMN claim bytea;
	CREATE INDEX runs_claim ON @.runs (workflow, updated_at) WHERE status = 1 AND NOT idle;
	CREATE INDEX runs_idle ON @.runs (workflow, wake_at) WHERE status = 1 AND idle;
	CREATE INDEX runs_owner ON @.runs (owner) WHERE owner <> '';
	CREATE TABLE @.engines (
		id           bytea PRIMARY KEY,
		heartbeat_at timestamptz NOT NULL
	);`,

	// 3: claims look only at runs nobody owns (these indexes) and at the
	// runs of engines whose lease expired (runs_owner), not at every
	// ready run: in a busy fleet most ready runs are owned by live
	// engines, and a claim (every time a run ends somewhere) scanned them
	// all.
	`DROP INDEX @.runs_claim;
	DROP INDEX @.runs_idle;
	CREATE INDEX runs_free ON @.runs (workflow, updated_at) WHERE status = 1 AND owner = '' AND NOT idle;
	CREATE INDEX runs_free_idle ON @.runs (workflow, wake_at) WHERE status = 1 AND owner = '' AND idle;`,

	// 4: queues (queue.go): copies of a run's queue fields for the
	// admission order and counts, a sequence for first-come order, and
	// dedup keys unique among unfinished runs of a queue.
	`ALTER TABLE @.runs
		ADD COLUMN queue bytea NOT NULL DEFAULT '',
		ADD COLUMN priority integer NOT NULL DEFAULT 0,
		ADD COLUMN queue_seq bigint NOT NULL DEFAULT 0,
		ADD COLUMN queued boolean NOT NULL DEFAULT false,
		ADD COLUMN dedup bytea NOT NULL DEFAULT '';
	CREATE SEQUENCE @.queue_seq;
	CREATE INDEX runs_queue_waiting ON @.runs (queue, priority DESC, queue_seq) WHERE queued AND status = 1;
	CREATE INDEX runs_queue_active ON @.runs (queue) WHERE queue <> '' AND NOT queued AND status = 1;
	CREATE UNIQUE INDEX runs_dedup ON @.runs (queue, dedup) WHERE dedup <> '' AND status < 3;`,
}

// schemaVersion is the version this code writes.
var schemaVersion = len(migrations)

// qualify replaces "@." in query with the quoted schema name and a dot.
func qualify(schema, query string) string {
	return strings.ReplaceAll(query, "@.", pgx.Identifier{schema}.Sanitize()+".")
}

// migrate creates or migrates schema to schemaVersion.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// A session-level lock: held across the migrations' transactions.
	const lockKey = "SELECT hashtextextended('durable-go/durable schema ' || $1, 0)"
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(("+lockKey+"))", schema); err != nil {
		return fmt.Errorf("lock the schema: %w", err)
	}
	defer func() {
		// A failed unlock (a lost connection) frees the lock anyway, as
		// the session ends; destroy it so the pool does not reuse it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(("+lockKey+"))", schema); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	q := func(s string) string { return qualify(schema, s) }
	if _, err := conn.Exec(ctx, q(`CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()+`;
		CREATE TABLE IF NOT EXISTS @.meta (key text PRIMARY KEY, value bigint NOT NULL);
		INSERT INTO @.meta VALUES ('version', 0) ON CONFLICT DO NOTHING`)); err != nil {
		return err
	}
	var version int
	if err := conn.QueryRow(ctx, q(`SELECT value FROM @.meta WHERE key = 'version'`)).Scan(&version); err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("schema %q is at version %d, this code knows up to %d: %w", schema, version, schemaVersion, journal.ErrVersion)
	}
	for ; version < schemaVersion; version++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, q(migrations[version])); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, q(`UPDATE @.meta SET value = $1 WHERE key = 'version'`), version+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema %q to version %d: %w", schema, version+1, err)
		}
	}
	return nil
}
