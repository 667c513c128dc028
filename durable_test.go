package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

func TestRunReturnsResult(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		var calls atomic.Int32
		add := durable.Define("add", func(ctx durable.Context, in [2]int) (int, error) {
			return durable.Step(ctx, "sum", func(context.Context) (int, error) {
				calls.Add(1)
				return in[0] + in[1], nil
			})
		})
		e := open(t, config(add))
		got, err := durable.Run(testCtx(t), e, add, "add-1", [2]int{2, 3})
		if err != nil || got != 5 {
			t.Fatalf("Run = %v, %v; want 5, nil", got, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("step executed %d times, want 1", n)
		}
		if info := mustGet(t, e, "add-1"); info.Status != durable.StatusCompleted || info.Err != nil {
			t.Errorf("Get = %v, %v; want completed, nil", info.Status, info.Err)
		}
	})
}

func TestGet(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		wf := durable.Define("get", func(ctx durable.Context, in int) (int, error) { return in, nil })
		e := open(t, config(wf))
		before := time.Now().Add(-time.Second) // slack for clock granularity, not a threshold
		if _, err := durable.Run(ctx, e, wf, "g-1", 1); err != nil {
			t.Fatal(err)
		}
		after := time.Now().Add(time.Second)
		info := mustGet(t, e, "g-1")
		if info.ID != "g-1" || info.Workflow != "get" || info.Status != durable.StatusCompleted || info.Err != nil || info.Parent != "" {
			t.Errorf("Get = %+v", info)
		}
		if info.CreatedAt.Before(before) || info.CreatedAt.After(after) {
			t.Errorf("CreatedAt %v not between %v and %v", info.CreatedAt, before, after)
		}
		if info.UpdatedAt.Before(info.CreatedAt) {
			t.Errorf("UpdatedAt %v before CreatedAt %v", info.UpdatedAt, info.CreatedAt)
		}
		if !info.WakeAt.IsZero() || !info.Deadline.IsZero() || info.CancelRequested {
			t.Errorf("Get = %+v; want no wake time, deadline or cancel request", info)
		}

		_, err := e.Get(ctx, "no-such-run")
		if !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Get of unknown id: err = %v; want ErrNotFound", err)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		type in struct{ Block bool }
		a := durable.Define("list-a", func(ctx durable.Context, in in) (int, error) {
			if in.Block {
				return durable.Step(ctx, "block", func(sctx context.Context) (int, error) { return 0, blockUntilDone(sctx) })
			}
			return 1, nil
		})
		b := durable.Define("list-b", func(ctx durable.Context, in in) (int, error) {
			return 0, errors.New("b fails")
		})
		e := open(t, config(a, b))

		var want []string // every id, sorted
		type job struct {
			id    string
			wf    int // 0: a, 1: b
			block bool
		}
		var jobs []job
		for i := range 250 {
			jobs = append(jobs, job{id: fmt.Sprintf("a-%03d", i)})
		}
		for i := range 20 {
			jobs = append(jobs, job{id: fmt.Sprintf("b-%02d", i), wf: 1})
		}
		for i := range 5 {
			jobs = append(jobs, job{id: fmt.Sprintf("r-%d", i), block: true})
		}
		work := make(chan job)
		errs := make(chan error, len(jobs))
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for j := range work {
					var err error
					switch {
					case j.block:
						_, err = durable.Start(ctx, e, a, j.id, in{Block: true})
					case j.wf == 0:
						_, err = durable.Run(ctx, e, a, j.id, in{})
					default:
						if _, rerr := durable.Run(ctx, e, b, j.id, in{}); rerr == nil {
							err = fmt.Errorf("run %s of list-b did not fail", j.id)
						}
					}
					if err != nil {
						errs <- fmt.Errorf("%s: %w", j.id, err)
					}
				}
			})
		}
		for _, j := range jobs {
			work <- j
			want = append(want, j.id)
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.Sort(want)
		for i := range 5 {
			waitStatus(t, e, fmt.Sprintf("r-%d", i), durable.StatusRunning)
		}

		// listAll pages through opts and checks the pages.
		listAll := func(opts durable.ListOptions) (ids []string, pages int) {
			t.Helper()
			seen := map[string]bool{}
			for {
				page, err := e.List(ctx, opts)
				if err != nil {
					t.Fatalf("List(%+v): %v", opts, err)
				}
				pages++
				if len(page.Runs) > opts.Limit && opts.Limit > 0 {
					t.Fatalf("page of %d runs, limit %d", len(page.Runs), opts.Limit)
				}
				for _, r := range page.Runs {
					if seen[r.ID] {
						t.Fatalf("List visited %q twice", r.ID)
					}
					seen[r.ID] = true
					if opts.Status != 0 && r.Status != opts.Status {
						t.Errorf("List(status %v) gave %q with status %v", opts.Status, r.ID, r.Status)
					}
					if opts.Workflow != "" && r.Workflow != opts.Workflow {
						t.Errorf("List(workflow %q) gave %q of %q", opts.Workflow, r.ID, r.Workflow)
					}
					ids = append(ids, r.ID)
				}
				if page.NextAfter == "" {
					return ids, pages
				}
				if len(page.Runs) == 0 || page.NextAfter != page.Runs[len(page.Runs)-1].ID {
					t.Fatalf("NextAfter %q is not the last id of the page", page.NextAfter)
				}
				opts.After = page.NextAfter
				if pages > 1000 {
					t.Fatal("List does not end")
				}
			}
		}

		all, pages := listAll(durable.ListOptions{Limit: 100})
		if !slices.Equal(all, want) {
			t.Errorf("paging over all runs visited %d ids (%d pages); want the %d ids in order", len(all), pages, len(want))
		}
		if pages != 3 {
			t.Errorf("%d pages of 100 for %d runs; want 3", pages, len(want))
		}
		completed, pages := listAll(durable.ListOptions{Status: durable.StatusCompleted, Workflow: "list-a", Limit: 50})
		if len(completed) != 250 || completed[0] != "a-000" || completed[249] != "a-249" || pages != 5 {
			t.Errorf("completed list-a runs: %d in %d pages; want 250 in exactly 5 pages of 50", len(completed), pages)
		}
		if failed, _ := listAll(durable.ListOptions{Status: durable.StatusFailed, Limit: 100}); len(failed) != 20 || failed[0] != "b-00" {
			t.Errorf("failed runs: %v; want the 20 list-b runs", failed)
		}
		if bs, _ := listAll(durable.ListOptions{Workflow: "list-b", Limit: 7}); len(bs) != 20 {
			t.Errorf("list-b runs: %d; want 20", len(bs))
		}
		if running, _ := listAll(durable.ListOptions{Status: durable.StatusRunning, Workflow: "list-a", Limit: 100}); !slices.Equal(running, []string{"r-0", "r-1", "r-2", "r-3", "r-4"}) {
			t.Errorf("running runs: %v", running)
		}
		if none, _ := listAll(durable.ListOptions{Status: durable.StatusCanceled, Limit: 100}); len(none) != 0 {
			t.Errorf("canceled runs: %v; want none", none)
		}
		// Default page size.
		page, err := e.List(ctx, durable.ListOptions{})
		if err != nil || len(page.Runs) != 100 || page.NextAfter != page.Runs[99].ID {
			t.Errorf("List with zero options: %d runs, NextAfter %q, err %v; want a page of 100", len(page.Runs), page.NextAfter, err)
		}
	})
}

func TestStatusString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s        durable.Status
		want     string
		terminal bool
	}{
		{durable.StatusRunning, "running", false},
		{durable.StatusParked, "parked", false},
		{durable.StatusCompleted, "completed", true},
		{durable.StatusFailed, "failed", true},
		{durable.StatusCanceled, "canceled", true},
		{durable.Status(0), "status(0)", false},
		{durable.Status(42), "status(42)", false},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%d).String() = %q, want %q", tc.s, got, tc.want)
		}
		if got := tc.s.Terminal(); got != tc.terminal {
			t.Errorf("Status(%d).Terminal() = %v, want %v", tc.s, got, tc.terminal)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	a1 := durable.Define("dup", func(ctx durable.Context, in int) (int, error) { return in, nil })
	a2 := durable.Define("dup", func(ctx durable.Context, in int) (int, error) { return in, nil })
	for _, tc := range []struct {
		name string
		cfg  durable.Config
	}{
		{"duplicate workflow names", durable.Config{Workflows: []durable.Definition{a1, a2}}},
		{"nil workflow", durable.Config{Workflows: []durable.Definition{nil}}},
		{"negative MaxPayloadBytes", durable.Config{MaxPayloadBytes: -1}},
		{"negative ShutdownTimeout", durable.Config{ShutdownTimeout: -time.Second}},
		{"negative limit", durable.Config{Limits: map[string]durable.Limit{"api": {MaxConcurrent: -1}}}},
	} {
		e, err := durable.New(journal.NewMemory(), quiet(&tc.cfg))
		if err == nil {
			e.Close()
			t.Errorf("%s: New succeeded, want an error", tc.name)
		}
	}
	if _, err := durable.New(nil, nil); err == nil {
		t.Error("New(nil store) succeeded")
	}
	e, err := durable.New(journal.NewMemory(), nil) // nil Config: defaults
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Another definition under a registered name is refused at Start.
	if _, err := durable.Run(testCtx(t), e, a1, "d-1", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(testCtx(t), e, a2, "d-2", 1); err == nil {
		t.Error("Start of a second definition named like a registered one succeeded")
	}
	for _, name := range []string{"", strings.Repeat("x", 513), "\xff"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Define(%q) did not panic", name)
				}
			}()
			durable.Define(name, func(ctx durable.Context, in int) (int, error) { return in, nil })
		}()
	}
}
