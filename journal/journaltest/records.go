package journaltest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
)

// recordAt is the record the order test writes at (pos, seq): every field
// derives from the key, so a record read back under the wrong key shows.
func recordAt(pos, seq uint32) journal.Record {
	return journal.Record{
		Pos: pos, Seq: seq,
		Kind:  uint8(pos),
		Flags: uint8(seq),
		Name:  fmt.Sprintf("step-%d-%d", pos, seq),
		Time:  t0.Add(time.Duration(pos)*time.Second + time.Duration(seq)),
		Data:  fmt.Appendf(nil, "data of %d.%d", pos, seq),
	}
}

func testRecordsOrder(t *testing.T, s journal.Store) {
	createRuns(t, s, "r", "other")
	var want []journal.Record
	// Positions chosen so byte order differs from string order and from
	// little-endian order (256 > 255, 65536 > 65535, ...).
	for _, pos := range []uint32{0, 1, 2, 9, 10, 255, 256, 1000, 65535, 65536, 1 << 24, math.MaxUint32} {
		for seq := range uint32(3) {
			want = append(want, recordAt(pos, seq))
		}
	}
	want = append(want, recordAt(3, math.MaxUint32), recordAt(3, 256))
	slices.SortFunc(want, func(a, b journal.Record) int {
		if a.Pos != b.Pos {
			return cmpU32(a.Pos, b.Pos)
		}
		return cmpU32(a.Seq, b.Seq)
	})
	shuffled := slices.Clone(want)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	// Four batches, each in shuffled order; another run's records between.
	for lo := 0; lo < len(shuffled); lo += 10 {
		b := &journal.Batch{Now: t0}
		for _, r := range shuffled[lo:min(lo+10, len(shuffled))] {
			b.Append = append(b.Append, journal.Append{RunID: "r", Record: r})
		}
		b.Append = append(b.Append, appendRec("other", uint32(lo), 0, "other"))
		commit(t, s, fmt.Sprintf("append records %d and on", lo), b)
	}
	checkRecords(t, "r", want, records(t, s, "r"))
	if got := records(t, s, "other"); len(got) != (len(want)+9)/10 {
		t.Fatalf("Records(other) = %d records, want %d", len(got), (len(want)+9)/10)
	}
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testRecordsRoundTrip(t *testing.T, s journal.Store) {
	createRuns(t, s, "r")
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*31 + 7)
	}
	loc := time.FixedZone("UTC-7", -7*3600)
	want := []journal.Record{
		{Pos: 0, Seq: 0}, // every field zero
		{Pos: 0, Seq: 1, Kind: math.MaxUint8, Flags: math.MaxUint8, Name: strings.Repeat("n", journal.MaxNameLen), Time: t0, Data: []byte("max kind, flags and name")},
		{Pos: 1, Seq: 0, Kind: 2, Name: "nil data", Time: time.Date(1901, 2, 3, 4, 5, 6, 7, time.UTC), Data: nil},
		{Pos: 2, Seq: 0, Kind: 3, Name: "empty data", Time: time.Date(2250, 2, 3, 4, 5, 6, 7, loc), Data: []byte{}},
		{Pos: 3, Seq: 0, Kind: 4, Name: "big data", Time: t0.Add(-time.Nanosecond), Data: big},
		{Pos: 4, Seq: 0, Kind: 5, Name: "binary \x00\xff name ünï", Time: t0, Data: []byte{0, 0xc0, 0xc4, 0xff, 0}},
		{Pos: math.MaxUint32, Seq: math.MaxUint32, Kind: 6, Name: "last key", Time: t0, Data: []byte("x")},
	}
	b := &journal.Batch{Now: t0}
	for _, r := range want {
		b.Append = append(b.Append, journal.Append{RunID: "r", Record: r})
	}
	commit(t, s, "append round-trip records", b)
	checkRecords(t, "r", want, records(t, s, "r"))
}

func testRecordsErrors(t *testing.T, s journal.Store) {
	createRuns(t, s, "r", "done")
	commit(t, s, "finish done", &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: "done", Status: journal.StatusCanceled}}})

	if _, err := s.Records(t.Context(), "missing"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("Records(missing) = %v, want ErrNotFound", err)
	}
	if got := records(t, s, "r"); len(got) != 0 {
		t.Fatalf("Records of a new run = %d records, want 0", len(got))
	}
	commitFails(t, s, "append to a missing run", &journal.Batch{Append: []journal.Append{appendRec("missing", 0, 0, "x")}}, journal.ErrNotFound)
	commitFails(t, s, "append to a canceled run", &journal.Batch{Append: []journal.Append{appendRec("done", 0, 0, "x")}}, journal.ErrFinished)
	commitFails(t, s, "append with an empty run id", &journal.Batch{Append: []journal.Append{appendRec("", 0, 0, "x")}}, journal.ErrInvalid)
	long := appendRec("r", 0, 0, "x")
	long.Name = strings.Repeat("n", journal.MaxNameLen+1)
	commitFails(t, s, "append with a name over MaxNameLen", &journal.Batch{Append: []journal.Append{appendRec("r", 1, 0, "ok"), long}}, journal.ErrInvalid)
	if got := records(t, s, "r"); len(got) != 0 {
		t.Fatalf("Records(r) after refused appends = %d records, want 0", len(got))
	}
	if got := records(t, s, "done"); len(got) != 0 {
		t.Fatalf("Records(done) after refused appends = %d records, want 0", len(got))
	}
	wantNotFound(t, s, "missing")
}

// setupConflict makes run "a" with records 0.0 and 1.0 and one message.
func setupConflict(t *testing.T, s journal.Store) (journal.Run, []journal.Record, journal.Message) {
	t.Helper()
	createRuns(t, s, "a")
	b := &journal.Batch{Now: at(1),
		Append: []journal.Append{appendRec("a", 0, 0, "zero"), appendRec("a", 1, 0, "one")},
		Send:   []journal.Message{{RunID: "a", Channel: "ch", Data: []byte("hello")}},
	}
	commit(t, s, "fill run a", b)
	return getRun(t, s, "a"), records(t, s, "a"), b.Send[0]
}

// unchanged fails the test if run a, its records or its inbox differ from
// what setupConflict made, or if run "x" exists.
func unchanged(t *testing.T, s journal.Store, what string, run journal.Run, recs []journal.Record, msg journal.Message) {
	t.Helper()
	if d := runDiff(run, getRun(t, s, "a")); d != "" {
		t.Fatalf("the failed %s changed run a: %s", what, d)
	}
	checkRecords(t, "a", recs, records(t, s, "a"))
	if ms := messages(t, s, "a", "ch", 0); len(ms) != 1 || ms[0].Seq != msg.Seq {
		t.Fatalf("the failed %s changed run a's inbox: %+v, want only message %d", what, ms, msg.Seq)
	}
	if ms := messages(t, s, "a", "other", 0); len(ms) != 0 {
		t.Fatalf("the failed %s sent to run a: %+v, want nothing on channel \"other\"", what, ms)
	}
	if ts := timers(t, s, at(1000), 0); len(ts) != 0 {
		t.Fatalf("the failed %s set a timer: %+v, want none", what, ts)
	}
	wantNotFound(t, s, "x")
	if rs := listRuns(t, s, journal.Filter{}); len(rs) != 1 {
		t.Fatalf("after the failed %s ListRuns = %v, want only [a]", what, ids(rs))
	}
}

func testAppendConflict(t *testing.T, s journal.Store) {
	run, recs, msg := setupConflict(t, s)
	b := &journal.Batch{Now: at(2),
		Create:  []journal.Run{newRun("x")},
		Append:  []journal.Append{appendRec("a", 2, 0, "valid"), appendRec("x", 0, 0, "valid"), appendRec("a", 1, 0, "taken")},
		Update:  []journal.Update{{RunID: "a", Status: journal.StatusParked, Err: []byte("e"), SetWake: true, Wake: at(5)}},
		Consume: []journal.MessageKey{{RunID: "a", Channel: "ch", Seq: msg.Seq}},
		Send:    []journal.Message{{RunID: "a", Channel: "other", Data: []byte("m")}},
	}
	commitFails(t, s, "a batch appending at a taken position", b, journal.ErrConflict)
	unchanged(t, s, "batch appending at a taken position", run, recs, msg)

	// The same key is free in another run, and the same position with
	// another seq is free.
	createRuns(t, s, "b")
	commit(t, s, "append b 1.0 and a 1.1", &journal.Batch{Append: []journal.Append{appendRec("b", 1, 0, "b"), appendRec("a", 1, 1, "a")}})
	if got := records(t, s, "a"); len(got) != 3 || got[2].Pos != 1 || got[2].Seq != 1 {
		t.Fatalf("Records(a) after appending 1.1 = %d records, want 3 ending with 1.1", len(got))
	}
}

func testAppendDuplicateInBatch(t *testing.T, s journal.Store) {
	run, recs, msg := setupConflict(t, s)
	b := &journal.Batch{Now: at(2),
		Create: []journal.Run{newRun("x")},
		Append: []journal.Append{appendRec("a", 5, 0, "first"), appendRec("a", 6, 0, "other"), appendRec("a", 5, 0, "second")},
	}
	commitFails(t, s, "a batch appending 5.0 twice", b, journal.ErrConflict)
	unchanged(t, s, "batch appending 5.0 twice", run, recs, msg)
}

// testAtomicLateFailure fails a batch on its last operation (a delete), so
// every earlier operation has been checked and would apply.
func testAtomicLateFailure(t *testing.T, s journal.Store) {
	run, recs, msg := setupConflict(t, s)
	b := &journal.Batch{Now: at(2),
		Create:  []journal.Run{newRun("x")},
		Append:  []journal.Append{appendRec("a", 2, 0, "valid"), appendRec("x", 0, 0, "valid")},
		Update:  []journal.Update{{RunID: "a", Status: journal.StatusParked, Err: []byte("e"), SetWake: true, Wake: at(5), CancelRequested: true}},
		Consume: []journal.MessageKey{{RunID: "a", Channel: "ch", Seq: msg.Seq}},
		Send:    []journal.Message{{RunID: "a", Channel: "other", Data: []byte("m")}},
		Delete:  []string{"a"}, // parked: not terminal
	}
	commitFails(t, s, "a batch deleting a parked run", b, journal.ErrInvalid)
	unchanged(t, s, "batch deleting a parked run", run, recs, msg)

	// The same batch without the bad delete applies in full.
	b.Delete = nil
	commit(t, s, "the batch without its delete", b)
	if got := getRun(t, s, "a"); got.Status != journal.StatusParked || !got.WakeAt.Equal(at(5)) || !got.CancelRequested {
		t.Fatalf("run a after the batch: %+v, want parked, waking at %v, cancel requested", got, at(5))
	}
	if got := records(t, s, "a"); len(got) != 3 {
		t.Fatalf("Records(a) after the batch = %d records, want 3", len(got))
	}
	if got := records(t, s, "x"); len(got) != 1 {
		t.Fatalf("Records(x) after the batch = %d records, want 1", len(got))
	}
	if ms := messages(t, s, "a", "ch", 0); len(ms) != 0 {
		t.Fatalf("Messages(a, ch) after consuming = %+v, want none", ms)
	}
	if ms := messages(t, s, "a", "other", 0); len(ms) != 1 {
		t.Fatalf("Messages(a, other) after sending = %+v, want one", ms)
	}
}

// testIsolation checks that the store keeps its own copies: changing a
// committed batch's bytes, or bytes a method returned, changes nothing
// stored.
func testIsolation(t *testing.T, s journal.Store) {
	in := newRun("r")
	in.Input = []byte("input")
	got, _, err := s.CreateRun(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateRun = %v, want nil", err)
	}
	in.Input[0] = 'X'
	got.Input = append(got.Input[:0], "YYYYY"...)
	data := []byte("record")
	b := &journal.Batch{Now: t0,
		Append: []journal.Append{{RunID: "r", Record: journal.Record{Name: "n", Data: data}}},
		Send:   []journal.Message{{RunID: "r", Channel: "c", Data: []byte("message")}},
		Update: []journal.Update{{RunID: "r", Status: journal.StatusParked, Err: []byte("error")}},
	}
	commit(t, s, "fill r", b)
	copy(data, "XXXXXX")
	copy(b.Send[0].Data, "XXXXXXX")
	copy(b.Update[0].Err, "XXXXX")

	r := getRun(t, s, "r")
	if string(r.Input) != "input" || string(r.Err) != "error" {
		t.Fatalf("run after changing the caller's slices: Input %q, Err %q; want \"input\", \"error\"", r.Input, r.Err)
	}
	copy(r.Input, "XXXXX")
	if r := getRun(t, s, "r"); string(r.Input) != "input" {
		t.Fatalf("changing the Input GetRun returned changed the store: Input %q, want \"input\"", r.Input)
	}
	recs := records(t, s, "r")
	if string(recs[0].Data) != "record" {
		t.Fatalf("record data after changing the caller's slice = %q, want \"record\"", recs[0].Data)
	}
	copy(recs[0].Data, "XXXXXX")
	if recs := records(t, s, "r"); string(recs[0].Data) != "record" {
		t.Fatalf("changing the Data Records returned changed the store: %q, want \"record\"", recs[0].Data)
	}
	ms := messages(t, s, "r", "c", 0)
	if string(ms[0].Data) != "message" {
		t.Fatalf("message data after changing the caller's slice = %q, want \"message\"", ms[0].Data)
	}
	copy(ms[0].Data, "XXXXXXX")
	if ms := messages(t, s, "r", "c", 0); string(ms[0].Data) != "message" {
		t.Fatalf("changing the Data Messages returned changed the store: %q, want \"message\"", ms[0].Data)
	}
	lr := listRuns(t, s, journal.Filter{})
	copy(lr[0].Input, "XXXXX")
	if r := getRun(t, s, "r"); string(r.Input) != "input" {
		t.Fatalf("changing the Input ListRuns returned changed the store: Input %q, want \"input\"", r.Input)
	}
}
