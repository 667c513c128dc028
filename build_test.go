package durable_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// TestBuildID: each run stores the builds that started and resumed it,
// and the error of a run parked by a change names them and the fixes.
func TestBuildID(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		gen := func(changed bool) *durable.Workflow[int, int] {
			child := durable.Define("build-child", func(ctx durable.Context, n int) (int, error) { return n, nil })
			return durable.Define("build", func(ctx durable.Context, n int) (int, error) {
				name := "a"
				if changed {
					name = "a2"
				}
				if _, err := durable.Step(ctx, name, func(context.Context) (int, error) { return 1, nil }); err != nil {
					return 0, err
				}
				if _, err := durable.Receive[int](ctx, "go"); err != nil {
					return 0, err
				}
				return durable.RunChild(ctx, child, "", n)
			})
		}
		var wf *durable.Workflow[int, int] // the current deploy's
		cfg := func(build string, changed bool) *durable.Config {
			wf = gen(changed)
			c := quiet(config(wf))
			c.BuildID = build
			return c
		}
		env := durabletest.New(t, cfg("v1", false))
		if _, err := durable.Start(ctx, env.Engine, wf, "r", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		builds := func(id string, want ...string) {
			t.Helper()
			if got := mustGet(t, env.Engine, id).Builds; !slices.Equal(got, want) {
				t.Errorf("run %s: Builds %q, want %q", id, got, want)
			}
		}
		builds("r", "v1")
		// The run waits for a message: an engine loads it (and records
		// its build) when one comes, on any channel.
		nudge := func() {
			t.Helper()
			if err := durable.Send(ctx, env.Engine, "r", "nudge", 0); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		env.Restart() // the same build: nothing added
		nudge()
		builds("r", "v1")
		env.Config = cfg("v2", false)
		env.Restart()
		nudge()
		builds("r", "v1", "v2")

		// v3 renamed step a: the run parks, and its error says who
		// recorded it and what to do.
		env.Config = cfg("v3", true)
		env.Restart()
		nudge()
		info := mustGet(t, env.Engine, "r")
		var nd *durable.NondeterminismError
		if info.Status != durable.StatusParked || !errors.As(info.Err, &nd) {
			t.Fatalf("run r: %v, %v; want parked by a NondeterminismError", info.Status, info.Err)
		}
		if !slices.Equal(nd.RecordedBy, []string{"v1", "v2"}) || nd.Build != "v3" {
			t.Errorf("RecordedBy %q, Build %q; want [v1 v2], v3", nd.RecordedBy, nd.Build)
		}
		for _, want := range []string{
			"recorded by build v1, then v2 and this engine runs build v3",
			"revert the change, or run build v2", "durable.Version", "fork the run at position 0",
		} {
			if !strings.Contains(info.Err.Error(), want) {
				t.Errorf("error %q does not say %q", info.Err, want)
			}
		}
		builds("r", "v1", "v2", "v3") // v3 resumed it, then parked it

		// Back on v2, it finishes; its child records v2.
		env.Config = cfg("v2", false)
		env.Restart()
		synctest.Wait()
		if err := durable.Send(ctx, env.Engine, "r", "go", 1); err != nil {
			t.Fatal(err)
		}
		if out, err := durable.Run(ctx, env.Engine, wf, "r", 1); err != nil || out != 1 {
			t.Fatalf("Run: %d, %v", out, err)
		}
		builds("r", "v1", "v2", "v3", "v2")
		builds("r/2", "v2")
	})
}
