package journaltest

import (
	"errors"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
)

// testContinueAsNew: a run restarted in a new epoch has the new input, an
// empty journal whose positions are free again, and a clean status.
func testContinueAsNew(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	commit(t, s, "epoch 0", &journal.Batch{Now: at(1),
		Append: []journal.Append{appendRec("r", 0, 0, "a"), appendRec("r", 1, 0, "b")},
		Update: []journal.Update{{RunID: "r", SetWake: true, Wake: at(100)}},
	})
	commit(t, s, "continue as new", &journal.Batch{Now: at(2),
		Update: []journal.Update{{RunID: "r", ContinueAsNew: true, Input: []byte("next")}},
	})
	r := getRun(t, s, "r")
	if r.Epoch != 1 || string(r.Input) != "next" || r.Status != journal.StatusRunning || r.Err != nil || r.Output != nil || !r.WakeAt.IsZero() {
		t.Fatalf("after ContinueAsNew: %+v; want epoch 1, input \"next\", running, no error, output or wake time", r)
	}
	if got := records(t, s, "r"); len(got) != 0 {
		t.Fatalf("Records after ContinueAsNew = %d records, want 0 (a new epoch)", len(got))
	}
	if got := timers(t, s, at(1000), 0); len(got) != 0 {
		t.Fatalf("Timers after ContinueAsNew = %v, want none", got)
	}
	commitFails(t, s, "an append for the old epoch", &journal.Batch{Now: at(3), Append: []journal.Append{appendRec("r", 5, 0, "stale")}}, journal.ErrConflict)
	commit(t, s, "epoch 1", &journal.Batch{Now: at(3), Append: []journal.Append{inEpoch(1, appendRec("r", 0, 0, "c"))}})
	got := records(t, s, "r")
	if len(got) != 1 || string(got[0].Data) != "c" {
		t.Fatalf("Records in epoch 1 = %v, want the one record \"c\"", got)
	}
	commit(t, s, "epoch 2", &journal.Batch{Now: at(4), Update: []journal.Update{{RunID: "r", ContinueAsNew: true, Input: []byte("third")}}})
	if r := getRun(t, s, "r"); r.Epoch != 2 {
		t.Fatalf("Epoch = %d after a second ContinueAsNew, want 2", r.Epoch)
	}
}

func testContinueAsNewErrors(t *testing.T, s journal.Store) {
	createRuns(t, s, "r", "done")
	commitFails(t, s, "ContinueAsNew with a status", &journal.Batch{
		Update: []journal.Update{{RunID: "r", ContinueAsNew: true, Status: journal.StatusRunning}},
	}, journal.ErrInvalid)
	commit(t, s, "finish", &journal.Batch{Update: []journal.Update{{RunID: "done", Status: journal.StatusCompleted}}})
	commitFails(t, s, "ContinueAsNew of a finished run", &journal.Batch{
		Update: []journal.Update{{RunID: "done", ContinueAsNew: true}},
	}, journal.ErrFinished)
}

// testPurgeRuns: Purge removes the runs that finished before the cutoff,
// a limited number at a time, and nothing else.
func testPurgeRuns(t *testing.T, s journal.Store) {
	createRuns(t, s, "old1", "old2", "old3", "new", "running")
	for i, id := range []string{"old1", "old2", "old3"} {
		commit(t, s, "finish "+id, &journal.Batch{Now: at(10 + i),
			Append: []journal.Append{appendRec(id, 0, 0, "x")},
			Update: []journal.Update{{RunID: id, Status: journal.StatusCompleted, Output: []byte("ok")}},
		})
	}
	commit(t, s, "finish new", &journal.Batch{Now: at(100), Update: []journal.Update{{RunID: "new", Status: journal.StatusFailed, Err: []byte("e")}}})
	commit(t, s, "send", &journal.Batch{Now: at(5), Send: []journal.Message{{RunID: "running", Channel: "c", Data: []byte("m")}}})

	n, err := s.Purge(t.Context(), at(50), 2)
	if err != nil || n != 2 {
		t.Fatalf("Purge(limit 2) = %d, %v; want 2, nil", n, err)
	}
	wantNotFound(t, s, "old1")
	wantNotFound(t, s, "old2")
	getRun(t, s, "old3")
	if n, err = s.Purge(t.Context(), at(50), 2); err != nil || n != 1 {
		t.Fatalf("second Purge = %d, %v; want 1, nil", n, err)
	}
	wantNotFound(t, s, "old3")
	if n, err = s.Purge(t.Context(), at(50), 2); err != nil || n != 0 {
		t.Fatalf("third Purge = %d, %v; want 0, nil", n, err)
	}
	getRun(t, s, "new")
	getRun(t, s, "running")
	if got := listRuns(t, s, journal.Filter{Status: journal.StatusCompleted}); len(got) != 0 {
		t.Fatalf("completed runs after Purge = %v, want none", ids(got))
	}
	if got := messages(t, s, "running", "c", 0); len(got) != 1 {
		t.Fatalf("inbox of a running run after Purge = %d messages, want 1", len(got))
	}
}

// testPurgeEpochs: ended epochs are purged by the time they ended; the
// current epoch never is.
func testPurgeEpochs(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	commit(t, s, "epoch 0", &journal.Batch{Now: at(1), Append: []journal.Append{appendRec("r", 0, 0, "a")}})
	commit(t, s, "to epoch 1", &journal.Batch{Now: at(10), Update: []journal.Update{{RunID: "r", ContinueAsNew: true}}})
	commit(t, s, "epoch 1", &journal.Batch{Now: at(11), Append: []journal.Append{inEpoch(1, appendRec("r", 0, 0, "b"))}})
	commit(t, s, "to epoch 2", &journal.Batch{Now: at(20), Update: []journal.Update{{RunID: "r", ContinueAsNew: true}}})
	commit(t, s, "epoch 2", &journal.Batch{Now: at(21), Append: []journal.Append{inEpoch(2, appendRec("r", 0, 0, "c"))}})

	if n, err := s.Purge(t.Context(), at(15), 0); err != nil || n != 1 {
		t.Fatalf("Purge(before epoch 1 ended) = %d, %v; want 1 (epoch 0), nil", n, err)
	}
	if n, err := s.Purge(t.Context(), at(1000), 0); err != nil || n != 1 {
		t.Fatalf("Purge(after) = %d, %v; want 1 (epoch 1), nil", n, err)
	}
	got := records(t, s, "r")
	if len(got) != 1 || string(got[0].Data) != "c" {
		t.Fatalf("Records of the current epoch after Purge = %v, want the one record \"c\"", got)
	}
	if r := getRun(t, s, "r"); r.Epoch != 2 || r.Status != journal.StatusRunning {
		t.Fatalf("run after Purge = %+v, want epoch 2, running", r)
	}
}

// testTimeExtremes: times the format cannot hold are clamped the same way
// by every store, and a time at the Unix epoch is not mistaken for "none".
func testTimeExtremes(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	epoch := time.Unix(0, 0)
	commit(t, s, "extreme times", &journal.Batch{Now: at(1),
		Append: []journal.Append{{RunID: "r", Record: journal.Record{Pos: 0, Time: far}}, {RunID: "r", Record: journal.Record{Pos: 1, Time: epoch}}},
		Update: []journal.Update{{RunID: "r", SetWake: true, Wake: far}},
	})
	got := records(t, s, "r")
	if len(got) != 2 {
		t.Fatalf("Records = %d, want 2", len(got))
	}
	maxTime := time.Unix(0, 1<<63-1)
	if !got[0].Time.Equal(maxTime) {
		t.Fatalf("a time in the year 3000 reads back as %v, want it clamped to %v", got[0].Time, maxTime)
	}
	if got[1].Time.IsZero() || got[1].Time.Sub(epoch) > time.Microsecond {
		t.Fatalf("the Unix epoch reads back as %v, want a non-zero time within 1µs of it", got[1].Time)
	}
	if r := getRun(t, s, "r"); !r.WakeAt.Equal(maxTime) {
		t.Fatalf("WakeAt = %v, want %v", r.WakeAt, maxTime)
	}
}

// testLoad: Load gives the run, its current epoch's records (none once
// it finished) and whether its inbox holds a message.
func testLoad(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	if _, err := s.Load(t.Context(), "missing"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Load(missing) = %v, want ErrNotFound", err)
	}
	commit(t, s, "records", &journal.Batch{Now: at(1), Append: []journal.Append{appendRec("r", 1, 0, "b"), appendRec("r", 0, 0, "a")}})
	l, err := s.Load(t.Context(), "r")
	if err != nil || l.Run.ID != "r" || len(l.Records) != 2 || string(l.Records[0].Data) != "a" || l.HasMessages {
		t.Fatalf("Load = %+v, %v; want run r, records a then b, no messages", l, err)
	}
	commit(t, s, "send", &journal.Batch{Now: at(2), Send: []journal.Message{{RunID: "r", Channel: "c", Data: []byte("m")}}})
	if l, err = s.Load(t.Context(), "r"); err != nil || !l.HasMessages {
		t.Fatalf("Load after a send: HasMessages = %v, %v; want true", l.HasMessages, err)
	}
	commit(t, s, "consume", &journal.Batch{Now: at(3), Consume: []journal.MessageKey{{RunID: "r", Channel: "c", Seq: messages(t, s, "r", "c", 0)[0].Seq}}})
	if l, err = s.Load(t.Context(), "r"); err != nil || l.HasMessages {
		t.Fatalf("Load after the message was consumed: HasMessages = %v, %v; want false", l.HasMessages, err)
	}
	commit(t, s, "finish", &journal.Batch{Now: at(4), Update: []journal.Update{{RunID: "r", Status: journal.StatusCompleted}}})
	if l, err = s.Load(t.Context(), "r"); err != nil || l.Run.Status != journal.StatusCompleted || l.Records != nil {
		t.Fatalf("Load of a finished run = %+v, %v; want it completed, without records", l, err)
	}
}

// inEpoch sets the epoch of an append.
func inEpoch(epoch uint32, a journal.Append) journal.Append {
	a.Epoch = epoch
	return a
}
