package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/crashtest"
)

// Helpers shared by time_test.go, inbox_test.go and cancel_test.go.

// tmCounts counts executions by name. It is safe for concurrent use.
type tmCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *tmCounts) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name]++
}

func (c *tmCounts) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

// tmLog collects values the workflow code reports on every execution
// (live and replayed). It is safe for concurrent use.
type tmLog[T any] struct {
	mu sync.Mutex
	v  []T
}

func (l *tmLog[T]) add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v = append(l.v, v)
}

func (l *tmLog[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.v...)
}

// tmSpan is what the timing workflows return: the real (or bubble) time
// read in a step before and after the wait.
type tmSpan struct {
	Before, After time.Time
}

// tmNowStep is a step that returns time.Now(), counted in c.
func tmNowStep(ctx durable.Context, c *tmCounts, name string) (time.Time, error) {
	return durable.Step(ctx, name, func(context.Context) (time.Time, error) {
		c.add(name)
		return time.Now(), nil
	})
}

// tmQuiet is a logger that drops the engine's warnings (parked runs) in
// tests that park runs on purpose.
var tmQuiet = slog.New(slog.DiscardHandler)

func tmConfig(defs ...durable.Definition) *durable.Config {
	return &durable.Config{Workflows: defs, Logger: tmQuiet}
}

// tmGet returns run id's info, failing the test on error.
func tmGet(t *testing.T, e *durable.Engine, id string) durable.RunInfo {
	t.Helper()
	info, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return info
}

// tmWantStatus fails the test unless run id has status want.
func tmWantStatus(t *testing.T, e *durable.Engine, id string, want durable.Status) durable.RunInfo {
	t.Helper()
	info := tmGet(t, e, id)
	if info.Status != want {
		t.Fatalf("run %q: status %v (err %v), want %v", id, info.Status, info.Err, want)
	}
	return info
}

// tmPoll polls (real time) until cond holds; timeout only guards against a
// hang, it is not a measurement.
func tmPoll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tmResult attaches to run id (Start of an existing id executes nothing)
// and returns its result.
func tmResult[I, O any](t *testing.T, e *durable.Engine, w *durable.Workflow[I, O], id string, in I) (O, error) {
	t.Helper()
	h, err := durable.Start(t.Context(), e, w, id, in)
	if err != nil {
		t.Fatalf("Start(%q): %v", id, err)
	}
	return h.Result(t.Context())
}

// tmSleepWorkflow returns a workflow that reads the time in a step, sleeps
// d and reads the time again.
func tmSleepWorkflow(name string, c *tmCounts, d time.Duration) *durable.Workflow[struct{}, tmSpan] {
	return durable.Define(name, func(ctx durable.Context, _ struct{}) (tmSpan, error) {
		before, err := tmNowStep(ctx, c, "before")
		if err != nil {
			return tmSpan{}, err
		}
		if err := durable.Sleep(ctx, d); err != nil {
			return tmSpan{}, err
		}
		after, err := tmNowStep(ctx, c, "after")
		return tmSpan{before, after}, err
	})
}

// A real restart during a Sleep, on a bbolt file: the engine is closed
// 300ms into a 1.5s sleep and reopened 500ms later. The run completes
// after the sleep, and did not sleep a second time. (The exact version,
// in virtual time, is TestTimeRestartDuringSleepExact.)
func TestTimeRestartDuringSleepBolt(t *testing.T) {
	t.Parallel()
	const sleep = 1500 * time.Millisecond
	const downtime = 500 * time.Millisecond
	var counts tmCounts
	wf := tmSleepWorkflow("tm-sleep-bolt", &counts, sleep)
	cfg := tmConfig(wf)
	path := filepath.Join(t.TempDir(), "journal.db")

	e, err := durable.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(t.Context(), e, wf, "r", struct{}{}); err != nil {
		t.Fatal(err)
	}
	tmPoll(t, 10*time.Second, "the sleep to be journaled", func() bool {
		return !tmGet(t, e, "r").WakeAt.IsZero()
	})
	time.Sleep(300 * time.Millisecond)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(downtime)

	e, err = durable.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a hang guard
	defer cancel()
	h, err := durable.Start(ctx, e, wf, "r", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	span, err := h.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := span.After.Sub(span.Before)
	if elapsed < sleep {
		t.Errorf("the sleep ended %v after it began, before its %v", elapsed, sleep)
	}
	if limit := 2*sleep + downtime; elapsed >= limit {
		t.Errorf("the sleep ended %v after it began: %v or more means it slept twice", elapsed, limit)
	}
	if n := counts.get("before"); n != 1 {
		t.Errorf("step before ran %d times, want 1 (replayed after the restart)", n)
	}
	if n := counts.get("after"); n != 1 {
		t.Errorf("step after ran %d times, want 1", n)
	}
}

// The crash version: a child process sleeping 2s is killed 500ms into the
// sleep; 3s later (the timer fell due while no process ran) a new child
// only opens the journal. The overdue timer fires at Open, without a
// Start, and the run completes.
const tmCrashSleep = 2 * time.Second

var (
	tmCrashLog     *crashtest.Log // set in the child
	tmCrashSleeper = durable.Define("tm-crash-sleeper", func(ctx durable.Context, _ struct{}) (tmSpan, error) {
		now := func(name string) (time.Time, error) {
			return durable.Step(ctx, name, func(context.Context) (time.Time, error) {
				if err := tmCrashLog.Append("%s", name); err != nil {
					return time.Time{}, err
				}
				return time.Now(), nil
			})
		}
		before, err := now("before")
		if err != nil {
			return tmSpan{}, err
		}
		if err := durable.Sleep(ctx, tmCrashSleep); err != nil {
			return tmSpan{}, err
		}
		after, err := now("after")
		return tmSpan{before, after}, err
	})
)

func TestTimeCrashChild(t *testing.T) {
	role := crashtest.Role()
	if role != "tm-sleeper" && role != "tm-opener" {
		t.Skip("run as a child by TestTimeCrashOverdueTimerFiresAtOpen")
	}
	opened := time.Now()
	var err error
	if tmCrashLog, err = crashtest.OpenLog(crashtest.Env("LOG")); err != nil {
		t.Fatal(err)
	}
	e, err := durable.Open(crashtest.Env("JOURNAL"), tmConfig(tmCrashSleeper))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	switch role {
	case "tm-sleeper":
		if _, err := durable.Start(t.Context(), e, tmCrashSleeper, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		tmPoll(t, 20*time.Second, "the sleep to be journaled", func() bool {
			return !tmGet(t, e, "r").WakeAt.IsZero()
		})
		fmt.Println("tm: sleeping")
		time.Sleep(time.Minute) // the parent kills us
		t.Fatal("not killed")
	case "tm-opener":
		// No Start: the run must complete by itself.
		tmPoll(t, 20*time.Second, "the run to complete", func() bool {
			return tmGet(t, e, "r").Status == durable.StatusCompleted
		})
		span, err := tmResult(t, e, tmCrashSleeper, "r", struct{}{}) // finished: reads the result
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("tm: completed before=%d after=%d opened=%d\n", span.Before.UnixNano(), span.After.UnixNano(), opened.UnixNano())
	}
}

func TestTimeCrashOverdueTimerFiresAtOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "journal.db"), "LOG": filepath.Join(dir, "effects.log")}

	p := crashtest.Start(t, "TestTimeCrashChild", "tm-sleeper", env)
	p.WaitFor(t, "tm: sleeping", 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	p.Kill(t)
	killed := time.Now()
	time.Sleep(3 * time.Second) // the timer falls due while no process runs

	q := crashtest.Start(t, "TestTimeCrashChild", "tm-opener", env)
	line := q.WaitFor(t, "tm: completed", 30*time.Second)
	if err := q.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("opener child: %v", err)
	}
	var before, after, opened int64
	if _, err := fmt.Sscanf(line[strings.Index(line, "before="):], "before=%d after=%d opened=%d", &before, &after, &opened); err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	elapsed := time.Duration(after - before)
	if elapsed < tmCrashSleep {
		t.Errorf("the sleep ended %v after it began, before its %v", elapsed, tmCrashSleep)
	}
	if opened < killed.UnixNano() {
		t.Fatalf("the opener started before the kill")
	}
	// A timer started again at Open would fire tmCrashSleep after it; the
	// overdue one fires as soon as the run is replayed.
	if d := time.Duration(after - opened); d >= tmCrashSleep {
		t.Errorf("the overdue timer fired %v after Open: it was started again", d)
	}
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	if counts["before"] != 1 || counts["after"] != 1 {
		t.Errorf("step executions = %v, want before and after once each", counts)
	}
}

// The exact version in virtual time: a restart 10 minutes into a 1h sleep,
// with 20 minutes of downtime, completes the sleep at exactly start+1h:
// not 1h + downtime, not 10m + 1h.
func TestTimeRestartDuringSleepExact(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		wf := tmSleepWorkflow("tm-sleep-exact", &counts, time.Hour)
		env := durabletest.New(t, tmConfig(wf))
		start := time.Now()
		h, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		if err := env.Engine.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(t.Context()); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("old handle's Result after Close = %v, want ErrClosed", err)
		}
		time.Sleep(20 * time.Minute) // downtime
		env.Restart()

		span, err := tmResult(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !span.Before.Equal(start) {
			t.Errorf("before = start%+v, want start", span.Before.Sub(start))
		}
		if want := start.Add(time.Hour); !span.After.Equal(want) {
			t.Errorf("the sleep ended at start+%v, want start+1h", span.After.Sub(start))
		}
		if counts.get("before") != 1 || counts.get("after") != 1 {
			t.Errorf("steps ran before=%d after=%d times, want 1 each", counts.get("before"), counts.get("after"))
		}
	})
}

// A timer that falls due while no engine runs fires when the next engine
// opens the store, without a Start: at the reopening, not an hour later.
func TestTimeOverdueTimerFiresAtOpen(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		wf := tmSleepWorkflow("tm-overdue", &counts, time.Hour)
		env := durabletest.New(t, tmConfig(wf))
		start := time.Now()
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if info := tmWantStatus(t, env.Engine, "r", durable.StatusRunning); !info.WakeAt.Equal(start.Add(time.Hour)) {
			t.Errorf("WakeAt = start+%v, want start+1h", info.WakeAt.Sub(start))
		}
		if err := env.Engine.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Hour) // due while down
		reopened := time.Now()
		env.Restart()
		synctest.Wait() // no Start: recovery alone must finish the run
		tmWantStatus(t, env.Engine, "r", durable.StatusCompleted)

		span, err := tmResult(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !span.After.Equal(reopened) {
			t.Errorf("the overdue timer fired at start+%v, want at the reopening, start+%v", span.After.Sub(start), reopened.Sub(start))
		}
		if counts.get("before") != 1 || counts.get("after") != 1 {
			t.Errorf("steps ran before=%d after=%d times, want 1 each", counts.get("before"), counts.get("after"))
		}
	})
}

// tmClockStart is where the injected clocks start: far from the synctest
// bubble's clock, so a timer on the wrong clock would show.
var tmClockStart = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// tmClockWorkflow reads durable.Now (reporting it on every execution to
// nows), sleeps 1h, runs step "after" (counted), and then waits for a
// message on "go" so that the run stays alive; it returns the Now it read.
func tmClockWorkflow(name string, c *tmCounts, nows *tmLog[time.Time]) *durable.Workflow[struct{}, time.Time] {
	return durable.Define(name, func(ctx durable.Context, _ struct{}) (time.Time, error) {
		now := durable.Now(ctx)
		nows.add(now)
		if err := durable.Sleep(ctx, time.Hour); err != nil {
			return time.Time{}, err
		}
		if _, err := durable.Step(ctx, "after", func(context.Context) (int, error) {
			c.add("after")
			return 0, nil
		}); err != nil {
			return time.Time{}, err
		}
		if _, err := durable.Receive[string](ctx, "go"); err != nil {
			return time.Time{}, err
		}
		return now, nil
	})
}

// An injected clock jumping 24h forwards fires a 1h sleep once; jumping
// further fires nothing more.
func TestTimeClockJumpForward(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		var nows tmLog[time.Time]
		wf := tmClockWorkflow("tm-clock-forward", &counts, &nows)
		clock := durabletest.NewClock(tmClockStart)
		cfg := tmConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(48 * time.Hour) // bubble time does not move the injected clock
		synctest.Wait()
		if info := tmGet(t, env.Engine, "r"); !info.WakeAt.Equal(tmClockStart.Add(time.Hour)) {
			t.Errorf("WakeAt = %v, want the injected clock's start + 1h", info.WakeAt)
		}
		if n := counts.get("after"); n != 0 {
			t.Fatalf("the sleep fired %d times before the clock moved", n)
		}
		clock.Advance(24 * time.Hour)
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("after a 24h jump the 1h sleep fired %d times, want 1", n)
		}
		clock.Advance(24 * time.Hour)
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("after a second jump the sleep has fired %d times, want 1", n)
		}
		if err := durable.Send(t.Context(), env.Engine, "r", "go", "now"); err != nil {
			t.Fatal(err)
		}
		now, err := tmResult(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !now.Equal(tmClockStart) {
			t.Errorf("durable.Now = %v, want the injected clock's %v", now, tmClockStart)
		}
	})
}

// Jumping the clock 24h backwards during a 1h sleep fires nothing; moving
// it forwards again fires the sleep once, at its wake time, not before.
func TestTimeClockJumpBackward(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		var nows tmLog[time.Time]
		wf := tmClockWorkflow("tm-clock-backward", &counts, &nows)
		clock := durabletest.NewClock(tmClockStart)
		cfg := tmConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for _, step := range []struct {
			by   time.Duration
			want int
		}{
			{30 * time.Minute, 0}, // start+30m
			{-24 * time.Hour, 0},  // start-23h30m
			{24 * time.Hour, 0},   // start+30m again
			{29 * time.Minute, 0}, // start+59m
			{time.Minute, 1},      // start+1h: due
			{-48 * time.Hour, 1},  // back again: nothing more
			{96 * time.Hour, 1},   // forwards again: nothing more
			{-time.Nanosecond, 1}, //
			{time.Nanosecond, 1},  //
			{2 * time.Nanosecond, 1},
		} {
			clock.Advance(step.by)
			synctest.Wait()
			if n := counts.get("after"); n != step.want {
				t.Fatalf("clock at start%+v: the sleep fired %d times, want %d", clock.Now().Sub(tmClockStart), n, step.want)
			}
		}
	})
}

// The clock moved back after the sleep fired and the run went on: an
// engine restart replays the sleep as fired (no second firing), and
// durable.Now returns the value recorded the first time.
func TestTimeClockBackwardAcrossRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		var nows tmLog[time.Time]
		wf := tmClockWorkflow("tm-clock-restart", &counts, &nows)
		clock := durabletest.NewClock(tmClockStart)
		cfg := tmConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		clock.Advance(time.Hour)
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("the sleep fired %d times, want 1", n)
		}
		clock.Set(tmClockStart.Add(-24 * time.Hour))
		env.Restart()
		synctest.Wait()
		clock.Advance(time.Hour) // start-23h: still before every time the run saw
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("after a restart with the clock moved back, the sleep has fired %d times, want 1", n)
		}
		tmWantStatus(t, env.Engine, "r", durable.StatusRunning) // waiting on "go"

		if err := durable.Send(t.Context(), env.Engine, "r", "go", "now"); err != nil {
			t.Fatal(err)
		}
		now, err := tmResult(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !now.Equal(tmClockStart) {
			t.Errorf("durable.Now = %v, want the injected clock's %v", now, tmClockStart)
		}
		got := nows.all()
		if len(got) != 2 {
			t.Fatalf("the workflow ran %d times, want 2 (live, then replayed after the restart)", len(got))
		}
		for i, n := range got {
			if !n.Equal(tmClockStart) {
				t.Errorf("execution %d: durable.Now = %v, want %v recorded the first time", i, n, tmClockStart)
			}
		}
		if n := counts.get("after"); n != 1 {
			t.Errorf("step after ran %d times, want 1", n)
		}
	})
}

// durable.Now returns the injected time at each call and replays it.
func TestTimeNowInjectedAndReplayStable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var runs tmLog[[2]time.Time]
		wf := durable.Define("tm-now", func(ctx durable.Context, _ struct{}) ([2]time.Time, error) {
			a := durable.Now(ctx)
			if _, err := durable.Receive[string](ctx, "next"); err != nil {
				return [2]time.Time{}, err
			}
			b := durable.Now(ctx)
			runs.add([2]time.Time{a, b})
			if _, err := durable.Receive[string](ctx, "done"); err != nil {
				return [2]time.Time{}, err
			}
			return [2]time.Time{a, b}, nil
		})
		clock := durabletest.NewClock(tmClockStart)
		cfg := tmConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		clock.Advance(90 * time.Minute)
		if err := durable.Send(t.Context(), env.Engine, "r", "next", "x"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		clock.Advance(-5 * time.Hour)
		env.Restart()
		synctest.Wait()
		clock.Advance(17 * time.Hour)
		if err := durable.Send(t.Context(), env.Engine, "r", "done", "x"); err != nil {
			t.Fatal(err)
		}
		got, err := tmResult(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		want := [2]time.Time{tmClockStart, tmClockStart.Add(90 * time.Minute)}
		if !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
			t.Errorf("durable.Now read %v, want %v", got, want)
		}
		execs := runs.all()
		if len(execs) != 2 {
			t.Fatalf("the workflow reached its second Now %d times, want 2", len(execs))
		}
		for i, r := range execs {
			if !r[0].Equal(want[0]) || !r[1].Equal(want[1]) {
				t.Errorf("execution %d read %v, want %v", i, r, want)
			}
		}
	})
}

// Sleep(0), a negative Sleep and SleepUntil a time in the past return at
// once: no virtual time passes and no wake time is journaled.
func TestTimeSleepPastReturnsAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		wf := durable.Define("tm-sleep-past", func(ctx durable.Context, _ struct{}) (time.Time, error) {
			for _, d := range []time.Duration{0, -time.Second} {
				if err := durable.Sleep(ctx, d); err != nil {
					return time.Time{}, err
				}
			}
			for _, at := range []time.Time{durable.Now(ctx).Add(-time.Hour), durable.Now(ctx), {}} {
				if err := durable.SleepUntil(ctx, at); err != nil {
					return time.Time{}, err
				}
			}
			return tmNowStep(ctx, &counts, "after")
		})
		env := durabletest.New(t, tmConfig(wf))
		start := time.Now()
		after, err := durable.Run(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !after.Equal(start) {
			t.Errorf("the sleeps took %v of virtual time, want none", after.Sub(start))
		}
		if info := tmGet(t, env.Engine, "r"); !info.WakeAt.IsZero() {
			t.Errorf("WakeAt = %v, want none", info.WakeAt)
		}
	})
}

// SleepUntil a future time sleeps exactly until it, across a restart.
func TestTimeSleepUntilAcrossRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		wake := time.Now().Add(36 * time.Hour)
		wf := durable.Define("tm-sleep-until", func(ctx durable.Context, at time.Time) (time.Time, error) {
			if err := durable.SleepUntil(ctx, at); err != nil {
				return time.Time{}, err
			}
			return tmNowStep(ctx, &counts, "after")
		})
		env := durabletest.New(t, tmConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", wake); err != nil {
			t.Fatal(err)
		}
		time.Sleep(12 * time.Hour)
		env.Restart()
		got, err := tmResult(t, env.Engine, wf, "r", wake)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(wake) {
			t.Errorf("SleepUntil returned at %v, want %v", got, wake)
		}
		if n := counts.get("after"); n != 1 {
			t.Errorf("step after ran %d times, want 1", n)
		}
	})
}

// A SleepUntil whose time had passed returned at once and the run went
// on; the clock then moves back before that time and the engine
// restarts. Replay must not wait: the first execution did not.
func TestTimeClockBackwardPastSleepUntil(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		wf := durable.Define("tm-clock-past-until", func(ctx durable.Context, at time.Time) (int, error) {
			if err := durable.SleepUntil(ctx, at); err != nil {
				return 0, err
			}
			if _, err := durable.Step(ctx, "after", func(context.Context) (int, error) {
				counts.add("after")
				return 0, nil
			}); err != nil {
				return 0, err
			}
			counts.add("replayed past the sleep")
			_, err := durable.Receive[string](ctx, "go")
			return 0, err
		})
		clock := durabletest.NewClock(tmClockStart.Add(time.Hour))
		cfg := tmConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		wake := tmClockStart.Add(30 * time.Minute) // already passed
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", wake); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("step after ran %d times, want 1", n)
		}
		clock.Set(tmClockStart) // before the wake time
		env.Restart()
		synctest.Wait()
		if n := counts.get("replayed past the sleep"); n != 2 {
			t.Errorf("after the restart the replay stopped at the SleepUntil (reached the step %d times, want 2)", n)
		}
		if err := durable.Send(t.Context(), env.Engine, "r", "go", "x"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		tmWantStatus(t, env.Engine, "r", durable.StatusCompleted)
		if n := counts.get("after"); n != 1 {
			t.Errorf("step after ran %d times, want 1", n)
		}
	})
}

// tmJumpyClock is a durabletest.Clock that, once armed, moves forwards by
// jump right after a Now call has read it: as if another goroutine moved
// the clock between the engine's reading of the time and what it does
// with it.
type tmJumpyClock struct {
	*durabletest.Clock
	mu    sync.Mutex
	jump  time.Duration
	armed bool
}

func (c *tmJumpyClock) Now() time.Time {
	t := c.Clock.Now()
	c.mu.Lock()
	armed := c.armed
	c.armed = false
	c.mu.Unlock()
	if armed {
		c.Clock.Advance(c.jump)
	}
	return t
}

func (c *tmJumpyClock) arm(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jump, c.armed = d, true
}

// The clock moves while the engine's timer loop arms its next timer: the
// timer must still fire when the clock reaches the wake time, not that
// much later.
func TestTimeClockMovedWhileArmingTimer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("tm-clock-jumpy", func(ctx durable.Context, d time.Duration) (time.Time, error) {
			if err := durable.Sleep(ctx, d); err != nil {
				return time.Time{}, err
			}
			return durable.Now(ctx), nil
		})
		clock := &tmJumpyClock{Clock: durabletest.NewClock(tmClockStart)}
		cfg := tmConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		for id, d := range map[string]time.Duration{"a": time.Hour, "b": 2 * time.Hour} {
			if _, err := durable.Start(t.Context(), env.Engine, wf, id, d); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		// Firing a's timer wakes the timer loop, whose first reading of the
		// clock is followed by a 30m move; then it arms b's timer.
		clock.arm(30 * time.Minute)
		clock.Advance(time.Hour)
		synctest.Wait()
		tmWantStatus(t, env.Engine, "a", durable.StatusCompleted)
		tmWantStatus(t, env.Engine, "b", durable.StatusRunning)
		clock.Advance(30 * time.Minute) // start+2h: b is due
		synctest.Wait()
		tmWantStatus(t, env.Engine, "b", durable.StatusCompleted)
	})
}

// Sleeping runs evicted from the run cache (Config.MaxCachedRuns) are
// loaded again when their timers fall due, and wake exactly on time, also
// across a restart.
func TestTimeSleepEvicted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tmCounts
		wf := durable.Define("tm-sleep-evicted", func(ctx durable.Context, d time.Duration) (time.Time, error) {
			if _, err := tmNowStep(ctx, &counts, "before-"+ctx.RunID()); err != nil {
				return time.Time{}, err
			}
			if err := durable.Sleep(ctx, d); err != nil {
				return time.Time{}, err
			}
			return tmNowStep(ctx, &counts, "after-"+ctx.RunID())
		})
		cfg := tmConfig(wf)
		cfg.MaxCachedRuns = 1
		env := durabletest.New(t, cfg)
		start := time.Now()
		const runs = 5
		for i := range runs {
			id := fmt.Sprint("r", i)
			if _, err := durable.Start(t.Context(), env.Engine, wf, id, time.Duration(runs-i)*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(90 * time.Minute) // the shortest sleep is over
		env.Restart()
		for i := range runs {
			id := fmt.Sprint("r", i)
			at, err := tmResult(t, env.Engine, wf, id, time.Duration(runs-i)*time.Hour)
			if err != nil {
				t.Fatalf("run %s: %v", id, err)
			}
			if want := start.Add(time.Duration(runs-i) * time.Hour); !at.Equal(want) {
				t.Errorf("run %s woke at start+%v, want start+%v", id, at.Sub(start), want.Sub(start))
			}
			if counts.get("before-"+id) != 1 || counts.get("after-"+id) != 1 {
				t.Errorf("run %s: steps ran %d and %d times, want once each", id, counts.get("before-"+id), counts.get("after-"+id))
			}
		}
	})
}
