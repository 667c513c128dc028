package durable_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// runMany runs n runs of wf (ids prefix-00000 ...) to completion from
// 256 goroutines, so that group commits are large.
func runMany(t *testing.T, e *durable.Engine, wf *durable.Workflow[int, int], prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 256)
	for range 256 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := durable.Run(ctx, e, wf, fmt.Sprintf("%s-%05d", prefix, i), i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// fileSize returns the size of the bbolt file at path and its high-water
// mark: the end of the last page bbolt allocated (tx.Size()), which the
// file size rounds up. The file must be closed.
func fileSize(t *testing.T, path string) (size, used int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return fi.Size(), used
}

// After Purge, bbolt reuses the freed pages: a second batch of 2,000 runs ×
// 5 steps after purging the first barely grows the file.
func TestRetentionReusesPages(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 4,000 runs to a bbolt file")
	}
	t.Parallel()
	const runs = 2000
	path := filepath.Join(t.TempDir(), "journal.db")
	cfg := &durable.Config{Workflows: []durable.Definition{five}, Retention: -1, Logger: discardLogger}
	open := func() (*journal.Bolt, *durable.Engine) {
		s, err := journal.OpenBolt(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, err := durable.New(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s, e
	}
	closeAll := func(s *journal.Bolt, e *durable.Engine) {
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	s, e := open()
	runMany(t, e, five, "a", runs)
	closeAll(s, e)
	size1, used1 := fileSize(t, path)

	s, e = open()
	n, err := e.Purge(t.Context(), time.Now().Add(time.Second))
	if err != nil || n != runs {
		t.Fatalf("Purge = %d, %v; want %d", n, err, runs)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || !rep.OK() || rep.Runs != 0 || rep.Epochs != 0 || rep.Records != 0 {
		t.Fatalf("after Purge: %+v, %v; want an empty, sound journal", rep, err)
	}
	runMany(t, e, five, "b", runs)
	closeAll(s, e)
	size2, used2 := fileSize(t, path)

	t.Logf("%d runs × 5 steps: file %d bytes (%d in use); after Purge and as many again: file %d bytes (%d in use): ×%.2f (in use ×%.2f)",
		runs, size1, used1, size2, used2, float64(size2)/float64(size1), float64(used2)/float64(used1))
	// Without page reuse the second pass would need as many new pages as
	// the first: ×2 in use. With reuse it needs a few more for bbolt's
	// freelist and for pages that are fragmented (a page freed by Purge
	// fits only what fits in it), and the group commits differ between
	// passes, hence a tolerance of 20% rather than equality. The file's
	// size is the in-use size rounded up by bbolt's growth (powers of two
	// up to 16 MiB, then steps of 16 MiB), so it is checked against the
	// same bound.
	if float64(used2) > 1.2*float64(used1) {
		t.Errorf("pages in use grew ×%.2f after Purge and the same load again: freed pages were not reused", float64(used2)/float64(used1))
	}
	if float64(size2) > 1.2*float64(size1) {
		t.Errorf("file grew ×%.2f after Purge and the same load again", float64(size2)/float64(size1))
	}
}

// Purge deletes in small transactions of its own: while it deletes 5,000
// finished runs (50 transactions), a running workflow's steps keep
// committing. No timing is asserted, only progress during the purge.
func TestRetentionPurgeDoesNotBlockSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 5,000 runs to a bbolt file")
	}
	t.Parallel()
	const runs = 5000
	one := durable.Define("rn-one", func(ctx durable.Context, in int) (int, error) {
		return durable.Step(ctx, "one", func(context.Context) (int, error) { return in, nil })
	})
	var calls atomic.Int64
	var stop atomic.Bool
	ticker := durable.Define("rn-ticker", func(ctx durable.Context, _ struct{}) (int, error) {
		for n := 0; ; n++ {
			done, err := durable.Step(ctx, "tick", func(context.Context) (bool, error) {
				calls.Add(1)
				return stop.Load(), nil
			})
			if err != nil || done {
				return n, err
			}
		}
	})
	s, err := journal.OpenBolt(filepath.Join(t.TempDir(), "journal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := newEngine(t, s, &durable.Config{Workflows: []durable.Definition{one, ticker}, Retention: -1, Logger: discardLogger})
	runMany(t, e, one, "old", runs)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	h, err := durable.Start(ctx, e, ticker, "ticker", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); calls.Load() < 3; time.Sleep(time.Millisecond) { // the ticker is under way
		if time.Since(start) > time.Minute {
			t.Fatal("the ticker does not tick")
		}
	}
	before := calls.Load()
	n, err := e.Purge(ctx, time.Now().Add(time.Second))
	after := calls.Load()
	if err != nil || n != runs {
		t.Fatalf("Purge = %d, %v; want %d", n, err, runs)
	}
	stop.Store(true)
	ticks, err := h.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Steps run one after the other: step k+1 begins after step k
	// committed, so k calls during the purge mean at least k-1 commits.
	t.Logf("%d ticks committed during a Purge of %d runs; %d in all", after-before-1, runs, ticks)
	if after-before < 2 {
		t.Errorf("%d step calls during the Purge of %d runs: the workflow's commits waited for the whole purge", after-before, runs)
	}
	if st := mustGet(t, e, "ticker").Status; st != durable.StatusCompleted {
		t.Errorf("ticker: %v", st)
	}
}
