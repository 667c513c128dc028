package enginetest

import (
	"context"
	"errors"
	"strconv"

	"github.com/durable-go/durable"
)

func init() {
	register("ChildrenFanOut", testChildrenFanOut)
	register("CancelRunAndChildren", testCancelRunAndChildren)
	register("ContinueAsNew", testContinueAsNew)
}

func isNotFound(err error) bool { return errors.Is(err, durable.ErrNotFound) }

// A parent fans out to children (StartChild) and runs one more
// (RunChild); each child is a run of its own whose result the parent
// journals, across a restart while they wait.
func testChildrenFanOut(h *harness) {
	ctx := Ctx(h.T)
	const n = 8
	var c counter
	child := durable.Define("child", func(ctx durable.Context, i int) (int, error) {
		v, err := durable.Step(ctx, "square", step(&c, ctx.RunID(), i*i))
		if err != nil {
			return 0, err
		}
		if i == 0 { // one child waits for a message: the parent waits for it
			if _, err := durable.Receive[int](ctx, "go"); err != nil {
				return 0, err
			}
		}
		return v, nil
	})
	parent := durable.Define("parent", func(ctx durable.Context, n int) (int, error) {
		var fs []*durable.Future[int]
		for i := range n {
			fs = append(fs, durable.StartChild(ctx, child, ctx.RunID()+"-c"+strconv.Itoa(i), i))
		}
		sum := 0
		for _, f := range fs {
			v, err := f.Get(ctx)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		last, err := durable.RunChild(ctx, child, ctx.RunID()+"-last", 10)
		return sum + last, err
	})
	e := h.open(parent, child)
	if _, err := durable.Start(ctx, e, parent, "fan", n); err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "fan-c0", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	for i := 1; i < n; i++ {
		WaitStatus(h.T, e, "fan-c"+strconv.Itoa(i), durable.StatusCompleted)
	}
	e = h.restart(e, parent, child)
	if err := durable.Send(ctx, e, "fan-c0", "go", 1); err != nil {
		h.Fatal(err)
	}
	hd, err := durable.Attach(ctx, e, parent, "fan")
	if err != nil {
		h.Fatal(err)
	}
	want := 100
	for i := range n {
		want += i * i
	}
	if got, err := hd.Result(ctx); err != nil || got != want {
		h.Fatalf("Result = %d, %v; want %d", got, err, want)
	}
	page, err := e.List(ctx, durable.ListOptions{Parent: "fan"})
	if err != nil {
		h.Fatal(err)
	}
	if len(page.Runs) != n+1 {
		h.Fatalf("List(parent fan): %d runs, want %d children", len(page.Runs), n+1)
	}
	for _, r := range page.Runs {
		if r.Parent != "fan" || r.Workflow != "child" || r.Status != durable.StatusCompleted {
			h.Errorf("child %s: parent %q, workflow %q, %v; want a completed child of fan", r.ID, r.Parent, r.Workflow, r.Status)
		}
		c.onceEach(h, r.ID)
	}
}

// Cancel stops a run that waits, and the children it waits for; a step
// under way sees its context end. The canceled runs stay canceled after
// a restart.
func testCancelRunAndChildren(h *harness) {
	ctx := Ctx(h.T)
	stepStarted := make(chan struct{}, 1)
	stepCanceled := make(chan struct{}, 1)
	child := durable.Define("blocked-child", func(ctx durable.Context, in int) (int, error) {
		return durable.Step(ctx, "block", func(ctx context.Context) (int, error) {
			select {
			case stepStarted <- struct{}{}:
			default:
			}
			<-ctx.Done()
			select {
			case stepCanceled <- struct{}{}:
			default:
			}
			return 0, ctx.Err()
		})
	})
	parent := durable.Define("waiting-parent", func(ctx durable.Context, in int) (int, error) {
		f := durable.StartChild(ctx, child, ctx.RunID()+"-child", 0)
		if _, err := durable.Receive[int](ctx, "never"); err != nil {
			return 0, err
		}
		return f.Get(ctx)
	})
	e := h.open(parent, child)
	hd, err := durable.Start(ctx, e, parent, "cx", 0)
	if err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "cx", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	Recv(h.T, stepStarted, "the child's step to begin")
	if err := e.Cancel(ctx, "cx"); err != nil {
		h.Fatal(err)
	}
	if _, err := hd.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
		h.Fatalf("Result of a canceled run = %v, want ErrCanceled", err)
	}
	WaitStatus(h.T, e, "cx-child", durable.StatusCanceled)
	Recv(h.T, stepCanceled, "the child's step to see its context end")
	if info := MustGet(h.T, e, "cx"); info.Status != durable.StatusCanceled || !info.CancelRequested {
		h.Fatalf("canceled run: %v, cancel requested %v", info.Status, info.CancelRequested)
	}
	e = h.restart(e, parent, child)
	for _, id := range []string{"cx", "cx-child"} {
		if info := MustGet(h.T, e, id); info.Status != durable.StatusCanceled {
			h.Errorf("after a restart run %s is %v, want canceled", id, info.Status)
		}
	}
	if err := e.Cancel(ctx, "nobody"); !isNotFound(err) {
		h.Errorf("Cancel of no run = %v, want ErrNotFound", err)
	}
}

// ContinueAsNew starts the run afresh with a new input under the same id;
// each epoch's steps run once, across a restart in a middle epoch.
func testContinueAsNew(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	wf := durable.Define("counter", func(ctx durable.Context, n int) (int, error) {
		v, err := durable.Step(ctx, "inc", step(&c, strconv.Itoa(n), n+1))
		if err != nil {
			return 0, err
		}
		if n == 2 {
			if _, err := durable.Receive[int](ctx, "go"); err != nil {
				return 0, err
			}
		}
		if v < 5 {
			return 0, durable.ContinueAsNew(ctx, v)
		}
		return v, nil
	})
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "can", 0); err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "can", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	e = h.restart(e, wf)
	if err := durable.Send(ctx, e, "can", "go", 1); err != nil {
		h.Fatal(err)
	}
	hd, err := durable.Attach(ctx, e, wf, "can")
	if err != nil {
		h.Fatal(err)
	}
	if got, err := hd.Result(ctx); err != nil || got != 5 {
		h.Fatalf("Result = %d, %v; want 5", got, err)
	}
	c.onceEach(h, "0", "1", "2", "3", "4")
	page, err := e.List(ctx, durable.ListOptions{Workflow: "counter"})
	if err != nil {
		h.Fatal(err)
	}
	if len(page.Runs) != 1 {
		h.Fatalf("List: %d runs, want the one run continued as new", len(page.Runs))
	}
}
