package postgres

import (
	"context"
	"fmt"

	"github.com/durable-go/durable/journal"
)

var _ journal.InboxCounter = (*Store)(nil)

// InboxCounts implements [journal.InboxCounter]: how many messages wait in
// run id's inbox, by channel, in one statement (so [durable.Engine.Get]
// reports a run's whole inbox, not only the channels it receives on).
// Errors: [journal.ErrNotFound], [journal.ErrClosed], or an I/O error.
func (s *Store) InboxCounts(ctx context.Context, id string) (map[string]int, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.inflight.Done()
	var out map[string]int
	var found bool
	err := s.repeat(ctx, "inbox counts", func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, qualify(s.opts.Schema, `SELECT NULL::bytea, -1::bigint FROM @.runs WHERE id = $1
			UNION ALL
			SELECT channel, count(*) FROM @.messages WHERE run_id = $1 GROUP BY channel`), []byte(id))
		if err != nil {
			return wrap("inbox counts", err)
		}
		defer rows.Close()
		out, found = map[string]int{}, false
		for rows.Next() {
			var channel []byte
			var n int64
			if err := rows.Scan(&channel, &n); err != nil {
				return wrap("inbox counts", err)
			}
			if n < 0 {
				found = true
				continue
			}
			out[string(channel)] = int(n)
		}
		return wrap("inbox counts", rows.Err())
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("inbox of run %q: %w", id, journal.ErrNotFound)
	}
	return out, nil
}
