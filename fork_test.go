package durable_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// TestFork: a run parked by a change that cannot be reverted is forked
// at the position its error names; the fork replays what came before
// (no step runs again) and runs the new code from there.
func TestFork(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		fx := &effects{}
		gen := func(renamed bool) *durable.Workflow[int, string] {
			return durable.Define("forked", func(ctx durable.Context, n int) (string, error) {
				out := ""
				names := []string{"a", "b"}
				if renamed {
					names[1] = "b2"
				}
				for _, name := range names {
					v, err := durable.Step(ctx, name, func(context.Context) (string, error) {
						fx.add(ctx.RunID(), name)
						return name, nil
					})
					if err != nil {
						return "", err
					}
					out += v
				}
				if _, err := durable.Receive[int](ctx, "go"); err != nil {
					return "", err
				}
				return out, nil
			})
		}
		v1 := gen(false)
		env := durabletest.New(t, quiet(config(v1)))
		if _, err := durable.Start(ctx, env.Engine, v1, "src", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		v2 := gen(true)
		env.Config = quiet(config(v2))
		env.Restart()
		// The run waits for a message: it is loaded (and parks) when one
		// comes, on any channel.
		if err := durable.Send(ctx, env.Engine, "src", "nudge", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		info := mustGet(t, env.Engine, "src")
		var nd *durable.NondeterminismError
		if info.Status != durable.StatusParked || !errors.As(info.Err, &nd) || nd.Position != 1 {
			t.Fatalf("src: %v %v; want parked at position 1", info.Status, info.Err)
		}

		id, err := env.Engine.Fork(ctx, "src", nd.Position, "src-fork")
		if err != nil || id != "src-fork" {
			t.Fatalf("Fork: %q, %v", id, err)
		}
		synctest.Wait()
		if err := durable.Send(ctx, env.Engine, id, "go", 1); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, v2, id, 1)
		if err != nil || out != "ab2" {
			t.Fatalf("fork: %q, %v; want ab2", out, err)
		}
		if fx.count("src-fork", "a") != 0 || fx.count("src-fork", "b2") != 1 || fx.count("src", "a") != 1 {
			t.Errorf("effects %v: a ran once (in src), b2 once (in the fork)", fx.n)
		}
		if got := mustGet(t, env.Engine, "src").Status; got != durable.StatusParked {
			t.Errorf("src after the fork: %v, want parked still", got)
		}

		// A new id, at position 0: a fresh run of the same input.
		id2, err := env.Engine.Fork(ctx, "src", 0, "")
		if err != nil || id2 == "" {
			t.Fatalf("Fork at 0: %q, %v", id2, err)
		}
		synctest.Wait()
		if fx.count(id2, "a") != 1 {
			t.Errorf("fork at 0 did not run a: %v", fx.n)
		}

		for _, c := range []struct {
			id, newID string
			pos       int
			want      error
		}{
			{"nope", "x", 0, durable.ErrNotFound},
			{"src", "src-fork", 1, durable.ErrWorkflowMismatch}, // exists
			{"src", "x", 3, journal.ErrInvalid},                 // src has positions 0 and 1
			{"src", "x", -1, journal.ErrInvalid},
		} {
			if _, err := env.Engine.Fork(ctx, c.id, c.pos, c.newID); !errors.Is(err, c.want) {
				t.Errorf("Fork(%q, %d, %q): %v, want %v", c.id, c.pos, c.newID, err, c.want)
			}
		}
	})
}

// TestForkUnfinishedChild: a fork may not cut through a child that has
// not finished.
func TestForkUnfinishedChild(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		child := durable.Define("fork-child", func(ctx durable.Context, _ int) (int, error) {
			return durable.Receive[int](ctx, "go")
		})
		parent := durable.Define("fork-parent", func(ctx durable.Context, _ int) (int, error) {
			return durable.RunChild(ctx, child, "", 1)
		})
		env := durabletest.New(t, quiet(config(parent, child)))
		if _, err := durable.Start(ctx, env.Engine, parent, "p", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := env.Engine.Fork(ctx, "p", 1, "p2"); !errors.Is(err, journal.ErrInvalid) {
			t.Errorf("Fork past an unfinished child: %v, want ErrInvalid", err)
		}
		if _, err := env.Engine.Fork(ctx, "p", 0, "p3"); err != nil {
			t.Errorf("Fork before the child: %v", err)
		}
		synctest.Wait()
		if err := durable.Send(ctx, env.Engine, "p3/0", "go", 5); err != nil {
			t.Fatal(err)
		}
		if out, err := durable.Run(ctx, env.Engine, parent, "p3", 0); err != nil || out != 5 {
			t.Errorf("p3: %d, %v", out, err)
		}
	})
}
