package durable_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// An injected clock jumping 24h forwards fires a 1h sleep once; jumping
// further fires nothing more.
func TestTimeClockJumpForward(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var nows valueLog[time.Time]
		wf := clockWorkflow("tm-clock-forward", &counts, &nows)
		clock := durabletest.NewClock(clockStart)
		cfg := quietConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(48 * time.Hour) // bubble time does not move the injected clock
		synctest.Wait()
		if info := mustGet(t, env.Engine, "r"); !info.WakeAt.Equal(clockStart.Add(time.Hour)) {
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
		now, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !now.Equal(clockStart) {
			t.Errorf("durable.Now = %v, want the injected clock's %v", now, clockStart)
		}
	})
}

// Jumping the clock 24h backwards during a 1h sleep fires nothing; moving
// it forwards again fires the sleep once, at its wake time, not before.
func TestTimeClockJumpBackward(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		var nows valueLog[time.Time]
		wf := clockWorkflow("tm-clock-backward", &counts, &nows)
		clock := durabletest.NewClock(clockStart)
		cfg := quietConfig(wf)
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
				t.Fatalf("clock at start%+v: the sleep fired %d times, want %d", clock.Now().Sub(clockStart), n, step.want)
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
		var counts tally
		var nows valueLog[time.Time]
		wf := clockWorkflow("tm-clock-restart", &counts, &nows)
		clock := durabletest.NewClock(clockStart)
		cfg := quietConfig(wf)
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
		clock.Set(clockStart.Add(-24 * time.Hour))
		env.Restart()
		synctest.Wait()
		clock.Advance(time.Hour) // start-23h: still before every time the run saw
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("after a restart with the clock moved back, the sleep has fired %d times, want 1", n)
		}
		wantStatus(t, env.Engine, "r", durable.StatusRunning) // waiting on "go"

		if err := durable.Send(t.Context(), env.Engine, "r", "go", "now"); err != nil {
			t.Fatal(err)
		}
		now, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if !now.Equal(clockStart) {
			t.Errorf("durable.Now = %v, want the injected clock's %v", now, clockStart)
		}
		got := nows.all()
		if len(got) != 2 {
			t.Fatalf("the workflow ran %d times, want 2 (live, then replayed after the restart)", len(got))
		}
		for i, n := range got {
			if !n.Equal(clockStart) {
				t.Errorf("execution %d: durable.Now = %v, want %v recorded the first time", i, n, clockStart)
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
		var runs valueLog[[2]time.Time]
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
		clock := durabletest.NewClock(clockStart)
		cfg := quietConfig(wf)
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
		got, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		want := [2]time.Time{clockStart, clockStart.Add(90 * time.Minute)}
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

// A SleepUntil whose time had passed returned at once and the run went
// on; the clock then moves back before that time and the engine
// restarts. Replay must not wait: the first execution did not.
func TestTimeClockBackwardPastSleepUntil(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
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
		clock := durabletest.NewClock(clockStart.Add(time.Hour))
		cfg := quietConfig(wf)
		cfg.Clock = clock
		env := durabletest.New(t, cfg)
		wake := clockStart.Add(30 * time.Minute) // already passed
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", wake); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := counts.get("after"); n != 1 {
			t.Fatalf("step after ran %d times, want 1", n)
		}
		clock.Set(clockStart) // before the wake time
		env.Restart()
		synctest.Wait()
		// The run waits for a message: the restart does not load it, the
		// message does, and its replay must pass the SleepUntil.
		if err := durable.Send(t.Context(), env.Engine, "r", "go", "x"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := counts.get("replayed past the sleep"); n != 2 {
			t.Errorf("after the restart the replay stopped at the SleepUntil (reached the step %d times, want 2)", n)
		}
		wantStatus(t, env.Engine, "r", durable.StatusCompleted)
		if n := counts.get("after"); n != 1 {
			t.Errorf("step after ran %d times, want 1", n)
		}
	})
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
		clock := &jumpyClock{Clock: durabletest.NewClock(clockStart)}
		cfg := quietConfig(wf)
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
		wantStatus(t, env.Engine, "a", durable.StatusCompleted)
		wantStatus(t, env.Engine, "b", durable.StatusRunning)
		clock.Advance(30 * time.Minute) // start+2h: b is due
		synctest.Wait()
		wantStatus(t, env.Engine, "b", durable.StatusCompleted)
	})
}
