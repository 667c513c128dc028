package journal_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/durable-go/durable/journal"
)

// TestOpensVersion1Journal opens a journal written before runs had Meta
// (testdata/v1.journal: run old-1 with one record and a timer), reads it,
// adds a run with Meta, and reads both after a reopen.
func TestOpensVersion1Journal(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("testdata", "v1.journal"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v1.journal")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(s *journal.Bolt) {
		t.Helper()
		l, err := s.Load(t.Context(), "old-1")
		if err != nil {
			t.Fatalf("Load of a version 1 run: %v", err)
		}
		if l.Run.Workflow != "wf" || string(l.Run.Input) != "in" || l.Run.Meta != nil || l.Run.WakeAt.IsZero() ||
			len(l.Records) != 1 || l.Records[0].Name != "a" || string(l.Records[0].Data) != "ra" {
			t.Fatalf("version 1 run read as %+v with records %+v", l.Run, l.Records)
		}
	}
	s, err := journal.OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt of a version 1 journal: %v", err)
	}
	check(s)
	if _, _, err := s.CreateRun(t.Context(), journal.Run{ID: "new-1", Workflow: "wf", Status: journal.StatusRunning, Meta: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = journal.OpenBolt(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	check(s)
	if r, err := s.GetRun(t.Context(), "new-1"); err != nil || string(r.Meta) != "m" {
		t.Fatalf("GetRun(new-1) = Meta %q, %v; want \"m\"", r.Meta, err)
	}
}
