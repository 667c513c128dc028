package enginetest

import (
	"context"
	"time"

	"github.com/durable-go/durable"
)

func init() {
	register("StartDelayedAcrossRestart", testStartDelayedAcrossRestart)
}

// A run started with StartAfter or StartAt exists at once (running, with
// its start time as wake time, its inbox open) but its workflow does not
// begin before that time, across a restart; it begins then, once.
func testStartDelayedAcrossRestart(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	wf := durable.Define("delayed", func(ctx durable.Context, in string) (time.Time, error) {
		// The step runs once, when the workflow begins (replays return
		// its recorded time).
		id := ctx.RunID()
		began, err := durable.Step(ctx, "began", func(context.Context) (time.Time, error) {
			c.inc(id)
			return time.Now(), nil
		})
		if err != nil {
			return time.Time{}, err
		}
		if m, err := durable.Receive[string](ctx, "early"); err != nil || m != "hi" {
			return time.Time{}, err
		}
		return began, nil
	})
	const d = time.Second
	e := h.open(wf)
	t0 := time.Now()
	if _, err := durable.Start(ctx, e, wf, "after", "", durable.StartAfter(d)); err != nil {
		h.Fatal(err)
	}
	if _, err := durable.Start(ctx, e, wf, "at", "", durable.StartAt(t0.Add(d))); err != nil {
		h.Fatal(err)
	}
	for _, id := range []string{"after", "at"} {
		info := MustGet(h.T, e, id)
		// A loaded machine may get past the start time already; then
		// the run may have begun. Before it, it waits for its time.
		if info.Status != durable.StatusRunning || info.WakeAt.IsZero() && time.Since(t0) < d {
			h.Fatalf("delayed run %s: %v, wakes at %v; want running with its start time", id, info.Status, info.WakeAt)
		}
		if id == "at" && !info.WakeAt.IsZero() && !info.WakeAt.Equal(t0.Add(d)) {
			h.Errorf("StartAt run wakes at %v, want %v", info.WakeAt, t0.Add(d))
		}
		// A message sent before the start waits in the inbox.
		if err := durable.Send(ctx, e, id, "early", "hi"); err != nil {
			h.Fatal(err)
		}
	}
	e = h.restart(e, wf)
	for _, id := range []string{"after", "at"} {
		hd, err := durable.Attach(ctx, e, wf, id)
		if err != nil {
			h.Fatal(err)
		}
		began, err := hd.Result(ctx)
		if err != nil {
			h.Fatalf("run %s: %v", id, err)
		}
		info := MustGet(h.T, e, id)
		if began.Before(info.CreatedAt.Add(d)) && id == "after" || began.Before(t0.Add(d)) && id == "at" {
			h.Errorf("run %s began at %v, before its start time (created %v, delay %v)", id, began, info.CreatedAt, d)
		}
		if n := c.get(id); n != 1 {
			h.Errorf("run %s: its first step executed %d times, want once", id, n)
		}
	}
}
