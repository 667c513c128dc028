package durable_test

// Concurrency inside workflows: futures and fan-out/fan-in (Go, AwaitAll),
// selects (AwaitAny over futures, timers and receive cases), child
// workflows and sagas, across restarts (a new engine on the same journal)
// and real crashes (SIGKILL of a child process), and with a run cache of
// one (every waiting run but one is evicted and replayed when woken).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/retry"
)

// childEngineClosed: the engine closes while a child runs; on reopen the
// child finishes once and the parent resumes with its result.
func childEngineClosed(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var childWork, childFinished, parentBefore, parentAfter atomic.Int32
		var block atomic.Bool
		block.Store(true)
		release := make(chan struct{}) // never closed: the first incarnation blocks
		started := make(chan struct{}, 1)
		child := durable.Define("cc-close-child", func(ctx durable.Context, n int) (int, error) {
			v, err := durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				childWork.Add(1)
				if block.Load() {
					started <- struct{}{}
					select {
					case <-release:
					case <-sctx.Done():
						return 0, sctx.Err()
					}
				}
				return 10 * n, nil
			})
			if err != nil {
				return 0, err
			}
			childFinished.Add(1)
			return v, nil
		})
		parent := durable.Define("cc-close-parent", func(ctx durable.Context, n int) (string, error) {
			if _, err := durable.Step(ctx, "before", func(context.Context) (int, error) { parentBefore.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			v, err := durable.RunChild(ctx, child, "", n)
			if err != nil {
				return "", err
			}
			if _, err := durable.Step(ctx, "after", func(context.Context) (int, error) { parentAfter.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			return fmt.Sprintf("child=%d", v), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, parent, "pc-1", 4); err != nil {
			t.Fatal(err)
		}
		<-started
		block.Store(false) // the next incarnation of the step does not block
		env.Restart()
		out, err := durable.Run(ctx, env.Engine, parent, "pc-1", 4)
		if err != nil {
			t.Fatal(err)
		}
		if out != "child=40" {
			t.Errorf("result %q, want child=40", out)
		}
		if w, f, b, a := childWork.Load(), childFinished.Load(), parentBefore.Load(), parentAfter.Load(); w != 2 || f != 1 || b != 1 || a != 1 {
			t.Errorf("child step ran %d times (want 2), child finished %d times (want 1), parent steps before/after ran %d/%d (want 1/1)", w, f, b, a)
		}
		page, err := env.Engine.List(ctx, durable.ListOptions{Parent: "pc-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Runs) != 1 || page.Runs[0].ID != "pc-1/1" || page.Runs[0].Parent != "pc-1" || page.Runs[0].Status != durable.StatusCompleted {
			t.Errorf("children of pc-1: %+v; want one, pc-1/1, completed", page.Runs)
		}
	})
}

func TestChildSurvivesEngineClose(t *testing.T) {
	t.Parallel()
	childEngineClosed(t, 0)
}

// childLinks: StartChild futures, explicit and generated ids, and the
// parent links in List and Get.
func childLinks(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var squares tally
		child := durable.Define("cc-links-child", func(ctx durable.Context, n int) (int, error) {
			if err := durable.Sleep(ctx, time.Duration(n)*time.Second); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "square", func(sctx context.Context) (int, error) {
				squares.add(stepKey(sctx))
				return n * n, nil
			})
		})
		parent := durable.Define("cc-links-parent", func(ctx durable.Context, _ string) (string, error) {
			if _, err := durable.Step(ctx, "prepare", func(context.Context) (int, error) { return 0, nil }); err != nil {
				return "", err
			}
			a := durable.StartChild(ctx, child, "ship-a", 3) // position 1
			b := durable.StartChild(ctx, child, "", 2)       // position 2: id "<parent>/2"
			vb, err := b.Get(ctx)
			if err != nil {
				return "", err
			}
			va, err := a.Get(ctx)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("a=%d b=%d", va, vb), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		out, err := durable.Run(ctx, env.Engine, parent, "links-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if out != "a=9 b=4" {
			t.Errorf("result %q, want a=9 b=4", out)
		}
		page, err := env.Engine.List(ctx, durable.ListOptions{Parent: "links-1"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
			if r.Parent != "links-1" || r.Workflow != "cc-links-child" || r.Status != durable.StatusCompleted {
				t.Errorf("child %s: parent %q, workflow %q, status %v; want links-1, cc-links-child, completed", r.ID, r.Parent, r.Workflow, r.Status)
			}
		}
		if want := []string{"links-1/2", "ship-a"}; !slices.Equal(ids, want) {
			t.Errorf("children of links-1: %v, want %v", ids, want)
		}
		for id, want := range map[string]string{"links-1/2": "links-1", "ship-a": "links-1", "links-1": ""} {
			info, err := env.Engine.Get(ctx, id)
			if err != nil || info.Parent != want {
				t.Errorf("Get(%s).Parent = %q, %v; want %q", id, info.Parent, err, want)
			}
		}
		if page, err := env.Engine.List(ctx, durable.ListOptions{Parent: "ship-a"}); err != nil || len(page.Runs) != 0 {
			t.Errorf("children of ship-a: %+v, %v; want none", page.Runs, err)
		}
		for k, n := range squares.snapshot() {
			if n != 1 {
				t.Errorf("step %s ran %d times, want 1", k, n)
			}
		}
		if n := len(squares.snapshot()); n != 2 {
			t.Errorf("%d child steps ran, want 2", n)
		}
	})
}

func TestChildStartChildIDsAndParentLinks(t *testing.T) {
	t.Parallel()
	childLinks(t, 0)
}

// TestChildFailureIsChildErrorWithPath: a child's failure reaches the
// parent as a *ChildError whose message reads like a stack.
func TestChildFailureIsChildErrorWithPath(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("cc-fail-child", func(ctx durable.Context, card string) (string, error) {
			return durable.Step(ctx, "charge", func(context.Context) (string, error) {
				return "", retry.Permanent(errors.New("card declined"))
			})
		})
		var live atomic.Value
		parent := durable.Define("cc-fail-parent", func(ctx durable.Context, card string) (string, error) {
			_, err := durable.RunChild(ctx, child, "", card)
			live.Store(fmt.Sprintf("%T", err))
			return "", err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}})
		ctx := t.Context()
		_, err := durable.Run(ctx, env.Engine, parent, "pf-1", "4242")
		if got := live.Load(); got != "*durable.ChildError" {
			t.Errorf("the workflow saw a %v, want *durable.ChildError", got)
		}
		var ce *durable.ChildError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T), want a *durable.ChildError", err, err)
		}
		if ce.ParentID != "pf-1" || ce.RunID != "pf-1/0" || ce.Workflow != "cc-fail-child" || ce.Parent != "cc-fail-parent" {
			t.Errorf("ChildError %+v", ce)
		}
		if want := `durable: cc-fail-parent(pf-1) → cc-fail-child(pf-1/0) → step "charge" failed after 1 attempt: card declined`; err.Error() != want {
			t.Errorf("error\n %q, want\n %q", err, want)
		}
		var se *durable.StepError
		if !errors.As(err, &se) || se.RunID != "pf-1/0" || se.Step != "charge" {
			t.Errorf("no StepError of pf-1/0 in %v", err)
		}
		if info, err := env.Engine.Get(ctx, "pf-1/0"); err != nil || info.Status != durable.StatusFailed || info.Parent != "pf-1" {
			t.Errorf("child: %v %q, %v; want failed, parent pf-1", info.Status, info.Parent, err)
		}
	})
}

// childCancel: canceling a parent cancels its children, except detached
// ones, which complete.
func childCancel(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("cc-cancel-child", func(ctx durable.Context, name string) (string, error) {
			msg, err := durable.Receive[string](ctx, "go")
			if err != nil {
				return "", err
			}
			return name + ":" + msg, nil
		})
		parent := durable.Define("cc-cancel-parent", func(ctx durable.Context, _ string) (string, error) {
			durable.StartChild(ctx, child, "att", "att")
			durable.StartChild(ctx, child, "det", "det", durable.Detached())
			_, err := durable.Receive[string](ctx, "never")
			return "", err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		hp, err := durable.Start(ctx, env.Engine, parent, "cp-1", "")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // both children are created and waiting
		if err := env.Engine.Cancel(ctx, "cp-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := hp.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("parent: %v, want ErrCanceled", err)
		}
		ha, err := durable.Start(ctx, env.Engine, child, "att", "att")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ha.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("attached child: %v, want ErrCanceled", err)
		}
		synctest.Wait()
		for id, want := range map[string]durable.Status{"cp-1": durable.StatusCanceled, "att": durable.StatusCanceled, "det": durable.StatusRunning} {
			if info, err := env.Engine.Get(ctx, id); err != nil || info.Status != want {
				t.Errorf("%s: %v, %v; want %v", id, info.Status, err, want)
			}
		}
		if info, _ := env.Engine.Get(ctx, "det"); info.CancelRequested {
			t.Errorf("the detached child was asked to cancel")
		}
		if err := durable.Send(ctx, env.Engine, "det", "go", "shipped"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, child, "det", "det")
		if err != nil || out != "det:shipped" {
			t.Errorf("detached child: %q, %v; want det:shipped", out, err)
		}
	})
}

func TestChildCancelReachesAttachedNotDetached(t *testing.T) {
	t.Parallel()
	childCancel(t, 0)
}

// TestChildGetOfDetachedChildSeesCancel: Future.Get takes no journal
// position, so it waits for the detached child whatever happens to the
// parent (as its doc says); a parent that must stop waiting when it is
// canceled waits with AwaitAny, which journals the cancellation.
func TestChildGetOfDetachedChildSeesCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("cc-detached-get-child", func(ctx durable.Context, _ string) (string, error) {
			return durable.Receive[string](ctx, "go")
		})
		parent := durable.Define("cc-detached-get-parent", func(ctx durable.Context, _ string) (string, error) {
			f := durable.StartChild(ctx, child, "dg-child", "", durable.Detached())
			if _, err := durable.AwaitAny(ctx, f); err != nil {
				return "", err
			}
			return f.Get(ctx)
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.Engine, parent, "dg-1", "")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := env.Engine.Cancel(ctx, "dg-1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if info, err := env.Engine.Get(ctx, "dg-1"); err != nil || info.Status != durable.StatusCanceled {
			t.Errorf("parent after Cancel: %v, %v; want canceled", info.Status, err)
		}
		if err := durable.Send(ctx, env.Engine, "dg-child", "go", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("parent: %v, want ErrCanceled", err)
		}
	})
}

// TestChildIDOwnedByAnotherRun: a child id that belongs to a top-level run
// or to another parent's child fails with ErrWorkflowMismatch and leaves
// that run alone.
func TestChildIDOwnedByAnotherRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var childRuns atomic.Int32
		other := durable.Define("cc-owned-other", func(ctx durable.Context, s string) (string, error) { return "other:" + s, nil })
		child := durable.Define("cc-owned-child", func(ctx durable.Context, s string) (string, error) {
			childRuns.Add(1)
			return "child:" + s, nil
		})
		parent := durable.Define("cc-owned-parent", func(ctx durable.Context, id string) (string, error) {
			out, err := durable.RunChild(ctx, child, id, "x")
			if err != nil {
				return fmt.Sprintf("mismatch=%t: %v", errors.Is(err, durable.ErrWorkflowMismatch), err), nil
			}
			return out, nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child, other}})
		ctx := t.Context()
		if _, err := durable.Run(ctx, env.Engine, other, "taken", "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Run(ctx, env.Engine, child, "top", "t"); err != nil {
			t.Fatal(err)
		}
		if out, err := durable.Run(ctx, env.Engine, parent, "own-1", "shared"); err != nil || out != "child:x" {
			t.Fatalf("own-1: %q, %v; want child:x", out, err)
		}
		for _, tc := range []struct{ parent, id string }{
			{"own-2", "taken"},  // a top-level run of another workflow
			{"own-3", "top"},    // a top-level run of the same workflow
			{"own-4", "shared"}, // another parent's child
		} {
			out, err := durable.Run(ctx, env.Engine, parent, tc.parent, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, "mismatch=true: ") {
				t.Errorf("child id %q in %s: %q, want an error matching ErrWorkflowMismatch", tc.id, tc.parent, out)
			}
		}
		if n := childRuns.Load(); n != 2 {
			t.Errorf("the child workflow ran %d times, want 2 (top and own-1's child)", n)
		}
		for id, want := range map[string]string{"taken": "", "top": "", "shared": "own-1"} {
			if info, err := env.Engine.Get(ctx, id); err != nil || info.Parent != want || info.Status != durable.StatusCompleted {
				t.Errorf("%s: parent %q, %v, %v; want parent %q, completed", id, info.Parent, info.Status, err, want)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Sagas

func TestChildWorkflow(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var pBefore, pAfter, cOne, cBlock, cDone, childRuns atomic.Int32
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		child := durable.Define("child", func(ctx durable.Context, in int) (int, error) {
			childRuns.Add(1)
			a, err := durable.Step(ctx, "c-one", func(context.Context) (int, error) { cOne.Add(1); return in + 1, nil })
			if err != nil {
				return 0, err
			}
			if _, err := durable.Step(ctx, "c-block", func(sctx context.Context) (int, error) {
				cBlock.Add(1)
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return 0, nil
			}); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "c-done", func(context.Context) (int, error) { cDone.Add(1); return a * 2, nil })
		})
		parent := durable.Define("parent", func(ctx durable.Context, in int) (string, error) {
			if _, err := durable.Step(ctx, "p-before", func(context.Context) (int, error) { pBefore.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			v, err := durable.RunChild(ctx, child, "", in)
			if err != nil {
				return "", err
			}
			return durable.Step(ctx, "p-after", func(context.Context) (string, error) {
				pAfter.Add(1)
				return fmt.Sprintf("child said %d", v), nil
			})
		})
		cfg := config(parent, child)
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, parent, "par-1", 20); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the child to block")

		const childID = "par-1/1" // "<parent id>/<position>": p-before is position 0
		info := mustGet(t, e1, childID)
		if info.Parent != "par-1" || info.Workflow != "child" || info.Status != durable.StatusRunning {
			t.Errorf("Get(child) = %+v; want a running run of child with Parent par-1", info)
		}
		page, err := e1.List(ctx, durable.ListOptions{Parent: "par-1"})
		if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != childID || page.Runs[0].Parent != "par-1" {
			t.Errorf("List(Parent: par-1) = %+v, %v; want the one child", page.Runs, err)
		}
		page, err = e1.List(ctx, durable.ListOptions{Workflow: "child"})
		if err != nil || len(page.Runs) != 1 || page.Runs[0].ID != childID {
			t.Errorf("List(Workflow: child) = %+v, %v; want the one child", page.Runs, err)
		}
		if p := mustGet(t, e1, "par-1"); p.Parent != "" || p.Status != durable.StatusRunning {
			t.Errorf("Get(parent) = %+v", p)
		}
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, parent, "par-1", 20)
		if err != nil || got != "child said 42" {
			t.Fatalf("Run after restart = %q, %v; want \"child said 42\"", got, err)
		}
		if info := mustGet(t, e2, childID); info.Status != durable.StatusCompleted || info.Parent != "par-1" {
			t.Errorf("child after the run: %+v; want completed", info)
		}
		if pBefore.Load() != 1 || cOne.Load() != 1 || cBlock.Load() != 2 || cDone.Load() != 1 || pAfter.Load() != 1 {
			t.Errorf("executions p-before=%d c-one=%d c-block=%d c-done=%d p-after=%d; want 1 1 2 1 1",
				pBefore.Load(), cOne.Load(), cBlock.Load(), cDone.Load(), pAfter.Load())
		}
		if n := childRuns.Load(); n != 2 {
			t.Errorf("child workflow function ran %d times, want 2 (once per engine)", n)
		}
		// The child finished once: its run is not there twice, and no other
		// child was made.
		page, err = e2.List(ctx, durable.ListOptions{Workflow: "child"})
		if err != nil || len(page.Runs) != 1 {
			t.Errorf("List(Workflow: child) after the run = %+v, %v; want one run", page.Runs, err)
		}
	})
}

// After a restart an engine that lists only the parent workflow finds the
// child's workflow through the parent's code: the child, parked at Open as
// unregistered, resumes when the parent's replay reaches RunChild.
func TestChildResumesWhenOnlyParentRegistered(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		var childSteps atomic.Int32
		child := durable.Define("only-child", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				childSteps.Add(1)
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return in * 3, nil
			})
		})
		parent := durable.Define("only-parent", func(ctx durable.Context, in int) (int, error) {
			return durable.RunChild(ctx, child, "oc-kid", in)
		})
		e1 := open(t, config(parent, child))
		if _, err := durable.Start(ctx, e1, parent, "op-1", 5); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the child to block")
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, config(parent))
		got, err := durable.Run(ctx, e2, parent, "op-1", 5)
		if err != nil || got != 15 {
			t.Fatalf("Run = %v, %v; want 15", got, err)
		}
		info := waitStatus(t, e2, "oc-kid", durable.StatusCompleted)
		if info.Err != nil {
			t.Errorf("child: %v", info.Err)
		}
		if n := childSteps.Load(); n != 2 {
			t.Errorf("child step executed %d times, want 2", n)
		}
	})
}
