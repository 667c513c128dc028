package durable_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// inbox returns the messages waiting in run id's inbox on channel.
func inbox(t *testing.T, s journal.Store, id, channel string) []journal.Message {
	t.Helper()
	msgs, err := s.Messages(context.Background(), id, channel, 0)
	if err != nil {
		t.Fatalf("Messages(%q, %q): %v", id, channel, err)
	}
	return msgs
}

// received is what the receiving workflows return: the message and when
// (bubble time, read in a step) the workflow had it.
type received struct {
	Msg string
	At  time.Time
}

// A message sent before the run waits for it is kept, and Receive returns
// it at once when the run gets there.
func TestMessageSendBeforeReceive(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		wf := durable.Define("tm-send-first", func(ctx durable.Context, _ struct{}) (received, error) {
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return received{}, err
			}
			msg, err := durable.Receive[string](ctx, "greeting")
			if err != nil {
				return received{}, err
			}
			at, err := nowStep(ctx, &counts, "at")
			return received{msg, at}, err
		})
		env := durabletest.New(t, quietConfig(wf))
		start := time.Now()
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if err := durable.Send(t.Context(), env.Engine, "r", "greeting", "hello"); err != nil {
			t.Fatal(err)
		}
		if n := len(inbox(t, env.Store, "r", "greeting")); n != 1 {
			t.Fatalf("inbox holds %d messages after Send, want 1", n)
		}
		got, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if want := (received{"hello", start.Add(time.Hour)}); got.Msg != want.Msg || !got.At.Equal(want.At) {
			t.Errorf("received %q at start+%v, want %q at start+1h", got.Msg, got.At.Sub(start), want.Msg)
		}
		if n := len(inbox(t, env.Store, "r", "greeting")); n != 0 {
			t.Errorf("inbox holds %d messages after the receive, want 0", n)
		}
	})
}

// Send works on an engine that does not have the run's workflow: the
// message is stored, and an engine with the workflow resumes the run,
// which receives it.
func TestMessageSendWithoutWorkflowRegistered(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		wf := durable.Define("tm-send-unregistered", func(ctx durable.Context, _ struct{}) (string, error) {
			counts.add("body")
			return durable.Receive[string](ctx, "ch")
		})
		withWF := quietConfig(wf)
		env := durabletest.New(t, withWF)
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		env.Config = quietConfig() // engine A: no workflows
		env.Restart()
		synctest.Wait()
		if err := durable.Send(t.Context(), env.Engine, "r", "ch", "stored"); err != nil {
			t.Fatalf("Send on an engine without the workflow: %v", err)
		}
		if n := len(inbox(t, env.Store, "r", "ch")); n != 1 {
			t.Fatalf("inbox holds %d messages, want 1", n)
		}
		synctest.Wait()
		if n := counts.get("body"); n != 1 {
			t.Fatalf("the workflow ran %d times before engine B, want 1", n)
		}

		env.Config = withWF // engine B: has it
		env.Restart()
		got, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if got != "stored" {
			t.Errorf("received %q, want %q", got, "stored")
		}
		if n := len(inbox(t, env.Store, "r", "ch")); n != 0 {
			t.Errorf("inbox holds %d messages after the receive, want 0", n)
		}
	})
}

// seqMsg is a message with its sender and the sender's sequence number.
type seqMsg struct {
	Sender, Seq int
}

// 50 goroutines send to one run on two channels at once while it
// receives: every message is received exactly once, and each sender's
// messages arrive in the order it sent them on each channel.
func TestMessageConcurrentSenders(t *testing.T) {
	t.Parallel()
	const senders, perSender = 50, 4 // alternating channels: 2 per channel
	const perChannel = senders * perSender / 2
	channels := [2]string{"c0", "c1"}
	wf := durable.Define("tm-concurrent-send", func(ctx durable.Context, _ struct{}) ([2][]seqMsg, error) {
		var got [2][]seqMsg
		for range perChannel {
			for c, ch := range channels {
				m, err := durable.Receive[seqMsg](ctx, ch)
				if err != nil {
					return got, err
				}
				got[c] = append(got[c], m)
			}
		}
		return got, nil
	})
	env := durabletest.New(t, quietConfig(wf))
	if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				if err := durable.Send(context.Background(), env.Engine, "r", channels[i%2], seqMsg{s, i}); err != nil {
					t.Errorf("sender %d message %d: %v", s, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := result(t, env.Engine, wf, "r", struct{}{}) // attaches
	if err != nil {
		t.Fatal(err)
	}
	for c, msgs := range got {
		if len(msgs) != perChannel {
			t.Errorf("channel %s: %d messages received, want %d", channels[c], len(msgs), perChannel)
		}
		seen := map[seqMsg]bool{}
		last := map[int]int{}
		for _, m := range msgs {
			if m.Seq%2 != c {
				t.Errorf("channel %s received %+v, sent on the other channel", channels[c], m)
			}
			if seen[m] {
				t.Errorf("channel %s: %+v received twice", channels[c], m)
			}
			seen[m] = true
			if prev, ok := last[m.Sender]; ok && m.Seq <= prev {
				t.Errorf("channel %s: sender %d's message %d received after its message %d", channels[c], m.Sender, m.Seq, prev)
			}
			last[m.Sender] = m.Seq
		}
		for s := range senders {
			for i := c; i < perSender; i += 2 {
				if !seen[seqMsg{s, i}] {
					t.Errorf("channel %s: sender %d's message %d never received", channels[c], s, i)
				}
			}
		}
	}
	for _, ch := range channels {
		if n := len(inbox(t, env.Store, "r", ch)); n != 0 {
			t.Errorf("channel %s: %d messages left in the inbox", ch, n)
		}
	}
}

// Send to an unknown run fails with ErrNotFound, to a finished one with
// ErrFinished; neither stores anything.
func TestMessageSendUnknownOrFinished(t *testing.T) {
	t.Parallel()
	wf := durable.Define("tm-send-finished", func(ctx durable.Context, _ struct{}) (string, error) {
		return "done", nil
	})
	env := durabletest.New(t, quietConfig(wf))
	if err := durable.Send(t.Context(), env.Engine, "no-such-run", "ch", "x"); !errors.Is(err, durable.ErrNotFound) {
		t.Errorf("Send to an unknown run = %v, want ErrNotFound", err)
	}
	if _, err := durable.Run(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := durable.Send(t.Context(), env.Engine, "r", "ch", "x"); !errors.Is(err, durable.ErrFinished) {
		t.Errorf("Send to a completed run = %v, want ErrFinished", err)
	}
	if _, err := env.Store.GetRun(t.Context(), "no-such-run"); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("Send to an unknown run created it: GetRun = %v", err)
	}
}

// timeoutOut is the result of the ReceiveTimeout workflow.
type timeoutOut struct {
	Msg      string
	TimedOut bool
	At       time.Time
}

// ReceiveTimeout gives up with ErrTimeout at its journaled deadline. A
// restart during the wait, with downtime, neither extends the deadline
// (by the downtime) nor resets it (to a full timeout from the restart).
// A message that comes in time wins, and one that comes after the
// timeout stays in the inbox.
func TestMessageReceiveTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		sendAt time.Duration // 0: no message during the wait
		want   timeoutOut    // At relative to the start
	}{
		{"timeout", 0, timeoutOut{TimedOut: true, At: time.Time{}.Add(time.Hour)}},
		{"message-after-restart", 45 * time.Minute, timeoutOut{Msg: "in time", At: time.Time{}.Add(45 * time.Minute)}},
		{"message-before-restart", 5 * time.Minute, timeoutOut{Msg: "in time", At: time.Time{}.Add(5 * time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var counts tally
				wf := durable.Define("tm-receive-timeout", func(ctx durable.Context, _ struct{}) (timeoutOut, error) {
					msg, err := durable.ReceiveTimeout[string](ctx, "ch", time.Hour)
					if err != nil && !errors.Is(err, durable.ErrTimeout) {
						return timeoutOut{}, err
					}
					at, serr := nowStep(ctx, &counts, "at")
					return timeoutOut{msg, err != nil, at}, serr
				})
				env := durabletest.New(t, quietConfig(wf))
				start := time.Now()
				if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
					t.Fatal(err)
				}
				if tc.sendAt > 0 {
					env.SendAfter(tc.sendAt, "r", "ch", "in time")
				}
				time.Sleep(20 * time.Minute)
				if err := env.Engine.Close(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Minute) // downtime
				env.Restart()
				got, err := result(t, env.Engine, wf, "r", struct{}{})
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				want.At = start.Add(want.At.Sub(time.Time{}))
				if got.Msg != want.Msg || got.TimedOut != want.TimedOut || !got.At.Equal(want.At) {
					t.Errorf("got %q (timed out %v) at start+%v, want %q (timed out %v) at start+%v",
						got.Msg, got.TimedOut, got.At.Sub(start), want.Msg, want.TimedOut, want.At.Sub(start))
				}
				if n := counts.get("at"); n != 1 {
					t.Errorf("step at ran %d times, want 1", n)
				}
				if tc.sendAt == 0 {
					return
				}
				if n := len(inbox(t, env.Store, "r", "ch")); n != 0 {
					t.Errorf("inbox holds %d messages, want 0", n)
				}
			})
		})
	}
}

// The error of a timed-out ReceiveTimeout matches ErrTimeout, also as the
// run's recorded error after a restart.
func TestMessageReceiveTimeoutError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("tm-receive-timeout-err", func(ctx durable.Context, _ struct{}) (string, error) {
			return durable.ReceiveTimeout[string](ctx, "ch", 10*time.Minute)
		})
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		env.Restart()
		_, err := result(t, env.Engine, wf, "r", struct{}{})
		if !errors.Is(err, durable.ErrTimeout) {
			t.Errorf("Result = %v, want an error matching ErrTimeout", err)
		}
		if info := wantStatus(t, env.Engine, "r", durable.StatusFailed); !errors.Is(info.Err, durable.ErrTimeout) {
			t.Errorf("RunInfo.Err = %v, want an error matching ErrTimeout", info.Err)
		}
		if err := durable.Send(t.Context(), env.Engine, "r", "ch", "late"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("Send after the timeout = %v, want ErrFinished", err)
		}
	})
}

// A message that does not decode into the type the code receives (with
// Receive, or as an AwaitAny case) parks the run and stays in the inbox;
// an engine with fixed code resumes the run, which receives it.
func TestMessageUndecodableParks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		receive func(ctx durable.Context) (int, error) // the broken code
	}{
		{"receive", func(ctx durable.Context) (int, error) { return durable.Receive[int](ctx, "ch") }},
		{"await-any", func(ctx durable.Context) (int, error) {
			rc := durable.OnReceive[int]("ch")
			if _, err := durable.AwaitAny(ctx, rc, durable.NewTimer(ctx, time.Hour)); err != nil {
				return 0, err
			}
			n, _ := rc.Value()
			return n, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				broken := durable.Define("tm-undecodable", func(ctx durable.Context, _ struct{}) (string, error) {
					n, err := tc.receive(ctx)
					return fmt.Sprint(n), err
				})
				fixed := durable.Define("tm-undecodable", func(ctx durable.Context, _ struct{}) (string, error) {
					return durable.Receive[string](ctx, "ch")
				})
				if tc.name == "await-any" {
					fixed = durable.Define("tm-undecodable", func(ctx durable.Context, _ struct{}) (string, error) {
						rc := durable.OnReceive[string]("ch")
						if _, err := durable.AwaitAny(ctx, rc, durable.NewTimer(ctx, time.Hour)); err != nil {
							return "", err
						}
						msg, _ := rc.Value()
						return msg, nil
					})
				}
				env := durabletest.New(t, quietConfig(broken))
				if _, err := durable.Start(t.Context(), env.Engine, broken, "r", struct{}{}); err != nil {
					t.Fatal(err)
				}
				if err := durable.Send(t.Context(), env.Engine, "r", "ch", "not a number"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				info := wantStatus(t, env.Engine, "r", durable.StatusParked)
				if !errors.Is(info.Err, durable.ErrPayload) {
					t.Errorf("parked with %v, want an error matching ErrPayload", info.Err)
				}
				if n := len(inbox(t, env.Store, "r", "ch")); n != 1 {
					t.Fatalf("inbox holds %d messages after the park, want 1", n)
				}
				_, err := result(t, env.Engine, broken, "r", struct{}{})
				if !errors.Is(err, durable.ErrParked) || !errors.Is(err, durable.ErrPayload) {
					t.Errorf("Result of the parked run = %v, want ErrParked with ErrPayload", err)
				}

				env.Config = quietConfig(fixed) // deploy the fix
				env.Restart()
				got, err := result(t, env.Engine, fixed, "r", struct{}{})
				if err != nil {
					t.Fatal(err)
				}
				if got != "not a number" {
					t.Errorf("received %q, want %q", got, "not a number")
				}
				if n := len(inbox(t, env.Store, "r", "ch")); n != 0 {
					t.Errorf("inbox holds %d messages after the receive, want 0", n)
				}
			})
		})
	}
}

// ReceiveTimeout with no time to wait takes a message that is there, and
// otherwise times out at once.
func TestMessageReceiveTimeoutZero(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var counts tally
		wf := durable.Define("tm-receive-timeout-zero", func(ctx durable.Context, _ struct{}) (timeoutOut, error) {
			var out timeoutOut
			if _, err := durable.Receive[string](ctx, "go"); err != nil {
				return out, err
			}
			for range 2 {
				msg, err := durable.ReceiveTimeout[string](ctx, "ch", 0)
				if err != nil && !errors.Is(err, durable.ErrTimeout) {
					return out, err
				}
				out.Msg += msg
				out.TimedOut = err != nil
			}
			at, err := nowStep(ctx, &counts, "at")
			out.At = at
			return out, err
		})
		env := durabletest.New(t, quietConfig(wf))
		if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		if err := durable.Send(t.Context(), env.Engine, "r", "ch", "waiting"); err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		if err := durable.Send(t.Context(), env.Engine, "r", "go", "go"); err != nil {
			t.Fatal(err)
		}
		got, err := result(t, env.Engine, wf, "r", struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Msg != "waiting" || !got.TimedOut {
			t.Errorf("ReceiveTimeout(0) twice: got %q, second timed out %v; want %q, then a timeout", got.Msg, got.TimedOut, "waiting")
		}
		if d := got.At.Sub(sent); d >= time.Millisecond {
			t.Errorf("the zero timeouts took %v of virtual time, want none to speak of", d)
		}
	})
}

// selectOut is the result of the AwaitAny workflow.
type selectOut struct {
	Index int
	Msg   string
	At    time.Time
}

// AwaitAny of a message and a timer: whichever comes first wins. Which one
// won is journaled: after a restart, with the other item now ready too,
// replay takes the same branch (and a winning message is not taken again).
func TestMessageAwaitAny(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		sendAt time.Duration // 0: no message before the timer
		want   selectOut     // At relative to the start
	}{
		{"message-first", 30 * time.Minute, selectOut{0, "first", time.Time{}.Add(30 * time.Minute)}},
		{"timer-first", 0, selectOut{1, "", time.Time{}.Add(time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var counts tally
				var branches valueLog[selectOut]
				wf := durable.Define("tm-await-any", func(ctx durable.Context, _ struct{}) (selectOut, error) {
					timer := durable.NewTimer(ctx, time.Hour)
					confirm := durable.OnReceive[string]("confirm")
					i, err := durable.AwaitAny(ctx, confirm, timer)
					if err != nil {
						return selectOut{}, err
					}
					msg, _ := confirm.Value()
					branches.add(selectOut{Index: i, Msg: msg})
					at, err := nowStep(ctx, &counts, "at")
					if err != nil {
						return selectOut{}, err
					}
					if _, err := durable.Receive[string](ctx, "hold"); err != nil {
						return selectOut{}, err
					}
					return selectOut{i, msg, at}, nil
				})
				env := durabletest.New(t, quietConfig(wf))
				start := time.Now()
				if _, err := durable.Start(t.Context(), env.Engine, wf, "r", struct{}{}); err != nil {
					t.Fatal(err)
				}
				if tc.sendAt > 0 {
					env.SendAfter(tc.sendAt, "r", "confirm", "first")
				}
				time.Sleep(2 * time.Hour)
				synctest.Wait() // the select is recorded; the run waits on "hold"
				if n := counts.get("at"); n != 1 {
					t.Fatalf("step at ran %d times, want 1", n)
				}
				// The other item is ready too now (the timer is due; a message
				// waits): replay must still take the recorded branch.
				if err := durable.Send(t.Context(), env.Engine, "r", "confirm", "second"); err != nil {
					t.Fatal(err)
				}
				env.Restart()
				synctest.Wait()
				if err := durable.Send(t.Context(), env.Engine, "r", "hold", "go"); err != nil {
					t.Fatal(err)
				}
				got, err := result(t, env.Engine, wf, "r", struct{}{})
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				want.At = start.Add(want.At.Sub(time.Time{}))
				if got.Index != want.Index || got.Msg != want.Msg || !got.At.Equal(want.At) {
					t.Errorf("AwaitAny chose %d (%q) at start+%v, want %d (%q) at start+%v",
						got.Index, got.Msg, got.At.Sub(start), want.Index, want.Msg, want.At.Sub(start))
				}
				execs := branches.all()
				if len(execs) != 2 {
					t.Fatalf("the workflow passed the select %d times, want 2 (live, then replayed)", len(execs))
				}
				for i, b := range execs {
					if b.Index != want.Index || b.Msg != want.Msg {
						t.Errorf("execution %d took branch %d (%q), want %d (%q)", i, b.Index, b.Msg, want.Index, want.Msg)
					}
				}
				if n := counts.get("at"); n != 1 {
					t.Errorf("step at ran %d times, want 1", n)
				}
				left := inbox(t, env.Store, "r", "confirm")
				if len(left) != 1 {
					t.Fatalf("confirm inbox holds %d messages, want 1 (%q, never taken)", len(left), "second")
				}
			})
		})
	}
}

// Runs waiting for messages are evicted from the run cache
// (Config.MaxCachedRuns); a Send loads the run again, and each run gets
// its own message.
func TestMessageEvictedRunReceives(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("tm-receive-evicted", func(ctx durable.Context, _ struct{}) (string, error) {
			return durable.Receive[string](ctx, "ch")
		})
		cfg := quietConfig(wf)
		cfg.MaxCachedRuns = 1
		env := durabletest.New(t, cfg)
		const runs = 4
		for i := range runs {
			if _, err := durable.Start(t.Context(), env.Engine, wf, fmt.Sprint("r", i), struct{}{}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		for i := runs - 1; i >= 0; i-- {
			id := fmt.Sprint("r", i)
			if err := durable.Send(t.Context(), env.Engine, id, "ch", "for "+id); err != nil {
				t.Fatal(err)
			}
		}
		for i := range runs {
			id := fmt.Sprint("r", i)
			got, err := result(t, env.Engine, wf, id, struct{}{})
			if err != nil || got != "for "+id {
				t.Errorf("run %s received %q, %v; want %q", id, got, err, "for "+id)
			}
		}
	})
}

func TestSendReceive(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		entered := make(chan struct{}, 1)
		release := make(chan struct{})
		var receives atomic.Int32
		wf := durable.Define("inbox", func(ctx durable.Context, in int) ([]string, error) {
			if _, err := durable.Step(ctx, "hold", func(sctx context.Context) (int, error) {
				signal(entered)
				select {
				case <-release:
				case <-sctx.Done():
					return 0, sctx.Err()
				}
				return 0, nil
			}); err != nil {
				return nil, err
			}
			var got []string
			for range in {
				m, err := durable.Receive[string](ctx, "greet")
				if err != nil {
					return nil, err
				}
				receives.Add(1)
				got = append(got, m)
			}
			return got, nil
		})
		cfg := config(wf)
		e1 := open(t, cfg)
		h, err := durable.Start(ctx, e1, wf, "in-1", 3)
		if err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the run to start")
		// Sent before the run receives: stored, not lost.
		if err := durable.Send(ctx, e1, h.ID(), "greet", "hello"); err != nil {
			t.Fatal(err)
		}
		if err := durable.Send(ctx, e1, h.ID(), "other", "not for Receive(greet)"); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := durable.Send(ctx, e1, h.ID(), "greet", "bonjour"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "two messages to be received", func() bool { return receives.Load() == 2 })
		mustClose(t, e1)

		// A message sent while no engine runs the workflow is stored too.
		e2 := open(t, nil)
		if err := durable.Send(ctx, e2, "in-1", "greet", "hallo"); err != nil {
			t.Fatal(err)
		}
		mustClose(t, e2)

		e3 := open(t, cfg)
		got, err := durable.Run(ctx, e3, wf, "in-1", 3)
		if want := []string{"hello", "bonjour", "hallo"}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Run = %q, %v; want %q", got, err, want)
		}
		// Receive ran twice before the restart and three times after it
		// (two replayed, one live).
		if n := receives.Load(); n != 5 {
			t.Errorf("Receive returned %d times in all, want 5", n)
		}

		if err := durable.Send(ctx, e3, "in-1", "greet", "late"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("Send to a finished run: err = %v; want ErrFinished", err)
		}
		if err := durable.Send(ctx, e3, "nobody", "greet", "hi"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Send to an unknown run: err = %v; want ErrNotFound", err)
		}
	})
}
