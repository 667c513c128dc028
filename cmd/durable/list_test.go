package main

import (
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	stdout, _, code := durableCmd(t, "list", path)
	wantCode(t, code, exitOK)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 9 {
		t.Fatalf("list printed %d lines, want a header and 8 runs:\n%s", len(lines), stdout)
	}
	wantContains(t, "header", lines[0], "ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "PARENT", "ERROR")
	rows := map[string]string{}
	for _, l := range lines[1:] {
		rows[strings.Fields(l)[0]] = l
	}
	for id, want := range map[string][]string{
		"order-1":         {"order", "completed"},
		"order-3":         {"order", "failed", `step "charge" failed after 2 attempts`, "card declined"},
		"batch-1":         {"batch", "completed"},
		"batch-1/order-a": {"order", "completed"},
		"signup-1":        {"signup", "running"},
		"signup-2":        {"signup", "canceled"},
		"legacy-1":        {"legacy", "parked", "diverged from its journal"},
	} {
		wantContains(t, "row of "+id, rows[id], want...)
	}
	if f := strings.Fields(rows["batch-1/order-a"]); len(f) < 8 || f[7] != "batch-1" {
		t.Errorf("the row of batch-1/order-a does not name its parent batch-1: %q", f)
	}
	for _, id := range []string{"signup-2", "signup-1", "order-1"} {
		if strings.Contains(rows[id], "durable:") {
			t.Errorf("the row of %s shows an error: %s", id, rows[id])
		}
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	ids := func(stdout string) string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
			out = append(out, strings.Fields(l)[0])
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-status", "parked"}, "legacy-1"},
		{[]string{"-status", "completed", "-workflow", "order"}, "batch-1/order-a order-1 order-2"},
		{[]string{"-workflow", "signup"}, "signup-1 signup-2"},
		{[]string{"-limit", "2"}, "batch-1 batch-1/order-a"},
	} {
		// Flags may come before or after FILE.
		for _, args := range [][]string{append([]string{"list", path}, c.args...), append(append([]string{"list"}, c.args...), path)} {
			stdout, stderr, code := durableCmd(t, args...)
			wantCode(t, code, exitOK)
			if got := ids(stdout); got != c.want {
				t.Errorf("durable %q listed %q, want %q", args, got, c.want)
			}
			if c.args[0] == "-limit" {
				wantContains(t, "stderr", stderr, "more runs match")
			}
		}
	}
	stdout, stderr, code := durableCmd(t, "list", path, "-workflow", "nothing")
	wantCode(t, code, exitOK)
	wantContains(t, "output", stdout+stderr, "no runs match")
}
