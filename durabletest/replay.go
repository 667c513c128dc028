package durabletest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// Replay replays every run in the journal file at path (a bbolt journal,
// or a file written by `durable export`) against defs, the workflows as
// the code has them now, executing no step, and reports each run that
// would park as a test error: the run, the position, what the journal
// holds there, what the code called and where. Runs of workflows missing
// from defs would park too (include child workflows). Finished runs are
// replayed as well: a change that breaks them would break runs that are
// still at that point.
//
// The file is opened read-only and never changed; a file that a running
// application holds is refused (export the runs, or copy the file while
// the application is stopped). Replay fails the test at once if the file
// cannot be read.
//
//	func TestOrdersReplay(t *testing.T) {
//		durabletest.Replay(t, "testdata/orders.journal", order, shipping)
//	}
//
// A run replays up to its last recorded operation, or until the code
// would have to execute something the journal holds no result for (a
// step interrupted by a crash, a wait in progress); positions after that
// point (other steps started with Go, say) are not checked, and Replay
// logs how many.
func Replay(t testing.TB, path string, defs ...durable.Definition) {
	t.Helper()
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("durabletest.Replay: open %s: %v", path, err)
		return
	}
	defer s.Close()
	ctx := context.Background()
	if c, ok := t.(interface{ Context() context.Context }); ok {
		ctx = c.Context()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	runs, failed := 0, 0
	for after := ""; ; {
		page, err := s.ListRuns(ctx, journal.Filter{After: after, Limit: 500})
		if err != nil && !errors.Is(err, journal.ErrCorrupt) {
			t.Fatalf("durabletest.Replay: list runs of %s: %v", path, err)
			return
		}
		if err != nil {
			t.Errorf("durabletest.Replay: %s: runs whose stored state is damaged are left out: %v", path, err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		for _, r := range page {
			runs++
			res, err := durable.CheckReplay(ctx, s, r.ID, defs...)
			if err != nil {
				t.Errorf("durabletest.Replay: %s: %v", path, err)
				failed++
				continue
			}
			if res.Err != nil {
				t.Error(replayReport(path, res))
				failed++
				continue
			}
			if res.Checked < res.Positions {
				t.Logf("durabletest.Replay: %s: run %q (%s): replay stopped at position %d of %d, where the code would execute something; the later positions were not checked",
					path, res.RunID, res.Status, res.Checked, res.Positions)
			}
		}
	}
	if failed == 0 {
		t.Logf("durabletest.Replay: %s: %d runs replay on this code", path, runs)
	}
}

// replayReport describes a run that would park: the diff between the
// journal and the code.
func replayReport(path string, res durable.ReplayResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "durabletest.Replay: %s: run %q (workflow %q, %s) would park on this code:\n", path, res.RunID, res.Workflow, res.Status)
	var nd *durable.NondeterminismError
	if errors.As(res.Err, &nd) {
		fmt.Fprintf(&b, "\tposition %d\n", nd.Position)
		fmt.Fprintf(&b, "\t- journal: %s\n", nd.Recorded)
		called := "returned"
		if nd.Called != "" {
			called = "called " + nd.Called
		}
		fmt.Fprintf(&b, "\t+ code:    %s\n", called)
		if nd.Location != "" {
			fmt.Fprintf(&b, "\t  at %s\n", nd.Location)
		}
	}
	fmt.Fprintf(&b, "\t(%v)", res.Err)
	return b.String()
}
