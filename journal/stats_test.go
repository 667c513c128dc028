package journal_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/durable-go/durable/journal"
)

// TestReportCommits: the statistics a store reports add up to what was
// committed, failed commits count no operations, and stop stops them.
func TestReportCommits(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) (journal.Store, journal.CommitReporter){
		"memory": func(*testing.T) (journal.Store, journal.CommitReporter) { m := journal.NewMemory(); return m, m },
		"bolt": func(t *testing.T) (journal.Store, journal.CommitReporter) {
			b, err := journal.OpenBolt(filepath.Join(t.TempDir(), "j.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b, b
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, rep := open(t)
			var mu sync.Mutex
			var got journal.CommitStats
			txns := 0
			stop := rep.ReportCommits(func(cs journal.CommitStats) {
				mu.Lock()
				defer mu.Unlock()
				txns++
				got.Commits += cs.Commits
				got.Operations += cs.Operations
				got.Bytes += cs.Bytes
				if cs.Duration < 0 || cs.Err != nil {
					t.Errorf("CommitStats %+v: want a non-negative duration and no error", cs)
				}
			})
			const writers, each = 16, 20
			for g := range writers {
				if _, _, err := s.CreateRun(t.Context(), journal.Run{ID: fmt.Sprint("w", g), Workflow: "wf", Status: journal.StatusRunning}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range each {
						r := journal.Record{Pos: uint32(i), Kind: 1, Name: "step", Data: []byte("result")}
						b := &journal.Batch{Append: []journal.Append{{RunID: fmt.Sprint("w", g), Record: r}}, Update: []journal.Update{{RunID: fmt.Sprint("w", g), SetWake: true}}}
						if err := s.Commit(t.Context(), b); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			// A commit that fails its checks: counted as a call, not as operations.
			if err := s.Commit(t.Context(), &journal.Batch{Append: []journal.Append{{RunID: "nobody", Record: journal.Record{Kind: 1}}}}); !errors.Is(err, journal.ErrNotFound) {
				t.Fatalf("append to a missing run = %v, want ErrNotFound", err)
			}
			mu.Lock()
			wantCommits, wantOps := writers+writers*each, writers+writers*each*2
			if name == "bolt" {
				wantCommits++ // the failed call rode a transaction; Memory reports only what it applied
			}
			if got.Commits != wantCommits || got.Operations != wantOps {
				t.Fatalf("reported %d commits and %d operations in %d transactions, want %d and %d", got.Commits, got.Operations, txns, wantCommits, wantOps)
			}
			if name == "bolt" && got.Bytes < writers*each*len("result") {
				t.Fatalf("reported %d bytes written, want at least the %d bytes of the records' data", got.Bytes, writers*each*len("result"))
			}
			before := txns
			mu.Unlock()
			stop()
			if err := s.Commit(t.Context(), &journal.Batch{Update: []journal.Update{{RunID: "w0", SetWake: true}}}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if txns != before {
				t.Fatalf("a commit after stop was reported")
			}
		})
	}
}
