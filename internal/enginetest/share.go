package enginetest

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/durable-go/durable"
)

func init() {
	registerShared("TwoEnginesShare", testTwoEnginesShare)
	registerShared("ClientEngine", testClientEngine)
}

// An engine with no workflows (a client, another process) reaches every
// run: Get says what a run waits for, Send wakes it in its owner, Cancel
// ends it; the client executes nothing.
func testClientEngine(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	wf := durable.Define("served", func(ctx durable.Context, in int) (int, error) {
		v, err := durable.Step(ctx, "count", step(&c, ctx.RunID(), 1))
		if err != nil {
			return 0, err
		}
		m, err := durable.Receive[int](ctx, "in")
		return v + m, err
	})
	worker := h.open(wf)
	client := h.newEngine(h.j.Share(), h.config())
	for _, id := range []string{"sv1", "sv2"} {
		if _, err := durable.Start(ctx, worker, wf, id, 0); err != nil {
			h.Fatal(err)
		}
		WaitInfo(h.T, worker, id, func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	}
	info := MustGet(h.T, client, "sv1")
	if info.Status != durable.StatusRunning || info.Workflow != "served" || !strings.Contains(info.Waiting, "not registered") {
		h.Errorf("client's Get: %v, workflow %q, waiting %q; want running, and that this engine has not the workflow", info.Status, info.Workflow, info.Waiting)
	}
	if err := durable.Send(ctx, client, "sv1", "in", 41); err != nil {
		h.Fatal(err)
	}
	if err := client.Cancel(ctx, "sv2"); err != nil {
		h.Fatal(err)
	}
	hd, err := durable.Attach(ctx, worker, wf, "sv1")
	if err != nil {
		h.Fatal(err)
	}
	if got, err := hd.Result(ctx); err != nil || got != 42 {
		h.Fatalf("run sv1 after the client's Send: %d, %v; want 42", got, err)
	}
	WaitStatus(h.T, client, "sv2", durable.StatusCanceled)
	c.onceEach(h, "sv1", "sv2")
}

// Two engines on one journal (a journal.Coordinator) share the work: a
// fan-out of children that each engine can hold only part of runs on
// both at once, each run in one engine at a time; when one engine closes,
// the other adopts its runs and finishes them. Skipped on stores one
// engine owns.
func testTwoEnginesShare(h *harness) {
	ctx := Ctx(h.T)
	const n, capacity = 8, 5
	gate := make(chan struct{})
	var mu sync.Mutex
	executing := map[string]string{} // run -> engine executing its step
	var c counter
	var engines [2]*durable.Engine
	child := durable.Define("shared-child", func(ctx durable.Context, i int) (int, error) {
		return durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
			id := ctx.RunID()
			mu.Lock()
			if other, ok := executing[id]; ok {
				mu.Unlock()
				h.Errorf("run %s: step began while %s executes it", id, other)
				return 0, nil
			}
			executing[id] = "an engine"
			mu.Unlock()
			c.inc(id)
			defer func() {
				mu.Lock()
				delete(executing, id)
				mu.Unlock()
			}()
			select {
			case <-gate:
				return i, nil
			case <-sctx.Done():
				return 0, sctx.Err()
			}
		})
	})
	parent := durable.Define("shared-parent", func(ctx durable.Context, n int) (int, error) {
		var fs []*durable.Future[int]
		for i := range n {
			fs = append(fs, durable.StartChild(ctx, child, "sh-c"+strconv.Itoa(i), i))
		}
		sum := 0
		for _, f := range fs {
			v, err := f.Get(ctx)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
	cfg := h.config(parent, child)
	cfg.MaxRuns = capacity
	engines[0] = h.newEngine(h.j.Open(), cfg)
	engines[1] = h.newEngine(h.j.Share(), cfg)
	if _, err := durable.Start(ctx, engines[0], parent, "sh", n); err != nil {
		h.Fatal(err)
	}
	// Each engine holds at most capacity runs (the parent among them,
	// for the first): all n children run at once only on both.
	owners := map[string]string{}
	WaitFor(h.T, "every child to execute its step", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(executing) == n
	})
	for i := range n {
		id := "sh-c" + strconv.Itoa(i)
		owners[id] = MustGet(h.T, engines[0], id).Owner
	}
	firstOwner := MustGet(h.T, engines[0], "sh").Owner
	byOwner := map[string][]string{}
	for id, o := range owners {
		byOwner[o] = append(byOwner[o], id)
	}
	if len(byOwner) != 2 || byOwner[""] != nil || byOwner[firstOwner] == nil {
		h.Fatalf("children by owner: %v, want them spread over the two engines", byOwner)
	}
	// The second engine closes (its steps under way end unrecorded); the
	// first adopts its runs and finishes them.
	MustClose(h.T, engines[1])
	close(gate)
	hd, err := durable.Attach(ctx, engines[0], parent, "sh")
	if err != nil {
		h.Fatal(err)
	}
	want := 0
	for i := range n {
		want += i
	}
	if got, err := hd.Result(ctx); err != nil || got != want {
		h.Fatalf("Result = %d, %v; want %d", got, err, want)
	}
	for id, owner := range owners {
		info := MustGet(h.T, engines[0], id)
		if info.Status != durable.StatusCompleted || info.Owner != "" {
			h.Errorf("child %s: %v, owner %q; want completed, unowned", id, info.Status, info.Owner)
		}
		// Once on the engine that stayed; twice if the closed engine was
		// executing it (its step was interrupted, not recorded).
		want := 1
		if owner != firstOwner {
			want = 2
		}
		if k := c.get(id); k != want {
			h.Errorf("child %s (owned by %s, the first engine is %s): step executed %d times, want %d", id, owner, firstOwner, k, want)
		}
	}
}
