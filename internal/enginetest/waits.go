package enginetest

import (
	"context"
	"errors"
	"time"

	"github.com/durable-go/durable"
)

func init() {
	register("ReceiveTimeoutAcrossRestart", testReceiveTimeoutAcrossRestart)
	register("FuturesAndAwaitAny", testFuturesAndAwaitAny)
	register("RunDeadline", testRunDeadline)
}

// ReceiveTimeout returns a message that comes in time, and ErrTimeout
// when none does, with the deadline kept across a restart.
func testReceiveTimeoutAcrossRestart(h *harness) {
	ctx := Ctx(h.T)
	wf := durable.Define("patient", func(ctx durable.Context, in int) (string, error) {
		m, err := durable.ReceiveTimeout[string](ctx, "in", 300*time.Millisecond)
		if errors.Is(err, durable.ErrTimeout) {
			return "timed out", nil
		}
		return m, err
	})
	e := h.open(wf)
	hd, err := durable.Start(ctx, e, wf, "got", 0)
	if err != nil {
		h.Fatal(err)
	}
	if err := durable.Send(ctx, e, "got", "in", "hello"); err != nil {
		h.Fatal(err)
	}
	if got, err := hd.Result(ctx); err != nil || got != "hello" {
		h.Fatalf("ReceiveTimeout with a message = %q, %v; want hello", got, err)
	}
	if _, err := durable.Start(ctx, e, wf, "none", 0); err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "none", func(i durable.RunInfo) bool { return !i.WakeAt.IsZero() })
	e = h.restart(e, wf)
	hd, err = durable.Attach(ctx, e, wf, "none")
	if err != nil {
		h.Fatal(err)
	}
	if got, err := hd.Result(ctx); err != nil || got != "timed out" {
		h.Fatalf("ReceiveTimeout with no message = %q, %v; want timed out", got, err)
	}
}

// Go runs steps concurrently; AwaitAny returns the first to finish, a
// timer or a message; Get gives each result, the same after a restart.
func testFuturesAndAwaitAny(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	release := make(chan struct{})
	wf := durable.Define("futures", func(ctx durable.Context, in int) ([]int, error) {
		slow := durable.Go(ctx, "slow", func(sctx context.Context) (int, error) {
			c.inc("slow")
			select {
			case <-release:
				return 2, nil
			case <-sctx.Done():
				return 0, sctx.Err()
			}
		})
		fast := durable.Go(ctx, "fast", step(&c, "fast", 1))
		first, err := durable.AwaitAny(ctx, slow, fast)
		if err != nil {
			return nil, err
		}
		// A timer that fires while slow still runs.
		timer := durable.NewTimer(ctx, 50*time.Millisecond)
		second, err := durable.AwaitAny(ctx, slow, timer)
		if err != nil {
			return nil, err
		}
		m, err := durable.Receive[int](ctx, "go") // the test restarts here
		if err != nil {
			return nil, err
		}
		a, err := slow.Get(ctx)
		if err != nil {
			return nil, err
		}
		b, err := fast.Get(ctx)
		return []int{first, second, m, a, b}, err
	})
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "fut", 0); err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "fut", func(i durable.RunInfo) bool {
		for _, op := range i.Pending {
			if op.Kind == "receive" {
				return true
			}
		}
		return false
	})
	close(release) // slow may finish before the restart or after it
	e = h.restart(e, wf)
	if err := durable.Send(ctx, e, "fut", "go", 7); err != nil {
		h.Fatal(err)
	}
	hd, err := durable.Attach(ctx, e, wf, "fut")
	if err != nil {
		h.Fatal(err)
	}
	got, err := hd.Result(ctx)
	if err != nil {
		h.Fatal(err)
	}
	if len(got) != 5 || got[0] != 1 || got[1] != 1 || got[2] != 7 || got[3] != 2 || got[4] != 1 {
		h.Fatalf("Result = %v, want [1 1 7 2 1]: fast first, then the timer, the message, slow's and fast's results", got)
	}
	if n := c.get("fast"); n != 1 {
		h.Errorf("fast step executed %d times, want once", n)
	}
	if n := c.get("slow"); n < 1 || n > 2 {
		h.Errorf("slow step executed %d times, want once (twice if the restart interrupted it)", n)
	}
}

// A run's deadline (WithRunTimeout) cancels it with ErrDeadlineExceeded,
// across a restart.
func testRunDeadline(h *harness) {
	ctx := Ctx(h.T)
	wf := durable.Define("late", func(ctx durable.Context, in int) (int, error) {
		return durable.Receive[int](ctx, "never")
	})
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "dl", 0, durable.WithRunTimeout(300*time.Millisecond)); err != nil {
		h.Fatal(err)
	}
	info := MustGet(h.T, e, "dl")
	if info.Deadline.IsZero() {
		h.Fatalf("run with a timeout: no Deadline in %+v", info)
	}
	e = h.restart(e, wf)
	hd, err := durable.Attach(ctx, e, wf, "dl")
	if err != nil {
		h.Fatal(err)
	}
	if _, err := hd.Result(ctx); !errors.Is(err, durable.ErrDeadlineExceeded) || !errors.Is(err, durable.ErrCanceled) {
		h.Fatalf("Result after the deadline = %v, want ErrDeadlineExceeded (matching ErrCanceled)", err)
	}
	if info := MustGet(h.T, e, "dl"); info.Status != durable.StatusCanceled {
		h.Errorf("run past its deadline is %v, want canceled", info.Status)
	}
}
