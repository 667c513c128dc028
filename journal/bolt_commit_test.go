package journal_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable/journal"
)

// TestBoltGroupCommit has 64 goroutines each commit 100 single appends.
func TestBoltGroupCommit(t *testing.T) {
	t.Parallel()
	const writers, each = 64, 100
	s, err := openBolt(t, filepath.Join(t.TempDir(), "j.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	b := &journal.Batch{}
	for g := range writers {
		b.Create = append(b.Create, journal.Run{ID: fmt.Sprintf("w%02d", g), Workflow: "wf", Status: journal.StatusRunning})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%02d", g)
			for pos := range uint32(each) {
				err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: id, Record: journal.Record{Pos: pos, Data: fmt.Appendf(nil, "%s/%d", id, pos)}}}})
				if err != nil {
					t.Errorf("Commit(%s %d) = %v, want nil", id, pos, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for g := range writers {
		id := fmt.Sprintf("w%02d", g)
		recs, err := s.Records(ctx, id)
		if err != nil || len(recs) != each {
			t.Fatalf("Records(%s) = %d, %v; want %d records", id, len(recs), err, each)
		}
		for i, r := range recs {
			if r.Pos != uint32(i) || string(r.Data) != fmt.Sprintf("%s/%d", id, i) {
				t.Fatalf("Records(%s)[%d] = %d %q, want %d %q", id, i, r.Pos, r.Data, i, fmt.Sprintf("%s/%d", id, i))
			}
		}
	}
}

// TestBoltGroupCommitConflicts mixes batches that fail validation with
// valid ones: whichever group they share, only the bad ones fail.
func TestBoltGroupCommitConflicts(t *testing.T) {
	t.Parallel()
	const writers, rounds = 64, 20
	s, err := openBolt(t, filepath.Join(t.TempDir(), "j.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	setup := &journal.Batch{Create: []journal.Run{{ID: "shared", Workflow: "wf", Status: journal.StatusRunning}, {ID: "race", Workflow: "wf", Status: journal.StatusRunning}}}
	for pos := range uint32(10) {
		setup.Append = append(setup.Append, journal.Append{RunID: "shared", Record: journal.Record{Pos: pos}})
	}
	for g := range writers {
		setup.Create = append(setup.Create, journal.Run{ID: fmt.Sprintf("w%02d", g), Workflow: "wf", Status: journal.StatusRunning})
	}
	if err := s.Commit(ctx, setup); err != nil {
		t.Fatal(err)
	}

	var raceWins [rounds]atomic.Int32
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%02d", g)
			for i := range uint32(rounds) {
				own := journal.Append{RunID: id, Record: journal.Record{Pos: i}}
				if g%2 == 0 {
					if err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{own}}); err != nil {
						t.Errorf("valid Commit(%s %d) = %v, want nil", id, i, err)
					}
				} else {
					bad := &journal.Batch{
						Create: []journal.Run{{ID: fmt.Sprintf("ghost-%s-%d", id, i), Workflow: "wf", Status: journal.StatusRunning}},
						Append: []journal.Append{own, {RunID: "shared", Record: journal.Record{Pos: i % 10}}},
					}
					if err := s.Commit(ctx, bad); !errors.Is(err, journal.ErrConflict) {
						t.Errorf("conflicting Commit(%s %d) = %v, want ErrConflict", id, i, err)
					}
				}
				err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: "race", Record: journal.Record{Pos: i, Data: []byte(id)}}}})
				switch {
				case err == nil:
					raceWins[i].Add(1)
				case !errors.Is(err, journal.ErrConflict):
					t.Errorf("racing Commit(race %d) from %s = %v, want nil or ErrConflict", i, id, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range raceWins {
		if n := raceWins[i].Load(); n != 1 {
			t.Fatalf("%d writers appended race %d.0 and %d succeeded, want exactly one", writers, i, n)
		}
	}
	for g := range writers {
		id := fmt.Sprintf("w%02d", g)
		recs, err := s.Records(ctx, id)
		want := rounds
		if g%2 == 1 {
			want = 0
		}
		if err != nil || len(recs) != want {
			t.Fatalf("Records(%s) = %d, %v; want %d records", id, len(recs), err, want)
		}
	}
	if rs, err := s.ListRuns(ctx, journal.Filter{}); err != nil || len(rs) != writers+2 {
		t.Fatalf("ListRuns = %d runs, %v; want %d (no ghost from a refused batch)", len(rs), err, writers+2)
	}
	if recs, err := s.Records(ctx, "shared"); err != nil || len(recs) != 10 {
		t.Fatalf("Records(shared) = %d, %v; want its 10 records", len(recs), err)
	}
}

// TestBoltCloseDuringCommits closes the store while writers commit: each
// commit either succeeds, and is there after reopening, or fails with
// ErrClosed.
func TestBoltCloseDuringCommits(t *testing.T) {
	t.Parallel()
	const writers = 16
	path := filepath.Join(t.TempDir(), "j.db")
	s, err := openBolt(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b := &journal.Batch{}
	for g := range writers {
		b.Create = append(b.Create, journal.Run{ID: fmt.Sprintf("w%02d", g), Workflow: "wf", Status: journal.StatusRunning})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	var total atomic.Int64
	committed := make([]int, writers)
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%02d", g)
			for pos := uint32(0); ; pos++ {
				err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: id, Record: journal.Record{Pos: pos}}}})
				if errors.Is(err, journal.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Commit(%s %d) = %v, want nil or ErrClosed", id, pos, err)
					return
				}
				committed[g]++
				if total.Add(1) == 200 {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	<-enough
	if err := s.Close(); err != nil {
		t.Fatalf("Close during commits = %v, want nil", err)
	}
	wg.Wait()
	s, err = openBolt(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for g := range writers {
		id := fmt.Sprintf("w%02d", g)
		if recs, err := s.Records(ctx, id); err != nil || len(recs) != committed[g] {
			t.Fatalf("Records(%s) after reopening = %d, %v; want the %d committed before Close", id, len(recs), err, committed[g])
		}
	}
}
