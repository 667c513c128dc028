package journaltest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable/journal"
)

// Queues (stores that implement journal.Queues; the tests skip for the
// others): admission order, the global bound, dedup keys, and that a
// queued run stays idle.

func queues(t *testing.T, s journal.Store) journal.Queues {
	t.Helper()
	q, ok := s.(journal.Queues)
	if !ok {
		t.Skip("the store does not implement journal.Queues")
	}
	return q
}

// queuedRun is a run created waiting in queue q with priority p.
func queuedRun(id, q string, p int32) journal.Run {
	r := newRun(id)
	r.Queue, r.Priority, r.Queued = q, p, true
	return r
}

func admit(t *testing.T, q journal.Queues, r journal.AdmitRequest) []journal.Run {
	t.Helper()
	if r.Now.IsZero() {
		r.Now = at(10)
	}
	if r.Workflows == nil {
		r.Workflows = []string{"wf"}
	}
	runs, err := q.Admit(t.Context(), r)
	if err != nil {
		t.Fatalf("Admit(%+v) = %v", r, err)
	}
	return runs
}

func testQueueOrder(t *testing.T, s journal.Store) {
	q := queues(t, s)
	// Created one by one: the order of creation is the order within a
	// priority.
	for _, r := range []journal.Run{
		queuedRun("low-1", "q", 0), queuedRun("high-1", "q", 5), queuedRun("low-2", "q", 0),
		queuedRun("high-2", "q", 5), queuedRun("neg", "q", -3), queuedRun("other-q", "q2", 9),
	} {
		commit(t, s, "create "+r.ID, &journal.Batch{Now: t0, Create: []journal.Run{r}})
	}
	want := []string{"high-1", "high-2", "low-1", "low-2", "neg"}
	w, err := q.Waiting(t.Context(), "q", 0)
	if err != nil {
		t.Fatalf("Waiting = %v", err)
	}
	if got := ids(w); !slices.Equal(got, want) {
		t.Fatalf("Waiting(q) = %q, want %q (priority, then first created)", got, want)
	}
	for i, id := range want {
		r := getRun(t, s, id)
		if !r.Queued || r.Queue != "q" || r.QueueSeq == 0 {
			t.Errorf("run %q: Queue %q Queued %v QueueSeq %d, want q, true, not 0", id, r.Queue, r.Queued, r.QueueSeq)
		}
		if pos, err := q.QueuePosition(t.Context(), &r); err != nil || pos != i+1 {
			t.Errorf("QueuePosition(%q) = %d, %v, want %d", id, pos, err, i+1)
		}
	}
	if st, err := q.QueueStats(t.Context(), "q"); err != nil || st != (journal.QueueStats{Waiting: 5}) {
		t.Errorf("QueueStats(q) = %+v, %v, want 5 waiting, 0 active", st, err)
	}

	got := admit(t, q, journal.AdmitRequest{Queue: "q", Limit: 3, Global: 2})
	if want := []string{"high-1", "high-2"}; !slices.Equal(ids(got), want) {
		t.Fatalf("Admit(limit 3, global 2) = %q, want %q", ids(got), want)
	}
	for _, r := range got {
		if r.Queued || r.Idle {
			t.Errorf("admitted run %q: Queued %v Idle %v, want false", r.ID, r.Queued, r.Idle)
		}
	}
	if got := admit(t, q, journal.AdmitRequest{Queue: "q", Limit: 3, Global: 2}); len(got) != 0 {
		t.Fatalf("Admit with the queue at its global bound admitted %q", ids(got))
	}
	if st, _ := q.QueueStats(t.Context(), "q"); st != (journal.QueueStats{Active: 2, Waiting: 3}) {
		t.Errorf("QueueStats(q) after admitting two = %+v, want 2 active, 3 waiting", st)
	}
	r := getRun(t, s, "low-1")
	if pos, _ := q.QueuePosition(t.Context(), &r); pos != 1 {
		t.Errorf("QueuePosition(low-1) after two admissions = %d, want 1", pos)
	}
	// A finished run frees its slot; a parked one too.
	commit(t, s, "finish high-1", &journal.Batch{Now: at(11), Update: []journal.Update{{RunID: "high-1", Status: journal.StatusCompleted}}})
	commit(t, s, "park high-2", &journal.Batch{Now: at(11), Update: []journal.Update{{RunID: "high-2", Status: journal.StatusParked}}})
	if got := admit(t, q, journal.AdmitRequest{Queue: "q", Limit: 1, Global: 2}); !slices.Equal(ids(got), []string{"low-1"}) {
		t.Fatalf("Admit(limit 1) after a finish = %q, want [low-1]", ids(got))
	}
	if got := admit(t, q, journal.AdmitRequest{Queue: "q", Limit: 5, Workflows: []string{"none"}}); len(got) != 0 {
		t.Errorf("Admit of another workflow admitted %q", ids(got))
	}
	if got := admit(t, q, journal.AdmitRequest{Queue: "q", Limit: 5}); !slices.Equal(ids(got), []string{"low-2", "neg"}) {
		t.Errorf("Admit(no global bound) = %q, want [low-2 neg]", ids(got))
	}
	if st, _ := q.QueueStats(t.Context(), "q"); st != (journal.QueueStats{Active: 3}) {
		t.Errorf("QueueStats(q) at the end = %+v, want 3 active (low-1, low-2, neg), 0 waiting", st)
	}
	if _, err := q.Admit(t.Context(), journal.AdmitRequest{Queue: "", Limit: 1, Workflows: []string{"wf"}}); !errors.Is(err, journal.ErrInvalid) {
		t.Errorf("Admit(queue \"\") = %v, want ErrInvalid", err)
	}
}

func testQueueIdle(t *testing.T, s journal.Store) {
	queues(t, s)
	commit(t, s, "create", &journal.Batch{Now: t0, Create: []journal.Run{queuedRun("a", "q", 0), queuedRun("b", "q", 0)}})
	if r := getRun(t, s, "a"); !r.Idle {
		t.Fatalf("queued run: Idle = false, want true (nothing loads it before its admission)")
	}
	commit(t, s, "send", &journal.Batch{Now: at(1), Send: []journal.Message{{RunID: "a", Channel: "c", Data: []byte("m")}}})
	if got := ids(listRuns(t, s, journal.Filter{ReadyAt: at(2)})); len(got) != 0 {
		t.Fatalf("ListRuns(ReadyAt) with queued runs, one with a message = %q, want none", got)
	}
	if c, ok := s.(journal.Coordinator); ok {
		register(t, c, "e1", nil)
		if res := claim(t, c, "e1", 5, at(2), "wf"); len(res.Runs) != 0 {
			t.Fatalf("Claim took queued runs %q", ids(res.Runs))
		}
	}
	// A cancel request makes it ready, to be finished canceled; Admit
	// skips it.
	commit(t, s, "cancel", &journal.Batch{Now: at(3), Update: []journal.Update{{RunID: "b", CancelRequested: true}}})
	if got := ids(listRuns(t, s, journal.Filter{ReadyAt: at(3)})); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("ListRuns(ReadyAt) after a cancel request = %q, want [b]", got)
	}
	q := s.(journal.Queues)
	if got := admit(t, q, journal.AdmitRequest{Queue: "q", Limit: 5}); !slices.Equal(ids(got), []string{"a"}) {
		t.Errorf("Admit = %q, want [a] (b has a cancel request)", ids(got))
	}
	commit(t, s, "finish b", &journal.Batch{Now: at(4), Update: []journal.Update{{RunID: "b", Status: journal.StatusCanceled}}})
	if st, _ := q.QueueStats(t.Context(), "q"); st != (journal.QueueStats{Active: 1}) {
		t.Errorf("QueueStats = %+v, want 1 active, 0 waiting", st)
	}
}

func testQueueDedup(t *testing.T, s journal.Store) {
	queues(t, s)
	ctx := t.Context()
	keyed := func(id, q, key string) journal.Run {
		r := queuedRun(id, q, 0)
		if q == "" {
			r.Queued = false
		}
		r.DedupKey = key
		return r
	}
	if _, created, err := s.CreateRun(ctx, keyed("a", "q", "k")); err != nil || !created {
		t.Fatalf("CreateRun(a, key k) = %v, %v", created, err)
	}
	_, _, err := s.CreateRun(ctx, keyed("b", "q", "k"))
	var de *journal.DuplicateError
	if !errors.As(err, &de) || de.RunID != "a" || de.Key != "k" || de.Queue != "q" || !errors.Is(err, journal.ErrDuplicate) || !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("CreateRun(b, key k held by a) = %v, want a *DuplicateError naming a, matching ErrDuplicate and ErrConflict", err)
	}
	wantNotFound(t, s, "b")
	commitFails(t, s, "Batch.Create with a held key", &journal.Batch{Now: t0, Create: []journal.Run{keyed("c", "q", "k")}}, journal.ErrDuplicate)
	wantNotFound(t, s, "c")
	// Another queue, another key, no queue: free.
	for _, r := range []journal.Run{keyed("d", "q2", "k"), keyed("e", "q", "k2"), keyed("f", "", "k")} {
		if _, created, err := s.CreateRun(ctx, r); err != nil || !created {
			t.Errorf("CreateRun(%s, queue %q key %q) = %v, %v, want created", r.ID, r.Queue, r.DedupKey, created, err)
		}
	}
	if _, _, err := s.CreateRun(ctx, keyed("g", "", "k")); !errors.Is(err, journal.ErrDuplicate) {
		t.Errorf("CreateRun(g, no queue, key k held by f) = %v, want ErrDuplicate", err)
	}
	// The existing id wins over the key: CreateRun of a again returns it.
	if r, created, err := s.CreateRun(ctx, keyed("a", "q", "k")); err != nil || created || r.ID != "a" {
		t.Errorf("CreateRun(a again) = %q, %v, %v, want the existing run", r.ID, created, err)
	}
	// Admitted and parked, it still holds the key; finished, it frees it.
	admit(t, s.(journal.Queues), journal.AdmitRequest{Queue: "q", Limit: 5})
	commit(t, s, "park a", &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: "a", Status: journal.StatusParked}}})
	if _, _, err := s.CreateRun(ctx, keyed("b", "q", "k")); !errors.Is(err, journal.ErrDuplicate) {
		t.Fatalf("CreateRun(b, key k of parked a) = %v, want ErrDuplicate", err)
	}
	commit(t, s, "finish a", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "a", Status: journal.StatusFailed}}})
	if _, created, err := s.CreateRun(ctx, keyed("b", "q", "k")); err != nil || !created {
		t.Fatalf("CreateRun(b, key k after a finished) = %v, %v, want created", created, err)
	}
	if _, _, err := s.CreateRun(ctx, keyed("h", "q", "k")); !errors.Is(err, journal.ErrDuplicate) {
		t.Errorf("CreateRun(h, key k now held by b) = %v, want ErrDuplicate", err)
	}
	// Deleting the finished holder changes nothing for the new one.
	commit(t, s, "delete a", &journal.Batch{Delete: []string{"a"}})
	if _, _, err := s.CreateRun(ctx, keyed("h", "q", "k")); !errors.Is(err, journal.ErrDuplicate) {
		t.Errorf("CreateRun(h) after a was deleted = %v, want ErrDuplicate (b holds k)", err)
	}
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "bad", Workflow: "wf", Status: journal.StatusRunning, Queued: true}); !errors.Is(err, journal.ErrInvalid) {
		t.Errorf("CreateRun(queued on no queue) = %v, want ErrInvalid", err)
	}
}

// testQueueConcurrentDedup: of many concurrent creations with one key,
// exactly one succeeds; the others are refused (ErrDuplicate, or
// ErrConflict where two transactions raced) and leave nothing.
func testQueueConcurrentDedup(t *testing.T, s journal.Store) {
	queues(t, s)
	const n = 16
	var created atomic.Int32
	run(n, func(i int) {
		r := queuedRun(fmt.Sprintf("r%02d", i), "q", 0)
		r.DedupKey = "k"
		_, ok, err := s.CreateRun(t.Context(), r)
		switch {
		case err == nil && ok:
			created.Add(1)
		case !errors.Is(err, journal.ErrConflict):
			t.Errorf("CreateRun(%s) = %v, want success or an error matching ErrConflict", r.ID, err)
		}
	})
	if created.Load() != 1 {
		t.Fatalf("%d of %d concurrent creations with one key succeeded, want 1", created.Load(), n)
	}
	if got := listRuns(t, s, journal.Filter{}); len(got) != 1 {
		t.Errorf("runs stored: %q, want 1", ids(got))
	}
}

// testQueueConcurrentAdmit: concurrent admissions never take a queue past
// its global bound.
func testQueueConcurrentAdmit(t *testing.T, s journal.Store) {
	q := queues(t, s)
	b := &journal.Batch{Now: t0}
	for i := range 40 {
		b.Create = append(b.Create, queuedRun(fmt.Sprintf("r%02d", i), "q", 0))
	}
	commit(t, s, "create", b)
	var mu sync.Mutex
	var all []string
	run(8, func(int) {
		runs, err := q.Admit(t.Context(), journal.AdmitRequest{Queue: "q", Workflows: []string{"wf"}, Limit: 2, Global: 3, Now: at(1)})
		if err != nil {
			t.Errorf("Admit = %v", err)
		}
		mu.Lock()
		all = append(all, ids(runs)...)
		mu.Unlock()
	})
	slices.Sort(all)
	if want := []string{"r00", "r01", "r02"}; !slices.Equal(all, want) {
		t.Fatalf("8 concurrent Admit(limit 2, global 3) admitted %q, want %q", all, want)
	}
}
