// Package journaltest is the conformance suite for implementations of
// [journal.Store]. A backend is done when it passes [Run] unchanged:
//
//	func TestConformance(t *testing.T) {
//		journaltest.Run(t, func(t *testing.T) journal.Store {
//			s := mybackend.Open(...)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite uses only the public API of package journal. Its subtests run in
// parallel, each on a fresh store, and never assert on wall-clock speed. Run
// it with -race.
//
// The "Coordinator/" subtests run only for stores that implement
// [journal.Coordinator] and skip for the others. Coordinator/LeaseExpiry
// waits for a lease to run out: give the store a lease timeout of 3
// seconds or less (it skips otherwise).
package journaltest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
)

// Run runs the conformance suite against the stores that newStore makes.
// newStore is called once per subtest and must return an empty store; it
// registers its own cleanup (with t.Cleanup). The suite may close the store
// itself, so the cleanup must tolerate a second Close.
func Run(t *testing.T, newStore func(t *testing.T) journal.Store) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s journal.Store)
}

// tests lists every subtest; the groups live in files named after them.
var tests = []test{
	// runs.go
	{"CreateRun/Creates", testCreateRunCreates},
	{"CreateRun/ExistingUnchanged", testCreateRunExisting},
	{"CreateRun/Invalid", testCreateRunInvalid},
	{"CreateRun/Concurrent", testCreateRunConcurrent},
	{"GetRun/NotFound", testGetRunNotFound},
	{"GetRun/RoundTrip", testGetRunRoundTrip},
	{"Commit/Create", testCommitCreate},
	{"Update/Status", testUpdateStatus},
	{"Update/Errors", testUpdateErrors},
	{"Update/InOrderWithinBatch", testUpdateInOrder},
	{"Update/CancelRequestedSticks", testCancelRequested},
	{"Update/WakeAndTimers", testWakeAndTimers},
	{"ListRuns/Filters", testListRuns},
	{"Delete", testDelete},
	{"Delete/Errors", testDeleteErrors},
	{"Meta", testMeta},
	{"Builds", testBuilds},

	// records.go
	{"Records/Order", testRecordsOrder},
	{"Records/RoundTrip", testRecordsRoundTrip},
	{"Records/Errors", testRecordsErrors},
	{"Commit/AppendConflict", testAppendConflict},
	{"Commit/DuplicateInBatch", testAppendDuplicateInBatch},
	{"Commit/AtomicOnLateFailure", testAtomicLateFailure},
	{"Commit/Isolation", testIsolation},

	// messages.go
	{"Messages/SendAndList", testMessagesSend},
	{"Messages/Consume", testMessagesConsume},
	{"Messages/Errors", testMessagesErrors},
	{"Messages/ConcurrentSend", testMessagesConcurrent},

	// epochs.go
	{"ContinueAsNew", testContinueAsNew},
	{"ContinueAsNew/Errors", testContinueAsNewErrors},
	{"Purge/FinishedRuns", testPurgeRuns},
	{"Purge/Epochs", testPurgeEpochs},
	{"Times/Extremes", testTimeExtremes},
	{"Load", testLoad},

	// coordinate.go
	{"Idle/SetAndCleared", testIdleSetAndCleared},
	{"Idle/ListReady", testListReady},
	{"Coordinator/Register", testCoordRegister},
	{"Coordinator/Claim", testCoordClaim},
	{"Coordinator/Fence", testCoordFence},
	{"Coordinator/CreateOwned", testCoordCreateOwned},
	{"Coordinator/Notes", testCoordNotes},
	{"Coordinator/LeaseExpiry", testCoordLeaseExpiry},
	{"Coordinator/ConcurrentClaims", testCoordConcurrentClaims},

	// queues.go
	{"Queue/Order", testQueueOrder},
	{"Queue/Idle", testQueueIdle},
	{"Queue/Dedup", testQueueDedup},
	{"Queue/ConcurrentDedup", testQueueConcurrentDedup},
	{"Queue/ConcurrentAdmit", testQueueConcurrentAdmit},

	// lifecycle.go
	{"Close", testClose},
	{"CanceledContext", testCanceledContext},
	{"Concurrent/Appends", testConcurrentAppends},
	{"Concurrent/ReadersAndWriters", testConcurrentReadWrite},
}

// t0 is the suite's reference time: Batch.Now and record times derive from
// it, never from the wall clock. It has nanoseconds so that truncation to
// micro- or milliseconds shows.
var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 890123456, time.UTC)

// at returns t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// newRun is a minimal valid run for CreateRun and Batch.Create.
func newRun(id string) journal.Run {
	return journal.Run{ID: id, Workflow: "wf", Status: journal.StatusRunning}
}

// createRuns creates runs with one Commit whose Now is t0.
func createRuns(t *testing.T, s journal.Store, ids ...string) {
	t.Helper()
	b := &journal.Batch{Now: t0}
	for _, id := range ids {
		b.Create = append(b.Create, newRun(id))
	}
	commit(t, s, "create "+strings.Join(ids, ", "), b)
}

// commit commits b and fails the test if that fails; what names the batch
// in the message.
func commit(t *testing.T, s journal.Store, what string, b *journal.Batch) {
	t.Helper()
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit(%s) = %v, want success", what, err)
	}
}

// commitFails commits b and fails the test unless the error matches want.
func commitFails(t *testing.T, s journal.Store, what string, b *journal.Batch, want error) {
	t.Helper()
	err := s.Commit(t.Context(), b)
	if !errors.Is(err, want) {
		t.Fatalf("Commit(%s) = %v, want an error matching %q", what, err, want)
	}
}

func appendRec(id string, pos, seq uint32, data string) journal.Append {
	return journal.Append{RunID: id, Record: journal.Record{
		Pos: pos, Seq: seq, Kind: 1, Name: fmt.Sprintf("step %d.%d", pos, seq), Time: t0, Data: []byte(data),
	}}
}

func getRun(t *testing.T, s journal.Store, id string) journal.Run {
	t.Helper()
	r, err := s.GetRun(t.Context(), id)
	if err != nil {
		t.Fatalf("GetRun(%q) = %v, want the run", id, err)
	}
	if r.ID != id {
		t.Fatalf("GetRun(%q) returned run %q, want the same id", id, r.ID)
	}
	return r
}

func wantNotFound(t *testing.T, s journal.Store, id string) {
	t.Helper()
	if r, err := s.GetRun(t.Context(), id); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("GetRun(%q) = %+v, %v; want ErrNotFound", id, r, err)
	}
}

func records(t *testing.T, s journal.Store, id string) []journal.Record {
	t.Helper()
	rs, err := s.Records(t.Context(), id)
	if err != nil {
		t.Fatalf("Records(%q) = %v, want the records", id, err)
	}
	return rs
}

func messages(t *testing.T, s journal.Store, id, channel string, limit int) []journal.Message {
	t.Helper()
	ms, err := s.Messages(t.Context(), id, channel, limit)
	if err != nil {
		t.Fatalf("Messages(%q, %q, %d) = %v, want the messages", id, channel, limit, err)
	}
	return ms
}

func timers(t *testing.T, s journal.Store, until time.Time, limit int) []journal.Timer {
	t.Helper()
	ts, err := s.Timers(t.Context(), until, limit)
	if err != nil {
		t.Fatalf("Timers(%v, %d) = %v, want the timers", until, limit, err)
	}
	return ts
}

func listRuns(t *testing.T, s journal.Store, f journal.Filter) []journal.Run {
	t.Helper()
	rs, err := s.ListRuns(t.Context(), f)
	if err != nil {
		t.Fatalf("ListRuns(%+v) = %v, want the runs", f, err)
	}
	return rs
}

func ids(rs []journal.Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// runDiff lists the fields in which got differs from want: bytes compare
// with bytes.Equal (nil equals empty), times with time.Time.Equal.
func runDiff(want, got journal.Run) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", want.ID, got.ID)
	}
	if got.Workflow != want.Workflow {
		add("Workflow", want.Workflow, got.Workflow)
	}
	if got.Status != want.Status {
		add("Status", want.Status, got.Status)
	}
	if got.Parent != want.Parent {
		add("Parent", want.Parent, got.Parent)
	}
	if got.ParentPos != want.ParentPos {
		add("ParentPos", want.ParentPos, got.ParentPos)
	}
	if got.Epoch != want.Epoch {
		add("Epoch", want.Epoch, got.Epoch)
	}
	for _, f := range []struct {
		name   string
		w, g   []byte
		quoted bool
	}{{"Input", want.Input, got.Input, true}, {"Output", want.Output, got.Output, true}, {"Err", want.Err, got.Err, true}} {
		if !bytes.Equal(f.w, f.g) {
			add(f.name, short(f.w), short(f.g))
		}
	}
	for _, f := range []struct {
		name string
		w, g time.Time
	}{{"CreatedAt", want.CreatedAt, got.CreatedAt}, {"UpdatedAt", want.UpdatedAt, got.UpdatedAt}, {"WakeAt", want.WakeAt, got.WakeAt}, {"Deadline", want.Deadline, got.Deadline}} {
		if !f.w.Equal(f.g) {
			add(f.name, f.w, f.g)
		}
	}
	if got.CancelRequested != want.CancelRequested {
		add("CancelRequested", want.CancelRequested, got.CancelRequested)
	}
	if !bytes.Equal(got.Meta, want.Meta) {
		add("Meta", short(want.Meta), short(got.Meta))
	}
	if !slices.Equal(got.Builds, want.Builds) {
		add("Builds", want.Builds, got.Builds)
	}
	return strings.Join(d, "; ")
}

// recordDiff is runDiff for records.
func recordDiff(want, got journal.Record) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.Pos != want.Pos || got.Seq != want.Seq {
		add("key", fmt.Sprintf("%d.%d", want.Pos, want.Seq), fmt.Sprintf("%d.%d", got.Pos, got.Seq))
	}
	if got.Kind != want.Kind {
		add("Kind", want.Kind, got.Kind)
	}
	if got.Flags != want.Flags {
		add("Flags", want.Flags, got.Flags)
	}
	if got.Name != want.Name {
		add("Name", short([]byte(want.Name)), short([]byte(got.Name)))
	}
	if !got.Time.Equal(want.Time) {
		add("Time", want.Time, got.Time)
	}
	if !bytes.Equal(got.Data, want.Data) {
		add("Data", short(want.Data), short(got.Data))
	}
	return strings.Join(d, "; ")
}

// short quotes b, eliding the middle of long values.
func short(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q...(%d bytes)...%q", b[:24], len(b), b[len(b)-24:])
	}
	return fmt.Sprintf("%q", b)
}

// checkRecords fails the test unless got equals want, in order.
func checkRecords(t *testing.T, id string, want, got []journal.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Records(%q) returned %d records, want %d", id, len(got), len(want))
	}
	for i := range want {
		if d := recordDiff(want[i], got[i]); d != "" {
			t.Fatalf("Records(%q)[%d] (want key %d.%d): %s", id, i, want[i].Pos, want[i].Seq, d)
		}
	}
}

// run runs fn in n goroutines and waits for them. fn reports failures with
// t.Errorf (never t.Fatal, which must not be called off the test goroutine).
func run(n int, fn func(i int)) {
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			fn(i)
		}()
	}
	for range n {
		<-done
	}
}
