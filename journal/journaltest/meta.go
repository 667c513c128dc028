package journaltest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/durable-go/durable/journal"
)

// testMeta: a run's Meta, given at creation by CreateRun or Batch.Create,
// reads back unchanged through GetRun, Load and ListRuns, survives updates
// and ContinueAsNew, and is bounded by MaxMetaLen.
func testMeta(t *testing.T, s journal.Store) {
	meta := []byte("traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	r := newRun("with-meta")
	r.Meta = meta
	if _, _, err := s.CreateRun(t.Context(), r); err != nil {
		t.Fatalf("CreateRun with Meta: %v", err)
	}
	child := newRun("child")
	child.Parent, child.Meta = "with-meta", []byte{0, 1, 2, 255}
	commit(t, s, "create a child with Meta", &journal.Batch{Now: at(1), Create: []journal.Run{child}})
	createRuns(t, s, "no-meta")

	check := func(when string) {
		t.Helper()
		for id, want := range map[string][]byte{"with-meta": meta, "child": {0, 1, 2, 255}, "no-meta": nil} {
			if got := getRun(t, s, id).Meta; !bytes.Equal(got, want) {
				t.Fatalf("%s: GetRun(%q).Meta = %q, want %q", when, id, got, want)
			}
			l, err := s.Load(t.Context(), id)
			if err != nil || !bytes.Equal(l.Run.Meta, want) {
				t.Fatalf("%s: Load(%q) = Meta %q, err %v; want Meta %q", when, id, l.Run.Meta, err, want)
			}
		}
		for _, lr := range listRuns(t, s, journal.Filter{}) {
			if lr.ID == "with-meta" && !bytes.Equal(lr.Meta, meta) {
				t.Fatalf("%s: ListRuns gives Meta %q for %q, want %q", when, lr.Meta, lr.ID, meta)
			}
		}
	}
	check("after creation")

	again := newRun("with-meta")
	again.Meta = []byte("other")
	if got, created, err := s.CreateRun(t.Context(), again); err != nil || created || !bytes.Equal(got.Meta, meta) {
		t.Fatalf("CreateRun of an existing id with other Meta = created %v, Meta %q, err %v; want the stored run unchanged", created, got.Meta, err)
	}
	commit(t, s, "updates", &journal.Batch{Now: at(2),
		Append: []journal.Append{appendRec("with-meta", 0, 0, "a")},
		Update: []journal.Update{{RunID: "with-meta", SetWake: true, Wake: at(50)}, {RunID: "child", CancelRequested: true}},
	})
	commit(t, s, "continue as new", &journal.Batch{Now: at(3), Update: []journal.Update{{RunID: "with-meta", ContinueAsNew: true, Input: []byte("next")}}})
	check("after updates and ContinueAsNew")
	commit(t, s, "finish", &journal.Batch{Now: at(4), Update: []journal.Update{{RunID: "with-meta", Status: journal.StatusCompleted, Output: []byte("out")}}})
	if got := getRun(t, s, "with-meta").Meta; !bytes.Equal(got, meta) {
		t.Fatalf("Meta of a completed run = %q, want %q", got, meta)
	}

	big := newRun("big-meta")
	big.Meta = make([]byte, journal.MaxMetaLen+1)
	if _, _, err := s.CreateRun(t.Context(), big); !errors.Is(err, journal.ErrInvalid) {
		t.Fatalf("CreateRun with %d bytes of Meta: err %v, want ErrInvalid", len(big.Meta), err)
	}
	wantNotFound(t, s, "big-meta")
}
