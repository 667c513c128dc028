package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestServerRestart restarts PostgreSQL while writers commit: every
// commit succeeds in the end (the store retries with backoff while the
// server is away), none is applied twice (a commit whose reply was lost is
// looked up by its token, not repeated: a repeat would fail with
// ErrConflict), and the journal holds exactly what was committed. It is
// not parallel: it takes the server away from every other test.
func TestServerRestart(t *testing.T) {
	url := pgtest.URL(t)
	if !pgtest.CanRestart() {
		pgtest.Restart(t) // skips or fails, saying why
	}
	schema := pgtest.Schema(t, url)
	var retries countHandler
	s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, Logger: slog.New(&retries)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	const writers, each = 8, 60
	for w := range writers {
		if _, _, err := s.CreateRun(ctx, journal.Run{ID: fmt.Sprintf("w%d", w), Workflow: "wf", Status: journal.StatusRunning}); err != nil {
			t.Fatal(err)
		}
	}
	var done atomic.Int64
	restarted := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			for pos := range uint32(each) {
				b := &journal.Batch{
					Append: []journal.Append{{RunID: id, Record: journal.Record{Pos: pos, Kind: 1, Data: []byte(fmt.Sprint(pos))}}},
					Send:   []journal.Message{{RunID: id, Channel: "c", Data: []byte{byte(pos)}}},
				}
				if err := s.Commit(ctx, b); err != nil {
					t.Errorf("writer %d: Commit(append %d) = %v, want nil", w, pos, err)
					return
				}
				if done.Add(1) == writers*each/3 {
					go func() {
						defer close(restarted)
						pgtest.Restart(t)
					}()
				}
			}
		})
	}
	wg.Wait()
	<-restarted
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
		if len(recs) != each {
			t.Fatalf("run %s has %d records after the restart, want %d", id, len(recs), each)
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
		if len(ms) != each {
			t.Fatalf("run %s has %d messages, want %d (a commit applied twice would show as more)", id, len(ms), each)
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
