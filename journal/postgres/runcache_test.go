package postgres_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/jackc/pgx/v5"
)

// TestRunCacheChecked: a store commits from its cache of runs in one round
// trip, and every guess that cache makes is checked in the transaction.
// Another process (a second store, or plain SQL) changes the run under
// it: a changed owner refuses the fenced commit (nothing written), a
// record appended elsewhere at the same position is a conflict (the other
// record stays), and a message sent elsewhere does not take a sequence
// number twice. Each wrong guess costs a fallback to the ordinary path.
func TestRunCacheChecked(t *testing.T) {
	t.Parallel()
	a, url, schema := open(t)
	b, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	if _, err := a.Register(ctx, "ea", func(journal.Note) {}); err != nil {
		t.Fatal(err)
	}
	run, created, err := a.CreateRun(ctx, journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning, Owner: "ea"})
	if err != nil || !created {
		t.Fatalf("CreateRun = %v, %v", created, err)
	}
	fence := journal.Fence{RunID: "r", Owner: "ea", Token: run.Token}
	appendAt := func(s *postgres.Store, pos uint32, data string) error {
		return s.Commit(ctx, &journal.Batch{Fence: fence, Append: []journal.Append{{RunID: "r", Record: journal.Record{Pos: pos, Kind: 1, Data: []byte(data)}}}})
	}
	stats := func() postgres.Stats { return a.Stats() }

	// The run is cached since its creation: one round trip.
	before := stats()
	if err := appendAt(a, 0, "a0"); err != nil {
		t.Fatal(err)
	}
	if got := stats(); got.OneTrip != before.OneTrip+1 || got.Fallbacks != before.Fallbacks {
		t.Fatalf("a commit of a cached run: stats %+v then %+v, want one more OneTrip and no fallback", before, got)
	}

	// Another process claims the run (as a claim does: owner and token).
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	runs := pgx.Identifier{schema, "runs"}.Sanitize()
	if _, err := conn.Exec(ctx, "UPDATE "+runs+" SET owner = 'eb', token = token + 1 WHERE id = 'r'"); err != nil {
		t.Fatal(err)
	}
	before = stats()
	if err := appendAt(a, 1, "a1"); !errors.Is(err, journal.ErrNotOwner) {
		t.Fatalf("append after another engine took the run = %v, want ErrNotOwner", err)
	}
	if got := stats(); got.Fallbacks != before.Fallbacks+1 {
		t.Errorf("stale cache: stats %+v then %+v, want one fallback", before, got)
	}
	recs, err := b.Records(ctx, "r")
	if err != nil || len(recs) != 1 {
		t.Fatalf("records after the refused commit = %v, %v; want only pos 0", recs, err)
	}
	if _, err := conn.Exec(ctx, "UPDATE "+runs+" SET owner = 'ea', token = $1 WHERE id = 'r'", int64(fence.Token)); err != nil {
		t.Fatal(err)
	}
	if err := appendAt(a, 1, "a1"); err != nil { // the fallback read the run again
		t.Fatal(err)
	}

	// The other store appends at position 2 (the run's row is unchanged):
	// the cache cannot know; the insert finds out.
	if err := appendAt(b, 2, "b2"); err != nil {
		t.Fatal(err)
	}
	before = stats()
	if err := appendAt(a, 2, "a2"); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("append at a taken position = %v, want ErrConflict", err)
	}
	if got := stats(); got.Fallbacks != before.Fallbacks+1 {
		t.Errorf("taken position: stats %+v then %+v, want one fallback", before, got)
	}
	recs, err = a.Records(ctx, "r")
	if err != nil || len(recs) != 3 || string(recs[2].Data) != "b2" {
		t.Fatalf("records = %+v, %v; want 3, the last b2's", recs, err)
	}

	// Messages: each store sends in turn; sequence numbers 1, 2, 3.
	send := func(s *postgres.Store, data string) {
		t.Helper()
		if err := s.Commit(ctx, &journal.Batch{Send: []journal.Message{{RunID: "r", Channel: "in", Data: []byte(data)}}}); err != nil {
			t.Fatal(err)
		}
	}
	send(a, "m1")
	send(b, "m2")
	send(a, "m3")
	msgs, err := a.Messages(ctx, "r", "in", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, m := range msgs {
		fmt.Fprintf(&got, "%d:%s ", m.Seq, m.Data)
	}
	if got.String() != "1:m1 2:m2 3:m3 " {
		t.Errorf("messages = %q, want 1:m1 2:m2 3:m3", got.String())
	}
}
