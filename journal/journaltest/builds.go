package journaltest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/durable-go/durable/journal"
)

// testBuilds: a run's Builds, given at creation, grow by Update.Build
// (not repeating the latest), keep the first and the latest MaxBuilds-1,
// read back through GetRun, Load and ListRuns, survive ContinueAsNew and
// the end of the run, and bad build ids are refused.
func testBuilds(t *testing.T, s journal.Store) {
	r := newRun("built")
	r.Builds = []string{"v1"}
	if _, _, err := s.CreateRun(t.Context(), r); err != nil {
		t.Fatalf("CreateRun with Builds: %v", err)
	}
	createRuns(t, s, "unbuilt")
	check := func(when, id string, want ...string) {
		t.Helper()
		if got := getRun(t, s, id).Builds; !slices.Equal(got, want) {
			t.Fatalf("%s: GetRun(%q).Builds = %q, want %q", when, id, got, want)
		}
		if l, err := s.Load(t.Context(), id); err != nil || !slices.Equal(l.Run.Builds, want) {
			t.Fatalf("%s: Load(%q).Builds = %q, %v; want %q", when, id, l.Run.Builds, err, want)
		}
		for _, lr := range listRuns(t, s, journal.Filter{}) {
			if lr.ID == id && !slices.Equal(lr.Builds, want) {
				t.Fatalf("%s: ListRuns gives Builds %q for %q, want %q", when, lr.Builds, id, want)
			}
		}
	}
	check("after creation", "built", "v1")
	check("after creation", "unbuilt")
	commit(t, s, "the same build again", &journal.Batch{Now: at(1), Update: []journal.Update{{RunID: "built", Build: "v1"}}})
	check("after the same build", "built", "v1")
	commit(t, s, "a new build", &journal.Batch{Now: at(2), Update: []journal.Update{{RunID: "built", Build: "v2"}, {RunID: "unbuilt", Build: "v2"}}})
	check("after a new build", "built", "v1", "v2")
	check("after a new build", "unbuilt", "v2")
	commit(t, s, "back to v1", &journal.Batch{Now: at(3), Update: []journal.Update{{RunID: "built", Build: "v1"}}})
	check("after a rollback", "built", "v1", "v2", "v1")
	commit(t, s, "continue as new", &journal.Batch{Now: at(4), Update: []journal.Update{{RunID: "built", ContinueAsNew: true, Input: []byte("x")}}})
	check("after ContinueAsNew", "built", "v1", "v2", "v1")

	want := []string{"v1"}
	for i := range journal.MaxBuilds + 3 {
		b := fmt.Sprintf("b%d", i)
		commit(t, s, "build "+b, &journal.Batch{Now: at(5 + i), Update: []journal.Update{{RunID: "built", Build: b}}})
		want = append(want, b)
	}
	want = append(want[:1:1], want[len(want)-journal.MaxBuilds+1:]...)
	check("after many builds", "built", want...)
	commit(t, s, "finish", &journal.Batch{Now: at(40), Update: []journal.Update{{RunID: "built", Status: journal.StatusCompleted}}})
	check("after the end", "built", want...)

	long := strings.Repeat("x", journal.MaxBuildLen+1)
	if err := s.Commit(t.Context(), &journal.Batch{Now: at(41), Update: []journal.Update{{RunID: "unbuilt", Build: long}}}); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("Update.Build of %d bytes: %v, want ErrInvalid", len(long), err)
	}
	bad := newRun("bad-builds")
	bad.Builds = []string{long}
	if _, _, err := s.CreateRun(t.Context(), bad); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("CreateRun with a build id of %d bytes: %v, want ErrInvalid", len(long), err)
	}
	wantNotFound(t, s, "bad-builds")
}
