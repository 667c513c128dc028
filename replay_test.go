package durable_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

// stepCounter counts executions of named steps.
type stepCounter struct{ a, b, c, x atomic.Int32 }

// orderV1 is "order" with steps a, b, c; c blocks (until its context ends)
// while *block is true.
func orderV1(n *stepCounter, block *atomic.Bool, entered chan struct{}) *durable.Workflow[int, int] {
	return durable.Define("order", func(ctx durable.Context, in int) (int, error) {
		a, err := durable.Step(ctx, "a", func(context.Context) (int, error) { n.a.Add(1); return in + 1, nil })
		if err != nil {
			return 0, err
		}
		b, err := durable.Step(ctx, "b", func(context.Context) (int, error) { n.b.Add(1); return a * 10, nil })
		if err != nil {
			return 0, err
		}
		return durable.Step(ctx, "c", func(sctx context.Context) (int, error) {
			n.c.Add(1)
			if block.Load() {
				signal(entered)
				return 0, blockUntilDone(sctx)
			}
			return b + 3, nil
		})
	})
}

// orderV2 is a different definition of "order": steps a, x, c.
func orderV2(n *stepCounter) *durable.Workflow[int, int] {
	return durable.Define("order", func(ctx durable.Context, in int) (int, error) {
		a, err := durable.Step(ctx, "a", func(context.Context) (int, error) { n.a.Add(1); return in + 1, nil })
		if err != nil {
			return 0, err
		}
		x, err := durable.Step(ctx, "x", func(context.Context) (int, error) { n.x.Add(1); return a * 100, nil }) // marker: call of x
		if err != nil {
			return 0, err
		}
		return durable.Step(ctx, "c", func(context.Context) (int, error) { n.c.Add(1); return x + 3, nil })
	})
}

var locationRE = regexp.MustCompile(`replay_test\.go:\d+$`)

// sourceLine returns the number of the only line of file that contains
// text.
func sourceLine(t *testing.T, file, text string) int {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, text) {
			if line != 0 {
				t.Fatalf("%s: %q is on lines %d and %d", file, text, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%s: %q not found", file, text)
	}
	return line
}

func TestReplayDivergenceParksRun(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var n1, n2 stepCounter
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		v1 := orderV1(&n1, &block, entered)
		v2 := orderV2(&n2)
		var otherCalls atomic.Int32
		other := durable.Define("other", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "o", func(context.Context) (int, error) { otherCalls.Add(1); return in * 2, nil })
		})

		// Engine 1: v1 runs until c, and stops there.
		e1 := open(t, config(v1, other))
		if _, err := durable.Start(ctx, e1, v1, "o-1", 1); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step c to start")
		mustClose(t, e1)
		block.Store(false)

		// Engine 2: same name, different code.
		e2 := open(t, config(v2, other))
		info := waitStatus(t, e2, "o-1", durable.StatusParked)
		if !errors.Is(info.Err, durable.ErrNondeterministic) {
			t.Fatalf("RunInfo.Err = %v; want ErrNondeterministic", info.Err)
		}
		var nd *durable.NondeterminismError
		if !errors.As(info.Err, &nd) {
			t.Fatalf("RunInfo.Err = %#v; want *NondeterminismError", info.Err)
		}
		if nd.RunID != "o-1" || nd.Workflow != "order" || nd.Position != 1 || nd.Recorded != `step "b"` || nd.Called != `step "x"` {
			t.Errorf("NondeterminismError = %+v; want run o-1, position 1, recorded step \"b\", called step \"x\"", nd)
		}
		if want := fmt.Sprintf("replay_test.go:%d", sourceLine(t, "replay_test.go", "// marker"+": call of x")); !strings.HasSuffix(nd.Location, want) {
			t.Errorf("Location = %q; want it to end with %s, the call of step x", nd.Location, want)
		}
		if n2.a.Load() != 0 || n2.x.Load() != 0 || n2.c.Load() != 0 {
			t.Errorf("v2 executed steps a=%d x=%d c=%d; want none (a is replayed, x diverges)", n2.a.Load(), n2.x.Load(), n2.c.Load())
		}

		// Other runs go on.
		if got, err := durable.Run(ctx, e2, other, "other-1", 21); err != nil || got != 42 {
			t.Errorf("another run in the same engine: %v, %v; want 42, nil", got, err)
		}
		// A new run of v2 is fine: only the old journal disagrees with v2.
		if got, err := durable.Run(ctx, e2, v2, "o-2", 1); err != nil || got != 203 {
			t.Errorf("a new run of v2: %v, %v; want 203, nil", got, err)
		}

		// Handle.Result reports the parked run.
		h, err := durable.Start(ctx, e2, v2, "o-1", 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Result(ctx)
		var pe *durable.ParkedError
		if !errors.As(err, &pe) || pe.RunID != "o-1" || !errors.Is(err, durable.ErrParked) || !errors.Is(err, durable.ErrNondeterministic) {
			t.Fatalf("Result of the parked run: err = %#v; want *ParkedError for o-1 that matches ErrParked and ErrNondeterministic", err)
		}
		if info := mustGet(t, e2, "o-1"); info.Status != durable.StatusParked {
			t.Errorf("after Start of the parked run it is %v; want parked", info.Status)
		}
		if n2.a.Load() != 1 || n2.x.Load() != 1 || n2.c.Load() != 1 {
			t.Errorf("v2 executions a=%d x=%d c=%d; want 1 each (for o-2 only)", n2.a.Load(), n2.x.Load(), n2.c.Load())
		}
		mustClose(t, e2)

		// Engine 3: v1 again. The run resumes where it stopped.
		e3 := open(t, config(v1, other))
		got, err := durable.Run(ctx, e3, v1, "o-1", 1)
		if want := (1+1)*10 + 3; err != nil || got != want {
			t.Fatalf("Run with v1 again = %v, %v; want %d, nil", got, err, want)
		}
		if n1.a.Load() != 1 || n1.b.Load() != 1 || n1.c.Load() != 2 {
			t.Errorf("v1 executions a=%d b=%d c=%d; want 1, 1, 2 (only the interrupted c again)", n1.a.Load(), n1.b.Load(), n1.c.Load())
		}
		if info := mustGet(t, e3, "o-1"); info.Status != durable.StatusCompleted || info.Err != nil {
			t.Errorf("Get = %v, %v; want completed, nil", info.Status, info.Err)
		}
	})
}

func TestReplayUnregisteredWorkflowWaits(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var n stepCounter
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		v1 := orderV1(&n, &block, entered)
		unrelated := durable.Define("unrelated", func(ctx durable.Context, in int) (int, error) { return in, nil })

		e1 := open(t, config(v1))
		if _, err := durable.Start(ctx, e1, v1, "u-1", 2); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step c to start")
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, config(unrelated))
		info, err := e2.Get(ctx, "u-1")
		if err != nil || info.Status != durable.StatusRunning || !strings.Contains(info.Waiting, `workflow "order" is not registered`) {
			t.Errorf("Get = %+v, %v; want running, waiting for an engine with workflow order", info, err)
		}
		if info.Workflow != "order" {
			t.Errorf("Workflow = %q, want order", info.Workflow)
		}
		if got, err := durable.Run(ctx, e2, unrelated, "un-1", 5); err != nil || got != 5 {
			t.Errorf("another run: %v, %v", got, err)
		}
		mustClose(t, e2)

		e3 := open(t, config(v1))
		got, err := durable.Run(ctx, e3, v1, "u-1", 2)
		if want := (2+1)*10 + 3; err != nil || got != want {
			t.Fatalf("Run with the workflow registered = %v, %v; want %d, nil", got, err, want)
		}
		if n.a.Load() != 1 || n.b.Load() != 1 || n.c.Load() != 2 {
			t.Errorf("executions a=%d b=%d c=%d; want 1, 1, 2", n.a.Load(), n.b.Load(), n.c.Load())
		}
	})
}

// Start registers its workflow and resumes that workflow's parked runs.
func TestReplayStartRegistersAndResumesParked(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var n stepCounter
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		v1 := orderV1(&n, &block, entered)

		e1 := open(t, config(v1))
		if _, err := durable.Start(ctx, e1, v1, "s-1", 3); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step c to start")
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, nil)
		if info, err := e2.Get(ctx, "s-1"); err != nil || info.Status != durable.StatusRunning || info.Waiting == "" {
			t.Errorf("Get = %+v, %v; want running, waiting for an engine with its workflow", info, err)
		}
		if _, err := durable.Start(ctx, e2, v1, "s-2", 4); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e2, "s-1", durable.StatusCompleted)
		h, err := durable.Start(ctx, e2, v1, "s-1", 3)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != (3+1)*10+3 {
			t.Errorf("Result = %v, %v; want %d", got, err, (3+1)*10+3)
		}
	})
}

func TestReplayChangedResultTypeParks(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		var v2Name, v2Wait atomic.Int32
		v1 := durable.Define("typed", func(ctx durable.Context, in int) (string, error) {
			name, err := durable.Step(ctx, "name", func(context.Context) (string, error) { return "abc", nil })
			if err != nil {
				return "", err
			}
			_, err = durable.Step(ctx, "wait", func(sctx context.Context) (int, error) {
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return 0, nil
			})
			return name, err
		})
		v2 := durable.Define("typed", func(ctx durable.Context, in int) (string, error) {
			n, err := durable.Step(ctx, "name", func(context.Context) (int, error) { v2Name.Add(1); return 7, nil })
			if err != nil {
				return "", err
			}
			_, err = durable.Step(ctx, "wait", func(context.Context) (int, error) { v2Wait.Add(1); return 0, nil })
			return fmt.Sprint(n), err
		})

		e1 := open(t, config(v1))
		if _, err := durable.Start(ctx, e1, v1, "t-1", 0); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "step wait to start")
		mustClose(t, e1)
		block.Store(false)

		e2 := open(t, config(v2))
		info := waitStatus(t, e2, "t-1", durable.StatusParked)
		if !errors.Is(info.Err, durable.ErrPayload) {
			t.Errorf("RunInfo.Err = %v; want ErrPayload", info.Err)
		}
		if v2Name.Load() != 0 || v2Wait.Load() != 0 {
			t.Errorf("v2 executed steps name=%d wait=%d; want none", v2Name.Load(), v2Wait.Load())
		}
		mustClose(t, e2)

		e3 := open(t, config(v1))
		if got, err := durable.Run(ctx, e3, v1, "t-1", 0); err != nil || got != "abc" {
			t.Errorf("Run with v1 again = %q, %v; want abc", got, err)
		}
	})
}

// Each way of changing the code before the point a run reached parks it
// with a NondeterminismError that says what the journal holds at which
// position and what the code did instead; changes after that point are
// compatible and the run completes.
func TestReplayDivergenceKinds(t *testing.T) {
	t.Parallel()
	type change struct {
		name     string
		body     func(ctx durable.Context, in int) (int, error) // steps a, b were recorded; c was in progress
		parked   bool
		position int
		called   string // NondeterminismError.Called; "" when the code returned early
	}
	step := func(ctx durable.Context, name string, v int) (int, error) {
		return durable.Step(ctx, name, func(context.Context) (int, error) { return v, nil })
	}
	changes := []change{
		{name: "renamed", parked: true, position: 1, called: `step "b2"`, body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "a", 0)
			return step(ctx, "b2", 0)
		}},
		{name: "reordered", parked: true, position: 0, called: `step "b"`, body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "b", 0)
			return step(ctx, "a", 0)
		}},
		{name: "sleep inserted", parked: true, position: 1, called: "sleep", body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "a", 0)
			durable.Sleep(ctx, time.Millisecond)
			return step(ctx, "b", 0)
		}},
		{name: "receive instead of a step", parked: true, position: 1, called: `receive on "b"`, body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "a", 0)
			return durable.Receive[int](ctx, "b")
		}},
		{name: "Go instead of Step", parked: false, body: func(ctx durable.Context, in int) (int, error) {
			// Go and Step are both steps: same kind and name, compatible.
			a, _ := durable.Go(ctx, "a", func(context.Context) (int, error) { return 0, nil }).Get(ctx)
			b, _ := step(ctx, "b", 0)
			return a + b, nil
		}},
		{name: "returns early", parked: true, position: 1, called: "", body: func(ctx durable.Context, in int) (int, error) {
			return step(ctx, "a", 0)
		}},
		{name: "step removed", parked: true, position: 1, called: `step "c"`, body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "a", 0)
			return step(ctx, "c", 0)
		}},
		{name: "in-progress step renamed", parked: false, body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "a", 0)
			step(ctx, "b", 0)
			return step(ctx, "c-renamed", 5)
		}},
		{name: "steps appended", parked: false, body: func(ctx durable.Context, in int) (int, error) {
			step(ctx, "a", 0)
			step(ctx, "b", 0)
			step(ctx, "c", 0)
			return step(ctx, "d", 5)
		}},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, open opener) {
				ctx := testCtx(t)
				var n stepCounter
				var block atomic.Bool
				block.Store(true)
				entered := make(chan struct{}, 1)
				v1 := orderV1(&n, &block, entered)
				e1 := open(t, config(v1))
				if _, err := durable.Start(ctx, e1, v1, "k-1", 1); err != nil {
					t.Fatal(err)
				}
				recv(t, entered, "step c to start")
				mustClose(t, e1)

				v2 := durable.Define("order", ch.body)
				e2 := open(t, config(v2))
				if !ch.parked {
					if _, err := durable.Run(ctx, e2, v2, "k-1", 1); err != nil {
						t.Fatalf("a compatible change: %v", err)
					}
					return
				}
				info := waitStatus(t, e2, "k-1", durable.StatusParked)
				var nd *durable.NondeterminismError
				if !errors.As(info.Err, &nd) {
					t.Fatalf("RunInfo.Err = %#v; want *NondeterminismError", info.Err)
				}
				if nd.Position != ch.position || nd.Called != ch.called {
					t.Errorf("diverged at %d calling %q; want %d calling %q (%v)", nd.Position, nd.Called, ch.position, ch.called, nd)
				}
				wantRec := []string{`step "a"`, `step "b"`}[ch.position]
				if nd.Recorded != wantRec {
					t.Errorf("Recorded = %q, want %q", nd.Recorded, wantRec)
				}
				if ch.called != "" && !locationRE.MatchString(nd.Location) {
					t.Errorf("Location = %q; want replay_test.go:line", nd.Location)
				}
				if !strings.Contains(nd.Error(), `"k-1"`) || !strings.Contains(nd.Error(), wantRec) {
					t.Errorf("message %q does not name the run and the recorded operation", nd.Error())
				}
			})
		})
	}
}
