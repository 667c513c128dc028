package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/durable-go/durable/journal"
)

// snapshot reads every run of the journal at path with its records.
func snapshot(t *testing.T, path string) map[string][]journal.Record {
	t.Helper()
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("OpenBolt(%s) = %v", path, err)
	}
	defer s.Close()
	runs, err := s.ListRuns(t.Context(), journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]journal.Record{}
	for _, r := range runs {
		recs, err := s.Records(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[r.ID+" "+r.Status.String()] = recs
	}
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCompactInPlace(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	want := snapshot(t, path)
	before := fileSize(t, path)
	stdout, _, code := durableCmd(t, "compact", path)
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, "compacted "+path+": ", " bytes", "before", "after")
	if after := fileSize(t, path); after > before {
		t.Errorf("compacted file: %d bytes, more than the %d before", after, before)
	}
	if got := snapshot(t, path); !reflect.DeepEqual(got, want) {
		t.Errorf("runs after compaction:\n%v\nwant\n%v", got, want)
	}
	if _, _, code := durableCmd(t, "check", path); code != exitOK {
		t.Errorf("check of the compacted file: exit %d, want 0", code)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.compact-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestCompactToOut(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	want := snapshot(t, path)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "small.db")
	stdout, _, code := durableCmd(t, "compact", path, "-o", out)
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, "wrote "+out+": ")
	if got := snapshot(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("runs in the copy:\n%v\nwant\n%v", got, want)
	}
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Errorf("compact -o changed the source file")
	}
	if fileSize(t, out) > int64(len(orig)) {
		t.Errorf("the copy is larger than the source")
	}

	// OUT exists now: refused.
	_, stderr, code := durableCmd(t, "compact", "-o", out, path)
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, out+" exists")
}

func TestCompactRefusesBadFile(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	if err := os.Truncate(path, fileSize(t, path)/2); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(path)
	_, stderr, code := durableCmd(t, "compact", path)
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, "is damaged and cannot be opened")
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Errorf("compact changed a damaged file")
	}
}
