package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

var greet = durable.Define("greet", func(ctx durable.Context, name string) (string, error) {
	return durable.Step(ctx, "hello", func(context.Context) (string, error) { return "hello, " + name, nil })
})

// TestListShowCancel runs the commands against a journal that an engine
// wrote: a completed run and an unfinished one.
func TestListShowCancel(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	ctx := t.Context()
	s, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	e, err := durable.New(s, &durable.Config{Workflows: []durable.Definition{greet}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Run(ctx, e, greet, "done", "ann"); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "waiting", Workflow: "greet", Status: journal.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(append([]string{"-postgres", url, "-schema", schema}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	out, errs, code := cmd("list")
	if code != exitOK || !strings.Contains(out, "done") || !strings.Contains(out, "completed") || !strings.Contains(out, "waiting") {
		t.Fatalf("list = %d\n%s%s", code, out, errs)
	}
	out, errs, code = cmd("list", "-status", "running")
	if code != exitOK || strings.Contains(out, "done") || !strings.Contains(out, "waiting") {
		t.Fatalf("list -status running = %d\n%s%s", code, out, errs)
	}
	out, errs, code = cmd("show", "done")
	if code != exitOK || !strings.Contains(out, `"hello, ann"`) || !strings.Contains(out, "hello") || !strings.Contains(out, "timeline") {
		t.Fatalf("show done = %d\n%s%s", code, out, errs)
	}
	if _, errs, code = cmd("show", "nope"); code != exitFailure || !strings.Contains(errs, `no run "nope"`) {
		t.Fatalf("show nope = %d, %s", code, errs)
	}
	out, errs, code = cmd("cancel", "waiting")
	if code != exitOK || !strings.Contains(out, "cancel requested") {
		t.Fatalf("cancel waiting = %d\n%s%s", code, out, errs)
	}
	if _, errs, code = cmd("cancel", "done"); code != exitFailure || !strings.Contains(errs, "nothing to cancel") {
		t.Fatalf("cancel done = %d, %s", code, errs)
	}
	out, _, _ = cmd("show", "waiting")
	if !strings.Contains(out, "cancel     requested") {
		t.Fatalf("show waiting after cancel:\n%s", out)
	}
	if _, _, code = cmd("bogus"); code != exitUsage {
		t.Fatalf("unknown command: exit %d, want %d", code, exitUsage)
	}
}

var waiter = durable.Define("waiter", func(ctx durable.Context, _ int) (string, error) {
	type note struct{ Text string }
	n, err := durable.Receive[note](ctx, "note")
	return "got " + n.Text, err
})

// TestSend sends a JSON message from the command to a run that an engine
// (another Store, as another process would have) executes: the run
// receives it and completes.
func TestSend(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := durable.New(s, &durable.Config{Workflows: []durable.Definition{waiter}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, err := durable.Start(ctx, e, waiter, "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-postgres", url, "-schema", schema, "send", "w", "note", `{"Text": "hi"}`}, &out, &errb); code != exitOK {
		t.Fatalf("send = %d\n%s%s", code, out.String(), errb.String())
	}
	got, err := h.Result(ctx)
	if err != nil || got != "got hi" {
		t.Fatalf("the run's result = %q, %v; want \"got hi\"", got, err)
	}
	if code := run([]string{"-postgres", url, "-schema", schema, "send", "w", "note", `not json`}, &out, &errb); code != exitUsage {
		t.Fatalf("send of invalid JSON: exit %d, want %d", code, exitUsage)
	}
}
