package journal_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/durable-go/durable/journal"
)

// TestOldJournalTakesQueues: a journal written before queues existed
// (testdata/v1.journal) opens, answers the queue reads read-only (no queue
// buckets yet), then takes queued runs and dedup keys; the new buckets
// pass Verify and survive a reopen.
func TestOldJournalTakesQueues(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("testdata", "v1.journal"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.journal")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ro, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only OpenBolt of a journal from before queues: %v", err)
	}
	if st, err := ro.QueueStats(ctx, "q"); err != nil || st != (journal.QueueStats{}) {
		t.Errorf("QueueStats on a journal without queues = %+v, %v", st, err)
	}
	if names, err := ro.QueueNames(ctx); err != nil || len(names) != 0 {
		t.Errorf("QueueNames = %q, %v, want none", names, err)
	}
	if w, err := ro.Waiting(ctx, "q", 0); err != nil || len(w) != 0 {
		t.Errorf("Waiting = %d runs, %v", len(w), err)
	}
	ro.Close()

	s, err := journal.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []journal.Run{
		{ID: "a", Workflow: "wf", Status: journal.StatusRunning, Queue: "mail", Queued: true, DedupKey: "k"},
		{ID: "b", Workflow: "wf", Status: journal.StatusRunning, Queue: "mail", Queued: true, Priority: 3},
		{ID: "c", Workflow: "wf", Status: journal.StatusRunning, Queue: "jobs", Queued: true},
	} {
		if _, _, err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Admit(ctx, journal.AdmitRequest{Queue: "mail", Workflows: []string{"wf"}, Limit: 1}); err != nil || len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("Admit = %+v, %v, want b", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = journal.OpenBolt(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("Verify after queues were used: %v, %+v", err, rep)
	}
	if names, err := s.QueueNames(ctx); err != nil || !slices.Equal(names, []string{"jobs", "mail"}) {
		t.Errorf("QueueNames = %q, %v, want [jobs mail]", names, err)
	}
	if st, err := s.QueueStats(ctx, "mail"); err != nil || st != (journal.QueueStats{Active: 1, Waiting: 1}) {
		t.Errorf("QueueStats(mail) after a reopen = %+v, %v, want 1 active, 1 waiting", st, err)
	}
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "d", Workflow: "wf", Status: journal.StatusRunning, Queue: "mail", Queued: true, DedupKey: "k"}); !errors.Is(err, journal.ErrDuplicate) {
		t.Errorf("CreateRun with a key held before the reopen = %v, want ErrDuplicate", err)
	}
	if l, err := s.Load(ctx, "old-1"); err != nil || l.Run.Queue != "" || len(l.Records) != 1 {
		t.Errorf("the old run after queues were used: %+v, %v", l.Run, err)
	}
}
