package main

import (
	"testing"
)

func TestShow(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)

	stdout, _, code := durableCmd(t, "show", path, "order-3")
	wantCode(t, code, exitOK)
	wantContains(t, "show order-3", stdout,
		"run        order-3\n", "workflow   order\n", "status     failed\n",
		`error      durable: order(order-3) → step "charge" failed after 2 attempts: card declined`,
		`input      {"Amount":-1,"ID":"3"}`,
		"timeline (", `step    "reserve"  completed`, `"res-3"`,
		`step    "charge"  attempt 1 failed, next at`, `step    "charge"  failed`)

	stdout, _, code = durableCmd(t, "show", path, "signup-1")
	wantCode(t, code, exitOK)
	wantContains(t, "show signup-1", stdout, "status     running\n", "wakes at", `step    "prepare"  completed`, "sleep", "waiting until")

	stdout, _, code = durableCmd(t, "show", path, "batch-1")
	wantCode(t, code, exitOK)
	wantContains(t, "show batch-1", stdout, "output     1", "children   batch-1/order-a (completed)", `child   "order"  started`)

	stdout, _, code = durableCmd(t, "show", path, "batch-1/order-a")
	wantCode(t, code, exitOK)
	wantContains(t, "show batch-1/order-a", stdout, "parent     batch-1 (waits at position 0)")

	stdout, _, code = durableCmd(t, "show", path, "legacy-1")
	wantCode(t, code, exitOK)
	wantContains(t, "show legacy-1", stdout, "status     parked", "diverged from its journal", "The run is parked")

	_, stderr, code := durableCmd(t, "show", path, "nope")
	wantCode(t, code, exitFailure)
	wantContains(t, "stderr", stderr, `no run "nope"`)
}
