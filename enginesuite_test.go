package durable_test

import (
	"path/filepath"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/enginetest"
	"github.com/durable-go/durable/journal"
)

// TestEngineSuite runs the engine's behaviour suite (internal/enginetest)
// on journal.Memory, on a bbolt file and on a Memory with a run cache of
// one, each test in a testing/synctest bubble. journal/postgres runs the
// same suite on PostgreSQL.
func TestEngineSuite(t *testing.T) {
	t.Parallel()
	memory := func(t *testing.T) enginetest.Journal {
		m := journal.NewMemory()
		t.Cleanup(func() { m.Close() })
		open := func() journal.Store { return m }
		return enginetest.Journal{Open: open, Share: open}
	}
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		enginetest.Run(t, enginetest.Config{Journal: memory, Synctest: true})
	})
	t.Run("memory-cache1", func(t *testing.T) {
		t.Parallel()
		enginetest.Run(t, enginetest.Config{Journal: memory, Synctest: true,
			Engine: func(cfg *durable.Config) { cfg.MaxCachedRuns = 1 }})
	})
	t.Run("bolt", func(t *testing.T) {
		t.Parallel()
		enginetest.Run(t, enginetest.Config{Synctest: true, Journal: func(t *testing.T) enginetest.Journal {
			path := filepath.Join(t.TempDir(), "journal.db")
			var cur *journal.Bolt
			t.Cleanup(func() {
				if cur != nil {
					cur.Close()
				}
			})
			return enginetest.Journal{Open: func() journal.Store {
				if cur != nil {
					if err := cur.Close(); err != nil {
						t.Fatalf("close the bolt journal: %v", err)
					}
				}
				b, err := journal.OpenBolt(path)
				if err != nil {
					t.Fatalf("OpenBolt: %v", err)
				}
				cur = b
				return b
			}}
		}})
	})
}
