package main

import (
	"context"
	"strings"
	"testing"

	"github.com/durable-go/durable"
)

// durable -addr URL schedule: create, list, show, trigger, pause, update,
// delete, and the errors of bad calls.
func TestScheduleCommand(t *testing.T) {
	e, addr, _ := live(t)
	ctx := context.Background()

	_, errOut, code := durableCmd(t, "schedule", "list")
	wantCode(t, code, exitUsage)
	wantContains(t, "schedule without -addr", errOut, "needs -addr")

	out, errOut, code := durableCmd(t, "-addr", addr, "schedule", "create", "orders", "-workflow", "order", "-input", "7",
		"-cron", "0 2 * * *", "-zone", "America/New_York", "-overlap", "buffer-one", "-catch-up", "all", "-catch-up-max", "5")
	wantCode(t, code, exitOK)
	wantContains(t, "create", out, "schedule  orders (run schedule:orders)", "workflow  order input 7", `cron "0 2 * * *" America/New_York`,
		"overlap buffer-one, catch-up all (at most 5)", "next ", "0 started")
	if errOut != "" {
		t.Errorf("create wrote to stderr: %s", errOut)
	}
	_, errOut, code = durableCmd(t, "-addr", addr, "schedule", "create", "orders", "-workflow", "order", "-every", "1h")
	wantCode(t, code, exitFailure)
	wantContains(t, "second create", errOut, "schedule exists", "conflict")
	_, errOut, code = durableCmd(t, "-addr", addr, "schedule", "create", "bad", "-workflow", "order", "-cron", "every tuesday")
	wantCode(t, code, exitFailure)
	wantContains(t, "bad cron", errOut, "cron", "bad_request")
	_, _, code = durableCmd(t, "-addr", addr, "schedule", "create", "bad", "-workflow", "order", "-every", "1h", "-input", "{oops")
	wantCode(t, code, exitUsage)
	_, errOut, code = durableCmd(t, "-addr", addr, "schedule", "pause", "nope")
	wantCode(t, code, exitFailure)
	wantContains(t, "pause unknown", errOut, "not_found")

	out, _, code = durableCmd(t, "-addr", addr, "schedule", "trigger", "orders")
	wantCode(t, code, exitOK)
	wantContains(t, "trigger", out, "started run orders@trigger:", "1 started", "started  orders@trigger:")
	id := strings.Fields(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "started run "))[0]
	settle(t, e, id, durable.StatusCompleted)

	out, _, code = durableCmd(t, "-addr", addr, "schedule", "pause", "orders")
	wantCode(t, code, exitOK)
	wantContains(t, "pause", out, "state     paused")
	out, _, code = durableCmd(t, "-addr", addr, "schedule", "update", "orders", "-workflow", "order", "-input", "8", "-every", "30m", "-jitter", "1m")
	wantCode(t, code, exitOK)
	wantContains(t, "update", out, "workflow  order input 8", "every 30m0s, jitter 1m0s", "state     paused")
	out, _, code = durableCmd(t, "-addr", addr, "schedule", "list")
	wantCode(t, code, exitOK)
	wantContains(t, "list", out, "NAME", "orders", "every 30m0s", "paused")
	out, _, code = durableCmd(t, "-addr", addr, "-json", "schedule", "show", "orders")
	wantCode(t, code, exitOK)
	wantContains(t, "show -json", out, `"name": "orders"`, `"every": "30m0s"`, `"paused": true`)

	out, _, code = durableCmd(t, "-addr", addr, "schedule", "delete", "orders")
	wantCode(t, code, exitOK)
	wantContains(t, "delete", out, "delete schedule orders: done")
	if _, err := e.GetSchedule(ctx, "orders"); err == nil {
		t.Error("the schedule is still there after delete")
	}
}
