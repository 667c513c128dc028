package journaltest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
)

// The idle mark (every store) and the Coordinator (stores that implement
// it; the tests skip for the others).

func testIdleSetAndCleared(t *testing.T, s journal.Store) {
	createRuns(t, s, "append", "send", "cancel", "status", "msg")
	for _, id := range []string{"append", "send", "cancel", "status", "msg"} {
		commit(t, s, "idle "+id, &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: id, Idle: true, SetWake: true, Wake: at(100)}}})
		if r := getRun(t, s, id); !r.Idle {
			t.Fatalf("run %q after Update{Idle: true}: Idle = false, want true", id)
		}
	}
	commit(t, s, "append", &journal.Batch{Append: []journal.Append{appendRec("append", 0, 0, "x")}})
	commit(t, s, "send", &journal.Batch{Now: at(2), Send: []journal.Message{{RunID: "send", Channel: "c", Data: []byte("m")}}})
	commit(t, s, "cancel", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "cancel", CancelRequested: true}}})
	commit(t, s, "park", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "status", Status: journal.StatusParked}}})
	for _, id := range []string{"append", "send", "cancel", "status"} {
		if r := getRun(t, s, id); r.Idle {
			t.Errorf("run %q: Idle = true after a %s, want false", id, id)
		}
	}
	// The mark is ignored while a message waits, and an append in the
	// same batch comes first.
	commit(t, s, "send to msg", &journal.Batch{Now: at(3), Send: []journal.Message{{RunID: "msg", Channel: "c", Data: []byte("m")}}})
	commit(t, s, "idle msg", &journal.Batch{Now: at(4), Update: []journal.Update{{RunID: "msg", Idle: true}}})
	if r := getRun(t, s, "msg"); r.Idle {
		t.Errorf("run with a message in its inbox: Idle = true after Update{Idle: true}, want false (ignored)")
	}
	commit(t, s, "append and idle", &journal.Batch{Now: at(5), Append: []journal.Append{appendRec("append", 1, 0, "y")},
		Update: []journal.Update{{RunID: "append", Idle: true}}})
	if r := getRun(t, s, "append"); !r.Idle {
		t.Errorf("Append then Update{Idle: true} in one batch: Idle = false, want true (updates come after appends)")
	}
}

func testListReady(t *testing.T, s journal.Store) {
	createRuns(t, s, "busy", "due", "later", "forever", "parked")
	commit(t, s, "idle", &journal.Batch{Now: at(1), Update: []journal.Update{
		{RunID: "due", Idle: true, SetWake: true, Wake: at(10)},
		{RunID: "later", Idle: true, SetWake: true, Wake: at(1000)},
		{RunID: "forever", Idle: true},
		{RunID: "parked", Status: journal.StatusParked},
	}})
	got := ids(listRuns(t, s, journal.Filter{ReadyAt: at(10)}))
	if want := []string{"busy", "due"}; !slices.Equal(got, want) {
		t.Errorf("ListRuns(ReadyAt: t0+10s) = %q, want %q", got, want)
	}
	got = ids(listRuns(t, s, journal.Filter{ReadyAt: at(1000), Status: journal.StatusRunning}))
	if want := []string{"busy", "due", "later"}; !slices.Equal(got, want) {
		t.Errorf("ListRuns(ReadyAt: t0+1000s) = %q, want %q", got, want)
	}
}

// coordinator returns s as a Coordinator, or skips the test.
func coordinator(t *testing.T, s journal.Store) journal.Coordinator {
	t.Helper()
	c, ok := s.(journal.Coordinator)
	if !ok {
		t.Skipf("%T does not implement journal.Coordinator", s)
	}
	return c
}

// notes collects the notes an engine receives.
type notes struct {
	mu  sync.Mutex
	got []journal.Note
}

func (n *notes) notify(note journal.Note) {
	n.mu.Lock()
	n.got = append(n.got, note)
	n.mu.Unlock()
}

// has reports whether a NoteWake for run id arrived; notes need not be
// synchronous, so it waits up to 5 seconds.
func (n *notes) has(id string) bool {
	for range 500 {
		n.mu.Lock()
		ok := slices.ContainsFunc(n.got, func(x journal.Note) bool { return x.RunID == id || x.Kind == journal.NoteResync })
		n.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func register(t *testing.T, c journal.Coordinator, id string, n *notes) journal.Lease {
	t.Helper()
	if n == nil {
		n = &notes{}
	}
	l, err := c.Register(t.Context(), id, n.notify)
	if err != nil {
		t.Fatalf("Register(%q) = %v, want nil", id, err)
	}
	if l.Timeout < 0 || l.Poll < 0 {
		t.Fatalf("Register(%q) returned lease %+v, want Timeout and Poll >= 0", id, l)
	}
	return l
}

func claim(t *testing.T, c journal.Coordinator, engine string, limit int, now time.Time, wfs ...string) journal.ClaimResult {
	t.Helper()
	res, err := c.Claim(t.Context(), journal.ClaimRequest{Engine: engine, Workflows: wfs, Limit: limit, Now: now})
	if err != nil {
		t.Fatalf("Claim by %q = %v, want nil", engine, err)
	}
	for _, r := range res.Runs {
		if r.Owner != engine {
			t.Fatalf("Claim by %q returned run %q owned by %q", engine, r.ID, r.Owner)
		}
	}
	return res
}

func testCoordRegister(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	register(t, c, "e1", nil)
	if _, err := c.Register(t.Context(), "e1", func(journal.Note) {}); !errors.Is(err, journal.ErrConflict) {
		t.Errorf("Register of a live engine's id = %v, want ErrConflict", err)
	}
	if _, err := c.Register(t.Context(), "", func(journal.Note) {}); !errors.Is(err, journal.ErrInvalid) {
		t.Errorf("Register(\"\") = %v, want ErrInvalid", err)
	}
	if err := c.Heartbeat(t.Context(), "e1"); err != nil {
		t.Errorf("Heartbeat of a live engine = %v, want nil", err)
	}
	if err := c.Heartbeat(t.Context(), "nobody"); !errors.Is(err, journal.ErrLeaseExpired) {
		t.Errorf("Heartbeat of an unknown engine = %v, want ErrLeaseExpired", err)
	}
	if _, err := c.Claim(t.Context(), journal.ClaimRequest{Engine: "ghost", Workflows: []string{"wf"}, Limit: 1}); !errors.Is(err, journal.ErrLeaseExpired) {
		t.Errorf("Claim by an unregistered engine = %v, want ErrLeaseExpired", err)
	}
	if err := c.Unregister(t.Context(), "e1"); err != nil {
		t.Errorf("Unregister = %v, want nil", err)
	}
	if err := c.Unregister(t.Context(), "e1"); err != nil {
		t.Errorf("second Unregister = %v, want nil", err)
	}
	register(t, c, "e1", nil) // the id is free again
}

func testCoordClaim(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	register(t, c, "e1", nil)
	register(t, c, "e2", nil)
	createRuns(t, s, "a", "b", "c", "idle")
	commit(t, s, "other workflow", &journal.Batch{Now: t0, Create: []journal.Run{{ID: "x", Workflow: "other", Status: journal.StatusRunning}}})
	commit(t, s, "idle", &journal.Batch{Now: t0, Update: []journal.Update{{RunID: "idle", Idle: true, SetWake: true, Wake: at(60)}}})

	if res := claim(t, c, "e1", 0, at(1), "wf"); len(res.Runs) != 0 {
		t.Errorf("Claim with Limit 0 returned %d runs", len(res.Runs))
	}
	if res := claim(t, c, "e1", 5, at(1)); len(res.Runs) != 0 {
		t.Errorf("Claim with no workflows returned %d runs", len(res.Runs))
	}
	first := claim(t, c, "e1", 2, at(1), "wf")
	if len(first.Runs) != 2 {
		t.Fatalf("Claim(limit 2) of 3 ready runs returned %q", ids(first.Runs))
	}
	if err := c.Heartbeat(t.Context(), "e1"); err != nil {
		t.Fatalf("Heartbeat = %v", err)
	}
	second := claim(t, c, "e2", 5, at(1), "wf")
	all := append(ids(first.Runs), ids(second.Runs)...)
	slices.Sort(all)
	if want := []string{"a", "b", "c"}; !slices.Equal(all, want) {
		t.Fatalf("two claims took %q, want each ready run of wf once: %q (not the idle run, not the other workflow)", all, want)
	}
	if !second.Next.Equal(at(60)) {
		t.Errorf("Claim: Next = %v, want the idle run's wake time %v", second.Next, at(60))
	}
	for _, r := range first.Runs {
		if got := getRun(t, s, r.ID); got.Owner != "e1" || got.Token != r.Token || r.Token == 0 {
			t.Errorf("run %q after the claim: Owner %q Token %d; the claim returned Token %d", r.ID, got.Owner, got.Token, r.Token)
		}
	}
	// The idle run is claimable once due.
	due := claim(t, c, "e2", 5, at(60), "wf")
	if got := ids(due.Runs); !slices.Equal(got, []string{"idle"}) {
		t.Errorf("Claim at the idle run's wake time = %q, want [idle]", got)
	}
	if got := ids(claim(t, c, "e1", 5, at(100), "wf", "other").Runs); !slices.Equal(got, []string{"x"}) {
		t.Errorf("Claim of workflow other = %q, want [x]", got)
	}
}

func testCoordFence(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	register(t, c, "e1", nil)
	register(t, c, "e2", nil)
	createRuns(t, s, "r")
	res := claim(t, c, "e1", 1, at(1), "wf")
	if len(res.Runs) != 1 {
		t.Fatalf("Claim = %q, want [r]", ids(res.Runs))
	}
	f := journal.Fence{RunID: "r", Owner: "e1", Token: res.Runs[0].Token}
	commit(t, s, "fenced append", &journal.Batch{Fence: f, Append: []journal.Append{appendRec("r", 0, 0, "ok")}})

	stale := f
	stale.Token--
	for _, bad := range []journal.Fence{stale, {RunID: "r", Owner: "e2", Token: f.Token}} {
		err := s.Commit(t.Context(), &journal.Batch{Fence: bad, Append: []journal.Append{appendRec("r", 1, 0, "no")},
			Send: []journal.Message{{RunID: "r", Channel: "c"}}})
		if !errors.Is(err, journal.ErrNotOwner) || !errors.Is(err, journal.ErrConflict) {
			t.Errorf("Commit with fence %+v = %v, want ErrNotOwner (matching ErrConflict)", bad, err)
		}
	}
	if n := len(records(t, s, "r")); n != 1 {
		t.Errorf("after fenced-out commits the run has %d records, want 1", n)
	}
	if n := len(messages(t, s, "r", "c", 0)); n != 0 {
		t.Errorf("a fenced-out commit sent %d messages, want none", n)
	}
	commitFails(t, s, "fence on a missing run", &journal.Batch{Fence: journal.Fence{RunID: "nope", Owner: "e1", Token: 1}}, journal.ErrNotFound)

	// Released, then claimed by e2: e1's fence is stale.
	if err := c.Release(t.Context(), []journal.Fence{f, {RunID: "nope", Owner: "e1", Token: 1}}); err != nil {
		t.Fatalf("Release = %v", err)
	}
	if r := getRun(t, s, "r"); r.Owner != "" {
		t.Fatalf("after Release: Owner = %q, want \"\"", r.Owner)
	}
	res2 := claim(t, c, "e2", 1, at(2), "wf")
	if len(res2.Runs) != 1 || res2.Runs[0].Token <= f.Token {
		t.Fatalf("Claim after Release = %+v, want run r with a token above %d", res2.Runs, f.Token)
	}
	commitFails(t, s, "commit with the released fence", &journal.Batch{Fence: f, Append: []journal.Append{appendRec("r", 1, 0, "late")}}, journal.ErrNotOwner)
	if err := c.Release(t.Context(), []journal.Fence{f}); err != nil {
		t.Fatalf("Release with a stale fence = %v, want nil", err)
	}
	if r := getRun(t, s, "r"); r.Owner != "e2" {
		t.Fatalf("a stale Release changed the owner to %q, want e2", r.Owner)
	}
	// Finishing ends ownership.
	f2 := journal.Fence{RunID: "r", Owner: "e2", Token: res2.Runs[0].Token}
	commit(t, s, "complete", &journal.Batch{Fence: f2, Update: []journal.Update{{RunID: "r", Status: journal.StatusCompleted}}})
	if r := getRun(t, s, "r"); r.Owner != "" {
		t.Errorf("a completed run has Owner %q, want \"\"", r.Owner)
	}
}

func testCoordCreateOwned(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	register(t, c, "e1", nil)
	register(t, c, "e2", nil)
	r := newRun("mine")
	r.Owner = "e1"
	got, created, err := s.CreateRun(t.Context(), r)
	if err != nil || !created || got.Owner != "e1" || got.Token != 1 {
		t.Fatalf("CreateRun with Owner = %+v, %v, %v; want created, Owner e1, Token 1", got, created, err)
	}
	if res := claim(t, c, "e2", 5, at(1), "wf"); len(res.Runs) != 0 {
		t.Errorf("Claim by e2 took %q, owned by live e1", ids(res.Runs))
	}
	commit(t, s, "fenced", &journal.Batch{Fence: journal.Fence{RunID: "mine", Owner: "e1", Token: 1}, Append: []journal.Append{appendRec("mine", 0, 0, "x")}})
	// Unregister releases it.
	if err := c.Unregister(t.Context(), "e1"); err != nil {
		t.Fatal(err)
	}
	if got := ids(claim(t, c, "e2", 5, at(1), "wf").Runs); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("Claim after the owner unregistered = %q, want [mine]", got)
	}
}

func testCoordNotes(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	n1, n2 := &notes{}, &notes{}
	register(t, c, "e1", n1)
	register(t, c, "e2", n2)
	createRuns(t, s, "new") // unowned: someone must claim it
	if !n1.has("new") || !n2.has("new") {
		t.Fatalf("no note to every engine for a run created unowned")
	}
	res := claim(t, c, "e1", 1, at(1), "wf")
	if len(res.Runs) != 1 {
		t.Fatalf("Claim = %q", ids(res.Runs))
	}
	n1.mu.Lock()
	n1.got = nil
	n1.mu.Unlock()
	commit(t, s, "send", &journal.Batch{Now: at(2), Send: []journal.Message{{RunID: "new", Channel: "c"}}})
	if !n1.has("new") {
		t.Errorf("no note to the owner for a message")
	}
	n1.mu.Lock()
	n1.got = nil
	n1.mu.Unlock()
	commit(t, s, "cancel", &journal.Batch{Now: at(3), Update: []journal.Update{{RunID: "new", CancelRequested: true}}})
	if !n1.has("new") {
		t.Errorf("no note to the owner for a cancel request")
	}
}

// testCoordLeaseExpiry waits for a lease to run out: it needs a store
// whose Lease.Timeout is at most 3 seconds (and skips otherwise).
func testCoordLeaseExpiry(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	l := register(t, c, "dead", nil)
	register(t, c, "alive", nil)
	if l.Timeout <= 0 || l.Timeout > 3*time.Second {
		t.Skipf("the store's lease timeout is %v; give it one of 3s or less to run this test", l.Timeout)
	}
	createRuns(t, s, "r")
	res := claim(t, c, "dead", 1, at(1), "wf")
	if len(res.Runs) != 1 {
		t.Fatalf("Claim = %q", ids(res.Runs))
	}
	old := journal.Fence{RunID: "r", Owner: "dead", Token: res.Runs[0].Token}
	time.Sleep(l.Timeout + l.Timeout/2) // the one thing this test is about: time passing
	// alive expired too while it slept; its heartbeat renews it.
	if err := c.Heartbeat(t.Context(), "alive"); err != nil && !errors.Is(err, journal.ErrLeaseExpired) {
		t.Fatalf("Heartbeat(alive) = %v", err)
	}
	got := claim(t, c, "alive", 5, at(2), "wf")
	if len(got.Runs) != 1 || got.Runs[0].Token <= old.Token {
		t.Fatalf("Claim after the owner's lease expired = %+v, want run r with a new token", got.Runs)
	}
	commitFails(t, s, "the dead engine's commit", &journal.Batch{Fence: old, Append: []journal.Append{appendRec("r", 0, 0, "x")}}, journal.ErrNotOwner)
	if err := c.Heartbeat(t.Context(), "dead"); !errors.Is(err, journal.ErrLeaseExpired) {
		t.Errorf("Heartbeat after the lease expired = %v, want ErrLeaseExpired", err)
	}
	if err := c.Heartbeat(t.Context(), "dead"); err != nil {
		t.Errorf("second Heartbeat (renewed) = %v, want nil", err)
	}
}

// testCoordConcurrentClaims: engines claiming at once never share a run.
func testCoordConcurrentClaims(t *testing.T, s journal.Store) {
	c := coordinator(t, s)
	const engines, runs = 4, 200
	var all []string
	for i := range runs {
		all = append(all, "r"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	createRuns(t, s, all...)
	names := []string{"e0", "e1", "e2", "e3"}
	for _, e := range names {
		register(t, c, e, nil)
	}
	var mu sync.Mutex
	owner := map[string]string{}
	run(engines, func(i int) {
		for {
			res, err := c.Claim(t.Context(), journal.ClaimRequest{Engine: names[i], Workflows: []string{"wf"}, Limit: 7, Now: at(1)})
			if err != nil {
				t.Errorf("Claim by %s = %v", names[i], err)
				return
			}
			if len(res.Runs) == 0 {
				return
			}
			mu.Lock()
			for _, r := range res.Runs {
				if o, ok := owner[r.ID]; ok {
					t.Errorf("run %q claimed by %s and %s", r.ID, o, names[i])
				}
				owner[r.ID] = names[i]
			}
			mu.Unlock()
		}
	})
	if len(owner) != runs {
		t.Errorf("claimed %d runs, want %d", len(owner), runs)
	}
}
