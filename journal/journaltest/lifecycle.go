package journaltest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/durable-go/durable/journal"
)

// calls invokes every Store method but Close once with ctx, naming each.
func calls(ctx context.Context, s journal.Store) map[string]error {
	out := map[string]error{}
	_, _, out["CreateRun"] = s.CreateRun(ctx, newRun("new"))
	out["Commit"] = s.Commit(ctx, &journal.Batch{Append: []journal.Append{appendRec("r", 9, 0, "x")}})
	_, out["GetRun"] = s.GetRun(ctx, "r")
	_, out["Records"] = s.Records(ctx, "r")
	_, out["ListRuns"] = s.ListRuns(ctx, journal.Filter{})
	_, out["Messages"] = s.Messages(ctx, "r", "c", 0)
	_, out["Timers"] = s.Timers(ctx, at(100), 0)
	return out
}

func testClose(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	for name, err := range calls(t.Context(), s) {
		if !errors.Is(err, journal.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

func testCanceledContext(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, err := range calls(ctx, s) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want an error matching context.Canceled", name, err)
		}
	}
	// The store still works with a live context.
	getRun(t, s, "r")
}

// testConcurrentAppends has 32 goroutines each append 50 records to its own
// run, one Commit per record.
func testConcurrentAppends(t *testing.T, s journal.Store) {
	const runs, each = 32, 50
	for i := range runs {
		createRuns(t, s, fmt.Sprintf("run-%02d", i))
	}
	run(runs, func(i int) {
		id := fmt.Sprintf("run-%02d", i)
		for pos := range uint32(each) {
			rec := recordAt(pos, 0)
			if err := s.Commit(t.Context(), &journal.Batch{Append: []journal.Append{{RunID: id, Record: rec}}}); err != nil {
				t.Errorf("Commit(append %s %d.0) = %v, want nil", id, pos, err)
				return
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for i := range runs {
		id := fmt.Sprintf("run-%02d", i)
		var want []journal.Record
		for pos := range uint32(each) {
			want = append(want, recordAt(pos, 0))
		}
		checkRecords(t, id, want, records(t, s, id))
	}
}

// testConcurrentReadersAndWriters mixes every method across goroutines, for
// the race detector; it checks only that each call succeeds.
func testConcurrentReadWrite(t *testing.T, s journal.Store) {
	const writers, readers, rounds = 8, 8, 40
	for i := range writers {
		createRuns(t, s, fmt.Sprintf("w%d", i))
	}
	run(writers+readers, func(g int) {
		ctx := t.Context()
		if g < writers {
			id := fmt.Sprintf("w%d", g)
			for i := range rounds {
				b := &journal.Batch{
					Append: []journal.Append{appendRec(id, uint32(i), 0, "x")},
					Update: []journal.Update{{RunID: id, SetWake: true, Wake: at(i)}},
					Send:   []journal.Message{{RunID: id, Channel: "c", Data: []byte("m")}},
				}
				if i%5 == 4 {
					b.Update[0].Status = journal.StatusParked
				} else if i%5 == 0 {
					b.Update[0].Status = journal.StatusRunning
				}
				if err := s.Commit(ctx, b); err != nil {
					t.Errorf("writer %d round %d: Commit = %v, want nil", g, i, err)
					return
				}
				if _, _, err := s.CreateRun(ctx, newRun(fmt.Sprintf("%s-child-%d", id, i))); err != nil {
					t.Errorf("writer %d round %d: CreateRun = %v, want nil", g, i, err)
					return
				}
			}
			return
		}
		id := fmt.Sprintf("w%d", g%writers)
		for i := range rounds {
			var err error
			switch i % 5 {
			case 0:
				_, err = s.GetRun(ctx, id)
			case 1:
				_, err = s.Records(ctx, id)
			case 2:
				_, err = s.ListRuns(ctx, journal.Filter{Status: journal.StatusParked, Limit: 5})
			case 3:
				_, err = s.Messages(ctx, id, "c", 3)
			case 4:
				_, err = s.Timers(ctx, at(rounds), 10)
			}
			if err != nil {
				t.Errorf("reader %d round %d: %v, want nil", g, i, err)
				return
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for i := range writers {
		id := fmt.Sprintf("w%d", i)
		if got := records(t, s, id); len(got) != rounds {
			t.Fatalf("Records(%s) = %d records, want %d", id, len(got), rounds)
		}
		if got := messages(t, s, id, "c", 0); len(got) != rounds {
			t.Fatalf("Messages(%s, c) = %d messages, want %d", id, len(got), rounds)
		}
	}
	if got := listRuns(t, s, journal.Filter{}); len(got) != writers*(rounds+1) {
		t.Fatalf("ListRuns = %d runs, want %d", len(got), writers*(rounds+1))
	}
}
