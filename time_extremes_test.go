package durable_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// Times the journal cannot hold in nanoseconds since 1970 (before 1678,
// after 2262) and durations that reach them are saturated: a "forever"
// wait waits (until 2262), a time long past is past. None may overflow
// into a wait that ends at once or never.

var (
	year3000 = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	year1000 = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
)

type extremeCase struct {
	name    string
	wf      func(ctx durable.Context, _ int) (string, error)
	opts    []durable.StartOption
	waits   bool  // still running after 1000 hours
	wantErr error // nil: completes
}

// TestTimeExtremes runs each durable time API with extreme arguments in a
// synctest bubble, where a thousand years pass in no time.
func TestTimeExtremes(t *testing.T) {
	t.Parallel()
	forever := func(name string, wait func(ctx durable.Context) error) extremeCase {
		return extremeCase{name: name, wf: func(ctx durable.Context, _ int) (string, error) { return "", wait(ctx) }, waits: true}
	}
	cases := []extremeCase{
		forever("Sleep(MaxInt64)", func(ctx durable.Context) error { return durable.Sleep(ctx, math.MaxInt64) }),
		forever("SleepUntil(3000)", func(ctx durable.Context) error { return durable.SleepUntil(ctx, year3000) }),
		forever("ReceiveTimeout(MaxInt64)", func(ctx durable.Context) error {
			_, err := durable.ReceiveTimeout[int](ctx, "c", math.MaxInt64)
			return err
		}),
		forever("NewTimer(MaxInt64)", func(ctx durable.Context) error {
			_, err := durable.AwaitAny(ctx, durable.NewTimer(ctx, math.MaxInt64))
			return err
		}),
		forever("retry after MaxInt64", func(ctx durable.Context) error {
			_, err := durable.Step(ctx, "fails", func(context.Context) (int, error) { return 0, errors.New("no") },
				durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: constant(math.MaxInt64)}))
			return err
		}),
		{name: "SleepUntil(1000)", wf: func(ctx durable.Context, _ int) (string, error) {
			return "", durable.SleepUntil(ctx, year1000)
		}},
		{name: "Sleep(MinInt64)", wf: func(ctx durable.Context, _ int) (string, error) {
			return "", durable.Sleep(ctx, math.MinInt64)
		}},
		{name: "ReceiveTimeout(MinInt64)", wf: func(ctx durable.Context, _ int) (string, error) {
			_, err := durable.ReceiveTimeout[int](ctx, "c", math.MinInt64)
			return "", err
		}, wantErr: durable.ErrTimeout},
		{name: "WithDeadline(3000)", opts: []durable.StartOption{durable.WithDeadline(year3000)}, wf: sleepHour},
		{name: "WithRunTimeout(MaxInt64)", opts: []durable.StartOption{durable.WithRunTimeout(math.MaxInt64)}, wf: sleepHour},
		{name: "WithDeadline(1000)", opts: []durable.StartOption{durable.WithDeadline(year1000)}, wf: sleepHour, wantErr: durable.ErrDeadlineExceeded},
		{name: "WithTimeout(MaxInt64)", wf: func(ctx durable.Context, _ int) (string, error) {
			_, err := durable.Step(ctx, "s", func(ctx context.Context) (int, error) { return 0, ctx.Err() }, durable.WithTimeout(math.MaxInt64))
			return "", err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				wf := durable.Define("extreme", c.wf)
				e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf}, Retention: -1}))
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				h, err := durable.Start(context.Background(), e, wf, "x", 0, c.opts...)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(1000 * time.Hour)
				synctest.Wait()
				info := mustGet(t, e, "x")
				if c.waits {
					if info.Status != durable.StatusRunning {
						t.Fatalf("after 1000 hours: status %v (err %v); want it still waiting", info.Status, info.Err)
					}
					return
				}
				_, err = h.Result(context.Background())
				if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
					t.Fatalf("Result = %v; want %v", err, c.wantErr)
				}
			})
		})
	}
}

func sleepHour(ctx durable.Context, _ int) (string, error) {
	return "", durable.Sleep(ctx, time.Hour)
}

// TestNowAtExtremeClock checks that a clock outside what the journal holds
// gives a saturated, not a wrapped, Now.
func TestNowAtExtremeClock(t *testing.T) {
	t.Parallel()
	for _, at := range []time.Time{year3000, year1000} {
		clock := fixedClock{at}
		wf := durable.Define("now-extreme", func(ctx durable.Context, _ int) (time.Time, error) {
			return durable.Now(ctx), nil
		})
		// Retention -1: a clock past 2262 would find the run due for
		// deletion at once (the journal's times stop at 2262).
		e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf}, Clock: clock, Retention: -1}))
		if err != nil {
			t.Fatal(err)
		}
		got, err := durable.Run(testCtx(t), e, wf, "n", 0)
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		if at.After(time.Now()) != got.After(time.Now()) {
			t.Errorf("clock at %v: Now = %v; want a time on the same side of today", at, got)
		}
	}
}

// fixedClock is a Clock stopped at one time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) TimerAt(at time.Time) (<-chan time.Time, func() bool) {
	t := time.NewTimer(at.Sub(c.t))
	return t.C, t.Stop
}
