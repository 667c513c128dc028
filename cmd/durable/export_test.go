package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/dashdemo"
	"github.com/durable-go/durable/journal"
)

func TestExport(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	out := filepath.Join(t.TempDir(), "out.journal")
	stdout, stderr, code := durableCmd(t, "export", path, "batch-1", "order-3", "signup-1", "signup-2", "legacy-1", "-o", out)
	wantCode(t, code, exitOK)
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	wantContains(t, "stdout", stdout, "wrote "+out+": 6 runs") // batch-1's child too

	all, got := snapshot(t, path), snapshot(t, out)
	if len(got) != 6 {
		t.Errorf("exported runs: %v", keys(got))
	}
	for k, recs := range got {
		if !reflect.DeepEqual(recs, all[k]) {
			t.Errorf("run %s: records\n%v\nwant\n%v", k, recs, all[k])
		}
	}
	src, dst := openRO(t, path), openRO(t, out)
	for _, id := range []string{"batch-1", "batch-1/order-a", "order-3", "signup-1", "signup-2", "legacy-1"} {
		a, err := src.GetRun(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dst.GetRun(t.Context(), id)
		if err != nil {
			t.Fatalf("run %s not exported: %v", id, err)
		}
		a.ParentEpoch, a.Epoch = 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Errorf("run %s exported as\n%+v\nwant\n%+v", id, b, a)
		}
	}

	// The export replays against the code that wrote it.
	r := &errRecorder{TB: t}
	durabletest.Replay(r, out, orderWF, batchWF, signupWF, legacyWF)
	if len(r.errs) > 0 {
		t.Errorf("Replay of the export: %q", r.errs)
	}
}

func TestExportErrors(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	out := filepath.Join(t.TempDir(), "out.journal")
	_, stderr, code := durableCmd(t, "export", path, "order-1", "nope", "-o", out)
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, `no run "nope"`)
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed export left %s", out)
	}
	_, _, code = durableCmd(t, "export", path, "-o", out)
	wantCode(t, code, exitUsage)
	_, _, code = durableCmd(t, "export", path, "order-1")
	wantCode(t, code, exitUsage)
	if err := os.WriteFile(out, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = durableCmd(t, "export", path, "order-1", "-o", out)
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, "exists")
}

func openRO(t *testing.T, path string) *journal.Bolt {
	t.Helper()
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// errRecorder is a testing.TB that keeps the errors reported to it.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(sprintf(format, args...)))
}
func (r *errRecorder) Error(args ...any) { r.errs = append(r.errs, sprint(args...)) }

var (
	sprintf = fmt.Sprintf
	sprint  = fmt.Sprint
)

// TestExportRemote: export -addr copies runs of a running application,
// through its web handler, into a journal file that replays against the
// application's workflows.
func TestExportRemote(t *testing.T) {
	e, addr, _ := live(t)
	out := filepath.Join(t.TempDir(), "live.journal")
	stdout, stderr, code := durableCmd(t, "-addr", addr, "export", "fanout-42", "signup-ada", "-o", out)
	wantCode(t, code, exitOK)
	if stderr != "" {
		t.Errorf("stderr: %s", stderr)
	}
	wantContains(t, "stdout", stdout, "wrote "+out)

	dst := openRO(t, out)
	runs, err := dst.ListRuns(t.Context(), journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range runs {
		ids[r.ID] = true
		want, wantRecs, err := e.RunJournal(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.Records(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 || len(wantRecs) > 0 {
			if !reflect.DeepEqual(got, wantRecs) {
				t.Errorf("run %s: records\n%v\nwant\n%v", r.ID, got, wantRecs)
			}
		}
		if r.Workflow != want.Workflow || r.Status != want.Status || !reflect.DeepEqual(r.Input, want.Input) {
			t.Errorf("run %s exported as %+v, want %+v", r.ID, r, want)
		}
	}
	if !ids["fanout-42"] || !ids["signup-ada"] || !ids["fanout-42/2"] {
		t.Errorf("exported runs %v: want fanout-42 with its children, and signup-ada", ids)
	}
	dst.Close()

	r := &errRecorder{TB: t}
	durabletest.Replay(r, out, dashdemo.Workflows...)
	for _, e := range r.errs {
		if !strings.Contains(e, "signup-ada") { // parked on purpose by the demo (a bad deploy)
			t.Errorf("Replay of the export: %s", e)
		}
	}

	_, stderr, code = durableCmd(t, "-addr", addr, "export", "nope", "-o", filepath.Join(t.TempDir(), "x.journal"))
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, `no run "nope"`)
}
