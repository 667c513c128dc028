package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// nanos covers every integer width of the msgpack encoding, both signs.
// 0 is left out: Unix nanosecond 0 is how the format spells the zero time.
var nanos = []int64{
	1, 127, 128, 255, 256, math.MaxUint16, math.MaxUint16 + 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
	-1, -32, -33, math.MinInt8, math.MinInt8 - 1, math.MinInt16, math.MinInt16 - 1, math.MinInt32, math.MinInt32 - 1, math.MinInt64 + 1,
	time.Date(2031, 3, 4, 5, 6, 7, 890123456, time.UTC).UnixNano(),
}

// sizes covers every length width of str and bin.
var sizes = []int{0, 1, 31, 32, 255, 256, math.MaxUint16, math.MaxUint16 + 1}

func sameTime(a, b time.Time) bool { return a.Equal(b) && a.IsZero() == b.IsZero() }

func testRecords() []Record {
	rs := []Record{
		{},
		{Pos: math.MaxUint32, Seq: math.MaxUint32, Kind: math.MaxUint8, Flags: math.MaxUint8, Name: "max", Data: []byte{}},
		{Pos: 1, Seq: 2, Kind: 3, Flags: 4, Name: "name\x00with nul", Time: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), Data: []byte{0xc0, 0xc4, 0}},
	}
	for _, n := range nanos {
		rs = append(rs, Record{Pos: 7, Time: time.Unix(0, n), Data: []byte("t")})
	}
	for _, n := range sizes {
		rs = append(rs, Record{Pos: uint32(n), Name: strings.Repeat("n", n), Data: bytes.Repeat([]byte{0xab}, n)})
	}
	return rs
}

func checkRecord(t *testing.T, want, got Record) {
	t.Helper()
	if got.Pos != want.Pos || got.Seq != want.Seq || got.Kind != want.Kind || got.Flags != want.Flags ||
		got.Name != want.Name || !sameTime(got.Time, want.Time) || !bytes.Equal(got.Data, want.Data) ||
		(got.Data == nil) != (want.Data == nil) {
		t.Fatalf("decoded record {%d.%d kind %d flags %d name of %d bytes, time %v, data of %d bytes (nil %v)}, want {%d.%d kind %d flags %d name of %d bytes, time %v, data of %d bytes (nil %v)}",
			got.Pos, got.Seq, got.Kind, got.Flags, len(got.Name), got.Time, len(got.Data), got.Data == nil,
			want.Pos, want.Seq, want.Kind, want.Flags, len(want.Name), want.Time, len(want.Data), want.Data == nil)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range testRecords() {
		v := encodeRecord("run", &r)
		k := recordKey(r.Pos, r.Seq)
		got, err := decodeRecord("run", k[:], v)
		if err != nil {
			t.Fatalf("decodeRecord of an encoded record (pos %d, time %v) = %v, want success", r.Pos, r.Time, err)
		}
		checkRecord(t, r, got)
	}
}

func testRuns() []Run {
	full := Run{
		ID: "full", Workflow: "wf", Status: StatusParked, Parent: "parent", ParentPos: math.MaxUint32, Epoch: math.MaxUint32,
		Input: []byte("in"), Output: []byte{}, Err: []byte("err"),
		CreatedAt: time.Unix(0, math.MinInt64+1), UpdatedAt: time.Unix(0, math.MaxInt64),
		WakeAt: time.Unix(0, -1), Deadline: time.Unix(1, 0), CancelRequested: true,
	}
	withMeta := full
	withMeta.ID, withMeta.Meta = "meta", []byte("traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	rs := []Run{{ID: "minimal", Workflow: "w", Status: StatusRunning}, full, withMeta}
	for s := StatusRunning; s <= StatusCanceled; s++ {
		rs = append(rs, Run{ID: s.String(), Workflow: "w", Status: s})
	}
	for _, n := range sizes {
		rs = append(rs, Run{ID: "size", Workflow: strings.Repeat("w", n), Parent: strings.Repeat("p", n), Status: StatusRunning,
			Input: bytes.Repeat([]byte{1}, n), Output: bytes.Repeat([]byte{2}, n), Err: bytes.Repeat([]byte{3}, n)})
	}
	return rs
}

func checkRun(t *testing.T, want, got Run) {
	t.Helper()
	ok := got.ID == want.ID && got.Workflow == want.Workflow && got.Status == want.Status && got.Parent == want.Parent &&
		got.ParentPos == want.ParentPos && got.Epoch == want.Epoch && got.CancelRequested == want.CancelRequested
	for _, p := range [][2][]byte{{want.Input, got.Input}, {want.Output, got.Output}, {want.Err, got.Err}} {
		ok = ok && bytes.Equal(p[0], p[1]) && (p[0] == nil) == (p[1] == nil)
	}
	ok = ok && bytes.Equal(want.Meta, got.Meta)
	for _, p := range [][2]time.Time{{want.CreatedAt, got.CreatedAt}, {want.UpdatedAt, got.UpdatedAt}, {want.WakeAt, got.WakeAt}, {want.Deadline, got.Deadline}} {
		ok = ok && sameTime(p[0], p[1])
	}
	if !ok {
		t.Fatalf("decoded run\n%+v\nwant\n%+v", got, want)
	}
}

func TestRunRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range testRuns() {
		got, err := decodeRun(r.ID, encodeRun(&r))
		if err != nil {
			t.Fatalf("decodeRun of an encoded run (%s) = %v, want success", r.ID, err)
		}
		checkRun(t, r, got)
	}
}

// TestRunVersions: a run without Meta is written as format version 1, the
// bytes older code wrote and reads; one with Meta as version 2.
func TestRunVersions(t *testing.T) {
	t.Parallel()
	r := Run{ID: "r", Workflow: "wf", Status: StatusRunning, Input: []byte("in")}
	if v := encodeRun(&r); v[0] != 1 || v[headerSize] != 0x90|runFields {
		t.Fatalf("a run without Meta encodes as version %d with header %#x, want version 1 with %d fields", v[0], v[headerSize], runFields)
	}
	r.Meta = []byte("m")
	if v := encodeRun(&r); v[0] != 2 || v[headerSize] != 0x90|runFieldsV2 {
		t.Fatalf("a run with Meta encodes as version %d with header %#x, want version 2 with %d fields", v[0], v[headerSize], runFieldsV2)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []Message{
		{RunID: "r", Channel: "c", Seq: 1, Data: []byte("x"), SentAt: time.Unix(0, 5)},
		{RunID: "r", Channel: "", Seq: math.MaxUint64, Data: nil},
		{RunID: "r", Channel: strings.Repeat("c", MaxChannelLen), Seq: 1 << 40, Data: []byte{}, SentAt: time.Unix(0, -5)},
	} {
		got, err := decodeMessage(m.RunID, messageKey(m.Channel, m.Seq), encodeMessage(&m))
		if err != nil {
			t.Fatalf("decodeMessage of an encoded message (seq %d) = %v, want success", m.Seq, err)
		}
		if got.RunID != m.RunID || got.Channel != m.Channel || got.Seq != m.Seq || !bytes.Equal(got.Data, m.Data) ||
			(got.Data == nil) != (m.Data == nil) || !sameTime(got.SentAt, m.SentAt) {
			t.Fatalf("decoded message %+v, want %+v", got, m)
		}
	}
}

// wantCorrupt fails the test unless err is a *CorruptError naming runID.
func wantCorrupt(t *testing.T, what, runID string, err error) {
	t.Helper()
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("%s = %v, want a *CorruptError matching ErrCorrupt", what, err)
	}
	if ce.RunID != runID {
		t.Fatalf("%s: CorruptError.RunID = %q, want %q", what, ce.RunID, runID)
	}
}

// encodedValues returns one encoding each of a record, a run and a message
// with a decode function that reads it back under its own key.
func encodedValues() map[string]struct {
	v      []byte
	decode func(v []byte) error
} {
	rec := Record{Pos: 3, Seq: 1, Kind: 2, Flags: 1, Name: "step", Time: time.Unix(1700000000, 123), Data: []byte("payload bytes")}
	run := Run{ID: "r", Workflow: "wf", Status: StatusRunning, Parent: "p", Input: []byte("in"), CreatedAt: time.Unix(1700000000, 1), CancelRequested: true}
	msg := Message{RunID: "r", Channel: "ch", Seq: 9, Data: []byte("msg"), SentAt: time.Unix(1700000000, 2)}
	metaRun := run
	metaRun.Meta = []byte("k=v")
	k := recordKey(rec.Pos, rec.Seq)
	return map[string]struct {
		v      []byte
		decode func(v []byte) error
	}{
		"record": {encodeRecord("r", &rec), func(v []byte) error { _, err := decodeRecord("r", k[:], v); return err }},
		"run":    {encodeRun(&run), func(v []byte) error { _, err := decodeRun("r", v); return err }},
		"run v2": {encodeRun(&metaRun), func(v []byte) error { _, err := decodeRun("r", v); return err }},
		"message": {encodeMessage(&msg), func(v []byte) error {
			_, err := decodeMessage("r", messageKey(msg.Channel, msg.Seq), v)
			return err
		}},
	}
}

func TestEveryByteFlipDetected(t *testing.T) {
	t.Parallel()
	for name, e := range encodedValues() {
		if err := e.decode(e.v); err != nil {
			t.Fatalf("decoding the intact %s = %v, want success", name, err)
		}
		for i := range e.v {
			for _, x := range []byte{0x01, 0x80, 0xff, 0x5a} {
				v := bytes.Clone(e.v)
				v[i] ^= x
				wantCorrupt(t, fmt.Sprintf("%s with byte %d xor %#x", name, i, x), "r", e.decode(v))
			}
		}
	}
}

func TestTruncationDetected(t *testing.T) {
	t.Parallel()
	for name, e := range encodedValues() {
		for n := range len(e.v) {
			wantCorrupt(t, name+" truncated", "r", e.decode(e.v[:n]))
		}
		wantCorrupt(t, name+" with a trailing byte", "r", e.decode(append(bytes.Clone(e.v), 0)))
	}
}

func TestWrongKeyDetected(t *testing.T) {
	t.Parallel()
	rec := Record{Pos: 3, Seq: 1, Name: "step", Data: []byte("x")}
	v := encodeRecord("run-a", &rec)
	for _, c := range []struct {
		what   string
		run    string
		key    [8]byte
		wantOK bool
	}{
		{"own key", "run-a", recordKey(3, 1), true},
		{"another position", "run-a", recordKey(4, 1), false},
		{"another seq", "run-a", recordKey(3, 0), false},
		{"another run", "run-b", recordKey(3, 1), false},
		{"a run whose id extends it", "run-a\x00", recordKey(3, 1), false},
	} {
		_, err := decodeRecord(c.run, c.key[:], v)
		if c.wantOK {
			if err != nil {
				t.Fatalf("decodeRecord under its %s = %v, want success", c.what, err)
			}
			continue
		}
		wantCorrupt(t, "decodeRecord under "+c.what, c.run, err)
	}
	if _, err := decodeRecord("run-a", []byte{0, 0, 0, 3}, v); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decodeRecord with a 4-byte key = %v, want ErrCorrupt", err)
	}
	run := Run{ID: "run-a", Workflow: "wf", Status: StatusRunning}
	wantCorrupt(t, "decodeRun under another id", "run-b", func() error { _, err := decodeRun("run-b", encodeRun(&run)); return err }())
	msg := Message{RunID: "run-a", Channel: "a", Seq: 1, Data: []byte("x")}
	mv := encodeMessage(&msg)
	for _, k := range [][]byte{messageKey("b", 1), messageKey("a", 2), []byte("short")} {
		if _, err := decodeMessage("run-a", k, mv); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeMessage under key %q = %v, want ErrCorrupt", k, err)
		}
	}
	if _, err := decodeMessage("run-b", messageKey("a", 1), mv); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decodeMessage under another run = %v, want ErrCorrupt", err)
	}
}

// sealed builds a value with a valid header around body, as if the damage
// happened before the checksum was computed (or the checksum was forged):
// only the decoder's own checks stand between it and a bad result.
func sealed(body []byte, scope1, scope2 []byte) []byte {
	return seal(append(make([]byte, headerSize), body...), scope1, scope2)
}

func TestBadBodiesDetected(t *testing.T) {
	t.Parallel()
	k := recordKey(0, 0)
	rec := func(body []byte) error {
		_, err := decodeRecord("r", k[:], sealed(body, []byte("r"), k[:]))
		return err
	}
	run := func(body []byte) error { _, err := decodeRun("r", sealed(body, []byte("r"), nil)); return err }
	valid := encodeRecord("r", &Record{Name: "n", Data: []byte("d")})[headerSize:]
	if err := rec(valid); err != nil {
		t.Fatalf("decodeRecord of a resealed valid body = %v, want success", err)
	}
	for _, c := range []struct {
		what string
		err  error
	}{
		{"empty body", rec(nil)},
		{"array of 4", rec([]byte{0x94, 0, 0, 0xa0, 0})},
		{"array of 6", rec([]byte{0x96, 0, 0, 0xa0, 0, 0xc0, 0})},
		{"kind out of range", rec([]byte{0x95, 0xcd, 1, 0, 0, 0xa0, 0, 0xc0})},
		{"string for kind", rec([]byte{0x95, 0xa0, 0, 0xa0, 0, 0xc0})},
		{"bin for name", rec([]byte{0x95, 0, 0, 0xc4, 0, 0, 0xc0})},
		{"string for data", rec([]byte{0x95, 0, 0, 0xa0, 0, 0xa0})},
		{"unsigned time over int64", rec([]byte{0x95, 0, 0, 0xa0, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0})},
		{"bool for time", rec([]byte{0x95, 0, 0, 0xa0, 0xc3, 0xc0})},
		{"trailing bytes", rec(append(bytes.Clone(valid), 0))},
		{"run with status 0", run(append([]byte{0x9e, 0xa1, 'w', 0, 0xa0, 0, 0, 0xc0, 0xc0, 0xc0, 0, 0, 0, 0}, 0xc2, 0))},
		{"run with status 6", run(append([]byte{0x9e, 0xa1, 'w', 6, 0xa0, 0, 0, 0xc0, 0xc0, 0xc0, 0, 0, 0, 0}, 0xc2, 0))},
		{"run with an int for cancel", run(append([]byte{0x9e, 0xa1, 'w', 1, 0xa0, 0, 0, 0xc0, 0xc0, 0xc0, 0, 0, 0, 0}, 0x01, 0))},
		{"run with parentPos over uint32", run([]byte{0x9e, 0xa1, 'w', 1, 0xa0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xc0, 0xc0, 0xc0, 0, 0, 0, 0, 0xc2, 0})},
	} {
		wantCorrupt(t, c.what, "r", c.err)
	}
	// A resealed valid run body decodes: the run cases above fail for the
	// reason they name.
	if err := run(append([]byte{0x9e, 0xa1, 'w', 1, 0xa0, 0, 0, 0xc0, 0xc0, 0xc0, 0, 0, 0, 0}, 0xc2, 0)); err != nil {
		t.Fatalf("decodeRun of a minimal valid body = %v, want success", err)
	}
	// Another format version.
	v := encodeRecord("r", &Record{})
	v[0] = formatVersion + 1
	binary.BigEndian.PutUint32(v[1:5], checksum([]byte("r"), k[:], v[headerSize:]))
	wantCorrupt(t, "a record of format version 2", "r", func() error { _, err := decodeRecord("r", k[:], v); return err }())
}

// TestHugeLengthNoAllocation feeds bodies whose length fields claim 4 GiB:
// the decoder must refuse them without allocating anything near that.
func TestHugeLengthNoAllocation(t *testing.T) {
	k := recordKey(0, 0)
	bodies := map[string][]byte{
		"bin32 data": {0x95, 0, 0, 0xa0, 0, 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"str32 name": {0x95, 0, 0, 0xdb, 0xff, 0xff, 0xff, 0xff, 0, 0xc0},
		"array32":    {0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xa0, 0, 0xc0},
		"bin16 data": {0x95, 0, 0, 0xa0, 0, 0xc5, 0xff, 0xff, 1},
	}
	for name, body := range bodies {
		v := sealed(body, []byte("r"), k[:])
		if _, err := decodeRecord("r", k[:], v); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeRecord of a body with a %s claiming a huge length = %v, want ErrCorrupt", name, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		allocs := testing.AllocsPerRun(100, func() { decodeRecord("r", k[:], v) })
		runtime.ReadMemStats(&after)
		if perCall := (after.TotalAlloc - before.TotalAlloc) / 101; perCall > 4096 {
			t.Fatalf("decodeRecord of a %s claiming a huge length allocated %d bytes per call, want under 4 KiB", name, perCall)
		}
		if allocs > 10 {
			t.Fatalf("decodeRecord of a %s claiming a huge length made %v allocations per call, want a few", name, allocs)
		}
	}
	run := Run{ID: "r", Workflow: "w", Status: StatusRunning}
	body := encodeRun(&run)[headerSize:]
	// Replace the input's nil (the 6th field) with a bin32 of 4 GiB.
	i := bytes.IndexByte(body[3:], 0xc0) + 3
	huge := append(append(bytes.Clone(body[:i]), 0xc6, 0xff, 0xff, 0xff, 0xff), body[i+1:]...)
	if _, err := decodeRun("r", sealed(huge, []byte("r"), nil)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decodeRun of a body whose input claims 4 GiB = %v, want ErrCorrupt", err)
	}
}

// reseal returns v with its version and checksum fixed for the given
// scope, so fuzzing reaches the body decoder instead of stopping at the
// checksum.
func reseal(v, scope1, scope2 []byte) []byte {
	if len(v) < headerSize {
		return v
	}
	return seal(bytes.Clone(v), scope1, scope2)
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range testRecords() {
		if len(r.Name) > 300 || len(r.Data) > 300 {
			continue
		}
		k := recordKey(r.Pos, r.Seq)
		f.Add("run", k[:], encodeRecord("run", &r))
	}
	k := recordKey(0, 0)
	f.Add("r", k[:], []byte{formatVersion, 0, 0, 0, 0, 0x95})
	f.Fuzz(func(t *testing.T, runID string, key, v []byte) {
		for _, v := range [][]byte{v, reseal(v, []byte(runID), key)} {
			r, err := decodeRecord(runID, key, v)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("decodeRecord error %v does not match ErrCorrupt", err)
				}
				continue
			}
			k := recordKey(r.Pos, r.Seq)
			if !bytes.Equal(k[:], key) {
				t.Fatalf("decoded record key %d.%d, stored under %x", r.Pos, r.Seq, key)
			}
			again, err := decodeRecord(runID, key, encodeRecord(runID, &r))
			if err != nil {
				t.Fatalf("re-encoding a decoded record does not decode: %v", err)
			}
			checkRecord(t, r, again)
		}
	})
}

func FuzzDecodeRun(f *testing.F) {
	for _, r := range testRuns() {
		if len(r.Workflow) > 300 {
			continue
		}
		f.Add(r.ID, encodeRun(&r))
	}
	f.Fuzz(func(t *testing.T, id string, v []byte) {
		for _, v := range [][]byte{v, reseal(v, []byte(id), nil)} {
			r, err := decodeRun(id, v)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("decodeRun error %v does not match ErrCorrupt", err)
				}
				continue
			}
			if r.ID != id || !r.Status.valid() {
				t.Fatalf("decodeRun returned id %q status %d, want id %q and a valid status", r.ID, r.Status, id)
			}
			again, err := decodeRun(id, encodeRun(&r))
			if err != nil {
				t.Fatalf("re-encoding a decoded run does not decode: %v", err)
			}
			checkRun(t, r, again)
		}
	})
}

// TestRunQueueFields: a run on a queue is written as version 5 and reads
// back with its queue fields; a run without one keeps its older version.
func TestRunQueueFields(t *testing.T) {
	t.Parallel()
	r := Run{ID: "r", Workflow: "wf", Status: StatusRunning, Queue: "emails", Priority: -7, QueueSeq: math.MaxUint64, Queued: true, DedupKey: "user-1", Idle: true}
	v := encodeRun(&r)
	if v[0] != runVersion5 || v[headerSize] != 0xdc || v[headerSize+2] != runFieldsV5 { // array16
		t.Fatalf("a queued run encodes as version %d with header % x, want version %d with %d fields", v[0], v[headerSize:headerSize+3], runVersion5, runFieldsV5)
	}
	got, err := decodeRun("r", v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Queue != r.Queue || got.Priority != r.Priority || got.QueueSeq != r.QueueSeq || !got.Queued || got.DedupKey != r.DedupKey || !got.Idle {
		t.Fatalf("decoded %+v, want the queue fields of %+v", got, r)
	}
	if v := encodeRun(&Run{ID: "r", Workflow: "wf", Status: StatusRunning, Idle: true}); v[0] != runVersion4 {
		t.Fatalf("an idle run without a queue encodes as version %d, want %d", v[0], runVersion4)
	}
}
