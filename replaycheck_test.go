package durable_test

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

var badVersion atomic.Int32

// fanOut: steps a (blocks until release closes) and b run with Go, then
// step c, a message, and step d. swap swaps the Go calls; versionAt adds
// a Version call before the versionAt'th operation (-1: none).
func fanOut(executed *atomic.Int32, release <-chan struct{}, swap bool, versionAt int) *durable.Workflow[int, int] {
	return durable.Define("fan", func(ctx durable.Context, _ int) (int, error) {
		pos := 0
		version := func() {
			if pos == versionAt {
				if v := durable.Version(ctx, "x", durable.DefaultVersion, 1); v != durable.DefaultVersion {
					badVersion.Add(1) // a run that passed the point got a version
				}
			}
			pos++
		}
		step := func(name string) func(context.Context) (int, error) {
			return func(ctx context.Context) (int, error) {
				executed.Add(1)
				if name == "a" {
					select {
					case <-release:
					case <-ctx.Done():
						return 0, ctx.Err()
					}
				}
				return len(name), nil
			}
		}
		version()
		first, second := "a", "b"
		if swap {
			first, second = second, first
		}
		fa := durable.Go(ctx, first, step(first))
		version()
		fb := durable.Go(ctx, second, step(second))
		version()
		if _, err := durable.Step(ctx, "c", step("c")); err != nil {
			return 0, err
		}
		version()
		if _, err := durable.Receive[int](ctx, "go"); err != nil {
			return 0, err
		}
		version()
		a, _ := fa.Get(ctx)
		b, _ := fb.Get(ctx)
		d, err := durable.Step(ctx, "d", step("d"))
		version()
		return a + b + d, err
	})
}

func TestCheckReplay(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		store := journal.NewMemory()
		var live, checked atomic.Int32
		release := make(chan struct{})
		wf := fanOut(&live, release, false, -1)
		e, err := durable.New(store, quiet(config(wf)))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if _, err := durable.Start(ctx, e, wf, "mid", 0); err != nil { // a runs, b and c done, waits for "go"
			t.Fatal(err)
		}
		if _, err := durable.Start(ctx, e, wf, "end", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		before := dump(t, store, "mid", "end")
		check := func(id string, def durable.Definition) durable.ReplayResult {
			t.Helper()
			res, err := durable.CheckReplay(ctx, store, id, def)
			if err != nil {
				t.Fatalf("CheckReplay(%s): %v", id, err)
			}
			return res
		}

		// The code that wrote it: no error; position 0 (a, in flight)
		// holds nothing, so the replay stops at the Receive.
		res := check("mid", fanOut(&checked, nil, false, -1))
		if res.Err != nil || res.Positions != 3 || res.Checked != 3 || res.Status != durable.StatusRunning {
			t.Errorf("same code: %+v", res)
		}
		// Swapped Go calls: a, in flight, left nothing at position 0,
		// so the divergence shows at position 1.
		res = check("mid", fanOut(&checked, nil, true, -1))
		var nd *durable.NondeterminismError
		if !errors.As(res.Err, &nd) || nd.Position != 1 || nd.Recorded != `step "b"` || nd.Called != `step "a"` {
			t.Errorf("swapped: %+v", res)
		}
		// A Version call anywhere before the end: DefaultVersion, no
		// position taken.
		for at := range 4 {
			if res := check("mid", fanOut(&checked, nil, false, at)); res.Err != nil {
				t.Errorf("Version at %d: %v", at, res.Err)
			}
		}

		// A finished run replays to its end, and a Version call after
		// its last operation answers DefaultVersion.
		close(release)
		for _, id := range []string{"mid", "end"} {
			if err := durable.Send(ctx, e, id, "go", 1); err != nil {
				t.Fatal(err)
			}
			if out, err := durable.Run(ctx, e, wf, id, 0); err != nil || out != 3 {
				t.Fatalf("run %s: %d, %v", id, out, err)
			}
		}
		for at := -1; at < 6; at++ {
			res := check("end", fanOut(&checked, nil, false, at))
			if res.Err != nil || res.Positions != 5 || res.Checked != 5 || res.Status != durable.StatusCompleted {
				t.Errorf("finished run, Version at %d: %+v", at, res)
			}
		}
		res = check("end", fanOut(&checked, nil, true, -1))
		if !errors.As(res.Err, &nd) || nd.Position != 0 {
			t.Errorf("finished run, swapped: %+v", res)
		}
		if n := checked.Load(); n != 0 {
			t.Errorf("CheckReplay executed %d steps", n)
		}
		if n := badVersion.Load(); n != 0 {
			t.Errorf("Version answered other than DefaultVersion %d times", n)
		}
		if after := dump(t, store, "mid", "end"); reflect.DeepEqual(before, after) {
			t.Errorf("the runs did not go on") // sanity: dump sees changes
		}
		if _, err := durable.CheckReplay(ctx, store, "nope", wf); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("CheckReplay of an unknown run: %v", err)
		}
	})
}

// TestCheckReplayWritesNothing: checks of a waiting run change nothing
// in the store, whatever the code does.
func TestCheckReplayWritesNothing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		store := journal.NewMemory()
		var n atomic.Int32
		release := make(chan struct{})
		wf := fanOut(&n, release, false, -1)
		e, err := durable.New(store, quiet(config(wf)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Start(ctx, e, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		close(release)
		mustClose(t, e)
		before := dump(t, store, "r")
		for _, def := range []durable.Definition{
			fanOut(&n, nil, false, -1), fanOut(&n, nil, true, -1), fanOut(&n, nil, false, 4),
			durable.Define("fan", func(ctx durable.Context, _ int) (int, error) { return 0, nil }),
			durable.Define("fan", func(ctx durable.Context, _ int) (int, error) {
				durable.Now(ctx)
				durable.Sleep(ctx, 1)
				return 0, nil
			}),
		} {
			if _, err := durable.CheckReplay(ctx, store, "r", def); err != nil {
				t.Fatal(err)
			}
		}
		if after := dump(t, store, "r"); !reflect.DeepEqual(before, after) {
			t.Errorf("CheckReplay changed the store:\n%v\n%v", before, after)
		}
	})
}

// dump reads runs and their records.
func dump(t *testing.T, s journal.Store, ids ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, id := range ids {
		r, err := s.GetRun(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := s.Records(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = []any{r, recs}
	}
	return out
}
