package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestServerRestart restarts PostgreSQL while writers commit: every
// commit succeeds in the end (the store retries with backoff while the
// server is away), none is applied twice (a commit whose reply was lost is
// looked up by its token, not repeated: a repeat would fail with
// ErrConflict), and the journal holds exactly what was committed. It is
// not parallel: it takes its server (pgtest.Private) away from the other
// tests that restart it.
func TestServerRestart(t *testing.T) {
	url := pgtest.Private(t) // a server of its own: the test restarts it
	schema := pgtest.Schema(t, url)
	var retries countHandler
	s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, Logger: slog.New(&retries)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	const writers, before, after = 8, 20, 20
	for w := range writers {
		if _, _, err := s.CreateRun(ctx, journal.Run{ID: fmt.Sprintf("w%d", w), Workflow: "wf", Status: journal.StatusRunning}); err != nil {
			t.Fatal(err)
		}
	}
	// Writers commit until the restart is over and then after more each;
	// the restart starts once they made before commits each.
	var done atomic.Int64
	restarted := make(chan struct{})
	var once sync.Once
	counts := make([]uint32, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			left := -1
			for pos := uint32(0); left != 0; pos++ {
				b := &journal.Batch{
					Append: []journal.Append{{RunID: id, Record: journal.Record{Pos: pos, Kind: 1, Data: []byte(fmt.Sprint(pos))}}},
					Send:   []journal.Message{{RunID: id, Channel: "c", Data: []byte(fmt.Sprint(pos))}},
				}
				if err := s.Commit(ctx, b); err != nil {
					t.Errorf("writer %d: Commit(append %d) = %v, want nil", w, pos, err)
					return
				}
				counts[w] = pos + 1
				if done.Add(1) == writers*before {
					once.Do(func() {
						go func() {
							defer close(restarted)
							pgtest.Restart(t)
						}()
					})
				}
				select {
				case <-restarted:
					if left < 0 {
						left = after
					}
					left--
				default:
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if retries.n.Load() == 0 {
		t.Fatalf("no retry was logged: the restart did not interrupt the writers")
	}
	t.Logf("%d retries logged across the restart", retries.n.Load())
	for w := range writers {
		id := fmt.Sprintf("w%d", w)
		recs, err := s.Records(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != int(counts[w]) {
			t.Fatalf("run %s has %d records after the restart, want %d", id, len(recs), counts[w])
		}
		for i, r := range recs {
			if r.Pos != uint32(i) || string(r.Data) != fmt.Sprint(i) {
				t.Fatalf("run %s record %d = %d %q", id, i, r.Pos, r.Data)
			}
		}
		ms, err := s.Messages(ctx, id, "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != int(counts[w]) {
			t.Fatalf("run %s has %d messages, want %d (a commit applied twice would show as more)", id, len(ms), counts[w])
		}
	}
}

// countHandler is a slog.Handler that counts records.
type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestReadsAcrossServerRestart: every read of the store (and Purge) is
// repeated while the server is away, like the commits: right after a restart the pool's
// connections are dead, and a read on one of them must not fail.
func TestReadsAcrossServerRestart(t *testing.T) {
	url := pgtest.Private(t)
	schema := pgtest.Schema(t, url)
	var retries countHandler
	s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, Logger: slog.New(&retries)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	b := &journal.Batch{
		Create: []journal.Run{{ID: "r", Workflow: "wf", Status: journal.StatusRunning}},
		Append: []journal.Append{{RunID: "r", Record: journal.Record{Pos: 0, Kind: 1, Data: []byte("x")}}},
		Send:   []journal.Message{{RunID: "r", Channel: "c", Data: []byte("m")}},
		Update: []journal.Update{{RunID: "r", SetWake: true, Wake: time.Now().Add(time.Hour)}},
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"GetRun", func() error { _, err := s.GetRun(ctx, "r"); return err }},
		{"Records", func() error { _, err := s.Records(ctx, "r"); return err }},
		{"Load", func() error { _, err := s.Load(ctx, "r"); return err }},
		{"ListRuns", func() error { _, err := s.ListRuns(ctx, journal.Filter{}); return err }},
		{"Messages", func() error { _, err := s.Messages(ctx, "r", "c", 0); return err }},
		{"Timers", func() error { _, err := s.Timers(ctx, time.Now().Add(2*time.Hour), 0); return err }},
		{"InboxCounts", func() error { _, err := s.InboxCounts(ctx, "r"); return err }},
		{"Purge", func() error { _, err := s.Purge(ctx, time.Now(), 10); return err }},
	}
	for _, r := range reads {
		// Several reads at once fill the pool with connections that the
		// restart then kills.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { r.read() })
		}
		wg.Wait()
		pgtest.Restart(t)
		if err := r.read(); err != nil {
			t.Errorf("%s right after a server restart: %v", r.name, err)
		}
	}
	t.Logf("%d retries logged across %d restarts", retries.n.Load(), len(reads))
}
