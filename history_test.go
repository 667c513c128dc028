package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

// logRecorder is a slog.Handler that keeps the messages logged.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *logRecorder) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// tenSteps makes the ten operations the cap allows.
func tenSteps(ctx durable.Context) error {
	for i := range maxHistory {
		if _, err := durable.Step(ctx, "s", func(context.Context) (int, error) { return i, nil }); err != nil {
			return err
		}
	}
	return nil
}

// With Config.MaxHistory 10, the 11th durable operation, of any kind that
// returns an error, returns one matching ErrTooManyRecords, does nothing
// and records nothing; the run fails with it (and Result matches it). A
// warning comes at 90%.
func TestMaxHistoryRefusesOperationPastTheCap(t *testing.T) {
	t.Parallel()
	kid := durable.Define("rn-cap-kid", func(ctx durable.Context, _ struct{}) (int, error) { return 1, nil })
	for _, tc := range []struct {
		name string
		op   func(ctx durable.Context, ran *tally) error
	}{
		{"step", func(ctx durable.Context, ran *tally) error {
			_, err := durable.Step(ctx, "eleventh", func(context.Context) (int, error) { ran.add("op"); return 0, nil })
			return err
		}},
		{"future", func(ctx durable.Context, ran *tally) error {
			_, err := durable.Go(ctx, "eleventh", func(context.Context) (int, error) { ran.add("op"); return 0, nil }).Get(ctx)
			return err
		}},
		{"sleep", func(ctx durable.Context, ran *tally) error { return durable.Sleep(ctx, time.Hour) }},
		{"receive", func(ctx durable.Context, ran *tally) error {
			_, err := durable.ReceiveTimeout[string](ctx, "ch", time.Hour)
			return err
		}},
		{"child", func(ctx durable.Context, ran *tally) error {
			_, err := durable.RunChild(ctx, kid, "", struct{}{})
			return err
		}},
		{"await", func(ctx durable.Context, ran *tally) error {
			_, err := durable.AwaitAny(ctx, durable.OnReceive[string]("ch"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &logRecorder{}
			t.Cleanup(func() { // after the parallel subtests
				if n := rec.count("nears its history limit"); n != 2 { // one per store
					t.Errorf("%d warnings at 90%% of the limit, want one per run", n)
				}
			})
			cfg := &durable.Config{MaxHistory: maxHistory, Logger: slog.New(rec), Workflows: []durable.Definition{kid}}
			both(t, cfg, func(t *testing.T, env *storeEnv) {
				var ran tally
				var opErr valueLog[error]
				wf := durable.Define("rn-cap", func(ctx durable.Context, _ struct{}) (int, error) {
					if err := tenSteps(ctx); err != nil {
						return 0, err
					}
					err := tc.op(ctx, &ran)
					opErr.add(err)
					return 0, err
				})
				ctx := t.Context()
				t0 := time.Now()
				_, err := durable.Run(ctx, env.E, wf, "w", struct{}{})
				if !errors.Is(err, durable.ErrTooManyRecords) {
					t.Errorf("Result = %v, want an error matching ErrTooManyRecords", err)
				}
				if d := time.Since(t0); d != 0 {
					t.Errorf("the refused operation waited %v", d)
				}
				errs := opErr.all()
				if len(errs) != 1 || !errors.Is(errs[0], durable.ErrTooManyRecords) {
					t.Fatalf("the 11th operation returned %v, want an error matching ErrTooManyRecords", errs)
				}
				if msg := errs[0].Error(); !strings.Contains(msg, "Config.MaxHistory") || !strings.Contains(msg, "ContinueAsNew") {
					t.Errorf("error %q does not name the limit and the way out", msg)
				}
				if n := ran.get("op"); n != 0 {
					t.Errorf("the refused step ran %d times", n)
				}
				if !gone(t, env.E, "w/10") {
					t.Error("the refused child was created")
				}
				if info := mustGet(t, env.E, "w"); info.Status != durable.StatusFailed {
					t.Errorf("status %v, want failed", info.Status)
				}
				evs, err := durable.History(ctx, env.store(), "w")
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != maxHistory || evs[len(evs)-1].Position != maxHistory-1 {
					t.Errorf("History has %d events, the last %v; want the ten steps only", len(evs), evs[len(evs)-1])
				}
			})
		})
	}
}

// A workflow that checks WorkflowInfoFrom(ctx).Positions and continues as new at the
// cap never hits it: 100 iterations of one step with a cap of 10 take ten
// epochs.
func TestMaxHistoryContinueAsNewBeforeTheCap(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{MaxHistory: maxHistory, Retention: -1}, func(t *testing.T, env *storeEnv) {
		var errs valueLog[error]
		wf := durable.Define("rn-forever", func(ctx durable.Context, i int) (string, error) {
			for i < 100 {
				if durable.WorkflowInfoFrom(ctx).Positions >= maxHistory {
					return "", durable.ContinueAsNew(ctx, i)
				}
				v, err := durable.Step(ctx, "tick", func(context.Context) (int, error) { return i + 1, nil })
				if err != nil {
					errs.add(err)
					return "", err
				}
				i = v
			}
			return fmt.Sprintf("%d iterations, epoch %d", i, durable.WorkflowInfoFrom(ctx).Epoch), nil
		})
		ctx := t.Context()
		got, err := durable.Run(ctx, env.E, wf, "f", 0)
		if err != nil || got != "100 iterations, epoch 9" {
			t.Fatalf("Run = %q, %v; want 100 iterations in epoch 9", got, err)
		}
		if e := errs.all(); len(e) != 0 {
			t.Errorf("steps failed: %v", e)
		}
		time.Sleep(time.Second)
		if n, err := env.E.Purge(ctx, time.Now()); err != nil || n != 10 {
			t.Errorf("Purge = %d, %v; want 10 (nine ended epochs and the run)", n, err)
		}
	})
}

// Now and NewTimer, which return no error, park the run past the cap,
// with a reason matching ErrTooManyRecords. An engine with a higher cap
// resumes it, and it completes without running its steps again.
func TestMaxHistoryNowParksTheRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		op   func(ctx durable.Context)
	}{
		{"now", func(ctx durable.Context) { durable.Now(ctx) }},
		{"timer", func(ctx durable.Context) { durable.NewTimer(ctx, time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			both(t, &durable.Config{MaxHistory: maxHistory}, func(t *testing.T, env *storeEnv) {
				var runs tally
				wf := durable.Define("rn-parks", func(ctx durable.Context, _ struct{}) (int, error) {
					for i := range maxHistory {
						if _, err := durable.Step(ctx, "s", func(context.Context) (int, error) {
							runs.add(fmt.Sprint(i))
							return i, nil
						}); err != nil {
							return 0, err
						}
					}
					tc.op(ctx)
					return 1, nil
				})
				ctx := t.Context()
				_, err := durable.Run(ctx, env.E, wf, "w", struct{}{})
				var pe *durable.ParkedError
				if !errors.As(err, &pe) || !errors.Is(err, durable.ErrParked) || !errors.Is(err, durable.ErrTooManyRecords) {
					t.Fatalf("Result = %v, want a *ParkedError matching ErrTooManyRecords", err)
				}
				info := mustGet(t, env.E, "w")
				if info.Status != durable.StatusParked || !errors.Is(info.Err, durable.ErrTooManyRecords) {
					t.Fatalf("run: %v (%v), want parked with an error matching ErrTooManyRecords", info.Status, info.Err)
				}
				if evs, err := durable.History(ctx, env.store(), "w"); err != nil || len(evs) != maxHistory {
					t.Errorf("History: %d events, %v; want the ten steps only", len(evs), err)
				}

				env.restart(&durable.Config{MaxHistory: 2 * maxHistory, Workflows: []durable.Definition{wf}})
				h, err := durable.Start(ctx, env.E, wf, "w", struct{}{})
				if err != nil {
					t.Fatal(err)
				}
				if got, err := h.Result(ctx); err != nil || got != 1 {
					t.Fatalf("after a restart with a higher cap: %d, %v; want 1", got, err)
				}
				for i := range maxHistory {
					if n := runs.get(fmt.Sprint(i)); n != 1 {
						t.Errorf("step %d ran %d times, want 1", i, n)
					}
				}
			})
		})
	}
}

// History describes every kind of record: steps (completed, a failed
// attempt with its next attempt's time, failed), a sleep (waiting until,
// completed), a receive, a child's start and result, Now, and the
// delivery of a cancellation. Each event's String is one line.
func TestHistoryDescribesEveryOperation(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{}, func(t *testing.T, env *storeEnv) {
		kid := durable.Define("rn-hist-kid", func(ctx durable.Context, in int) (int, error) { return 2 * in, nil })
		type order struct {
			Item string
			Qty  int
		}
		attempts := 0
		wf := durable.Define("rn-hist", func(ctx durable.Context, _ struct{}) (int, error) {
			if _, err := durable.Step(ctx, "fetch", func(context.Context) (order, error) { return order{"book", 2}, nil }); err != nil {
				return 0, err
			}
			if _, err := durable.Step(ctx, "flaky", func(context.Context) (string, error) {
				if attempts++; attempts == 1 {
					return "", errors.New("try again")
				}
				return "ok", nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Minute)})); err != nil {
				return 0, err
			}
			_, _ = durable.Step(ctx, "doomed", func(context.Context) (int, error) {
				return 0, errors.New("out of\nstock")
			}, durable.WithRetry(retry.Policy{MaxAttempts: 1}))
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return 0, err
			}
			if _, err := durable.Receive[string](ctx, "approve"); err != nil {
				return 0, err
			}
			if _, err := durable.RunChild(ctx, kid, "", 7); err != nil {
				return 0, err
			}
			durable.Now(ctx)
			_, err := durable.Receive[string](ctx, "never")
			return 0, err
		})
		ctx := t.Context()
		t0 := time.Now().UTC()
		h, err := durable.Start(ctx, env.E, wf, "h", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute + time.Hour) // the retry wait and the sleep
		synctest.Wait()
		if err := durable.Send(ctx, env.E, "h", "approve", "yes"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := env.E.Cancel(ctx, "h"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Fatalf("Result = %v, want ErrCanceled", err)
		}

		evs, err := durable.History(ctx, env.store(), "h")
		if err != nil {
			t.Fatal(err)
		}
		nextAttempt, wakeAt := t0.Add(time.Minute), t0.Add(time.Minute+time.Hour)
		doomed := `durable: rn-hist(h) → step "doomed" failed after 1 attempt: out of` + "\n" + `stock`
		want := []durable.Event{
			{Position: 0, Seq: 0, Kind: "step", Name: "fetch", What: "completed", Detail: `{"Item":"book","Qty":2}`},
			{Position: 1, Seq: 0, Kind: "step", Name: "flaky", What: "attempt 1 failed, next at", Time: nextAttempt, Detail: "try again"},
			{Position: 1, Seq: 1, Kind: "step", Name: "flaky", What: "completed", Detail: `"ok"`},
			{Position: 2, Seq: 0, Kind: "step", Name: "doomed", What: "failed", Detail: doomed},
			{Position: 3, Seq: 0, Kind: "sleep", What: "waiting until", Time: wakeAt},
			{Position: 3, Seq: 1, Kind: "sleep", What: "completed"},
			{Position: 4, Seq: 0, Kind: "receive", Name: "approve", What: "completed", Detail: `"yes"`},
			{Position: 5, Seq: 0, Kind: "child", Name: "rn-hist-kid", What: "started", Detail: "h/5"},
			{Position: 5, Seq: 1, Kind: "child", Name: "rn-hist-kid", What: "completed", Detail: "14"},
			{Position: 6, Seq: 0, Kind: "now", What: "read clock", Time: wakeAt},
			{Position: 7, Seq: 0, Kind: "receive", Name: "never", What: "canceled", Detail: "durable: run canceled"},
		}
		if len(evs) != len(want) {
			t.Errorf("%d events, want %d", len(evs), len(want))
		}
		for i := range min(len(evs), len(want)) {
			got := evs[i]
			if want[i].What != "waiting until" && !strings.HasPrefix(want[i].What, "attempt") && want[i].Kind != "now" && got.Written.IsZero() {
				t.Errorf("event %d has no Written time", i)
			}
			got.Written = time.Time{}
			if got != want[i] {
				t.Errorf("event %d:\n got %#v\nwant %#v", i, got, want[i])
			}
		}
		for _, ev := range evs {
			if s := ev.String(); strings.ContainsAny(s, "\r\n") {
				t.Errorf("Event.String is not one line: %q", s)
			}
		}
	})
}

// Event.String formats one event on one line.
func TestHistoryEventString(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 1, 12, 30, 0, 500, time.UTC)
	for _, tc := range []struct {
		ev   durable.Event
		want string
	}{
		{durable.Event{Position: 0, Kind: "step", Name: "charge", What: "completed", Detail: `{"id":7}`},
			`   0.0  step    "charge"  completed: {"id":7}`},
		{durable.Event{Position: 12, Seq: 1, Kind: "step", Name: "charge", What: "attempt 1 failed, next at", Time: at, Detail: "card declined"},
			`  12.1  step    "charge"  attempt 1 failed, next at 2024-05-01T12:30:00.0000005Z: card declined`},
		{durable.Event{Position: 3, Kind: "sleep", What: "waiting until", Time: at},
			`   3.0  sleep    waiting until 2024-05-01T12:30:00.0000005Z`},
		{durable.Event{Position: 4, Seq: 1, Kind: "sleep", What: "completed"},
			`   4.1  sleep    completed`},
		{durable.Event{Position: 5, Kind: "receive", Name: "line\nbreak", What: "completed", Detail: "two\nlines\r\n"},
			`   5.0  receive "line\nbreak"  completed: two\nlines\r\n`},
	} {
		if got := tc.ev.String(); got != tc.want {
			t.Errorf("String() =\n %q\nwant\n %q", got, tc.want)
		}
	}
}

// A deploy that lowers MaxHistory below what a run recorded still
// replays the recorded operations (none runs again); the next new
// operation past the new cap fails.
func TestMaxHistoryLoweredCapReplays(t *testing.T) {
	t.Parallel()
	both(t, &durable.Config{MaxHistory: maxHistory}, func(t *testing.T, env *storeEnv) {
		var runs tally
		wf := durable.Define("rn-lowered", func(ctx durable.Context, _ struct{}) (int, error) {
			for i := range 8 {
				if _, err := durable.Step(ctx, "s", func(context.Context) (int, error) {
					runs.add(fmt.Sprint(i))
					return i, nil
				}); err != nil {
					return 0, err
				}
			}
			_, err := durable.Receive[string](ctx, "go")
			return 1, err
		})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.E, wf, "w", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		env.restart(&durable.Config{MaxHistory: 5, Workflows: []durable.Definition{wf}})
		h, err := durable.Start(ctx, env.E, wf, "w", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		// The run waits for a message: loaded for it (or already by the
		// Start that attached to it), it fails at the receive, position 8.
		if err := durable.Send(ctx, env.E, "w", "go", "now"); err != nil && !errors.Is(err, durable.ErrFinished) {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrTooManyRecords) {
			t.Errorf("Result = %v, want the receive at position 8 refused with ErrTooManyRecords", err)
		}
		for i := range 8 {
			if n := runs.get(fmt.Sprint(i)); n != 1 {
				t.Errorf("step %d ran %d times, want 1", i, n)
			}
		}
	})
}
