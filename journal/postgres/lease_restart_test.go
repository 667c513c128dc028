package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestLeasesSurviveServerRestart: while the server is down no engine can
// heartbeat, so when it comes back every lease looks expired. An engine
// registered before the start keeps its runs for one lease after it
// (another engine claims nothing of them), and goes on committing under
// its fence; if it does not heartbeat within that lease its runs move as
// usual. TestFleetKill found the first reconnecting engine taking every
// run of the others after a restart, executing their steps again. It is
// not parallel: it takes its server away from the other tests that
// restart it.
func TestLeasesSurviveServerRestart(t *testing.T) {
	url := pgtest.Private(t) // a server of its own: the test restarts it
	schema := pgtest.Schema(t, url)
	const lease = 2 * time.Second
	s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, LeaseTimeout: lease, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if _, err := s.Register(ctx, id, func(journal.Note) {}); err != nil {
			t.Fatalf("Register(%s) = %v", id, err)
		}
	}
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning, Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	// Engine a last heartbeated an hour ago, as if the server had been
	// down that long; then the server starts.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s.engines SET heartbeat_at = now() - interval '1 hour' WHERE id = 'a'::bytea`,
		pgx.Identifier{schema}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	t0 := time.Now()
	pgtest.Restart(t)
	t.Logf("restart took %v", time.Since(t0))
	t0 = time.Now()
	claimR := func() []journal.Run {
		t.Helper()
		if err := s.Heartbeat(ctx, "b"); err != nil {
			t.Fatalf("Heartbeat(b) = %v", err)
		}
		res, err := s.Claim(ctx, journal.ClaimRequest{Engine: "b", Workflows: []string{"wf"}, Limit: 10})
		if err != nil {
			t.Fatalf("Claim(b) = %v", err)
		}
		return res.Runs
	}
	if got := claimR(); len(got) != 0 {
		t.Fatalf("Claim by b right after the server started took %d runs (%s owned by %s), want none: a could not heartbeat while the server was down",
			len(got), got[0].ID, "a")
	}
	if err := s.Heartbeat(ctx, "a"); err != nil {
		t.Fatalf("Heartbeat(a) after the server started = %v, want nil (its runs were kept)", err)
	}
	fence := journal.Fence{RunID: "r", Owner: "a", Token: 1}
	if err := s.Commit(ctx, &journal.Batch{Fence: fence, Append: []journal.Append{{RunID: "r", Record: journal.Record{Data: []byte("x")}}}}); err != nil {
		t.Fatalf("a's fenced commit after the restart = %v, want nil", err)
	}
	// a now stops heartbeating: its lease runs out as usual, and b
	// claims its run.
	deadline := time.Now().Add(10 * lease)
	for {
		if got := claimR(); len(got) == 1 && got[0].ID == "r" && got[0].Owner == "b" {
			t.Logf("claimed after %v", time.Since(t0))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never claimed run r after a stopped heartbeating")
		}
		time.Sleep(lease / 10)
	}
}
