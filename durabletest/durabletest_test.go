package durabletest_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// received is what the receiving workflows return: the message and the
// (virtual) time it was taken, read in a step.
type received struct {
	Msg string
	At  time.Time
}

var waitForMessage = durable.Define("dt-wait", func(ctx durable.Context, _ struct{}) (received, error) {
	msg, err := durable.Receive[string](ctx, "ch")
	if err != nil {
		return received{}, err
	}
	at, err := durable.Step(ctx, "at", func(context.Context) (time.Time, error) { return time.Now(), nil })
	return received{msg, at}, err
})

func TestNew(t *testing.T) {
	t.Parallel()
	var outer *durabletest.Env
	t.Run("run", func(t *testing.T) {
		env := durabletest.New(t, nil) // nil: the defaults; Start registers the workflow
		outer = env
		if env.Engine == nil || env.Store == nil || env.Config == nil {
			t.Fatalf("New returned %+v, want an engine, a store and a config", env)
		}
		greet := durable.Define("dt-greet", func(ctx durable.Context, name string) (string, error) {
			return "hello " + name, nil
		})
		out, err := durable.Run(t.Context(), env.Engine, greet, "g-1", "bob")
		if err != nil || out != "hello bob" {
			t.Fatalf("Run = %q, %v", out, err)
		}
		if _, err := env.Store.GetRun(t.Context(), "g-1"); err != nil {
			t.Errorf("the run is not in env.Store: %v", err)
		}
	})
	// The engine is closed when the test that made it ends.
	if err := outer.Engine.Cancel(context.Background(), "g-1"); !errors.Is(err, durable.ErrClosed) {
		t.Errorf("after the test ended, Cancel = %v, want ErrClosed", err)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		wf := durable.Define("dt-restart", func(ctx durable.Context, _ struct{}) (string, error) {
			first, err := durable.Step(ctx, "first", func(context.Context) (string, error) {
				runs.Add(1)
				return "recorded", nil
			})
			if err != nil {
				return "", err
			}
			msg, err := durable.Receive[string](ctx, "ch")
			return first + " " + msg, err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		old := env.Engine
		h, err := durable.Start(t.Context(), old, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		e := env.Restart()
		if e != env.Engine || e == old {
			t.Fatalf("Restart returned %p, env.Engine is %p, the old one %p: want the new engine in both", e, env.Engine, old)
		}
		if _, err := h.Result(t.Context()); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("the old handle's Result = %v, want ErrClosed", err)
		}
		if err := durable.Send(t.Context(), old, "r", "ch", "x"); !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Send on the old engine = %v, want ErrClosed", err)
		}
		if err := durable.Send(t.Context(), env.Engine, "r", "ch", "resumed"); err != nil {
			t.Fatal(err)
		}
		h, err = durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.Result(t.Context())
		if err != nil || out != "recorded resumed" {
			t.Fatalf("Result = %q, %v", out, err)
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("the step ran %d times, want 1 (replayed after Restart)", n)
		}
	})
}

// Restart uses env.Config as it is then: a deploy of new code.
func TestRestartNewConfig(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		v1 := durable.Define("dt-deploy", func(ctx durable.Context, _ struct{}) (string, error) {
			_, err := durable.Receive[string](ctx, "ch")
			return "v1", err
		})
		v2 := durable.Define("dt-deploy", func(ctx durable.Context, _ struct{}) (string, error) {
			_, err := durable.Receive[string](ctx, "ch")
			return "v2", err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{v1}})
		if _, err := durable.Start(t.Context(), env.Engine, v1, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		env.Config = &durable.Config{Workflows: []durable.Definition{v2}}
		env.Restart()
		if err := durable.Send(t.Context(), env.Engine, "r", "ch", "x"); err != nil {
			t.Fatal(err)
		}
		h, err := durable.Start(t.Context(), env.Engine, v2, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := h.Result(t.Context()); err != nil || out != "v2" {
			t.Errorf("Result = %q, %v; want the new code's %q", out, err, "v2")
		}
	})
}

// SendAfter and SendAt deliver at exactly their virtual time, on the
// engine env has then (here, one made by a Restart in between).
func TestSendAfterAndSendAt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		send func(env *durabletest.Env, start time.Time)
	}{
		{"SendAfter", func(env *durabletest.Env, _ time.Time) { env.SendAfter(2*time.Hour, "r", "ch", "late") }},
		{"SendAt", func(env *durabletest.Env, start time.Time) { env.SendAt(start.Add(2*time.Hour), "r", "ch", "late") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{waitForMessage}})
				start := time.Now()
				if _, err := durable.Start(t.Context(), env.Engine, waitForMessage, "r", struct{}{}); err != nil {
					t.Fatal(err)
				}
				tc.send(env, start)
				time.Sleep(time.Hour)
				env.Restart()
				h, err := durable.Start(t.Context(), env.Engine, waitForMessage, "r", struct{}{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := h.Result(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if got.Msg != "late" || !got.At.Equal(start.Add(2*time.Hour)) {
					t.Errorf("received %q at start+%v, want %q at start+2h", got.Msg, got.At.Sub(start), "late")
				}
			})
		})
	}
}

// A SendAfter still pending when the test ends sends nothing and leaves
// no goroutine behind (synctest.Test would report it).
func TestSendAfterPendingAtEnd(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{waitForMessage}})
		if _, err := durable.Start(t.Context(), env.Engine, waitForMessage, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		env.SendAfter(1000*time.Hour, "r", "ch", "never")
	})
}

// Many SendAfters racing with Restarts: each message arrives once.
func TestSendAfterDuringRestarts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 20
		collect := durable.Define("dt-collect", func(ctx durable.Context, _ struct{}) (int, error) {
			for i := range n {
				if _, err := durable.Receive[int](ctx, "ch"); err != nil {
					return i, err
				}
			}
			return n, nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{collect}})
		if _, err := durable.Start(t.Context(), env.Engine, collect, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			env.SendAfter(time.Duration(i)*time.Minute, "r", "ch", i)
		}
		for range 4 {
			time.Sleep(5 * time.Minute)
			env.Restart()
		}
		h, err := durable.Start(t.Context(), env.Engine, collect, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(t.Context()); err != nil || got != n {
			t.Errorf("Result = %d, %v; want %d", got, err, n)
		}
	})
}

func TestClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := durabletest.NewClock(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	fired := func(ch <-chan time.Time) (time.Time, bool) {
		select {
		case v := <-ch:
			return v, true
		default:
			return time.Time{}, false
		}
	}

	hour, stopHour := c.Timer(time.Hour)
	stopped, stopStopped := c.Timer(30 * time.Minute)
	at, _ := c.TimerAt(start.Add(2 * time.Hour))
	if _, ok := fired(hour); ok {
		t.Fatal("a 1h timer fired at once")
	}
	if !stopStopped() {
		t.Error("stopping a pending timer reported false")
	}
	if stopStopped() {
		t.Error("stopping a stopped timer again reported true")
	}

	c.Advance(59 * time.Minute)
	if _, ok := fired(hour); ok {
		t.Fatal("a 1h timer fired after 59m")
	}
	if _, ok := fired(stopped); ok {
		t.Fatal("a stopped timer fired")
	}
	c.Set(start.Add(-24 * time.Hour)) // back: nothing fires
	if _, ok := fired(hour); ok {
		t.Fatal("a timer fired when the clock moved back")
	}
	if !c.Now().Equal(start.Add(-24 * time.Hour)) {
		t.Fatalf("Now after Set = %v", c.Now())
	}
	c.Set(start.Add(90 * time.Minute)) // forwards past the 1h timer
	if v, ok := fired(hour); !ok || !v.Equal(start.Add(90*time.Minute)) {
		t.Fatalf("the 1h timer: fired %v with %v, want the clock's time", ok, v)
	}
	if stopHour() {
		t.Error("stopping a fired timer reported true")
	}
	c.Advance(-time.Hour)
	c.Advance(time.Hour)
	if _, ok := fired(hour); ok {
		t.Fatal("a timer fired twice")
	}
	if _, ok := fired(at); ok {
		t.Fatal("TimerAt(start+2h) fired at start+90m")
	}
	c.Advance(30 * time.Minute)
	if _, ok := fired(at); !ok {
		t.Fatal("TimerAt(start+2h) did not fire at start+2h")
	}
	if _, ok := fired(stopped); ok {
		t.Fatal("a stopped timer fired")
	}

	for _, d := range []time.Duration{0, -time.Hour} {
		ch, stop := c.Timer(d)
		if v, ok := fired(ch); !ok || !v.Equal(c.Now()) {
			t.Errorf("Timer(%v) did not fire at once with the clock's time", d)
		}
		if stop() {
			t.Errorf("stopping the fired Timer(%v) reported true", d)
		}
	}
	past, _ := c.TimerAt(start)
	if _, ok := fired(past); !ok {
		t.Error("TimerAt a past time did not fire at once")
	}
}

// Concurrent Advances all count.
func TestClockConcurrentAdvance(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := durabletest.NewClock(start)
	const n = 100
	ch, _ := c.Timer(n * time.Second)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { c.Advance(time.Second) })
	}
	wg.Wait()
	if got := c.Now().Sub(start); got != n*time.Second {
		t.Errorf("after %d concurrent Advance(1s) the clock moved %v", n, got)
	}
	select {
	case <-ch:
	default:
		t.Error("a timer due at the end did not fire")
	}
}

// An engine on a Clock: a Sleep fires when the clock is moved past its
// wake time, never before, and only once.
func TestClockEngine(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var after atomic.Int32
		wf := durable.Define("dt-clock", func(ctx durable.Context, _ struct{}) (time.Time, error) {
			if err := durable.Sleep(ctx, 24*time.Hour); err != nil {
				return time.Time{}, err
			}
			after.Add(1)
			return durable.Now(ctx), nil
		})
		start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := durabletest.NewClock(start)
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, Clock: clock})
		h, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		clock.Advance(23 * time.Hour)
		synctest.Wait()
		clock.Set(start.Add(-time.Hour))
		synctest.Wait()
		if n := after.Load(); n != 0 {
			t.Fatalf("the sleep fired %d times before its time", n)
		}
		clock.Set(start.Add(25 * time.Hour))
		got, err := h.Result(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(start.Add(25 * time.Hour)) {
			t.Errorf("woke at %v, want the clock's time %v", got, start.Add(25*time.Hour))
		}
		if n := after.Load(); n != 1 {
			t.Errorf("the sleep fired %d times, want 1", n)
		}
	})
}

// The 30-day test, as users write it: inside synctest.Test a workflow
// that sleeps 30 days finishes at once in real time (the bubble's clock
// jumps), and closing the engine leaves no goroutine behind (synctest.Test
// fails the test otherwise).
func Test30Days(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reminder := durable.Define("dt-30-days", func(ctx durable.Context, email string) (string, error) {
			if err := durable.Sleep(ctx, 30*24*time.Hour); err != nil {
				return "", err
			}
			return durable.Step(ctx, "remind", func(context.Context) (string, error) {
				return "reminded " + email, nil
			})
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{reminder}})
		start := time.Now()
		out, err := durable.Run(t.Context(), env.Engine, reminder, "bob", "bob@example.com")
		if err != nil || out != "reminded bob@example.com" {
			t.Fatalf("Run = %q, %v", out, err)
		}
		if got := time.Since(start); got != 30*24*time.Hour {
			t.Errorf("the run took %v of virtual time, want exactly 30 days", got)
		}
	})
}
