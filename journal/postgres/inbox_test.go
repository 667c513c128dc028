package postgres_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/durable-go/durable/journal"
)

// TestInboxCounts: the store counts a run's waiting messages on every
// channel (journal.InboxCounter), so Engine.Get reports a whole inbox on
// PostgreSQL as on bolt; the engine suite's MessagesBeforeReceive found
// Inbox = 0 before the store had it.
func TestInboxCounts(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	ctx := t.Context()
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	var ic journal.InboxCounter = s
	if got, err := ic.InboxCounts(ctx, "r"); err != nil || len(got) != 0 {
		t.Fatalf("InboxCounts of an empty inbox = %v, %v; want none", got, err)
	}
	b := &journal.Batch{}
	for _, ch := range []string{"a", "b", "a", "a"} {
		b.Send = append(b.Send, journal.Message{RunID: "r", Channel: ch, Data: []byte("x")})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a": 3, "b": 1}
	if got, err := ic.InboxCounts(ctx, "r"); err != nil || !maps.Equal(got, want) {
		t.Fatalf("InboxCounts = %v, %v; want %v", got, err, want)
	}
	if _, err := ic.InboxCounts(ctx, "nobody"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("InboxCounts of no run = %v, want ErrNotFound", err)
	}
}
