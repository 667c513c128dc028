package durable_test

import (
	"context"
	"errors"
	"fmt"
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

// span is what the timing workflows return: the real (or bubble) time
// read in a step before and after the wait.
type span struct {
	Before, After time.Time
}

// nowStep is a step that returns time.Now(), counted in c.
func nowStep(ctx durable.Context, c *tally, name string) (time.Time, error) {
	return durable.Step(ctx, name, func(context.Context) (time.Time, error) {
		c.add(name)
		return time.Now(), nil
	})
}

// wantStatus fails the test unless run id has status want.
func wantStatus(t *testing.T, e *durable.Engine, id string, want durable.Status) durable.RunInfo {
	t.Helper()
	info := mustGet(t, e, id)
	if info.Status != want {
		t.Fatalf("run %q: status %v (err %v), want %v", id, info.Status, info.Err, want)
	}
	return info
}

// poll polls (real time) until cond holds; timeout only guards against a
// hang, it is not a measurement.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// result attaches to run id (Start of an existing id executes nothing)
// and returns its result.
func result[I, O any](t *testing.T, e *durable.Engine, w *durable.Workflow[I, O], id string, in I) (O, error) {
	t.Helper()
	h, err := durable.Start(t.Context(), e, w, id, in)
	if err != nil {
		t.Fatalf("Start(%q): %v", id, err)
	}
	return h.Result(t.Context())
}

// sleepWorkflow returns a workflow that reads the time in a step, sleeps
// d and reads the time again.
func sleepWorkflow(name string, c *tally, d time.Duration) *durable.Workflow[struct{}, span] {
	return durable.Define(name, func(ctx durable.Context, _ struct{}) (span, error) {
		before, err := nowStep(ctx, c, "before")
		if err != nil {
			return span{}, err
		}
		if err := durable.Sleep(ctx, d); err != nil {
			return span{}, err
		}
		after, err := nowStep(ctx, c, "after")
		return span{before, after}, err
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
	var counts tally
	wf := sleepWorkflow("tm-sleep-bolt", &counts, sleep)
	cfg := quietConfig(wf)
	path := filepath.Join(t.TempDir(), "journal.db")

	e, err := durable.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(t.Context(), e, wf, "r", struct{}{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the sleep to be journaled", func() bool {
		return !mustGet(t, e, "r").WakeAt.IsZero()
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
const crashSleep = 2 * time.Second

var (
	crashLog     *crashtest.Log // set in the child
	crashSleeper = durable.Define("tm-crash-sleeper", func(ctx durable.Context, _ struct{}) (span, error) {
		now := func(name string) (time.Time, error) {
			return durable.Step(ctx, name, func(context.Context) (time.Time, error) {
				if err := crashLog.Append("%s", name); err != nil {
					return time.Time{}, err
				}
				return time.Now(), nil
			})
		}
		before, err := now("before")
		if err != nil {
			return span{}, err
		}
		if err := durable.Sleep(ctx, crashSleep); err != nil {
			return span{}, err
		}
		after, err := now("after")
		return span{before, after}, err
	})
)

func TestTimeCrashChild(t *testing.T) {
	role := crashtest.Role()
	if role != "tm-sleeper" && role != "tm-opener" {
		t.Skip("run as a child by TestTimeCrashOverdueTimerFiresAtOpen")
	}
	opened := time.Now()
	var err error
	if crashLog, err = crashtest.OpenLog(crashtest.Env("LOG")); err != nil {
		t.Fatal(err)
	}
	e, err := durable.Open(crashtest.Env("JOURNAL"), quietConfig(crashSleeper))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	switch role {
	case "tm-sleeper":
		if _, err := durable.Start(t.Context(), e, crashSleeper, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		poll(t, 20*time.Second, "the sleep to be journaled", func() bool {
			return !mustGet(t, e, "r").WakeAt.IsZero()
		})
		fmt.Println("tm: sleeping")
		time.Sleep(time.Minute) // the parent kills us
		t.Fatal("not killed")
	case "tm-opener":
		// No Start: the run must complete by itself.
		poll(t, 20*time.Second, "the run to complete", func() bool {
			return mustGet(t, e, "r").Status == durable.StatusCompleted
		})
		span, err := result(t, e, crashSleeper, "r", struct{}{}) // finished: reads the result
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
	if elapsed < crashSleep {
		t.Errorf("the sleep ended %v after it began, before its %v", elapsed, crashSleep)
	}
	if opened < killed.UnixNano() {
		t.Fatalf("the opener started before the kill")
	}
	// A timer started again at Open would fire crashSleep after it; the
	// overdue one fires as soon as the run is replayed.
	if d := time.Duration(after - opened); d >= crashSleep {
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
		var counts tally
		wf := sleepWorkflow("tm-sleep-exact", &counts, time.Hour)
		env := durabletest.New(t, quietConfig(wf))
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

		span, err := result(t, env.Engine, wf, "r", struct{}{})
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
		var counts tally
		wf := sleepWorkflow("tm-overdue", &counts, time.Hour)
		env := durabletest.New(t, quietConfig(wf))
		start := time.Now()
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if info := wantStatus(t, env.Engine, "r", durable.StatusRunning); !info.WakeAt.Equal(start.Add(time.Hour)) {
			t.Errorf("WakeAt = start+%v, want start+1h", info.WakeAt.Sub(start))
		}
		if err := env.Engine.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Hour) // due while down
		reopened := time.Now()
		env.Restart()
		synctest.Wait() // no Start: recovery alone must finish the run
		wantStatus(t, env.Engine, "r", durable.StatusCompleted)

		span, err := result(t, env.Engine, wf, "r", struct{}{})
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

// clockStart is where the injected clocks start: far from the synctest
// bubble's clock, so a timer on the wrong clock would show.
var clockStart = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// clockWorkflow reads durable.Now (reporting it on every execution to
// nows), sleeps 1h, runs step "after" (counted), and then waits for a
// message on "go" so that the run stays alive; it returns the Now it read.
func clockWorkflow(name string, c *tally, nows *valueLog[time.Time]) *durable.Workflow[struct{}, time.Time] {
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

// Sleep(0), a negative Sleep and SleepUntil a time in the past return at
// once: no virtual time passes and no wake time is journaled.
func TestTimeSleepPastReturnsAtOnce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
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
			return nowStep(ctx, &counts, "after")
		})
		env := durabletest.New(t, quietConfig(wf))
		start := time.Now()
		after, err := durable.Run(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !after.Equal(start) {
			t.Errorf("the sleeps took %v of virtual time, want none", after.Sub(start))
		}
		if info := mustGet(t, env.Engine, "r"); !info.WakeAt.IsZero() {
			t.Errorf("WakeAt = %v, want none", info.WakeAt)
		}
	})
}

// SleepUntil a future time sleeps exactly until it, across a restart.
func TestTimeSleepUntilAcrossRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		wake := time.Now().Add(36 * time.Hour)
		wf := durable.Define("tm-sleep-until", func(ctx durable.Context, at time.Time) (time.Time, error) {
			if err := durable.SleepUntil(ctx, at); err != nil {
				return time.Time{}, err
			}
			return nowStep(ctx, &counts, "after")
		})
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", wake); err != nil {
			t.Fatal(err)
		}
		time.Sleep(12 * time.Hour)
		env.Restart()
		got, err := result(t, env.Engine, wf, "r", wake)
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

// jumpyClock is a durabletest.Clock that, once armed, moves forwards by
// jump right after a Now call has read it: as if another goroutine moved
// the clock between the engine's reading of the time and what it does
// with it.
type jumpyClock struct {
	*durabletest.Clock
	mu    sync.Mutex
	jump  time.Duration
	armed bool
}

func (c *jumpyClock) Now() time.Time {
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

func (c *jumpyClock) arm(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jump, c.armed = d, true
}

// Sleeping runs evicted from the run cache (Config.MaxCachedRuns) are
// loaded again when their timers fall due, and wake exactly on time, also
// across a restart.
func TestTimeSleepEvicted(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		wf := durable.Define("tm-sleep-evicted", func(ctx durable.Context, d time.Duration) (time.Time, error) {
			if _, err := nowStep(ctx, &counts, "before-"+ctx.RunID()); err != nil {
				return time.Time{}, err
			}
			if err := durable.Sleep(ctx, d); err != nil {
				return time.Time{}, err
			}
			return nowStep(ctx, &counts, "after-"+ctx.RunID())
		})
		cfg := quietConfig(wf)
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
			at, err := result(t, env.Engine, wf, id, time.Duration(runs-i)*time.Hour)
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

func TestSleepSurvivesRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		const d = 300 * time.Millisecond
		wf := durable.Define("sleeper", func(ctx durable.Context, in int) (sleepTimes, error) {
			t0 := durable.Now(ctx)
			if err := durable.Sleep(ctx, d); err != nil {
				return sleepTimes{}, err
			}
			return sleepTimes{T0: t0, T1: durable.Now(ctx)}, nil
		})
		cfg := config(wf)
		start := time.Now()
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "sl-1", 0); err != nil {
			t.Fatal(err)
		}
		var wake time.Time
		waitFor(t, "the sleep to be journaled", func() bool {
			info, err := e1.Get(ctx, "sl-1")
			wake = info.WakeAt
			return err == nil && !wake.IsZero()
		})
		mustClose(t, e1)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "sl-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if el := got.T1.Sub(got.T0); el < d {
			t.Errorf("the workflow slept %v across the restart, want >= %v", el, d)
		}
		if wake.Sub(got.T0) < d {
			t.Errorf("wake time %v is less than %v after the sleep began (%v)", wake, d, got.T0)
		}
		if got.T1.Before(wake) {
			t.Errorf("the sleep ended at %v, before its wake time %v", got.T1, wake)
		}
		if el := time.Since(start); el < d {
			t.Errorf("the run finished %v after it started, want >= %v", el, d)
		}
	})
}

// With a clock that only the test moves, a sleep interrupted by a restart
// must end exactly at its recorded wake time: a timer that started again
// from zero would never fire, and one that fired early would show in T1.
func TestSleepNotRestartedAfterRestart(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		clock := durabletest.NewClock(base)
		wf := durable.Define("long-sleeper", func(ctx durable.Context, in int) (sleepTimes, error) {
			t0 := durable.Now(ctx)
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return sleepTimes{}, err
			}
			return sleepTimes{T0: t0, T1: durable.Now(ctx)}, nil
		})
		cfg := config(wf)
		cfg.Clock = clock
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "ls-1", 0); err != nil {
			t.Fatal(err)
		}
		var wake time.Time
		waitFor(t, "the sleep to be journaled", func() bool {
			info, err := e1.Get(ctx, "ls-1")
			wake = info.WakeAt
			return err == nil && !wake.IsZero()
		})
		if want := base.Add(time.Hour); !wake.Equal(want) {
			t.Fatalf("WakeAt = %v, want %v", wake, want)
		}
		clock.Set(base.Add(20 * time.Minute)) // time passes while it sleeps
		mustClose(t, e1)

		// The process is down past the wake time; the run is due when it
		// opens.
		clock.Set(wake.Add(time.Minute))
		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "ls-1", 0)
		if err != nil {
			t.Fatalf("Run: %v (a sleep restarted from zero would never end on this clock)", err)
		}
		if !got.T0.Equal(base) || !got.T1.Equal(wake.Add(time.Minute)) {
			t.Errorf("slept from %v to %v; want from %v to %v", got.T0, got.T1, base, wake.Add(time.Minute))
		}
	})
}

type sleepTimes struct{ T0, T1 time.Time }
