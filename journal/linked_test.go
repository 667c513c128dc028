//go:build unix

package journal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
)

// A journal whose file (or directory) is deleted under a running store
// must not go on accepting commits that vanish at Close: the commit after
// the deletion fails with ErrDeleted.
func TestCommitAfterTheFileWasDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := journal.OpenBolt(filepath.Join(dir, "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "r", Workflow: "w", Status: journal.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	send := &journal.Batch{Now: time.Now(), Send: []journal.Message{{RunID: "r", Channel: "c", Data: []byte{0xc0}}}}
	if err := s.Commit(ctx, send); err != nil {
		t.Fatalf("Commit before the deletion: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	send = &journal.Batch{Now: time.Now(), Send: []journal.Message{{RunID: "r", Channel: "c", Data: []byte{0xc0}}}}
	if err := s.Commit(ctx, send); !errors.Is(err, journal.ErrDeleted) {
		t.Fatalf("Commit after the journal's directory was deleted = %v; want ErrDeleted", err)
	}
}
