package enginetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/durable-go/durable"
)

func init() {
	register("SleepAcrossRestart", testSleepAcrossRestart)
	register("SendReceive", testSendReceive)
	register("MessagesBeforeReceive", testMessagesBeforeReceive)
	register("SendTo", testSendTo)
	register("Events", testEvents)
	register("SendWithStartConcurrent", testSendWithStartConcurrent)
}

// A durable sleep survives a restart: the wake time recorded before it is
// the one kept after it (the timer is not started again), and the run
// ends no earlier.
func testSleepAcrossRestart(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	wf := durable.Define("sleeper", func(ctx durable.Context, in int) (time.Time, error) {
		if _, err := durable.Step(ctx, "before", step(&c, "before", 1)); err != nil {
			return time.Time{}, err
		}
		if err := durable.Sleep(ctx, 300*time.Millisecond); err != nil {
			return time.Time{}, err
		}
		if _, err := durable.Step(ctx, "after", step(&c, "after", 1)); err != nil {
			return time.Time{}, err
		}
		return durable.Now(ctx), nil
	})
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "sl", 0); err != nil {
		h.Fatal(err)
	}
	before := WaitInfo(h.T, e, "sl", func(i durable.RunInfo) bool { return !i.WakeAt.IsZero() })
	e = h.restart(e, wf)
	// Until the wake time the sleep cannot have ended: the new engine
	// keeps the recorded time. (A loaded machine may get past it first.)
	if after := MustGet(h.T, e, "sl"); time.Now().Before(before.WakeAt) && !after.WakeAt.Equal(before.WakeAt) {
		h.Fatalf("after a restart the sleep wakes at %v, want the recorded %v", after.WakeAt, before.WakeAt)
	}
	hd, err := durable.Attach(ctx, e, wf, "sl")
	if err != nil {
		h.Fatal(err)
	}
	woke, err := hd.Result(ctx)
	if err != nil {
		h.Fatal(err)
	}
	if woke.Before(before.WakeAt) {
		h.Errorf("the run went on at %v, before its wake time %v", woke, before.WakeAt)
	}
	c.onceEach(h, "before", "after")
}

// Send delivers to a run that waits in Receive; a message to no run fails
// with ErrNotFound.
func testSendReceive(h *harness) {
	ctx := Ctx(h.T)
	wf := durable.Define("receiver", func(ctx durable.Context, in int) (int, error) {
		a, err := durable.Receive[int](ctx, "a")
		if err != nil {
			return 0, err
		}
		b, err := durable.Receive[int](ctx, "b")
		return a*10 + b, err
	})
	e := h.open(wf)
	hd, err := durable.Start(ctx, e, wf, "rcv", 0)
	if err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "rcv", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	if err := durable.Send(ctx, e, "rcv", "a", 4); err != nil {
		h.Fatal(err)
	}
	if err := durable.Send(ctx, e, "rcv", "b", 2); err != nil {
		h.Fatal(err)
	}
	if got, err := hd.Result(ctx); err != nil || got != 42 {
		h.Fatalf("Result = %d, %v; want 42", got, err)
	}
	if err := durable.Send(ctx, e, "nobody", "a", 1); !isNotFound(err) {
		h.Fatalf("Send to no run = %v, want ErrNotFound", err)
	}
}

// Messages sent before the run receives wait in its inbox, across a
// restart, and are received once each, oldest first.
func testMessagesBeforeReceive(h *harness) {
	ctx := Ctx(h.T)
	release := make(chan struct{})
	var c counter
	wf := durable.Define("late-receiver", func(ctx durable.Context, n int) ([]int, error) {
		if _, err := durable.Step(ctx, "gate", func(ctx context.Context) (int, error) {
			c.inc("gate")
			select {
			case <-release:
				return 0, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}); err != nil {
			return nil, err
		}
		var got []int
		for range n {
			v, err := durable.Receive[int](ctx, "in")
			if err != nil {
				return nil, err
			}
			got = append(got, v)
		}
		return got, nil
	})
	e := h.open(wf)
	if _, err := durable.Start(ctx, e, wf, "late", 5); err != nil {
		h.Fatal(err)
	}
	WaitFor(h.T, "the gate step to run", func() bool { return c.get("gate") == 1 })
	for i := range 3 {
		if err := durable.Send(ctx, e, "late", "in", i); err != nil {
			h.Fatal(err)
		}
	}
	if info := MustGet(h.T, e, "late"); info.Inbox != 3 {
		h.Errorf("Get: Inbox = %d, want the 3 messages sent", info.Inbox)
	}
	e = h.restart(e, wf) // the gate step is interrupted: it runs again
	for i := 3; i < 5; i++ {
		if err := durable.Send(ctx, e, "late", "in", i); err != nil {
			h.Fatal(err)
		}
	}
	close(release)
	hd, err := durable.Attach(ctx, e, wf, "late")
	if err != nil {
		h.Fatal(err)
	}
	got, err := hd.Result(ctx)
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		h.Fatalf("Result = %v, %v; want [0 1 2 3 4]", got, err)
	}
}

// SendTo sends from one run to another, durably: the target receives it
// once, and a restart of the sender does not send again.
func testSendTo(h *harness) {
	ctx := Ctx(h.T)
	target := durable.Define("target", func(ctx durable.Context, n int) ([]string, error) {
		var got []string
		for range n {
			v, err := durable.Receive[string](ctx, "inbox")
			if err != nil {
				return nil, err
			}
			got = append(got, v)
		}
		return got, nil
	})
	sender := durable.Define("sender", func(ctx durable.Context, to string) (string, error) {
		if err := durable.SendTo(ctx, to, "inbox", "hello from "+ctx.RunID()); err != nil {
			return "", err
		}
		if _, err := durable.Receive[int](ctx, "hold"); err != nil { // wait for a restart
			return "", err
		}
		if err := durable.SendTo(ctx, to, "inbox", "bye"); err != nil {
			return "", err
		}
		err := durable.SendTo(ctx, "nobody", "inbox", "lost")
		return fmt.Sprint(isNotFound(err)), nil
	})
	e := h.open(target, sender)
	ht, err := durable.Start(ctx, e, target, "tgt", 2)
	if err != nil {
		h.Fatal(err)
	}
	if _, err := durable.Start(ctx, e, sender, "snd", "tgt"); err != nil {
		h.Fatal(err)
	}
	WaitInfo(h.T, e, "snd", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	e = h.restart(e, target, sender)
	if err := durable.Send(ctx, e, "snd", "hold", 1); err != nil {
		h.Fatal(err)
	}
	hs, err := durable.Attach(ctx, e, sender, "snd")
	if err != nil {
		h.Fatal(err)
	}
	if got, err := hs.Result(ctx); err != nil || got != "true" {
		h.Fatalf("sender: %q, %v; want a SendTo to no run to fail with ErrNotFound", got, err)
	}
	ht, err = durable.Attach(ctx, e, target, ht.ID())
	if err != nil {
		h.Fatal(err)
	}
	if got, err := ht.Result(ctx); err != nil || !slices.Equal(got, []string{"hello from snd", "bye"}) {
		h.Fatalf("target received %q, %v; want each message once", got, err)
	}
}

// SetEvent publishes values that GetEvent reads from outside the run, the
// last one winning, and after the run ends.
func testEvents(h *harness) {
	ctx := Ctx(h.T)
	wf := durable.Define("publisher", func(ctx durable.Context, in int) (int, error) {
		if err := durable.SetEvent(ctx, "stage", "one"); err != nil {
			return 0, err
		}
		if _, err := durable.Receive[int](ctx, "next"); err != nil {
			return 0, err
		}
		if err := durable.SetEvent(ctx, "stage", "two"); err != nil {
			return 0, err
		}
		return 0, nil
	})
	e := h.open(wf)
	hd, err := durable.Start(ctx, e, wf, "pub", 0)
	if err != nil {
		h.Fatal(err)
	}
	if v, err := durable.GetEvent[string](ctx, e, "pub", "stage", WaitLimit); err != nil || v != "one" {
		h.Fatalf("GetEvent = %q, %v; want one", v, err)
	}
	e = h.restart(e, wf)
	if v, err := durable.GetEvent[string](ctx, e, "pub", "stage", 0); err != nil || v != "one" {
		h.Fatalf("GetEvent after a restart = %q, %v; want one", v, err)
	}
	if err := durable.Send(ctx, e, "pub", "next", 1); err != nil {
		h.Fatal(err)
	}
	if hd, err = durable.Attach(ctx, e, wf, hd.ID()); err != nil {
		h.Fatal(err)
	}
	if _, err := hd.Result(ctx); err != nil {
		h.Fatal(err)
	}
	if v, err := durable.GetEvent[string](ctx, e, "pub", "stage", 0); err != nil || v != "two" {
		h.Fatalf("GetEvent after the end = %q, %v; want two", v, err)
	}
	if _, err := durable.GetEvent[string](ctx, e, "pub", "never", 0); err == nil {
		h.Fatal("GetEvent of a key never published by a finished run = nil error, want ErrFinished")
	}
}

// SendWithStart from 50 callers at once makes one run, which receives
// every caller's message once.
func testSendWithStartConcurrent(h *harness) {
	ctx := Ctx(h.T)
	const n = 50
	var c counter
	wf := durable.Define("collector", func(ctx durable.Context, n int) ([]int, error) {
		c.inc("started")
		var got []int
		for range n {
			v, err := durable.Receive[int](ctx, "item")
			if err != nil {
				return nil, err
			}
			got = append(got, v)
		}
		slices.Sort(got)
		return got, nil
	})
	e := h.open(wf)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = durable.SendWithStart(ctx, e, wf, "coll", n, "item", i)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.Fatalf("SendWithStart #%d: %v", i, err)
		}
	}
	hd, err := durable.Attach(ctx, e, wf, "coll")
	if err != nil {
		h.Fatal(err)
	}
	got, err := hd.Result(ctx)
	if err != nil {
		h.Fatal(err)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(got, want) {
		h.Fatalf("received %v, want 0..%d once each", got, n-1)
	}
	page, err := e.List(ctx, durable.ListOptions{Workflow: "collector"})
	if err != nil {
		h.Fatal(err)
	}
	if len(page.Runs) != 1 {
		h.Fatalf("List: %d runs of the collector, want 1", len(page.Runs))
	}
	if s := c.get("started"); s < 1 {
		h.Fatal("the collector never ran")
	}
}
