package postgres_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestScheduleTwoEngines: a schedule that fires every second on a store
// shared by two engines (each on its own store, as two processes would
// be) starts each slot's run once, with no slot left out, while the
// engine that runs the schedule closes and the other takes it over. A
// third engine with no workflows (a CLI's) creates and reads the
// schedule but never runs it.
func TestScheduleTwoEngines(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	job := durable.Define("pg-sched-job", func(ctx durable.Context, n int) (int, error) { return n, nil })
	open := func(wfs ...durable.Definition) *durable.Engine {
		s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, LeaseTimeout: time.Second, PollInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		e, err := durable.New(s, &durable.Config{Workflows: wfs, Logger: slog.New(slog.DiscardHandler), Retention: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b, client := open(job), open(job), open()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard, not a timing assertion
	defer cancel()
	if err := client.CreateSchedule(ctx, "tick", durable.Schedule{Workflow: "pg-sched-job", Input: 1, Every: time.Second, Overlap: durable.OverlapAllowAll}); err != nil {
		t.Fatal(err)
	}
	info := waitStarted(t, ctx, client, 3)
	// Close the engine that runs the schedule (the only run either holds
	// for long); the other takes it over.
	owner, other := a, b
	if b.Stats().LoadedRuns > 0 {
		owner, other = b, a
	}
	if owner.Stats().LoadedRuns == 0 {
		t.Fatal("neither engine holds the schedule's run")
	}
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	info = waitStarted(t, ctx, client, info.Started+4)
	if err := client.PauseSchedule(ctx, "tick"); err != nil {
		t.Fatal(err)
	}
	info, err := client.GetSchedule(ctx, "tick")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for after := ""; ; {
		page, err := other.List(ctx, durable.ListOptions{Workflow: "pg-sched-job", After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
		}
		if after = page.NextAfter; after == "" {
			break
		}
	}
	if len(ids) != info.Started || len(ids) < 7 {
		t.Fatalf("%d firing runs, the schedule counts %d started", len(ids), info.Started)
	}
	slices.Sort(ids)
	first, err := time.Parse(time.RFC3339, strings.TrimPrefix(ids[0], "tick@"))
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if want := "tick@" + first.Add(time.Duration(i)*time.Second).Format(time.RFC3339); id != want {
			t.Fatalf("firing %d is %s, want %s: a slot was left out or started twice (all: %v)", i, id, want, ids)
		}
	}
	if r, err := client.Get(ctx, info.RunID); err != nil || r.Owner == "" || other.Stats().LoadedRuns == 0 {
		t.Errorf("the schedule's run after the takeover: %+v, %v; held by the other engine: %v", r, err, other.Stats().LoadedRuns > 0)
	}
	if client.Stats().LoadedRuns != 0 {
		t.Errorf("the engine without workflows holds %d runs", client.Stats().LoadedRuns)
	}
}

// waitStarted waits until schedule tick started at least n runs.
func waitStarted(t *testing.T, ctx context.Context, e *durable.Engine, n int) durable.ScheduleInfo {
	t.Helper()
	for {
		info, err := e.GetSchedule(ctx, "tick")
		if err != nil {
			t.Fatal(err)
		}
		if info.Started >= n {
			return info
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the schedule started %d runs, waiting for %d: %v", info.Started, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
