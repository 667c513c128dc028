package journaltest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
)

func testCreateRunCreates(t *testing.T, s journal.Store) {
	in := journal.Run{
		ID: "run-1", Workflow: "checkout", Status: journal.StatusRunning,
		Parent: "parent-1", ParentPos: 7, Epoch: 2,
		Input:    []byte("input bytes"),
		Deadline: at(3600),
		WakeAt:   at(10),
	}
	got, created, err := s.CreateRun(t.Context(), in)
	if err != nil || !created {
		t.Fatalf("CreateRun(%q) = created %v, err %v; want created true, err nil", in.ID, created, err)
	}
	if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
		t.Fatalf("CreateRun returned CreatedAt %v, UpdatedAt %v; want both set", got.CreatedAt, got.UpdatedAt)
	}
	want := in
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	if d := runDiff(want, got); d != "" {
		t.Fatalf("CreateRun returned a run that differs from its input: %s", d)
	}
	if d := runDiff(got, getRun(t, s, in.ID)); d != "" {
		t.Fatalf("GetRun after CreateRun differs from the run CreateRun returned: %s", d)
	}
	ts := timers(t, s, at(10), 0)
	if len(ts) != 1 || ts[0].RunID != in.ID || !ts[0].At.Equal(in.WakeAt) {
		t.Fatalf("Timers(at 10s) after creating a run with WakeAt = %+v, want one entry {%v %s}", ts, in.WakeAt, in.ID)
	}
	if rs := listRuns(t, s, journal.Filter{Status: journal.StatusRunning}); len(rs) != 1 || rs[0].ID != in.ID {
		t.Fatalf("ListRuns(running) after CreateRun = %v, want [%s]", ids(rs), in.ID)
	}
}

func testCreateRunExisting(t *testing.T, s journal.Store) {
	in := newRun("run-1")
	in.Input = []byte("first")
	first, created, err := s.CreateRun(t.Context(), in)
	if err != nil || !created {
		t.Fatalf("first CreateRun = created %v, err %v; want true, nil", created, err)
	}
	again := in
	again.Workflow, again.Input, again.Parent, again.Deadline = "other", []byte("second"), "p", at(5)
	got, created, err := s.CreateRun(t.Context(), again)
	if err != nil || created {
		t.Fatalf("second CreateRun of the same id = created %v, err %v; want false, nil", created, err)
	}
	if d := runDiff(first, got); d != "" {
		t.Fatalf("second CreateRun returned a run other than the existing one: %s", d)
	}
	if d := runDiff(first, getRun(t, s, "run-1")); d != "" {
		t.Fatalf("second CreateRun changed the stored run: %s", d)
	}

	// The existing run is the stored one, with later changes.
	commit(t, s, "park run-1", &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: "run-1", Status: journal.StatusParked, Err: []byte("why")}}})
	stored := getRun(t, s, "run-1")
	got, created, err = s.CreateRun(t.Context(), in)
	if err != nil || created {
		t.Fatalf("CreateRun of a parked run = created %v, err %v; want false, nil", created, err)
	}
	if d := runDiff(stored, got); d != "" {
		t.Fatalf("CreateRun of a parked run returned other than the stored run: %s", d)
	}

	// A terminal run is returned as it is, not an error.
	commit(t, s, "complete run-1", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "run-1", Status: journal.StatusCompleted, Output: []byte("out")}}})
	stored = getRun(t, s, "run-1")
	got, created, err = s.CreateRun(t.Context(), in)
	if err != nil || created {
		t.Fatalf("CreateRun of a completed run = created %v, err %v; want false, nil", created, err)
	}
	if d := runDiff(stored, got); d != "" {
		t.Fatalf("CreateRun of a completed run returned other than the stored run: %s", d)
	}
}

func testCreateRunInvalid(t *testing.T, s journal.Store) {
	long := strings.Repeat("x", journal.MaxIDLen+1)
	cases := []struct {
		name string
		r    journal.Run
	}{
		{"empty id", journal.Run{Workflow: "wf", Status: journal.StatusRunning}},
		{"id over MaxIDLen", journal.Run{ID: long, Workflow: "wf", Status: journal.StatusRunning}},
		{"empty workflow", journal.Run{ID: "a", Status: journal.StatusRunning}},
		{"workflow over MaxIDLen", journal.Run{ID: "b", Workflow: long, Status: journal.StatusRunning}},
		{"status 0", journal.Run{ID: "c", Workflow: "wf"}},
		{"status parked", journal.Run{ID: "d", Workflow: "wf", Status: journal.StatusParked}},
		{"status completed", journal.Run{ID: "e", Workflow: "wf", Status: journal.StatusCompleted}},
		{"status failed", journal.Run{ID: "f", Workflow: "wf", Status: journal.StatusFailed}},
		{"status canceled", journal.Run{ID: "g", Workflow: "wf", Status: journal.StatusCanceled}},
		{"unknown status", journal.Run{ID: "h", Workflow: "wf", Status: 99}},
	}
	for _, c := range cases {
		if _, created, err := s.CreateRun(t.Context(), c.r); !errors.Is(err, journal.ErrInvalid) || created {
			t.Errorf("CreateRun(%s) = created %v, err %v; want false and ErrInvalid", c.name, created, err)
		}
		if c.r.ID != "" && len(c.r.ID) <= journal.MaxIDLen {
			wantNotFound(t, s, c.r.ID)
		}
		// Batch.Create validates the same way.
		commitFails(t, s, "create "+c.name, &journal.Batch{Create: []journal.Run{c.r}}, journal.ErrInvalid)
	}
	if rs := listRuns(t, s, journal.Filter{}); len(rs) != 0 {
		t.Fatalf("ListRuns after only invalid creations = %v, want none", ids(rs))
	}

	// The limits are inclusive.
	edge := strings.Repeat("y", journal.MaxIDLen)
	r := journal.Run{ID: edge, Workflow: edge, Status: journal.StatusRunning}
	if _, created, err := s.CreateRun(t.Context(), r); err != nil || !created {
		t.Fatalf("CreateRun with id and workflow of MaxIDLen bytes = created %v, err %v; want true, nil", created, err)
	}
	getRun(t, s, edge)
}

func testCreateRunConcurrent(t *testing.T, s journal.Store) {
	const n = 50
	var mu sync.Mutex
	var winners []int
	results := make([]journal.Run, n)
	run(n, func(i int) {
		r := newRun("contended")
		r.Input = fmt.Appendf(nil, "caller %d", i)
		got, created, err := s.CreateRun(t.Context(), r)
		if err != nil {
			t.Errorf("CreateRun from goroutine %d = %v, want nil", i, err)
			return
		}
		results[i] = got
		if created {
			mu.Lock()
			winners = append(winners, i)
			mu.Unlock()
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	if len(winners) != 1 {
		t.Fatalf("%d concurrent CreateRun calls of one id returned created=true %d times (goroutines %v), want exactly once", n, len(winners), winners)
	}
	want := fmt.Sprintf("caller %d", winners[0])
	for i, r := range results {
		if string(r.Input) != want {
			t.Fatalf("goroutine %d got a run with Input %q, want the winner's %q", i, r.Input, want)
		}
	}
	if got := getRun(t, s, "contended"); string(got.Input) != want {
		t.Fatalf("stored run has Input %q, want the winner's %q", got.Input, want)
	}
}

func testGetRunNotFound(t *testing.T, s journal.Store) {
	wantNotFound(t, s, "missing")
	createRuns(t, s, "present")
	wantNotFound(t, s, "missing")
	wantNotFound(t, s, "presen")
	wantNotFound(t, s, "present-2")
}

func testGetRunRoundTrip(t *testing.T, s journal.Store) {
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	runs := []journal.Run{
		{ID: "full", Workflow: "wf-full", Status: journal.StatusRunning, Parent: "the-parent", ParentPos: math.MaxUint32, Epoch: math.MaxUint32,
			Input: []byte{0, 1, 2, 0xff}, Deadline: time.Date(2040, 1, 2, 3, 4, 5, 6, loc), WakeAt: time.Date(1950, 6, 7, 8, 9, 10, 11, time.UTC)},
		{ID: "nil-input", Workflow: "wf", Status: journal.StatusRunning},
		{ID: "empty-input", Workflow: "wf", Status: journal.StatusRunning, Input: []byte{}},
		{ID: "big-input", Workflow: "wf", Status: journal.StatusRunning, Input: big},
		{ID: "unicode-ünïcödé/ids:and spaces", Workflow: "wörkflow", Status: journal.StatusRunning, Parent: "pärent"},
	}
	b := &journal.Batch{Now: t0, Create: runs}
	commit(t, s, "create runs", b)
	for _, want := range runs {
		want.CreatedAt, want.UpdatedAt = t0, t0
		if d := runDiff(want, getRun(t, s, want.ID)); d != "" {
			t.Errorf("GetRun(%q) after Batch.Create: %s", want.ID, d)
		}
	}

	// Output, Err and CancelRequested arrive by updates.
	commit(t, s, "finish runs", &journal.Batch{Now: at(1), Update: []journal.Update{
		{RunID: "full", Status: journal.StatusCompleted, Output: big, CancelRequested: true},
		{RunID: "nil-input", Status: journal.StatusFailed, Err: []byte("boom")},
		{RunID: "empty-input", Status: journal.StatusCanceled, Err: []byte{}},
		{RunID: "big-input", Status: journal.StatusParked, Err: big},
	}})
	want := runs[0]
	want.Status, want.Output, want.CancelRequested = journal.StatusCompleted, big, true
	want.WakeAt = time.Time{} // a terminal status removes the timer
	want.CreatedAt, want.UpdatedAt = t0, at(1)
	if d := runDiff(want, getRun(t, s, "full")); d != "" {
		t.Errorf("GetRun(full) after completing: %s", d)
	}
	for _, c := range []struct {
		id     string
		status journal.Status
		err    []byte
	}{{"nil-input", journal.StatusFailed, []byte("boom")}, {"empty-input", journal.StatusCanceled, nil}, {"big-input", journal.StatusParked, big}} {
		w := runs[slices.IndexFunc(runs, func(r journal.Run) bool { return r.ID == c.id })]
		w.Status, w.Err, w.CreatedAt, w.UpdatedAt = c.status, c.err, t0, at(1)
		if d := runDiff(w, getRun(t, s, c.id)); d != "" {
			t.Errorf("GetRun(%q) after update to %s: %s", c.id, c.status, d)
		}
	}
}

func testCommitCreate(t *testing.T, s journal.Store) {
	commit(t, s, "create a, b", &journal.Batch{Now: at(1), Create: []journal.Run{newRun("a"), newRun("b")}})
	for _, id := range []string{"a", "b"} {
		r := getRun(t, s, id)
		if !r.CreatedAt.Equal(at(1)) || !r.UpdatedAt.Equal(at(1)) {
			t.Fatalf("run %q created by Batch.Create has CreatedAt %v, UpdatedAt %v; want both Batch.Now %v", id, r.CreatedAt, r.UpdatedAt, at(1))
		}
	}
	before := getRun(t, s, "a")

	// An existing id is skipped; the rest of the batch applies. A record
	// can be appended to a run created in the same batch.
	other := newRun("a")
	other.Workflow, other.Input = "other", []byte("changed")
	commit(t, s, "create a again, c and append to c", &journal.Batch{Now: at(2),
		Create: []journal.Run{other, newRun("c")},
		Append: []journal.Append{appendRec("c", 0, 0, "first")},
	})
	if d := runDiff(before, getRun(t, s, "a")); d != "" {
		t.Fatalf("Batch.Create of an existing id changed it: %s", d)
	}
	if got := records(t, s, "c"); len(got) != 1 || string(got[0].Data) != "first" {
		t.Fatalf("Records(c) after create+append in one batch = %d records, want 1 with data \"first\"", len(got))
	}

	// The same id twice in one batch creates it once.
	first, second := newRun("d"), newRun("d")
	first.Input, second.Input = []byte("first"), []byte("second")
	commit(t, s, "create d twice", &journal.Batch{Now: at(3), Create: []journal.Run{first, second}})
	if got := getRun(t, s, "d"); string(got.Input) != "first" {
		t.Fatalf("run d created twice in one batch has Input %q, want the first creation's %q", got.Input, "first")
	}
	if rs := listRuns(t, s, journal.Filter{}); !slices.Equal(ids(rs), []string{"a", "b", "c", "d"}) {
		t.Fatalf("ListRuns = %v, want [a b c d]", ids(rs))
	}
}

func testUpdateStatus(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	created := getRun(t, s, "r")
	update := func(now int, u journal.Update) journal.Run {
		t.Helper()
		u.RunID = "r"
		commit(t, s, fmt.Sprintf("update %+v", u), &journal.Batch{Now: at(now), Update: []journal.Update{u}})
		r := getRun(t, s, "r")
		if !r.UpdatedAt.Equal(at(now)) {
			t.Fatalf("after update %+v: UpdatedAt = %v, want Batch.Now %v", u, r.UpdatedAt, at(now))
		}
		if !r.CreatedAt.Equal(created.CreatedAt) {
			t.Fatalf("after update %+v: CreatedAt = %v, want unchanged %v", u, r.CreatedAt, created.CreatedAt)
		}
		return r
	}

	r := update(1, journal.Update{Status: journal.StatusParked, Err: []byte("diverged")})
	if r.Status != journal.StatusParked || string(r.Err) != "diverged" {
		t.Fatalf("after parking: Status %s, Err %q; want parked, \"diverged\"", r.Status, r.Err)
	}
	r = update(2, journal.Update{Status: journal.StatusRunning})
	if r.Status != journal.StatusRunning || len(r.Err) != 0 {
		t.Fatalf("after resuming: Status %s, Err %q; want running with Err cleared", r.Status, r.Err)
	}
	// Status 0 changes nothing, and Err goes only with a status.
	r = update(3, journal.Update{Err: []byte("ignored"), Output: []byte("ignored")})
	if r.Status != journal.StatusRunning || len(r.Err) != 0 || len(r.Output) != 0 {
		t.Fatalf("after an update with Status 0: Status %s, Err %q, Output %q; want running, no Err, no Output", r.Status, r.Err, r.Output)
	}
	r = update(4, journal.Update{Status: journal.StatusCompleted, Output: []byte("result")})
	if r.Status != journal.StatusCompleted || string(r.Output) != "result" || len(r.Err) != 0 {
		t.Fatalf("after completing: Status %s, Output %q, Err %q; want completed, \"result\", no Err", r.Status, r.Output, r.Err)
	}

	// A terminal run accepts no more updates, records or messages.
	for _, c := range []struct {
		what string
		b    journal.Batch
	}{
		{"update status of a completed run", journal.Batch{Update: []journal.Update{{RunID: "r", Status: journal.StatusRunning}}}},
		{"request cancel of a completed run", journal.Batch{Update: []journal.Update{{RunID: "r", CancelRequested: true}}}},
		{"set wake of a completed run", journal.Batch{Update: []journal.Update{{RunID: "r", SetWake: true, Wake: at(9)}}}},
		{"append to a completed run", journal.Batch{Append: []journal.Append{appendRec("r", 0, 0, "x")}}},
		{"send to a completed run", journal.Batch{Send: []journal.Message{{RunID: "r", Channel: "c", Data: []byte("x")}}}},
	} {
		commitFails(t, s, c.what, &c.b, journal.ErrFinished)
	}
	if d := runDiff(r, getRun(t, s, "r")); d != "" {
		t.Fatalf("rejected changes to a completed run changed it: %s", d)
	}

	for _, c := range []struct {
		status journal.Status
		err    string
	}{{journal.StatusFailed, "boom"}, {journal.StatusCanceled, "canceled by user"}} {
		id := c.status.String()
		createRuns(t, s, id)
		commit(t, s, "finish "+id, &journal.Batch{Now: at(5), Update: []journal.Update{{RunID: id, Status: c.status, Err: []byte(c.err)}}})
		r := getRun(t, s, id)
		if r.Status != c.status || string(r.Err) != c.err {
			t.Fatalf("after update to %s: Status %s, Err %q; want %s, %q", c.status, r.Status, r.Err, c.status, c.err)
		}
		if !r.Status.Terminal() {
			t.Fatalf("%s.Terminal() = false, want true", r.Status)
		}
		commitFails(t, s, "update a "+id+" run", &journal.Batch{Update: []journal.Update{{RunID: id, Status: journal.StatusRunning}}}, journal.ErrFinished)
	}
}

func testUpdateErrors(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	before := getRun(t, s, "r")
	commitFails(t, s, "update a missing run", &journal.Batch{Update: []journal.Update{{RunID: "missing", Status: journal.StatusParked}}}, journal.ErrNotFound)
	commitFails(t, s, "update with status 99", &journal.Batch{Update: []journal.Update{{RunID: "r", Status: 99}}}, journal.ErrInvalid)
	commitFails(t, s, "update with an empty id", &journal.Batch{Update: []journal.Update{{Status: journal.StatusParked}}}, journal.ErrInvalid)
	if d := runDiff(before, getRun(t, s, "r")); d != "" {
		t.Fatalf("failed updates changed the run: %s", d)
	}
	wantNotFound(t, s, "missing")
}

func testUpdateInOrder(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	commit(t, s, "three updates of one run", &journal.Batch{Now: at(1), Update: []journal.Update{
		{RunID: "r", SetWake: true, Wake: at(10)},
		{RunID: "r", Status: journal.StatusParked, Err: []byte("first")},
		{RunID: "r", Status: journal.StatusParked, Err: []byte("second")},
	}})
	r := getRun(t, s, "r")
	if r.Status != journal.StatusParked || string(r.Err) != "second" || !r.WakeAt.Equal(at(10)) {
		t.Fatalf("after three updates in one batch: Status %s, Err %q, WakeAt %v; want parked, \"second\", %v", r.Status, r.Err, r.WakeAt, at(10))
	}
	// Terminal within a batch: a later update of the same batch is refused
	// and the whole batch with it.
	commitFails(t, s, "complete then update", &journal.Batch{Now: at(2), Update: []journal.Update{
		{RunID: "r", Status: journal.StatusCompleted},
		{RunID: "r", Status: journal.StatusRunning},
	}}, journal.ErrFinished)
	if got := getRun(t, s, "r"); got.Status != journal.StatusParked {
		t.Fatalf("a refused batch changed the status to %s, want parked", got.Status)
	}
}

func testCancelRequested(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	if getRun(t, s, "r").CancelRequested {
		t.Fatalf("a new run has CancelRequested set, want false")
	}
	steps := []journal.Update{
		{RunID: "r", CancelRequested: true},
		{RunID: "r", Status: journal.StatusParked, Err: []byte("x")},
		{RunID: "r", Status: journal.StatusRunning},
		{RunID: "r", SetWake: true, Wake: at(3)},
		{RunID: "r", CancelRequested: true},
		{RunID: "r", Status: journal.StatusCanceled},
	}
	for i, u := range steps {
		commit(t, s, fmt.Sprintf("update %+v", u), &journal.Batch{Now: at(i), Update: []journal.Update{u}})
		if !getRun(t, s, "r").CancelRequested {
			t.Fatalf("after update %d (%+v), CancelRequested = false, want it to stay true once set", i, u)
		}
	}
}

func testWakeAndTimers(t *testing.T, s journal.Store) {
	createRuns(t, s, "a", "b", "c", "d", "e")
	commit(t, s, "set wakes", &journal.Batch{Now: at(0), Update: []journal.Update{
		{RunID: "a", SetWake: true, Wake: at(30)},
		{RunID: "b", SetWake: true, Wake: at(10)},
		{RunID: "c", SetWake: true, Wake: at(20)},
		{RunID: "e", SetWake: true, Wake: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, // before 1970
	}})
	check := func(until time.Time, limit int, want ...string) {
		t.Helper()
		got := timers(t, s, until, limit)
		var gotIDs []string
		for i, tm := range got {
			gotIDs = append(gotIDs, tm.RunID)
			if tm.At.After(until) {
				t.Fatalf("Timers(%v, %d)[%d] = %+v, after until", until, limit, i, tm)
			}
			if i > 0 && tm.At.Before(got[i-1].At) {
				t.Fatalf("Timers(%v, %d) = %+v, want earliest first", until, limit, got)
			}
			if r := getRun(t, s, tm.RunID); !r.WakeAt.Equal(tm.At) {
				t.Fatalf("Timers entry %+v disagrees with the run's WakeAt %v", tm, r.WakeAt)
			}
		}
		if !slices.Equal(gotIDs, want) {
			t.Fatalf("Timers(%v, %d) = %v, want %v", until, limit, gotIDs, want)
		}
	}
	check(at(0), 0, "e")
	check(at(10), 0, "e", "b") // at or before until
	check(at(19), 0, "e", "b")
	check(at(20), 0, "e", "b", "c")
	check(at(100), 0, "e", "b", "c", "a")
	check(at(100), 2, "e", "b")
	check(at(100), 1, "e")
	if r := getRun(t, s, "a"); !r.WakeAt.Equal(at(30)) {
		t.Fatalf("run a WakeAt = %v, want %v", r.WakeAt, at(30))
	}
	if r := getRun(t, s, "d"); !r.WakeAt.IsZero() {
		t.Fatalf("run d WakeAt = %v, want zero (never set)", r.WakeAt)
	}

	// Moving a timer replaces its index entry.
	commit(t, s, "move a to 5s, clear e", &journal.Batch{Now: at(1), Update: []journal.Update{
		{RunID: "a", SetWake: true, Wake: at(5)},
		{RunID: "e", SetWake: true},
	}})
	check(at(100), 0, "a", "b", "c")
	if r := getRun(t, s, "e"); !r.WakeAt.IsZero() {
		t.Fatalf("run e WakeAt after SetWake with zero Wake = %v, want zero", r.WakeAt)
	}
	// An update without SetWake leaves the timer alone.
	commit(t, s, "park a", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "a", Status: journal.StatusParked, Err: []byte("x"), CancelRequested: true}}})
	check(at(100), 0, "a", "b", "c")
	// A terminal status removes the timer.
	commit(t, s, "complete c, fail b", &journal.Batch{Now: at(3), Update: []journal.Update{
		{RunID: "c", Status: journal.StatusCompleted},
		{RunID: "b", Status: journal.StatusFailed, SetWake: true, Wake: at(50)},
	}})
	check(at(100), 0, "a")
	for _, id := range []string{"b", "c"} {
		if r := getRun(t, s, id); !r.WakeAt.IsZero() {
			t.Fatalf("terminal run %q has WakeAt %v, want zero", id, r.WakeAt)
		}
	}
	// Several runs due at one time are all listed.
	commit(t, s, "d and e at 5s", &journal.Batch{Now: at(4), Update: []journal.Update{
		{RunID: "d", SetWake: true, Wake: at(5)},
		{RunID: "e", SetWake: true, Wake: at(5)},
	}})
	got := timers(t, s, at(5), 0)
	var gotIDs []string
	for _, tm := range got {
		gotIDs = append(gotIDs, tm.RunID)
	}
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, []string{"a", "d", "e"}) {
		t.Fatalf("Timers(5s) with three runs due at 5s = %v, want a, d and e in any order", gotIDs)
	}
}

// testListRuns checks filters and pagination over 1,000 runs of mixed
// statuses, workflows and parents.
func testListRuns(t *testing.T, s journal.Store) {
	const n = 1000
	statuses := []journal.Status{journal.StatusRunning, journal.StatusParked, journal.StatusCompleted, journal.StatusFailed, journal.StatusCanceled}
	workflows := []string{"alpha", "beta", "gamma"}
	model := map[string]*journal.Run{}
	var all []string
	for i := range n {
		r := newRun(fmt.Sprintf("run-%04d", i))
		r.Workflow = workflows[i%len(workflows)]
		if i%10 != 0 {
			r.Parent = fmt.Sprintf("run-%04d", i-i%10)
			r.ParentPos = uint32(i % 10)
		}
		model[r.ID] = &r
		all = append(all, r.ID)
	}
	// Create in a shuffled order, in several batches.
	shuffled := slices.Clone(all)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for lo := 0; lo < n; lo += 100 {
		b := &journal.Batch{Now: t0}
		for _, id := range shuffled[lo : lo+100] {
			b.Create = append(b.Create, *model[id])
		}
		commit(t, s, fmt.Sprintf("create runs %d to %d", lo, lo+99), b)
	}
	b := &journal.Batch{Now: at(1)}
	for i, id := range all {
		if st := statuses[i%len(statuses)]; st != journal.StatusRunning {
			model[id].Status = st
			b.Update = append(b.Update, journal.Update{RunID: id, Status: st, Err: []byte("e")})
		}
	}
	commit(t, s, "set statuses", b)

	matching := func(f journal.Filter) []string {
		var out []string
		for _, id := range all {
			r := model[id]
			if (f.Status == 0 || r.Status == f.Status) && (f.Workflow == "" || r.Workflow == f.Workflow) &&
				(f.Parent == "" || r.Parent == f.Parent) && id > f.After {
				out = append(out, id)
			}
		}
		if f.Limit > 0 && len(out) > f.Limit {
			out = out[:f.Limit]
		}
		return out
	}
	check := func(f journal.Filter) {
		t.Helper()
		got := listRuns(t, s, f)
		want := matching(f)
		if !slices.Equal(ids(got), want) {
			t.Fatalf("ListRuns(%+v) returned %d runs %s, want %d runs %s", f, len(got), abbrev(ids(got)), len(want), abbrev(want))
		}
		for _, r := range got {
			m := model[r.ID]
			if r.Status != m.Status || r.Workflow != m.Workflow || r.Parent != m.Parent || r.ParentPos != m.ParentPos {
				t.Fatalf("ListRuns(%+v) returned run %q as {%s %s %q %d}, want {%s %s %q %d}", f, r.ID,
					r.Status, r.Workflow, r.Parent, r.ParentPos, m.Status, m.Workflow, m.Parent, m.ParentPos)
			}
		}
	}
	check(journal.Filter{})
	for _, st := range statuses {
		check(journal.Filter{Status: st})
		check(journal.Filter{Status: st, Workflow: "beta"})
		check(journal.Filter{Status: st, After: "run-0500", Limit: 17})
	}
	for _, wf := range append(workflows, "none") {
		check(journal.Filter{Workflow: wf})
	}
	check(journal.Filter{Parent: "run-0010"})
	check(journal.Filter{Parent: "run-0990", Workflow: "alpha"})
	check(journal.Filter{Parent: "run-0001"}) // not a parent
	check(journal.Filter{After: "run-0500x"})
	check(journal.Filter{After: "run-0999"})
	check(journal.Filter{After: "r"})
	check(journal.Filter{Limit: 1})

	// Pagination visits every run exactly once, in id order.
	for _, f := range []journal.Filter{
		{Limit: 7},
		{Limit: 100}, // a page boundary at the very end
		{Status: journal.StatusRunning, Limit: 13},
		{Status: journal.StatusCanceled, Workflow: "gamma", Limit: 5},
		{Workflow: "beta", Limit: 10},
	} {
		var seen []string
		page := f
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatalf("ListRuns pagination with %+v did not end after %d pages", f, pages)
			}
			got := listRuns(t, s, page)
			if len(got) > f.Limit {
				t.Fatalf("ListRuns(%+v) returned %d runs, over the limit", page, len(got))
			}
			seen = append(seen, ids(got)...)
			if len(got) < f.Limit {
				break
			}
			page.After = got[len(got)-1].ID
		}
		unpaged := f
		unpaged.Limit = 0
		if want := matching(unpaged); !slices.Equal(seen, want) {
			t.Fatalf("paging through ListRuns(%+v) visited %d runs %s, want each of %d runs once in id order %s", f, len(seen), abbrev(seen), len(want), abbrev(want))
		}
	}

	// A status change moves a run between status filters.
	commit(t, s, "resume run-0001, complete run-0000", &journal.Batch{Now: at(2), Update: []journal.Update{
		{RunID: "run-0001", Status: journal.StatusRunning},
		{RunID: "run-0000", Status: journal.StatusCompleted},
	}})
	model["run-0001"].Status = journal.StatusRunning
	model["run-0000"].Status = journal.StatusCompleted
	for _, st := range statuses {
		check(journal.Filter{Status: st})
	}
}

// abbrev shows a long id list by its ends.
func abbrev(s []string) string {
	if len(s) > 8 {
		return fmt.Sprintf("%v ... %v", s[:4], s[len(s)-4:])
	}
	return fmt.Sprint(s)
}

func testDelete(t *testing.T, s journal.Store) {
	createRuns(t, s, "gone", "kept")
	commit(t, s, "fill gone and kept", &journal.Batch{Now: at(1),
		Append: []journal.Append{appendRec("gone", 0, 0, "a"), appendRec("gone", 1, 0, "b"), appendRec("kept", 0, 0, "k")},
		Update: []journal.Update{{RunID: "gone", SetWake: true, Wake: at(9)}, {RunID: "kept", SetWake: true, Wake: at(8)}},
		Send:   []journal.Message{{RunID: "gone", Channel: "in", Data: []byte("m")}, {RunID: "kept", Channel: "in", Data: []byte("m")}},
	})
	commit(t, s, "complete gone", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "gone", Status: journal.StatusCompleted, Output: []byte("o")}}})
	commit(t, s, "delete gone", &journal.Batch{Now: at(3), Delete: []string{"gone"}})

	wantNotFound(t, s, "gone")
	if _, err := s.Records(t.Context(), "gone"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Records of a deleted run = %v, want ErrNotFound", err)
	}
	if _, err := s.Messages(t.Context(), "gone", "in", 0); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Messages of a deleted run = %v, want ErrNotFound", err)
	}
	// Every status: the run passed through Running, so a stale entry in
	// a status index would show here.
	filters := []journal.Filter{{}, {Workflow: "wf"}}
	for st := journal.StatusRunning; st <= journal.StatusCanceled; st++ {
		filters = append(filters, journal.Filter{Status: st})
	}
	for _, f := range filters {
		if got := ids(listRuns(t, s, f)); slices.Contains(got, "gone") {
			t.Fatalf("ListRuns(%+v) = %v after deleting \"gone\", want it absent", f, got)
		}
	}
	if ts := timers(t, s, at(100), 0); len(ts) != 1 || ts[0].RunID != "kept" {
		t.Fatalf("Timers after deleting \"gone\" = %+v, want only kept's", ts)
	}
	// The other run is untouched.
	if got := records(t, s, "kept"); len(got) != 1 {
		t.Fatalf("Records(kept) = %d records, want 1", len(got))
	}
	if got := messages(t, s, "kept", "in", 0); len(got) != 1 {
		t.Fatalf("Messages(kept) = %d messages, want 1", len(got))
	}
	// A new run with the deleted id starts empty.
	createRuns(t, s, "gone")
	if got := records(t, s, "gone"); len(got) != 0 {
		t.Fatalf("a new run reusing a deleted id has %d records, want 0", len(got))
	}
	if got := messages(t, s, "gone", "in", 0); len(got) != 0 {
		t.Fatalf("a new run reusing a deleted id has %d messages, want 0", len(got))
	}
	commit(t, s, "append to the new gone at 0.0", &journal.Batch{Append: []journal.Append{appendRec("gone", 0, 0, "new")}})

	// A run made terminal earlier in the same batch can be deleted.
	createRuns(t, s, "quick")
	commit(t, s, "fail and delete quick", &journal.Batch{Now: at(4),
		Update: []journal.Update{{RunID: "quick", Status: journal.StatusFailed, Err: []byte("x")}},
		Delete: []string{"quick"},
	})
	wantNotFound(t, s, "quick")
	if got := ids(listRuns(t, s, journal.Filter{Status: journal.StatusFailed})); len(got) != 0 {
		t.Fatalf("ListRuns(failed) = %v after deleting the only failed run, want none", got)
	}
}

func testDeleteErrors(t *testing.T, s journal.Store) {
	createRuns(t, s, "running", "parked")
	commit(t, s, "park", &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: "parked", Status: journal.StatusParked}}})
	commitFails(t, s, "delete a running run", &journal.Batch{Delete: []string{"running"}}, journal.ErrInvalid)
	commitFails(t, s, "delete a parked run", &journal.Batch{Delete: []string{"parked"}}, journal.ErrInvalid)
	getRun(t, s, "running")
	getRun(t, s, "parked")
	commit(t, s, "delete missing ids", &journal.Batch{Delete: []string{"missing", "also-missing"}})
	if got := ids(listRuns(t, s, journal.Filter{})); !slices.Equal(got, []string{"parked", "running"}) {
		t.Fatalf("ListRuns after refused deletes = %v, want [parked running]", got)
	}
}
