package journal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable/journal"
)

// Payloads that verifyJournal writes once each, so a test can find and
// damage them.
const (
	vCanaryRecord  = "VERIFY-CANARY-RECORD-0b5e1d-a-record-of-r1"
	vCanaryInput   = "VERIFY-CANARY-INPUT-9c2f44-the-input-of-r4"
	vCanaryMessage = "VERIFY-CANARY-MESSAGE-77ad03-a-message-to-r1"
	vCanaryEpoch   = "VERIFY-CANARY-EPOCH-e41a90-a-record-of-r6-epoch-0"
)

var vWake = time.Unix(1900000000, 0).UTC()

// verifyJournal writes a journal at path and closes it: r1 running with a
// timer, three records and two messages on "c"; r2 completed with two
// records; r3 parked; r4 failed (its input is vCanaryInput); r5 canceled;
// r6 continued as new: two records in epoch 0, one in epoch 1.
func verifyJournal(t *testing.T, path string) {
	t.Helper()
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	rec := func(id string, pos uint32, data string) journal.Append {
		return journal.Append{RunID: id, Record: journal.Record{Pos: pos, Kind: 1, Name: fmt.Sprintf("step-%d", pos), Data: []byte(data)}}
	}
	batches := []*journal.Batch{
		{
			Create: []journal.Run{
				{ID: "r1", Workflow: "wf", Status: journal.StatusRunning},
				{ID: "r2", Workflow: "wf", Status: journal.StatusRunning},
				{ID: "r3", Workflow: "wf", Status: journal.StatusRunning},
				{ID: "r4", Workflow: "wf", Status: journal.StatusRunning, Input: []byte(vCanaryInput)},
				{ID: "r5", Workflow: "wf", Status: journal.StatusRunning},
				{ID: "r6", Workflow: "loop", Status: journal.StatusRunning},
			},
			Append: []journal.Append{
				rec("r1", 0, "a"), rec("r1", 1, vCanaryRecord), rec("r1", 2, "c"),
				rec("r2", 0, "a"), rec("r2", 1, "b"),
				rec("r6", 0, "a"), rec("r6", 1, vCanaryEpoch),
			},
			Update: []journal.Update{{RunID: "r1", SetWake: true, Wake: vWake}},
			Send: []journal.Message{
				{RunID: "r1", Channel: "c", Data: []byte("first")},
				{RunID: "r1", Channel: "c", Data: []byte(vCanaryMessage)},
			},
		},
		{Update: []journal.Update{
			{RunID: "r2", Status: journal.StatusCompleted, Output: []byte("ok")},
			{RunID: "r3", Status: journal.StatusParked, Err: []byte("why")},
			{RunID: "r4", Status: journal.StatusFailed, Err: []byte("bad")},
			{RunID: "r5", Status: journal.StatusCanceled, Err: []byte("canceled")},
			{RunID: "r6", ContinueAsNew: true, Input: []byte("next")},
		}},
		{Append: []journal.Append{func() journal.Append { a := rec("r6", 0, "epoch 1"); a.Epoch = 1; return a }()}},
	}
	for i, b := range batches {
		if err := s.Commit(ctx, b); err != nil {
			t.Fatalf("Commit(batch %d) = %v", i, err)
		}
	}
}

func verify(t *testing.T, path string) journal.Report {
	t.Helper()
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("OpenBolt(%s) = %v", path, err)
	}
	defer s.Close()
	rep, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("Verify = %v, want a report", err)
	}
	return rep
}

// vFlip flips a byte in the middle of every copy of payload in the file.
func vFlip(t *testing.T, path, payload string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; ; n++ {
		j := bytes.Index(data[i:], []byte(payload))
		if j < 0 {
			break
		}
		data[i+j+len(payload)/2] ^= 0x20
		i += j + len(payload)
	}
	if n == 0 {
		t.Fatalf("%q is not in the file", payload)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantProblems checks that got holds exactly the problems want, each
// given as "RunID|What|part of Detail", in any order.
func wantProblems(t *testing.T, got []journal.Problem, want ...string) {
	t.Helper()
	left := append([]journal.Problem(nil), got...)
	for _, w := range want {
		parts := strings.SplitN(w, "|", 3)
		found := false
		for i, p := range left {
			if p.RunID == parts[0] && p.What == parts[1] && strings.Contains(p.Detail, parts[2]) {
				left = append(left[:i], left[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem %q among %q", w, got)
		}
	}
	for _, p := range left {
		t.Errorf("unexpected problem: %s", p)
	}
}

func TestVerifyClean(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	verifyJournal(t, path)
	rep := verify(t, path)
	want := journal.Report{
		Runs: 6,
		ByStatus: map[journal.Status]int{
			journal.StatusRunning: 2, journal.StatusParked: 1, journal.StatusCompleted: 1,
			journal.StatusFailed: 1, journal.StatusCanceled: 1,
		},
		Epochs:   4, // r1, r2, r6 epoch 0, r6 epoch 1
		Records:  8,
		Messages: 2,
		Timers:   1,
	}
	if !reflect.DeepEqual(rep, want) {
		t.Errorf("Verify = %+v\nwant %+v", rep, want)
	}
	if !rep.OK() {
		t.Errorf("OK() = false for %v", rep.Problems)
	}
}

// Verify works on a store in use, and a finished context or a closed
// store stop it.
func TestVerifyOpenStore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	verifyJournal(t, path)
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(t.Context()); err != nil || !rep.OK() || rep.Runs != 6 {
		t.Errorf("Verify on a writable store = %+v, %v; want 6 runs, no problem", rep, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with a canceled context = %v, want context.Canceled", err)
	}
	s.Close()
	if _, err := s.Verify(t.Context()); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("Verify after Close = %v, want ErrClosed", err)
	}
}

func TestVerifyDamagedValues(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	verifyJournal(t, path)
	for _, p := range []string{vCanaryRecord, vCanaryInput, vCanaryMessage, vCanaryEpoch} {
		vFlip(t, path, p)
	}
	rep := verify(t, path)
	wantProblems(t, rep.Problems,
		`r1|record 1.0|checksum mismatch`,
		`r4|run|(the status index lists it as failed)`,
		`r1|message 2 on channel "c"|checksum mismatch`,
		`r6|record 1.0 of ended epoch 0|checksum mismatch`,
	)
	if rep.Runs != 6 || rep.Records != 8 || rep.Messages != 2 {
		t.Errorf("counts: %d runs, %d records, %d messages; want 6, 8, 2 (damaged ones included)", rep.Runs, rep.Records, rep.Messages)
	}
	if rep.ByStatus[journal.StatusFailed] != 0 {
		t.Errorf("ByStatus counts the unreadable failed run: %v", rep.ByStatus)
	}
	if got := rep.Problems[0].String(); !strings.HasPrefix(got, `run "r4" run: checksum mismatch`) {
		t.Errorf("Problem.String() = %q", got)
	}
}

// TestVerifyIndexes damages the indexes with raw bbolt writes.
func TestVerifyIndexes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	verifyJournal(t, path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wakeKey := func(at time.Time, id string) []byte {
		k := make([]byte, 8, 8+len(id))
		u := uint64(at.UnixNano()) ^ 1<<63
		for i := range 8 {
			k[i] = byte(u >> (56 - 8*i))
		}
		return append(k, id...)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		st, wake := tx.Bucket([]byte("status")), tx.Bucket([]byte("wake"))
		recs, inbox := tx.Bucket([]byte("records")), tx.Bucket([]byte("inbox"))
		return errors.Join(
			st.Delete(append([]byte{byte(journal.StatusCompleted)}, "r2"...)),    // r2: no entry
			st.Put(append([]byte{byte(journal.StatusRunning)}, "ghost"...), nil), // no such run
			st.Delete(append([]byte{byte(journal.StatusParked)}, "r3"...)),       // r3: under the
			st.Put(append([]byte{byte(journal.StatusRunning)}, "r3"...), nil),    // wrong status
			wake.Delete(wakeKey(vWake, "r1")),                                    // r1: no timer
			wake.Put(wakeKey(vWake, "r2"), nil),                                  // r2 has no wake time
			func() error { _, err := recs.CreateBucket([]byte("ghost-records")); return err }(),
			func() error { _, err := inbox.CreateBucket([]byte("ghost-inbox")); return err }(),
			tx.Bucket([]byte("expire")).Put([]byte("short"), nil),
		)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, path)
	wantProblems(t, rep.Problems,
		`r2|status index|no entry for the run (completed)`,
		`ghost|status index|for a run that does not exist`,
		`r3|status index|lists the run as running, but the run is parked`,
		`r1|wake index|no entry for the run's wake time`,
		`r2|wake index|but the run's wake time is (none)`,
		`ghost-records|records|journal of epoch 0 for a run that does not exist`,
		`ghost-inbox|inbox|messages for a run that does not exist`,
		`|expiry index|malformed key`,
	)
}

// TestVerifyDamagedPage overwrites the bbolt page that holds a run's
// records: bbolt itself fails reading it, and Verify must report that, not
// panic, and still check the other runs.
func TestVerifyDamagedPage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1500)
	b := &journal.Batch{Create: []journal.Run{{ID: "big", Workflow: "wf", Status: journal.StatusRunning}, {ID: "small", Workflow: "wf", Status: journal.StatusRunning}}}
	for pos := range uint32(8) {
		b.Append = append(b.Append, journal.Append{RunID: "big", Record: journal.Record{Pos: pos, Data: []byte(fmt.Sprintf("BIG-%d-%s", pos, big))}})
	}
	b.Append = append(b.Append, journal.Append{RunID: "small", Record: journal.Record{Data: []byte("fine")}})
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	s.Close()

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("BIG-3-"))
	if i < 0 {
		t.Fatal("record not found in the file")
	}
	page := i / pageSize * pageSize
	for j := page; j < page+pageSize; j++ {
		data[j] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	rep := verify(t, path) // fails the test if it panics
	t.Logf("problems: %q", rep.Problems)
	if rep.OK() {
		t.Fatalf("Verify of a file with a destroyed page found nothing")
	}
	for _, p := range rep.Problems {
		if p.RunID == "small" {
			t.Errorf("a problem of the intact run: %s", p)
		}
	}
	if rep.ByStatus[journal.StatusRunning] != 2 {
		t.Errorf("ByStatus = %v, want both runs read", rep.ByStatus)
	}
}

// vSnapshot reads every run of the journal at path with its current
// records and the messages on channel "c".
func vSnapshot(t *testing.T, path string) map[string]any {
	t.Helper()
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("OpenBolt(%s) = %v", path, err)
	}
	defer s.Close()
	ctx := t.Context()
	runs, err := s.ListRuns(ctx, journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, r := range runs {
		recs, err := s.Records(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := s.Messages(ctx, r.ID, "c", 0)
		if err != nil {
			t.Fatal(err)
		}
		out[r.ID] = []any{r, recs, msgs}
	}
	return out
}

func TestCompact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "j.db")
	verifyJournal(t, src)
	// Grow the file, then delete what grew it: free pages to give back.
	s, err := journal.OpenBolt(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pad := bytes.Repeat([]byte("p"), 2000)
	var del []string
	for batch := range 10 {
		b := &journal.Batch{}
		for i := range 30 {
			id := fmt.Sprintf("tmp-%d-%02d", batch, i)
			del = append(del, id)
			b.Create = append(b.Create, journal.Run{ID: id, Workflow: "wf", Status: journal.StatusRunning})
			for pos := range uint32(4) {
				b.Append = append(b.Append, journal.Append{RunID: id, Record: journal.Record{Pos: pos, Data: pad}})
			}
			b.Update = append(b.Update, journal.Update{RunID: id, Status: journal.StatusCompleted})
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, &journal.Batch{Delete: del}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	want := vSnapshot(t, src)
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "out", "compact.db")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := journal.Compact(src, dst); err != nil {
		t.Fatalf("Compact = %v", err)
	}
	if now, _ := os.ReadFile(src); !bytes.Equal(now, before) {
		t.Errorf("Compact changed its source")
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted %d bytes to %d", len(before), fi.Size())
	if fi.Size() >= int64(len(before))/4 {
		t.Errorf("compacted file: %d bytes from %d; want much smaller", fi.Size(), len(before))
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("compacted file mode %v, want the source's 0600", fi.Mode().Perm())
	}
	if got := vSnapshot(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("compacted journal:\n%v\nwant\n%v", got, want)
	}
	if rep := verify(t, dst); !rep.OK() || rep.Runs != 6 || rep.Records != 8 {
		t.Errorf("Verify of the compacted journal = %+v", rep)
	}

	// The copy is a journal like any: writable, and inbox sequence numbers
	// go on from where they were.
	s, err = journal.OpenBolt(dst, nil)
	if err != nil {
		t.Fatalf("OpenBolt(compacted) = %v", err)
	}
	b := &journal.Batch{Send: []journal.Message{{RunID: "r1", Channel: "c", Data: []byte("after")}}}
	for pos := range uint32(50) {
		b.Append = append(b.Append, journal.Append{RunID: "r1", Record: journal.Record{Pos: 100 + pos, Data: pad}})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit to the compacted journal = %v", err)
	}
	msgs, err := s.Messages(ctx, "r1", "c", 0)
	if err != nil || len(msgs) != 3 || msgs[2].Seq != 3 {
		t.Errorf("messages after compaction = %+v, %v; want a third with Seq 3", msgs, err)
	}
	s.Close()

	// In place.
	if err := journal.Compact(src, src); err != nil {
		t.Fatalf("Compact in place = %v", err)
	}
	if got := vSnapshot(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("journal compacted in place:\n%v\nwant\n%v", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.compact-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCompactRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	verifyJournal(t, good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign")
	truncated := filepath.Join(dir, "truncated.db")
	if err := errors.Join(
		os.WriteFile(foreign, bytes.Repeat([]byte("not a journal "), 1000), 0o600),
		os.WriteFile(truncated, data[:len(data)/2], 0o600),
	); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		src  string
		want error
	}{
		{foreign, journal.ErrNotJournal},
		{truncated, journal.ErrCorrupt},
		{filepath.Join(dir, "missing.db"), os.ErrNotExist},
	} {
		dst := filepath.Join(dir, "out.db")
		if err := journal.Compact(c.src, dst); !errors.Is(err, c.want) {
			t.Errorf("Compact(%s) = %v, want %v", filepath.Base(c.src), err, c.want)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Errorf("Compact(%s) created %s", filepath.Base(c.src), dst)
		}
	}

	// A journal in use.
	s, err := journal.OpenBolt(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := journal.Compact(good, good); !errors.Is(err, journal.ErrLocked) {
		t.Errorf("Compact of an open journal = %v, want ErrLocked", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.compact-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
