package journal

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable/internal/clip"
)

// StoreStats are a store's commit figures since it was opened: totals, so
// that a reader computes rates and averages over any window from two
// readings.
type StoreStats struct {
	// Transactions is how many write transactions committed (each one
	// fsync for a durable store).
	Transactions uint64
	// Commits is how many Commit, CreateRun and Purge calls those
	// transactions carried: Commits/Transactions is the group commit's
	// batching.
	Commits uint64
	// CommitTime is the time spent in those transactions, fsync included.
	CommitTime time.Duration
}

// StatsReporter is implemented by stores that count their commits
// ([Bolt] does). The engine finds it with a type assertion.
type StatsReporter interface {
	Stats() StoreStats
}

var _ StatsReporter = (*Bolt)(nil)

// commitStats are the counters behind [Bolt.Stats].
type commitStats struct {
	txns, commits, nanos atomic.Uint64
}

func (c *commitStats) add(n int, took time.Duration) {
	c.txns.Add(1)
	c.commits.Add(uint64(n))
	c.nanos.Add(uint64(took))
}

// Stats implements [StatsReporter]. It is safe to call at any time.
func (s *Bolt) Stats() StoreStats {
	return StoreStats{
		Transactions: s.stats.txns.Load(),
		Commits:      s.stats.commits.Load(),
		CommitTime:   time.Duration(s.stats.nanos.Load()),
	}
}

// InboxCounter is implemented by stores that count a run's waiting
// messages on every channel in one read ([Bolt] and [Memory] do). The
// engine finds it with a type assertion; without it, it counts the
// channels it knows the run receives on.
type InboxCounter interface {
	// InboxCounts returns how many messages wait in run id's inbox, by
	// channel (channels with none are absent).
	// Errors: [ErrNotFound], [ErrClosed].
	InboxCounts(ctx context.Context, id string) (map[string]int, error)
}

var (
	_ InboxCounter = (*Bolt)(nil)
	_ InboxCounter = (*Memory)(nil)
)

// InboxCounts implements [InboxCounter].
func (s *Bolt) InboxCounts(ctx context.Context, id string) (map[string]int, error) {
	out := map[string]int{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRuns).Get(key(id)) == nil {
			return fmt.Errorf("inbox of run %s: %w", clip.Q(id), ErrNotFound)
		}
		b := tx.Bucket(bucketInbox).Bucket(key(id))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) >= 9 {
				out[string(k[:len(k)-9])]++
			}
		}
		return nil
	})
	return out, err
}

// InboxCounts implements [InboxCounter].
func (m *Memory) InboxCounts(ctx context.Context, id string) (map[string]int, error) {
	if err := m.read(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	mr := m.runs[id]
	if mr == nil {
		return nil, fmt.Errorf("inbox of run %s: %w", clip.Q(id), ErrNotFound)
	}
	out := map[string]int{}
	for ch, q := range mr.inbox {
		if len(q) > 0 {
			out[ch] = len(q)
		}
	}
	return out, nil
}
