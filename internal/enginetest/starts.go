package enginetest

import (
	"time"

	"github.com/durable-go/durable"
)

func init() {
	register("StartDelayedAcrossRestart", testStartDelayedAcrossRestart)
}

// A run started with StartAfter or StartAt exists at once (running, with
// its start time as wake time, its inbox open) but its workflow is not
// called before that time, across a restart; it starts then.
func testStartDelayedAcrossRestart(h *harness) {
	ctx := Ctx(h.T)
	var c counter
	wf := durable.Define("delayed", func(ctx durable.Context, in string) (time.Time, error) {
		c.inc(ctx.RunID())
		m, err := durable.Receive[string](ctx, "early")
		if err != nil || m != "hi" {
			return time.Time{}, err
		}
		return durable.Now(ctx), nil
	})
	e := h.open(wf)
	t0 := time.Now()
	if _, err := durable.Start(ctx, e, wf, "after", "", durable.StartAfter(400*time.Millisecond)); err != nil {
		h.Fatal(err)
	}
	if _, err := durable.Start(ctx, e, wf, "at", "", durable.StartAt(t0.Add(300*time.Millisecond))); err != nil {
		h.Fatal(err)
	}
	wakes := map[string]time.Time{}
	for _, id := range []string{"after", "at"} {
		info := MustGet(h.T, e, id)
		if info.Status != durable.StatusRunning || info.WakeAt.IsZero() {
			h.Fatalf("delayed run %s: %v, wakes at %v; want running with its start time", id, info.Status, info.WakeAt)
		}
		wakes[id] = info.WakeAt
		// A message sent before the start waits in the inbox.
		if err := durable.Send(ctx, e, id, "early", "hi"); err != nil {
			h.Fatal(err)
		}
	}
	if !wakes["at"].Equal(t0.Add(300 * time.Millisecond)) {
		h.Errorf("StartAt run wakes at %v, want %v", wakes["at"], t0.Add(300*time.Millisecond))
	}
	e = h.restart(e, wf)
	for _, id := range []string{"after", "at"} {
		if info := MustGet(h.T, e, id); info.Status == durable.StatusRunning && c.get(id) == 0 && !info.WakeAt.Equal(wakes[id]) {
			h.Errorf("after a restart run %s wakes at %v, want the recorded %v", id, info.WakeAt, wakes[id])
		}
		hd, err := durable.Attach(ctx, e, wf, id)
		if err != nil {
			h.Fatal(err)
		}
		began, err := hd.Result(ctx)
		if err != nil {
			h.Fatalf("run %s: %v", id, err)
		}
		if began.Before(wakes[id]) {
			h.Errorf("run %s began at %v, before its start time %v", id, began, wakes[id])
		}
		if n := c.get(id); n != 1 {
			h.Errorf("run %s: workflow called %d times, want once (nothing to replay before it)", id, n)
		}
	}
}
