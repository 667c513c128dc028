package postgres

import (
	"context"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5"
)

// Purge implements [journal.Store.Purge], in one transaction of its own
// (not through group commit: it locks nothing that step commits wait for
// but the finished runs it removes).
func (s *Store) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.inflight.Done()
	if limit <= 0 {
		limit = 100
	}
	n := 0
	// Deleting is idempotent: a transaction that may or may not have
	// committed when the server went away is simply run again.
	err := s.repeat(ctx, "purge", func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			n = 0
			rows, err := tx.Query(ctx, s.q.expired, journal.UnixNano(before), limit)
			if err != nil {
				return err
			}
			var runs [][]byte
			var eid [][]byte
			var eep []int64
			var at, ep int64
			var id []byte
			_, err = pgx.ForEachRow(rows, []any{&at, &id, &ep}, func() error {
				if ep < 0 {
					runs = append(runs, id)
				} else {
					eid, eep = append(eid, id), append(eep, ep)
				}
				return nil
			})
			if err != nil {
				return err
			}
			b := &pgx.Batch{}
			if len(runs) > 0 {
				for _, q := range s.q.purgeRuns {
					b.Queue(q, runs)
				}
			}
			if len(eid) > 0 {
				b.Queue(s.q.purgeEpochs, eid, eep)
			}
			n = len(runs) + len(eid)
			if b.Len() == 0 {
				return nil
			}
			return tx.SendBatch(ctx, b).Close()
		})
	})
	return n, wrap("purge", err)
}
