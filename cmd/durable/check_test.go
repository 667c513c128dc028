package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/boltcheck"
	"github.com/durable-go/durable/journal"
)

func TestCheckClean(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	stdout, stderr, code := durableCmd(t, "check", path)
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout,
		"journal "+path+": 8 runs (1 running, 1 parked, 4 completed, 1 failed, 1 canceled), ",
		" records (", " epochs), 2 messages\n",
		"bbolt check: ok\n", "checksums and indexes: ok\n", "the journal is sound.\n")
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
}

// flipEvery flips a byte in the middle of every copy of s in the file at
// path (bbolt's copy-on-write may leave stale copies in free pages) and
// returns how many it found.
func flipEvery(t *testing.T, path, s string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(s))
		if j < 0 {
			break
		}
		data[i+j+len(s)/2] ^= 0x20
		i += j + len(s)
		n++
	}
	if n == 0 {
		t.Fatalf("%q not found in %s", s, path)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCheckDamagedRecord(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	flipEvery(t, path, reserveCanary+"bob@example.com") // signup-1
	stdout, _, code := durableCmd(t, "check", path)
	wantCode(t, code, exitFailure)
	wantContains(t, "stdout", stdout,
		"bbolt check: ok\n",
		"checksums and indexes: 1 problem:\n",
		`  run "signup-1" record 0.0: checksum mismatch`,
		"this run will be parked when the engine reaches it",
		"1 run is affected; other runs are fine.\n")

	// What the check foretold: the engine parks the run; the others go on.
	e := openEngine(t, path, orderWF, batchWF, signupWF)
	ctx := testCtx(t)
	if err := waitFor(ctx, e, "signup-1", func(i durable.RunInfo) bool { return i.Status == durable.StatusParked }); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTruncated(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{fi.Size() / 2, 4096 + 100, 100} {
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := durableCmd(t, "check", path)
		wantCode(t, code, exitFailure)
		wantContains(t, "output", stdout+stderr, "is damaged and cannot be opened", "restore it from a backup")
	}
}

func TestBboltCheckChild(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	res := boltcheck.Run(t.Context(), exec.Command(os.Args[0], bboltCheckCommand, path), bboltCheckTimeout)
	if res.Err != nil || res.Crashed || res.Count != 0 {
		t.Errorf("bbolt check of a sound file: %+v, want no problem", res)
	}
	res = boltcheck.Run(t.Context(), exec.Command(os.Args[0], crashCommand), bboltCheckTimeout)
	if !res.Crashed {
		t.Fatalf("a child that crashed: %+v, want crashed", res)
	}
	if !strings.Contains(res.Detail, "exit status 2") || !strings.Contains(res.Detail, "panic") {
		t.Errorf("crash detail %q does not say how the child died", res.Detail)
	}
	t.Logf("crash detail: %s", res.Detail)
}

func TestCheckBboltCrash(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	var stdout, stderr bytes.Buffer
	c := &cli{ctx: t.Context(), stdout: &stdout, stderr: &stderr, self: func(...string) (*exec.Cmd, error) {
		return exec.Command(os.Args[0], crashCommand), nil
	}}
	code := c.main([]string{"check", path})
	t.Logf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	wantCode(t, code, exitFailure)
	wantContains(t, "stdout", stdout.String(),
		"bbolt check crashed: the file is damaged (", "checksums and indexes: ok\n",
		"the file is damaged: work on a copy")
}

// TestCheckDestroyedPage overwrites the bbolt page that holds one run's
// records: both checks find it, and neither crashes this process.
func TestCheckDestroyedPage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &journal.Batch{Create: []journal.Run{{ID: "big", Workflow: "wf", Status: journal.StatusRunning}, {ID: "small", Workflow: "wf", Status: journal.StatusRunning}}}
	for pos := range uint32(8) {
		b.Append = append(b.Append, journal.Append{RunID: "big", Record: journal.Record{Pos: pos, Data: fmt.Appendf(nil, "BIG-%d-%s", pos, strings.Repeat("x", 1500))}})
	}
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
	const pageSize = 4096
	for j := i / pageSize * pageSize; j < (i/pageSize+1)*pageSize; j++ {
		data[j] = 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := durableCmd(t, "check", path)
	wantCode(t, code, exitFailure)
	wantContains(t, "stdout", stdout, "2 runs (2 running)", `run "big" records: bbolt failed`, "the file is damaged: work on a copy")
	if strings.Contains(stdout, "bbolt check: ok") {
		t.Errorf("bbolt's check found nothing wrong")
	}
}

// TestCheckDamagedRun damages the stored value of an unfinished run.
func TestCheckDamagedRun(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	const input = "VICTIM-INPUT-CANARY-5e0c7b21"
	s, err := journal.OpenBolt(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateRun(t.Context(), journal.Run{ID: "victim", Workflow: "signup", Status: journal.StatusRunning, Input: []byte(input)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	flipEvery(t, path, input)

	stdout, _, code := durableCmd(t, "check", path)
	wantCode(t, code, exitFailure)
	wantContains(t, "stdout", stdout, "9 runs (", "1 unreadable)",
		`run "victim" run: checksum mismatch`, "(the status index lists it as running)",
		"the run cannot be read, and it is unfinished",
		"1 run is affected; other runs are fine.")

	// list shows the others and names the damaged one.
	stdout, stderr, code := durableCmd(t, "list", path)
	wantCode(t, code, exitFailure)
	wantContains(t, "stdout", stdout, "signup-1 ")
	wantContains(t, "stderr", stderr, `"victim"`, "checksum mismatch", "durable check "+path)
	_, stderr, code = durableCmd(t, "show", path, "victim")
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, "checksum mismatch")
}
