package enginetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

func init() {
	register("StepsReplayAfterRestart", testStepsReplayAfterRestart)
	register("RetryBackoff", testRetryBackoff)
	register("RetryAcrossRestart", testRetryAcrossRestart)
	register("PanicFailsRun", testPanicFailsRun)
}

// step returns a step function that counts its executions under key and
// returns v.
func step[T any](c *counter, key string, v T) func(context.Context) (T, error) {
	return func(context.Context) (T, error) {
		c.inc(key)
		return v, nil
	}
}

// Steps are recorded once: after a restart the run replays them (none is
// executed again) and goes on from where it waited.
func testStepsReplayAfterRestart(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	wf := durable.Define("steps", func(ctx durable.Context, in string) (string, error) {
		a, err := durable.Step(ctx, "a", step(&c, "a", in+"-a"))
		if err != nil {
			return "", err
		}
		b, err := durable.Step(ctx, "b", step(&c, "b", a+"-b"))
		if err != nil {
			return "", err
		}
		m, err := durable.Receive[string](ctx, "go")
		if err != nil {
			return "", err
		}
		return durable.Step(ctx, "c", step(&c, "c", b+"-"+m))
	})
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "s1", "x"); err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "s1", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	e = h.restart(e, wf)
	if err := durable.Send(ctx, e, "s1", "go", "m"); err != nil {
		h.Fatal(err)
	}
	h2, err := durable.Attach(ctx, e, wf, "s1")
	if err != nil {
		h.Fatal(err)
	}
	got, err := h2.Result(ctx)
	if err != nil || got != "x-a-b-m" {
		h.Fatalf("Result = %q, %v; want x-a-b-m", got, err)
	}
	c.onceEach(h, "a", "b", "c")
	// A restart after the end changes nothing.
	e = h.restart(e, wf)
	if got, err := durable.Run(ctx, e, wf, "s1", "ignored"); err != nil || got != "x-a-b-m" {
		h.Fatalf("Run of a finished run = %q, %v; want its result x-a-b-m", got, err)
	}
	c.onceEach(h, "a", "b", "c")
}

// A failing step is retried with backoff up to its policy's attempts; a
// permanent error stops at once and fails the run with its message.
func testRetryBackoff(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	pol := durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(20 * time.Millisecond)})
	flaky := durable.Define("flaky", func(ctx durable.Context, fails int) (int, error) {
		return durable.Step(ctx, "flaky", func(ctx context.Context) (int, error) {
			info, _ := durable.StepInfoFrom(ctx)
			c.inc(info.RunID)
			if info.Attempt <= fails {
				return 0, errors.New("transient")
			}
			if fails < 0 {
				return 0, retry.Permanent(errors.New("permanent trouble"))
			}
			return info.Attempt, nil
		}, pol)
	})
	e := h.open(flaky)
	got, err := durable.Run(ctx, e, flaky, "ok", 2)
	if err != nil || got != 3 {
		h.Fatalf("Run(fails twice) = %d, %v; want success at attempt 3", got, err)
	}
	if n := c.get("ok"); n != 3 {
		h.Errorf("flaky step executed %d times, want 3", n)
	}
	_, err = durable.Run(ctx, e, flaky, "exhausted", 10)
	if err == nil || !strings.Contains(err.Error(), "transient") {
		h.Fatalf("Run(always fails) = %v, want the step's error", err)
	}
	if n := c.get("exhausted"); n != 5 {
		h.Errorf("always failing step executed %d times, want MaxAttempts 5", n)
	}
	_, err = durable.Run(ctx, e, flaky, "permanent", -1)
	if err == nil || !strings.Contains(err.Error(), "permanent trouble") {
		h.Fatalf("Run(permanent error) = %v, want it", err)
	}
	if n := c.get("permanent"); n != 1 {
		h.Errorf("step with a permanent error executed %d times, want 1", n)
	}
	for id, st := range map[string]durable.Status{"ok": durable.StatusCompleted, "exhausted": durable.StatusFailed, "permanent": durable.StatusFailed} {
		if info := MustGet(h.T, e, id); info.Status != st {
			h.Errorf("run %s is %v, want %v", id, info.Status, st)
		}
	}
}

// A restart during a retry's backoff resumes at the next attempt: the
// recorded failure of attempt 1 is not run again. (On a store in real
// time the restart may come once attempt 2 began; that attempt, not
// recorded, runs again as attempt 2.)
func testRetryAcrossRestart(h *harness) {
	ctx := Ctx(h.T)
	var mu sync.Mutex
	var attempts []int
	gate := make(chan struct{})
	pol := durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(200 * time.Millisecond)})
	wf := durable.Define("retry-restart", func(ctx durable.Context, in int) (int, error) {
		return durable.Step(ctx, "s", func(ctx context.Context) (int, error) {
			info, _ := durable.StepInfoFrom(ctx)
			mu.Lock()
			attempts = append(attempts, info.Attempt)
			mu.Unlock()
			if info.Attempt == 1 {
				return 0, errors.New("first attempt fails")
			}
			select { // attempt 2 waits for the restart
			case <-gate:
				return info.Attempt, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}, pol)
	})
	seen := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(attempts)
	}
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "r", 0); err != nil {
		h.Fatal(err)
	}
	// The failure of attempt 1 is recorded once the retry has a wake
	// time, or attempt 2 began.
	WaitInfo(h.T, e, "r", func(i durable.RunInfo) bool { return !i.WakeAt.IsZero() || len(seen()) > 1 })
	e = h.restart(e, wf)
	close(gate)
	hd, err := durable.Attach(ctx, e, wf, "r")
	if err != nil {
		h.Fatal(err)
	}
	got, err := hd.Result(ctx)
	if err != nil || got != 2 {
		h.Fatalf("Result = %d, %v; want success at attempt 2", got, err)
	}
	at := seen()
	if len(at) < 2 || at[0] != 1 || slices.Contains(at[1:], 1) || slices.ContainsFunc(at, func(a int) bool { return a > 2 }) {
		h.Fatalf("attempts executed: %v, want 1 then 2 (again only if the restart interrupted it)", at)
	}
}

// A panic in workflow code fails the run, with the panic in its error;
// the engine and its other runs go on.
func testPanicFailsRun(h *harness) {
	ctx := Ctx(h.T)
	wf := durable.Define("panics", func(ctx durable.Context, in bool) (string, error) {
		if _, err := durable.Step(ctx, "before", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return "", err
		}
		if in {
			panic("workflow bug")
		}
		return "fine", nil
	})
	e := h.open(wf)
	_, err := durable.Run(ctx, e, wf, "bad", true)
	if err == nil || !strings.Contains(err.Error(), "workflow bug") {
		h.Fatalf("Run of a panicking workflow = %v, want an error naming the panic", err)
	}
	info := MustGet(h.T, e, "bad")
	if info.Status != durable.StatusFailed || info.Err == nil || !strings.Contains(info.Err.Error(), "workflow bug") {
		h.Fatalf("panicked run: %v, %v; want failed with the panic", info.Status, info.Err)
	}
	if got, err := durable.Run(ctx, e, wf, "good", false); err != nil || got != "fine" {
		h.Fatalf("Run after a panic = %q, %v; want fine", got, err)
	}
	// After a restart the failed run stays failed (no replay, no panic).
	e = h.restart(e, wf)
	if info := MustGet(h.T, e, "bad"); info.Status != durable.StatusFailed {
		h.Fatalf("after restart the panicked run is %v, want failed", info.Status)
	}
}
