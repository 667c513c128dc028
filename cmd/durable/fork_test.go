package main

import (
	"reflect"
	"testing"

	"github.com/durable-go/durable/journal"
)

func TestFork(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	stdout, _, code := durableCmd(t, "fork", path, "order-1", "1", "-id", "order-1b")
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, "forked run order-1 at position 1 as order-1b", `workflow "order"`)

	s := openRO(t, path)
	src, err := s.Records(t.Context(), "order-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Records(t.Context(), "order-1b")
	if err != nil {
		t.Fatal(err)
	}
	var want []journal.Record
	for _, r := range src {
		if r.Pos < 1 {
			want = append(want, r)
		}
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("fork's records %v, want %v", got, want)
	}
	a, _ := s.GetRun(t.Context(), "order-1")
	b, err := s.GetRun(t.Context(), "order-1b")
	if err != nil || b.Status != journal.StatusRunning || b.Workflow != a.Workflow || !reflect.DeepEqual(b.Input, a.Input) {
		t.Errorf("fork's run %+v, %v", b, err)
	}
	s.Close()

	_, stderr, code := durableCmd(t, "fork", path, "order-1", "9")
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, "positions 0 to")
	_, _, code = durableCmd(t, "fork", path, "order-1", "x")
	wantCode(t, code, exitUsage)
	_, stderr, code = durableCmd(t, "fork", path, "nope", "0")
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, `no run "nope"`)
}
