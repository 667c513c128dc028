package journal_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/journaltest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	journaltest.Run(t, func(t *testing.T) journal.Store {
		s := journal.NewMemory()
		s.SetLease(journal.Lease{Timeout: time.Second}) // for Coordinator/LeaseExpiry
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltConformance(t *testing.T) {
	t.Parallel()
	journaltest.Run(t, func(t *testing.T) journal.Store {
		s, err := journal.OpenBolt(filepath.Join(t.TempDir(), "j.db"), nil)
		if err != nil {
			t.Fatalf("OpenBolt on a new file = %v, want nil", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close = %v, want nil", err)
			}
		})
		return s
	})
}
