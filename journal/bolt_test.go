package journal_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable/journal"
)

// Distinctive payloads that makeJournal writes once each, so a test can
// find them in the file and damage them.
const (
	canaryRecord = "CANARY-RECORD-PAYLOAD-7f3a9c01-the-record-data-to-damage"
	canaryInput  = "CANARY-INPUT-PAYLOAD-51b2e8aa-the-run-input-to-damage"
)

const pageSize = 4096 // bbolt's page size on the machines we test on

// makeJournal writes a journal of about 200 runs with records, messages,
// timers and mixed statuses at path, closes it and returns the ids of the
// runs it made. Run "canary" has a record holding canaryRecord; run
// "canary-input" has canaryInput as its input.
func makeJournal(t *testing.T, path string) []string {
	t.Helper()
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		t.Fatalf("OpenBolt(%s) = %v, want a new journal", path, err)
	}
	ctx := t.Context()
	var ids []string
	finish := &journal.Batch{}
	for batch := range 10 {
		b := &journal.Batch{}
		for i := range 20 {
			n := batch*20 + i
			id := fmt.Sprintf("run-%03d", n)
			ids = append(ids, id)
			r := journal.Run{ID: id, Workflow: "wf", Status: journal.StatusRunning, Input: fmt.Appendf(nil, "input of %s", id)}
			b.Create = append(b.Create, r)
			for pos := range uint32(5) {
				b.Append = append(b.Append, journal.Append{RunID: id, Record: journal.Record{
					Pos: pos, Kind: 1, Name: "step", Time: time.Unix(1700000000, int64(n)),
					Data: fmt.Appendf(nil, "%s record %d %s", id, pos, strings.Repeat(".", 60)),
				}})
			}
			b.Send = append(b.Send, journal.Message{RunID: id, Channel: "c", Data: []byte("msg")})
			switch n % 4 {
			case 1:
				b.Update = append(b.Update, journal.Update{RunID: id, SetWake: true, Wake: time.Unix(1800000000, int64(n))})
			case 2:
				finish.Update = append(finish.Update, journal.Update{RunID: id, Status: journal.StatusCompleted, Output: []byte("done")})
			}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatalf("Commit(batch %d) = %v, want nil", batch, err)
		}
	}
	// Updates apply before sends in a batch: complete runs afterwards.
	if err := s.Commit(ctx, finish); err != nil {
		t.Fatalf("Commit(complete runs) = %v, want nil", err)
	}
	b := &journal.Batch{
		Create: []journal.Run{
			{ID: "canary", Workflow: "wf", Status: journal.StatusRunning},
			{ID: "canary-input", Workflow: "wf", Status: journal.StatusRunning, Input: []byte(canaryInput)},
		},
		Append: []journal.Append{
			{RunID: "canary", Record: journal.Record{Pos: 0, Name: "before", Data: []byte("fine")}},
			{RunID: "canary", Record: journal.Record{Pos: 1, Name: "damaged", Data: []byte(canaryRecord)}},
		},
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit(canaries) = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	return ids
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// openBolt calls OpenBolt and turns a panic into a test failure.
func openBolt(t *testing.T, path string, opts *journal.BoltOptions) (s *journal.Bolt, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("OpenBolt(%s) panicked: %v", path, p)
		}
	}()
	return journal.OpenBolt(path, opts)
}

// openFails asserts that OpenBolt refuses the file at path with an error
// matching want, leaves it byte-for-byte unchanged, and holds no lock on it
// afterwards (a second attempt fails the same way, not with ErrLocked).
func openFails(t *testing.T, path string, want error) {
	t.Helper()
	before := readFile(t, path)
	fiBefore, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		s, err := openBolt(t, path, &journal.BoltOptions{LockTimeout: 100 * time.Millisecond})
		if s != nil {
			s.Close()
		}
		if !errors.Is(err, want) {
			t.Fatalf("OpenBolt(%s) attempt %d = %v, want an error matching %q", filepath.Base(path), attempt, err, want)
		}
		t.Logf("attempt %d: %v", attempt, err)
	}
	if after := readFile(t, path); !bytes.Equal(before, after) {
		t.Fatalf("OpenBolt changed the file it refused: %d bytes before, %d after", len(before), len(after))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode() != fiBefore.Mode() {
		t.Fatalf("OpenBolt changed the refused file's mode: %v, %v; want %v", fi.Mode(), err, fiBefore.Mode())
	}
}

func TestBoltNotJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := map[string]func(path string){
		"empty":       func(p string) { writeFile(t, p, nil) },
		"random-10":   func(p string) { writeFile(t, p, random(10)) },
		"random-4096": func(p string) { writeFile(t, p, random(4096)) },
		"random-100K": func(p string) { writeFile(t, p, random(100<<10)) },
		"text":        func(p string) { writeFile(t, p, []byte("# not a journal\nhello\n")) },
		"bbolt-users": func(p string) {
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("users"))
				if err != nil {
					return err
				}
				return b.Put([]byte("alice"), []byte(`{"admin":true}`))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		},
		"bbolt-empty": func(p string) {
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, make := range files {
		path := filepath.Join(dir, name)
		make(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			openFails(t, path, journal.ErrNotJournal)
		})
	}
}

// usedSize is the size the journal at path needs: bbolt's high-water mark.
// The file itself may be longer (bbolt grows it ahead of use).
func usedSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBoltTruncated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "full.db")
	makeJournal(t, src)
	full := readFile(t, src)
	used := usedSize(t, src)
	if used < 8*pageSize || used > int64(len(full)) {
		t.Fatalf("journal uses %d bytes of a %d-byte file, want at least 8 pages and at most the file", used, len(full))
	}
	t.Logf("journal file: %d bytes, %d in use", len(full), used)
	cases := []struct {
		name string
		size int64
		want error
	}{
		// Shorter than the bbolt magic number's offset: nothing says bbolt.
		{"10 bytes", 10, journal.ErrNotJournal},
		// The magic is there but no whole meta page: a damaged journal.
		{"100 bytes", 100, journal.ErrCorrupt},
		// Meta page 0 whole, meta page 1 cut: too small for bbolt.
		{"one page and 100 bytes", pageSize + 100, journal.ErrCorrupt},
		// Both meta pages whole; they claim more pages than the file has.
		{"half", used / 2, journal.ErrCorrupt},
		{"less one page", used - pageSize, journal.ErrCorrupt},
		{"less one byte", used - 1, journal.ErrCorrupt},
	}
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		writeFile(t, path, full[:c.size])
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			openFails(t, path, c.want)
		})
	}
}

func TestBoltMetaPagesDamaged(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	makeJournal(t, path)
	data := readFile(t, path)
	// A meta page is a 16-byte page header, then magic (4 bytes) and
	// version (4), then page size, flags, root, freelist, pgid, txid and
	// checksum. Keep magic and version; overwrite the rest.
	for _, page := range []int{0, 1} {
		off := page * pageSize
		for i := off + 24; i < off+80; i++ {
			data[i] = 0xa5
		}
	}
	writeFile(t, path, data)
	openFails(t, path, journal.ErrCorrupt)
}

// TestBoltFreelistDamaged damages the page that bbolt's active meta names
// as the freelist: the meta pages are sound, so the damage shows only when
// bbolt loads the freelist to open the file for writing.
func TestBoltFreelistDamaged(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	makeJournal(t, path)
	data := readFile(t, path)
	// In a meta page: txid at byte 64, freelist page id at byte 48.
	meta := 0
	if binary.LittleEndian.Uint64(data[pageSize+64:]) > binary.LittleEndian.Uint64(data[64:]) {
		meta = pageSize
	}
	freelist := int(binary.LittleEndian.Uint64(data[meta+48:]))
	if freelist < 2 || (freelist+1)*pageSize > len(data) {
		t.Fatalf("freelist page id %d read from the meta page is out of range", freelist)
	}
	for i := freelist * pageSize; i < (freelist+1)*pageSize; i++ {
		data[i] = 0xff
	}
	writeFile(t, path, data)
	openFails(t, path, journal.ErrCorrupt)
}

// flipAll flips one byte in the middle of every copy of payload in data
// (bbolt's copy-on-write can leave stale copies in free pages) and returns
// how many copies it found.
func flipAll(data []byte, payload string) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(payload))
		if j < 0 {
			return n
		}
		data[i+j+len(payload)/2] ^= 0x20
		i += j + len(payload)
		n++
	}
}

func TestBoltDamagedValue(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	ids := makeJournal(t, path)
	data := readFile(t, path)
	if n := flipAll(data, canaryRecord); n == 0 {
		t.Fatalf("record payload not found in the file")
	}
	if n := flipAll(data, canaryInput); n == 0 {
		t.Fatalf("run input payload not found in the file")
	}
	writeFile(t, path, data)

	s, err := openBolt(t, path, nil)
	if err != nil {
		t.Fatalf("OpenBolt of a journal with damaged values = %v, want success (damage in data pages shows on read)", err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()

	wantCorrupt := func(what, run string, err error) {
		t.Helper()
		var ce *journal.CorruptError
		if !errors.Is(err, journal.ErrCorrupt) || !errors.As(err, &ce) {
			t.Fatalf("%s = %v, want a *CorruptError matching ErrCorrupt", what, err)
		}
		if ce.RunID != run {
			t.Fatalf("%s: CorruptError.RunID = %q, want %q (error: %v)", what, ce.RunID, run, err)
		}
		if ce.Path != path {
			t.Fatalf("%s: CorruptError.Path = %q, want %q", what, ce.Path, path)
		}
		t.Logf("%s: %v", what, err)
	}
	_, err = s.Records(ctx, "canary")
	wantCorrupt("Records(canary)", "canary", err)
	if !strings.Contains(err.Error(), "record 1.0") {
		t.Fatalf("Records(canary) = %v, want the error to name record 1.0", err)
	}
	if _, err := s.GetRun(ctx, "canary"); err != nil {
		t.Fatalf("GetRun(canary) = %v, want success: only a record of it is damaged", err)
	}
	_, err = s.GetRun(ctx, "canary-input")
	wantCorrupt("GetRun(canary-input)", "canary-input", err)
	listed, err := s.ListRuns(ctx, journal.Filter{})
	wantCorrupt("ListRuns", "canary-input", err)
	if len(listed) != len(ids)+1 { // every run but the damaged one
		t.Fatalf("ListRuns returned %d runs with its error, want the %d undamaged ones", len(listed), len(ids)+1)
	}
	err = s.Commit(ctx, &journal.Batch{Update: []journal.Update{{RunID: "canary-input", Status: journal.StatusParked}}})
	wantCorrupt("Commit(update canary-input)", "canary-input", err)

	// Everything else reads, and the store still takes writes.
	for _, id := range ids {
		if _, err := s.GetRun(ctx, id); err != nil {
			t.Fatalf("GetRun(%s) = %v, want success", id, err)
		}
		if rs, err := s.Records(ctx, id); err != nil || len(rs) != 5 {
			t.Fatalf("Records(%s) = %d records, %v; want 5, nil", id, len(rs), err)
		}
	}
	if rs, err := s.ListRuns(ctx, journal.Filter{Status: journal.StatusCompleted}); err != nil || len(rs) != 50 {
		t.Fatalf("ListRuns(completed) = %d runs, %v; want 50, nil", len(rs), err)
	}
	if err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: ids[0], Record: journal.Record{Pos: 5}}}}); err != nil {
		t.Fatalf("Commit to an undamaged run = %v, want nil", err)
	}
}

// TestBoltFileShrinksWhileOpen cuts the file under an open store: reads of
// the lost pages fault inside bbolt's memory map, which must come back as
// errors, not crash the process.
func TestBoltFileShrinksWhileOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	ids := makeJournal(t, path)
	s, err := openBolt(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := os.Truncate(path, 2*pageSize); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	failed := 0
	for _, id := range ids {
		if _, err := s.Records(ctx, id); err != nil {
			if !errors.Is(err, journal.ErrCorrupt) {
				t.Fatalf("Records(%s) on a shrunken file = %v, want nil or ErrCorrupt", id, err)
			}
			if failed == 0 {
				t.Logf("Records(%s): %v", id, err)
			}
			failed++
		}
	}
	t.Logf("%d of %d Records calls failed", failed, len(ids))
	if _, err := s.ListRuns(ctx, journal.Filter{}); !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("ListRuns on a shrunken file = %v, want ErrCorrupt", err)
	}
	if failed == 0 {
		t.Fatalf("every Records call succeeded on a file cut to two pages, want ErrCorrupt")
	}
}

func TestBoltLockedInProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	s, err := openBolt(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []journal.BoltOptions{{LockTimeout: 200 * time.Millisecond}, {LockTimeout: 200 * time.Millisecond, ReadOnly: true}} {
		start := time.Now()
		s2, err := openBolt(t, path, &o)
		elapsed := time.Since(start)
		if s2 != nil {
			s2.Close()
		}
		if !errors.Is(err, journal.ErrLocked) {
			t.Fatalf("second OpenBolt(%+v) while the first is open = %v, want ErrLocked", o, err)
		}
		t.Logf("ErrLocked after %v: %v", elapsed, err)
		if elapsed > 10*time.Second { // a hang, not a slow machine
			t.Fatalf("OpenBolt with LockTimeout %v took %v to give up", o.LockTimeout, elapsed)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = openBolt(t, path, &journal.BoltOptions{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("OpenBolt after the first store closed = %v, want success", err)
	}
	s.Close()
}

const helperEnv = "DURABLE_JOURNAL_HELPER_PATH"

// TestHelperProcess is not a test: TestBoltLockedByOtherProcess runs the
// test binary again to execute it in a child process, which opens the
// journal, writes a run, says "ready" and waits for its stdin to close.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestBoltLockedByOtherProcess")
	}
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	if _, _, err := s.CreateRun(context.Background(), journal.Run{ID: "from-child", Workflow: "wf", Status: journal.StatusRunning}); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func TestBoltLockedByOtherProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitOnce sync.Once
	wait := func() { waitOnce.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(func() { stdin.Close(); wait() })

	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if strings.TrimSpace(l) != "ready" {
			wait()
			t.Fatalf("child said %q, want \"ready\"; stderr: %s", l, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("child did not open the journal within a minute")
	}

	s, err := openBolt(t, path, &journal.BoltOptions{LockTimeout: 200 * time.Millisecond})
	if s != nil {
		s.Close()
	}
	if !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("OpenBolt while another process has the journal open = %v, want ErrLocked", err)
	}
	t.Logf("while the child holds it: %v", err)

	wait() // SIGKILL: the child gets no chance to close the journal
	s, err = openBolt(t, path, &journal.BoltOptions{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("OpenBolt after the child was killed = %v, want success", err)
	}
	defer s.Close()
	if _, err := s.GetRun(t.Context(), "from-child"); err != nil {
		t.Fatalf("GetRun of the run the killed child created = %v, want it durable", err)
	}
}

func TestBoltNewFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "j.db")
	s, err := openBolt(t, path, nil)
	if err != nil {
		t.Fatalf("OpenBolt on a new path = %v, want success", err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Fatalf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("new journal has mode %v, want 0600", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "j.db" {
			t.Fatalf("directory holds %q after OpenBolt, want only j.db (no temporary files)", e.Name())
		}
	}
}

func TestBoltReadOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "j.db")
	ids := makeJournal(t, path)
	before := readFile(t, path)
	ro := &journal.BoltOptions{ReadOnly: true, LockTimeout: 200 * time.Millisecond}

	s1, err := openBolt(t, path, ro)
	if err != nil {
		t.Fatalf("OpenBolt(ReadOnly) of a closed journal = %v, want success", err)
	}
	s2, err := openBolt(t, path, ro)
	if err != nil {
		t.Fatalf("a second OpenBolt(ReadOnly) = %v, want success (readers share the file)", err)
	}
	ctx := t.Context()
	for _, s := range []*journal.Bolt{s1, s2} {
		if _, err := s.GetRun(ctx, ids[0]); err != nil {
			t.Fatalf("GetRun on a read-only store = %v, want success", err)
		}
		if rs, err := s.ListRuns(ctx, journal.Filter{}); err != nil || len(rs) != len(ids)+2 {
			t.Fatalf("ListRuns on a read-only store = %d runs, %v; want %d, nil", len(rs), err, len(ids)+2)
		}
	}
	if err := s1.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: ids[0], Record: journal.Record{Pos: 9}}}}); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("Commit on a read-only store = %v, want ErrInvalid", err)
	}
	if _, _, err := s1.CreateRun(ctx, journal.Run{ID: "new", Workflow: "wf", Status: journal.StatusRunning}); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("CreateRun on a read-only store = %v, want ErrInvalid", err)
	}
	if s, err := openBolt(t, path, &journal.BoltOptions{LockTimeout: 200 * time.Millisecond}); !errors.Is(err, journal.ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenBolt for writing while readers have the file = %v, want ErrLocked", err)
	}
	s1.Close()
	s2.Close()
	if err := s1.Commit(ctx, &journal.Batch{}); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("Commit on a closed read-only store = %v, want ErrClosed", err)
	}
	if after := readFile(t, path); !bytes.Equal(before, after) {
		t.Fatalf("a read-only session changed the file")
	}

	missing := filepath.Join(dir, "missing.db")
	if s, err := openBolt(t, missing, ro); !errors.Is(err, fs.ErrNotExist) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenBolt(ReadOnly) of a missing file = %v, want an error matching fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenBolt(ReadOnly) created %s (stat: %v), want no file", missing, err)
	}
}

func TestBoltReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	ids := makeJournal(t, path)
	s, err := openBolt(t, path, nil)
	if err != nil {
		t.Fatalf("OpenBolt of an existing journal = %v, want success", err)
	}
	defer s.Close()
	ctx := t.Context()
	for i, id := range ids {
		r, err := s.GetRun(ctx, id)
		if err != nil || string(r.Input) != "input of "+id {
			t.Fatalf("GetRun(%s) after reopening = %q, %v; want its input", id, r.Input, err)
		}
		if recs, err := s.Records(ctx, id); err != nil || len(recs) != 5 {
			t.Fatalf("Records(%s) after reopening = %d, %v; want 5 records", id, len(recs), err)
		}
		if ms, err := s.Messages(ctx, id, "c", 0); err != nil || len(ms) != 1 {
			t.Fatalf("Messages(%s) after reopening = %d, %v; want 1 message", id, len(ms), err)
		}
		if wantWake := i%4 == 1; wantWake == r.WakeAt.IsZero() {
			t.Fatalf("run %s WakeAt = %v after reopening, want set: %v", id, r.WakeAt, wantWake)
		}
	}
	if ts, err := s.Timers(ctx, time.Unix(1900000000, 0), 0); err != nil || len(ts) != 50 {
		t.Fatalf("Timers after reopening = %d entries, %v; want 50", len(ts), err)
	}
}
